//! Chromium and chromedriver for the browser tests: found on the PATH, installed with
//! apt-get when missing and running as root, or else a stop with the command to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

use crate::util::{exec, output};

const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver";

/// The browser and its driver, as paths.
#[derive(Debug)]
pub struct Chromium {
    pub browser: PathBuf,
    pub driver: PathBuf,
}

fn on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn find() -> Option<Chromium> {
    let browser = on_path("chromium").or_else(|| on_path("chromium-browser"))?;
    let driver = on_path("chromedriver")?;
    Some(Chromium { browser, driver })
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// Returns Chromium and chromedriver, installing them first if that is possible here.
pub fn ensure_chromium() -> anyhow::Result<Chromium> {
    if let Some(found) = find() {
        return Ok(found);
    }
    if !is_root() || !Path::new("/usr/bin/apt-get").is_file() {
        bail!(
            "the browser tests need Chromium and chromedriver, which are not installed; install them with:\n    sudo sh -c '{INSTALL}'"
        );
    }
    eprintln!("installing Chromium and chromedriver for the browser tests");
    exec(Command::new("apt-get").arg("update"))?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    match find() {
        Some(found) => Ok(found),
        None => {
            bail!("apt-get installed chromium and chromium-driver, but they are not on the PATH")
        }
    }
}
