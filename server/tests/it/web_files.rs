//! The page and its bundle as a browser gets them: each file in the encoding asked for
//! (the same bytes once decoded), cacheable for good when its name carries its hash and
//! revalidated by `ETag` otherwise; `HEAD` on every `GET` route; and an icon for every
//! page.

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::support::*;

const PAGE: &str = "<!doctype html><title>Skirmish</title><script type=module src=\"./client-0123456789abcdef.js\"></script>\n";
const GLUE: &str = "client-0123456789abcdef.js";
const MODULE: &str = "client_bg-fedcba9876543210.wasm";

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        writer.write_all(bytes).expect("compress");
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("compress");
    gz.finish().expect("compress")
}

fn decoded(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(body),
        Some("br") => {
            brotli::BrotliDecompress(&mut &body[..], &mut out).expect("a brotli body");
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("a gzip body");
        }
        Some(other) => panic!("an encoding nobody asked for: {other}"),
    }
    out
}

/// A web root as `cargo xtask build` lays it out: the page, a content-named glue and
/// module, and brotli and gzip copies beside each.
fn bundle() -> (PathBuf, Vec<u8>) {
    let root = fresh_data_dir().with_extension("web");
    std::fs::create_dir_all(&root).expect("make the web root");
    let glue: Vec<u8> = "export default function init() {}\n"
        .repeat(200)
        .into_bytes();
    let module: Vec<u8> = [b"\0asm\x01\0\0\0".as_slice(), &[7u8; 4000]].concat();
    for (name, bytes) in [
        ("index.html", PAGE.as_bytes().to_vec()),
        (GLUE, glue.clone()),
        (MODULE, module),
    ] {
        std::fs::write(root.join(name), &bytes).expect("write a file");
        std::fs::write(root.join(format!("{name}.br")), brotli(&bytes)).expect("write .br");
        std::fs::write(root.join(format!("{name}.gz")), gzip(&bytes)).expect("write .gz");
    }
    (root, glue)
}

#[tokio::test]
async fn files_come_in_the_encoding_asked_for_with_the_same_bytes() {
    let (root, glue) = bundle();
    let server = start_server(|config| config.web_root = Some(root)).await;
    let path = format!("/{GLUE}");
    for (accept, expected) in [
        (Some("gzip, deflate, br"), Some("br")),
        (Some("br;q=0, gzip"), Some("gzip")),
        (Some("gzip;q=0.5, br;q=0.4"), Some("gzip")),
        (Some("deflate"), None),
        (Some("identity"), None),
        (None, None),
    ] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let response = http_request(server.addr, "GET", &path, &headers).await;
        assert_eq!(response.status, 200, "{accept:?}");
        assert_eq!(
            response.header("content-encoding"),
            expected,
            "Accept-Encoding {accept:?}"
        );
        assert_eq!(
            decoded(expected, &response.body),
            glue,
            "{accept:?}: the same file once decoded"
        );
        assert_eq!(response.header("vary"), Some("Accept-Encoding"));
        assert_eq!(
            response.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "a content-named file never changes"
        );
    }
    let module = http_request(server.addr, "GET", &format!("/{MODULE}"), &[]).await;
    assert_eq!(
        module.header("content-type"),
        Some("application/wasm"),
        "the type streaming compilation needs"
    );
}

#[tokio::test]
async fn the_page_is_revalidated_by_etag_and_unchanged_is_304() {
    let (root, _) = bundle();
    let server = start_server(|config| config.web_root = Some(root)).await;
    let first = http_request(server.addr, "GET", "/", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(first.status, 200);
    assert_eq!(decoded(Some("gzip"), &first.body), PAGE.as_bytes());
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let etag = first.header("etag").expect("the page has an ETag");
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "a strong ETag: {etag}"
    );
    let again = http_request(
        server.addr,
        "GET",
        "/",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", etag)],
    )
    .await;
    assert_eq!(again.status, 304, "the page the client holds is current");
    assert!(again.body.is_empty(), "a 304 has no body");
    assert_eq!(again.header("etag"), Some(etag));
    assert_eq!(again.header("vary"), Some("Accept-Encoding"));
    let other = http_request(server.addr, "GET", "/", &[("If-None-Match", "\"stale\"")]).await;
    assert_eq!(other.status, 200, "another tag gets the page");
    assert_eq!(other.body, PAGE.as_bytes());
    assert_ne!(
        other.header("etag"),
        Some(etag),
        "each encoding is its own representation, with its own tag"
    );
    let missing = http_request(server.addr, "GET", "/nothing.js", &[]).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn head_answers_every_get_route_with_headers_and_no_body() {
    let (root, _) = bundle();
    let server = start_server(|config| {
        config.web_root = Some(root);
        // `/metrics` is a GET route of the public port only with this flag.
        config.public_metrics = true;
    })
    .await;
    for path in [
        "/",
        "/index.html",
        &format!("/{GLUE}"),
        "/favicon.ico",
        "/healthz",
        "/api/rooms",
        "/api/matches",
        "/api/leaderboard",
        "/metrics",
    ] {
        let get = http_request(server.addr, "GET", path, &[("Accept-Encoding", "br")]).await;
        let head = http_request(server.addr, "HEAD", path, &[("Accept-Encoding", "br")]).await;
        assert_eq!((get.status, head.status), (200, 200), "GET and HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} has no body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {path} has the GET's headers"
        );
        // The metrics may move between the two requests; every other body stands still.
        if path != "/metrics" {
            assert_eq!(
                head.header("content-length"),
                Some(get.body.len().to_string().as_str()),
                "HEAD {path} says how long the GET's body is"
            );
        }
    }
}

#[tokio::test]
async fn a_server_without_a_bundle_answers_its_page_and_icon() {
    let server = start_server(|_| {}).await;
    let page = http_request(server.addr, "GET", "/", &[]).await;
    assert_eq!(page.status, 200);
    let text = String::from_utf8_lossy(&page.body);
    assert!(
        text.contains(r#"rel="icon" href="/favicon.ico""#),
        "the placeholder names its icon: {text}"
    );
    let icon = http_request(server.addr, "GET", "/favicon.ico", &[]).await;
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    assert!(
        String::from_utf8_lossy(&icon.body).contains("<svg"),
        "the icon is the game's"
    );
    let head = http_request(server.addr, "HEAD", "/", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}
