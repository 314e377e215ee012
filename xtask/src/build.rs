//! `cargo xtask build`: the browser bundle. Compiles the client for wasm32 with the small
//! `wasm-release` profile, generates the JS glue with the wasm-bindgen library (no CLI to
//! install), adds the page, stylesheet and icon, and reports the size gzipped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::util::{cargo, ensure_target, exec, root, target_dir};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Static files of the page, copied as they are from `client/web/`.
const PAGE_FILES: [&str; 3] = ["index.html", "style.css", "favicon.svg"];

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    bundle().map(|_| ())
}

/// The bundle's folder, as the server's `--web-root`.
pub fn bundle_dir() -> PathBuf {
    target_dir().join("web")
}

/// Builds the bundle and returns its folder.
pub fn bundle() -> anyhow::Result<PathBuf> {
    ensure_target(WASM_TARGET)?;
    exec(cargo().args([
        "build",
        "-p",
        "client",
        "--lib",
        "--target",
        WASM_TARGET,
        "--profile",
        "wasm-release",
    ]))?;
    let wasm = target_dir()
        .join(WASM_TARGET)
        .join("wasm-release")
        .join("client.wasm");
    let out = bundle_dir();
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("clear {}", out.display()))?;
    }
    fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .out_name("client")
        .web(true)?
        .typescript(false)
        .generate(&out)
        .with_context(|| format!("generate the JS bindings for {}", wasm.display()))?;
    let page = root().join("client").join("web");
    for file in PAGE_FILES {
        fs::copy(page.join(file), out.join(file))
            .with_context(|| format!("copy {file} into the bundle"))?;
    }
    report_size(&out)?;
    Ok(out)
}

/// Prints each file's size, raw and gzipped, and the totals.
fn report_size(dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let (mut raw_total, mut gz_total) = (0, 0);
    for file in &files {
        let bytes = fs::read(file).with_context(|| format!("read {}", file.display()))?;
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&bytes)?;
        let gz_len = gz.finish()?.len();
        raw_total += bytes.len();
        gz_total += gz_len;
        eprintln!(
            "  {:<20} {:>9} B  {:>9} B gzipped",
            file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            bytes.len(),
            gz_len
        );
    }
    eprintln!(
        "bundle {}: {:.1} KiB, {:.1} KiB gzipped",
        dir.display(),
        raw_total as f64 / 1024.0,
        gz_total as f64 / 1024.0
    );
    Ok(())
}
