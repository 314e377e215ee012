//! Outside programs the tests run: Chromium and chromedriver, Caddy, PostgreSQL for
//! the shared store and redis-server for the cluster. Each is found, installed from Debian's packages with apt-get when
//! missing and running as root, or else the run stops with the command to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

use crate::util::{exec, output};

/// The browser and its driver, as paths.
#[derive(Debug)]
pub struct Chromium {
    pub browser: PathBuf,
    pub driver: PathBuf,
}

/// Returns Chromium and chromedriver, installing them first if that is possible here.
pub fn ensure_chromium() -> anyhow::Result<Chromium> {
    ensure(
        "the browser tests need Chromium and chromedriver",
        &["chromium", "chromium-driver"],
        || {
            let browser = on_path("chromium").or_else(|| on_path("chromium-browser"))?;
            let driver = on_path("chromedriver")?;
            Some(Chromium { browser, driver })
        },
    )
}

/// Returns the `caddy` binary, installing it first if that is possible here.
pub fn ensure_caddy() -> anyhow::Result<PathBuf> {
    ensure("the reverse-proxy test needs Caddy", &["caddy"], || {
        on_path("caddy")
    })
}

/// Returns the folder of PostgreSQL's server programs (initdb, pg_ctl, postgres, psql),
/// installing them first if that is possible here. `SKIRMISH_POSTGRES_BIN` chooses the
/// folder when set; else Debian's newest `/usr/lib/postgresql/<major>/bin`, which is
/// not on the PATH.
pub fn ensure_postgres() -> anyhow::Result<PathBuf> {
    if let Some(chosen) = std::env::var_os(test_postgres::BIN_ENV) {
        let chosen = PathBuf::from(chosen);
        if !has_postgres_programs(&chosen) {
            bail!(
                "{} is {}, which lacks one of {POSTGRES_PROGRAMS:?}",
                test_postgres::BIN_ENV,
                chosen.display()
            );
        }
        return Ok(chosen);
    }
    ensure(
        "the shared store's tests need PostgreSQL",
        &["postgresql"],
        newest_debian_postgres,
    )
}

/// Returns the `redis-server` program, installing it first if that is possible here.
/// `SKIRMISH_REDIS_SERVER` chooses the program when set.
pub fn ensure_redis() -> anyhow::Result<PathBuf> {
    if let Some(chosen) = std::env::var_os(test_redis::BIN_ENV) {
        let chosen = PathBuf::from(chosen);
        if !chosen.is_file() {
            bail!(
                "{} is {}, which is no file",
                test_redis::BIN_ENV,
                chosen.display()
            );
        }
        return Ok(chosen);
    }
    ensure("the cluster's tests need Redis", &["redis-server"], || {
        on_path("redis-server")
    })
}

/// What the tests run of PostgreSQL.
const POSTGRES_PROGRAMS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "psql"];

fn has_postgres_programs(dir: &Path) -> bool {
    POSTGRES_PROGRAMS
        .iter()
        .all(|program| dir.join(program).is_file())
}

/// The `bin` folder of the newest major version under /usr/lib/postgresql that has
/// every program the tests run.
fn newest_debian_postgres() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_postgres_programs(&bin).then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

fn on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// What `find` finds, after installing `packages` with apt-get if it found nothing and
/// this process may install; `needs` says who needs them, for the error otherwise.
fn ensure<T>(needs: &str, packages: &[&str], find: impl Fn() -> Option<T>) -> anyhow::Result<T> {
    if let Some(found) = find() {
        return Ok(found);
    }
    let names = packages.join(" ");
    if !is_root() || !Path::new("/usr/bin/apt-get").is_file() {
        bail!(
            "{needs}: not found on the PATH. Install with:\n    sudo sh -c 'apt-get update && apt-get install -y {names}'"
        );
    }
    eprintln!("installing {names}: {needs}");
    exec(Command::new("apt-get").arg("update"))?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    match find() {
        Some(found) => Ok(found),
        None => bail!("apt-get installed {names}, but they are not on the PATH"),
    }
}
