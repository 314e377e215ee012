//! `cargo xtask build`: the browser bundle. Compiles the client for wasm32 with the small
//! `wasm-release` profile, generates the JS glue with the wasm-bindgen library (no CLI to
//! install), names the module, the glue and the stylesheet by their content so browsers
//! may keep them for good, adds the page (which preloads them) and the icon, writes a
//! brotli and a gzip copy beside each file for the server to send as they are, and
//! reports the sizes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::util::{cargo, ensure_target, exec, root, target_dir};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Static files of the page, copied as they are: (folder under the root, file).
const PAGE_FILES: [(&str, &str); 1] = [("assets", "favicon.svg")];
/// Hex digits of the content hash in a file's name. The server knows a file by this
/// shape (`name-<16 hex digits>.ext`) as immutable.
const HASH_DIGITS: usize = 16;

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
        // The glue then finds the module beside itself, so the page only imports it.
        .omit_default_module_path(false)
        .generate(&out)
        .with_context(|| format!("generate the JS bindings for {}", wasm.display()))?;
    name_by_content(&out)?;
    for (folder, file) in PAGE_FILES {
        fs::copy(root().join(folder).join(file), out.join(file))
            .with_context(|| format!("copy {file} into the bundle"))?;
    }
    precompress(&out)?;
    report_size(&out)?;
    Ok(out)
}

/// Renames the module and the glue to content-hashed names, names the stylesheet by its
/// content too, and points the glue at the module and the page at all three by those
/// names. A new build is new names, so a browser never mixes an old glue with a new
/// module, and may keep each for good: a repeat visit asks only for the page.
fn name_by_content(out: &Path) -> anyhow::Result<()> {
    let module_path = out.join("client_bg.wasm");
    let module = without_names(&fs::read(&module_path)?)
        .with_context(|| format!("strip the names from {}", module_path.display()))?;
    let module_name = hashed_name("client_bg", "wasm", &module);
    fs::write(out.join(&module_name), module)?;
    fs::remove_file(&module_path)?;

    let glue_path = out.join("client.js");
    let glue =
        fs::read_to_string(&glue_path).with_context(|| format!("read {}", glue_path.display()))?;
    let glue = replace_once(&glue, "'client_bg.wasm'", &format!("'{module_name}'"))
        .context("point the JS glue at the module")?;
    let glue_name = hashed_name("client", "js", glue.as_bytes());
    fs::write(out.join(&glue_name), glue)?;
    fs::remove_file(&glue_path)?;

    let web = root().join("client").join("web");
    let style = fs::read(web.join("style.css")).context("read the stylesheet")?;
    let style_name = hashed_name("style", "css", &style);
    fs::write(out.join(&style_name), style)?;

    let page_path = web.join("index.html");
    let page =
        fs::read_to_string(&page_path).with_context(|| format!("read {}", page_path.display()))?;
    // The glue is named twice (its preload and the import), the module once (its preload).
    let page = replace_n(&page, "\"./client.js\"", &format!("\"./{glue_name}\""), 2)
        .context("point the page at the JS glue")?;
    let page = replace_once(
        &page,
        "\"./client_bg.wasm\"",
        &format!("\"./{module_name}\""),
    )
    .context("point the page's preload at the module")?;
    let page = replace_once(&page, "\"style.css\"", &format!("\"{style_name}\""))
        .context("point the page at the stylesheet")?;
    // The icon is a few hundred bytes: inside the page it costs no request, first
    // visit or repeat.
    let icon =
        fs::read_to_string(root().join("assets").join("favicon.svg")).context("read the icon")?;
    let page = replace_once(
        &page,
        "\"favicon.svg\"",
        &format!("\"{}\"", svg_data_uri(&icon)),
    )
    .context("put the icon in the page")?;
    fs::write(out.join("index.html"), page)?;
    Ok(())
}

/// `svg` as a `data:` URI that may stand in a double-quoted attribute.
fn svg_data_uri(svg: &str) -> String {
    let mut uri = String::from("data:image/svg+xml,");
    for c in svg.trim().chars() {
        match c {
            '"' | '#' | '%' | '<' | '>' | ' ' | '\n' | '\r' | '\t' => {
                let mut bytes = [0; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    uri.push_str(&format!("%{byte:02X}"));
                }
            }
            _ => uri.push(c),
        }
    }
    uri
}

/// `stem-<hash>.ext`: the first 16 hex digits of the content's SHA-256.
fn hashed_name(stem: &str, ext: &str, content: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(content));
    format!("{stem}-{}.{ext}", &digest[..HASH_DIGITS])
}

