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
        // The glue then finds `client_bg.wasm` beside itself, so the page only imports it.
        .omit_default_module_path(false)
        .generate(&out)
        .with_context(|| format!("generate the JS bindings for {}", wasm.display()))?;
    let module = out.join("client_bg.wasm");
    let stripped = without_names(&fs::read(&module)?)
        .with_context(|| format!("strip the names from {}", module.display()))?;
    fs::write(&module, stripped)?;
    let page = root().join("client").join("web");
    for file in PAGE_FILES {
        fs::copy(page.join(file), out.join(file))
            .with_context(|| format!("copy {file} into the bundle"))?;
    }
    report_size(&out)?;
    Ok(out)
}

/// The module without its `name` custom section: function names for debuggers, a third of
/// the file. Stripping at link time would also drop `target_features`, which wasm-bindgen
/// reads, so the names go here, after it.
fn without_names(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    const HEADER: usize = 8;
    anyhow::ensure!(
        module.len() >= HEADER && module.starts_with(b"\0asm"),
        "not a wasm module"
    );
    let mut out = module[..HEADER].to_vec();
    let mut at = HEADER;
    while at < module.len() {
        let id = module[at];
        let (size, size_len) = read_leb128(&module[at + 1..])?;
        let body_start = at + 1 + size_len;
        let end = body_start + size;
        anyhow::ensure!(end <= module.len(), "section runs past the end");
        let is_names = id == 0 && {
            let body = &module[body_start..end];
            let (name_len, name_len_len) = read_leb128(body)?;
            body.get(name_len_len..name_len_len + name_len) == Some(b"name".as_slice())
        };
        if !is_names {
            out.extend_from_slice(&module[at..end]);
        }
        at = end;
    }
    Ok(out)
}

/// An unsigned LEB128 number and the bytes it took.
fn read_leb128(bytes: &[u8]) -> anyhow::Result<(usize, usize)> {
    let mut value = 0usize;
    for (idx, byte) in bytes.iter().take(5).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * idx);
        if byte & 0x80 == 0 {
            return Ok((value, idx + 1));
        }
    }
    anyhow::bail!("bad LEB128 number")
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
            file.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_name_section_is_dropped() {
        let header = b"\0asm\x01\0\0\0".to_vec();
        let names = [0u8, 6, 4, b'n', b'a', b'm', b'e', 0xAA];
        let features = [0u8, 3, 1, b'f', 0xBB];
        let types = [1u8, 1, 0];
        let module = [
            header.clone(),
            names.to_vec(),
            types.to_vec(),
            features.to_vec(),
        ]
        .concat();
        let stripped = without_names(&module).expect("a valid module");
        assert_eq!(
            stripped,
            [header, types.to_vec(), features.to_vec()].concat()
        );
    }
}