/// `text` with its one `from` replaced; an error if `from` is not there exactly once,
/// since then the generated file no longer looks as this build expects.
fn replace_once(text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    replace_n(text, from, to, 1)
}

/// `text` with each of its `times` occurrences of `from` replaced; an error for any
/// other count.
fn replace_n(text: &str, from: &str, to: &str, times: usize) -> anyhow::Result<String> {
    let found = text.matches(from).count();
    anyhow::ensure!(
        found == times,
        "expected {from} {times} times, found it {found} times"
    );
    Ok(text.replace(from, to))
}

/// Writes `FILE.br` and `FILE.gz` beside each file of `dir`, at the highest settings
/// (the build pays once, every download gains), each only where it is smaller.
fn precompress(dir: &Path) -> anyhow::Result<()> {
    for file in bundle_files(dir)? {
        let bytes = fs::read(&file).with_context(|| format!("read {}", file.display()))?;
        for (ext, compressed) in [("br", brotli_bytes(&bytes)?), ("gz", gzip_bytes(&bytes)?)] {
            if compressed.len() < bytes.len() {
                let mut copy = file.clone().into_os_string();
                copy.push(format!(".{ext}"));
                fs::write(&copy, compressed)
                    .with_context(|| format!("write {}", Path::new(&copy).display()))?;
            }
        }
    }
    Ok(())
}

fn gzip_bytes(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

fn brotli_bytes(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    const QUALITY: u32 = 11;
    const WINDOW_BITS: u32 = 22;
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, QUALITY, WINDOW_BITS);
        writer.write_all(bytes)?;
    }
    Ok(out)
}

/// The bundle's files, without their compressed copies, sorted.
fn bundle_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|file| {
        !file
            .extension()
            .is_some_and(|ext| ext == "br" || ext == "gz")
    });
    files.sort();
    Ok(files)
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

/// Prints each file's size, raw and as its compressed copies go out, and the totals.
fn report_size(dir: &Path) -> anyhow::Result<()> {
    let size = |file: &Path, ext: &str| {
        let mut copy = file.as_os_str().to_owned();
        copy.push(ext);
        // Without a copy, the file goes out as it is.
        fs::metadata(&copy)
            .or_else(|_| fs::metadata(file))
            .map(|meta| meta.len())
    };
    let (mut raw_total, mut gz_total, mut br_total) = (0, 0, 0);
    for file in &bundle_files(dir)? {
        let (raw, gz, br) = (size(file, "")?, size(file, ".gz")?, size(file, ".br")?);
        raw_total += raw;
        gz_total += gz;
        br_total += br;
        eprintln!(
            "  {:<32} {raw:>9} B  {gz:>9} B gzip  {br:>9} B brotli",
            file.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
        );
    }
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    eprintln!(
        "bundle {}: {:.1} KiB, {:.1} KiB gzip, {:.1} KiB brotli",
        dir.display(),
        kib(raw_total),
        kib(gz_total),
        kib(br_total)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_follow_the_content() {
        let name = hashed_name("client", "js", b"one");
        assert!(
            name.starts_with("client-") && name.ends_with(".js"),
            "{name}"
        );
        assert_eq!(name.len(), "client-.js".len() + HASH_DIGITS);
        assert_eq!(
            name,
            hashed_name("client", "js", b"one"),
            "the same content, the same name"
        );
        assert_ne!(name, hashed_name("client", "js", b"two"));
    }

    #[test]
    fn an_icon_becomes_a_data_uri_safe_in_an_attribute() {
        let uri = svg_data_uri("<svg fill=\"#fff\"/>\n");
        assert_eq!(uri, "data:image/svg+xml,%3Csvg%20fill=%22%23fff%22/%3E");
    }

    #[test]
    fn a_reference_is_replaced_only_when_it_is_there_once() {
        assert_eq!(
            replace_once("a 'x' b", "'x'", "'y'").expect("once"),
            "a 'y' b"
        );
        assert!(replace_once("a b", "'x'", "'y'").is_err());
        assert!(replace_once("'x' 'x'", "'x'", "'y'").is_err());
    }

    #[test]
    fn compressed_copies_decode_to_the_original() {
        let original = b"skirmish ".repeat(100);
        let mut decoded = Vec::new();
        brotli::BrotliDecompress(
            &mut brotli_bytes(&original).expect("brotli").as_slice(),
            &mut decoded,
        )
        .expect("brotli decodes");
        assert_eq!(decoded, original);
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(gzip_bytes(&original).expect("gzip").as_slice()),
            &mut decoded,
        )
        .expect("gzip decodes");
        assert_eq!(decoded, original);
    }

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
