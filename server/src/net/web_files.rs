//! The page and its bundle, served from memory: read once at start from `--web-root`,
//! with the brotli and gzip copies the build wrote beside each file, or else the
//! built-in placeholder page. Each answer takes the encoding the client prefers among
//! those the file has, and says how it may be cached: a file named by its content is
//! immutable, any other is revalidated by its `ETag`. The bundle is a few hundred KiB
//! and changes only with a deploy, which restarts the server.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::filters::path::FullPath;
use warp::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, VARY};
use warp::http::{Response as HttpResponse, StatusCode};
use warp::reply::{Reply, Response};

use crate::net::http::{IMMUTABLE, REVALIDATE, etag_matches, get_or_head};

const PLACEHOLDER_PAGE: &str = include_str!("placeholder.html");
/// The icon at `/favicon.ico` when the web root has none: browsers ask for it on any
/// page that names no icon of its own (the API's JSON, `/metrics`).
const FAVICON: &[u8] = include_bytes!("../../../assets/favicon.svg");
/// A web root past these is not a browser bundle; it would only fill memory.
const MAX_FILES: usize = 10_000;
const MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Hex digits of the content hash in the name of a file that never changes
/// (`client-0123456789abcdef.js`), as `cargo xtask build` names them.
const HASH_DIGITS: usize = 16;

/// A content coding a file may be sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    /// Best first: the order in which equally welcome codings are chosen.
    const PREFERRED: [Encoding; 3] = [Encoding::Brotli, Encoding::Gzip, Encoding::Identity];

    /// The `Content-Encoding` token, and the extension of the copy on disk.
    fn token_and_extension(self) -> (&'static str, &'static str) {
        match self {
            Encoding::Brotli => ("br", "br"),
            Encoding::Gzip => ("gzip", "gz"),
            Encoding::Identity => ("identity", ""),
        }
    }

    fn is_named(self, coding: &str) -> bool {
        let (token, _) = self.token_and_extension();
        coding.eq_ignore_ascii_case(token)
            || (self == Encoding::Gzip && coding.eq_ignore_ascii_case("x-gzip"))
    }
}

/// The coding to send, from `available` (identity is always available), as the client's
/// `Accept-Encoding` ranks them: the highest q-value above zero wins, ties go to the
/// smaller encoding, and identity, unless named, comes after anything named. Without
/// the header, or when nothing it accepts is available, the file goes out as it is,
/// which any client can read.
pub(crate) fn choose_encoding(accept_encoding: Option<&str>, available: &[Encoding]) -> Encoding {
    let Some(accept) = accept_encoding else {
        return Encoding::Identity;
    };
    let ranked = parse_accept_encoding(accept);
    let weight = |encoding: Encoding| -> f32 {
        let named = ranked.iter().find(|(coding, _)| encoding.is_named(coding));
        let any = ranked.iter().find(|(coding, _)| *coding == "*");
        match (named, any) {
            (Some((_, q)), _) | (None, Some((_, q))) => *q,
            // Identity is acceptable unless the header rules it out, but a client that
            // lists codings would rather have one of them.
            (None, None) if encoding == Encoding::Identity => f32::MIN_POSITIVE,
            (None, None) => 0.0,
        }
    };
    let mut best = (Encoding::Identity, 0.0);
    for encoding in Encoding::PREFERRED {
        if encoding != Encoding::Identity && !available.contains(&encoding) {
            continue;
        }
        let q = weight(encoding);
        if q > best.1 {
            best = (encoding, q);
        }
    }
    best.0
}

/// The codings of an `Accept-Encoding` value with their q-values. An entry whose
/// q-value is not a number from 0 to 1 is left out, as if it were not there.
fn parse_accept_encoding(accept: &str) -> Vec<(&str, f32)> {
    accept
        .split(',')
        .filter_map(|entry| {
            let mut params = entry.split(';');
            let coding = params.next()?.trim();
            if coding.is_empty() {
                return None;
            }
            let mut q = 1.0;
            for param in params {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    q = value
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            Some((coding, q))
        })
        .collect()
}

/// Whether a file's name carries its content's hash (`name-<16 hex digits>.ext`), and
/// so never changes under its name.
fn is_content_named(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == HASH_DIGITS
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The `Content-Type` for a file's extension.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        // Browsers compile a module while it downloads only when it comes as this.
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// One file in each encoding it has.
#[derive(Debug)]
struct WebFile {
    content_type: &'static str,
    cache_control: &'static str,
    variants: Vec<Variant>,
}

#[derive(Debug)]
struct Variant {
    encoding: Encoding,
    /// Strong, and different for each encoding: each is its own representation.
    etag: String,
    body: Bytes,
}

impl WebFile {
    /// `identity` and whichever compressed copies there are, all of one content.
    fn new(
        content_type: &'static str,
        cache_control: &'static str,
        identity: Bytes,
        copies: Vec<(Encoding, Bytes)>,
    ) -> WebFile {
        let digest = Sha256::digest(&identity);
        let hash = hex::encode(&digest[..8]);
        let variant = |encoding: Encoding, body: Bytes| {
            let (_, ext) = encoding.token_and_extension();
            let etag = if ext.is_empty() {
                format!("\"{hash}\"")
            } else {
                format!("\"{hash}-{ext}\"")
            };
            Variant {
                encoding,
                etag,
                body,
            }
        };
        let mut variants = vec![variant(Encoding::Identity, identity)];
        variants.extend(copies.into_iter().map(|(enc, body)| variant(enc, body)));
        WebFile {
            content_type,
            cache_control,
            variants,
        }
    }

    fn embedded(content_type: &'static str, body: &'static [u8]) -> WebFile {
        WebFile::new(
            content_type,
            REVALIDATE,
            Bytes::from_static(body),
            Vec::new(),
        )
    }

    fn respond(&self, accept_encoding: Option<&str>, if_none_match: Option<&str>) -> Response {
        let available: Vec<Encoding> = self.variants.iter().map(|v| v.encoding).collect();
        let chosen = choose_encoding(accept_encoding, &available);
        let Some(variant) = self
            .variants
            .iter()
            .find(|variant| variant.encoding == chosen)
            .or_else(|| self.variants.first())
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let fresh = if_none_match.is_some_and(|theirs| etag_matches(theirs, &variant.etag));
        let mut builder = HttpResponse::builder()
            .header(ETAG, &variant.etag)
            .header(CACHE_CONTROL, self.cache_control)
            .header(VARY, "Accept-Encoding");
        if fresh {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Bytes::new())
                .map_or_else(
                    |_| StatusCode::NOT_MODIFIED.into_response(),
                    Reply::into_response,
                );
        }
        builder = builder.header(CONTENT_TYPE, self.content_type);
        if variant.encoding != Encoding::Identity {
            builder = builder.header(CONTENT_ENCODING, variant.encoding.token_and_extension().0);
        }
        builder.body(variant.body.clone()).map_or_else(
            |_| StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            Reply::into_response,
        )
    }
}

/// Every file the server serves outside its routes, by path without the leading `/`.
#[derive(Debug)]
pub(crate) struct WebFiles {
    files: HashMap<String, WebFile>,
}

impl WebFiles {
    /// The placeholder page at `/`, for a server with no bundle to serve.
    pub(crate) fn placeholder() -> WebFiles {
        let mut files = HashMap::new();
        files.insert(
            "index.html".to_owned(),
            WebFile::embedded(content_type(".html"), PLACEHOLDER_PAGE.as_bytes()),
        );
        WebFiles::with_favicon(files)
    }

    /// Every file under `root` (hidden ones aside), each with the `.br` and `.gz` copies
    /// beside it. Past `MAX_FILES` files or `MAX_BYTES` in all, an error: that is not
    /// a bundle.
    pub(crate) fn load(root: &Path) -> anyhow::Result<WebFiles> {
        let paths = list_files(root)?;
        let mut files = HashMap::new();
        let mut total_bytes = 0;
        let mut read = |path: &str| -> anyhow::Result<Bytes> {
            let full = root.join(path);
            let bytes = std::fs::read(&full).with_context(|| format!("read {}", full.display()))?;
            total_bytes += bytes.len() as u64;
            anyhow::ensure!(
                total_bytes <= MAX_BYTES,
                "the web root {} holds more than {} MiB; the server keeps its files in memory",
                root.display(),
                MAX_BYTES / (1024 * 1024)
            );
            Ok(Bytes::from(bytes))
        };
        for path in &paths {
            let is_copy = [".br", ".gz"].iter().any(|ext| {
                path.strip_suffix(ext)
                    .is_some_and(|original| paths.contains(original))
            });
            if is_copy {
                continue;
            }
            let mut copies = Vec::new();
            for encoding in [Encoding::Brotli, Encoding::Gzip] {
                let copy = format!("{path}.{}", encoding.token_and_extension().1);
                if paths.contains(&copy) {
                    copies.push((encoding, read(&copy)?));
                }
            }
            let cache_control = if is_content_named(path) {
                IMMUTABLE
            } else {
                REVALIDATE
            };
            let file = WebFile::new(content_type(path), cache_control, read(path)?, copies);
            files.insert(path.clone(), file);
        }
        Ok(WebFiles::with_favicon(files))
    }

    fn with_favicon(mut files: HashMap<String, WebFile>) -> WebFiles {
        files
            .entry("favicon.ico".to_owned())
            .or_insert_with(|| WebFile::embedded(content_type(".svg"), FAVICON));
        WebFiles { files }
    }

    /// The answer for a request of `path` (as the URL has it, from its leading `/`),
    /// or `None` if there is no such file. A folder's file is its `index.html`.
    pub(crate) fn answer(
        &self,
        path: &str,
        accept_encoding: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Option<Response> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let file = if path.is_empty() || path.ends_with('/') {
            self.files.get(&format!("{path}index.html"))
        } else {
            self.files.get(path)
        }?;
        Some(file.respond(accept_encoding, if_none_match))
    }
}

/// The paths of the files under `root`, relative and with `/` between folders; hidden
/// files and folders, and linked folders, left out.
fn list_files(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut folders: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    while let Some((folder, prefix)) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).with_context(|| format!("list {}", folder.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("list {}", folder.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let relative = format!("{prefix}{name}");
            let file_type = entry
                .file_type()
                .with_context(|| format!("read the type of {}", path.display()))?;
            // A linked folder is not followed: a link to a parent would never end.
            if file_type.is_dir() {
                folders.push((path, format!("{relative}/")));
            } else if path.is_file() {
                found.insert(relative);
                anyhow::ensure!(
                    found.len() <= MAX_FILES,
                    "the web root {} holds more than {MAX_FILES} files; is it the bundle?",
                    root.display()
                );
            }
        }
    }
    Ok(found)
}

/// `GET` and `HEAD` of any file of `files`; other paths are not found.
pub(crate) fn routes(files: Arc<WebFiles>) -> BoxedFilter<(Response,)> {
    get_or_head()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .and_then(
            move |path: FullPath,
                  accept_encoding: Option<String>,
                  if_none_match: Option<String>| {
                let answer = files.answer(
                    path.as_str(),
                    accept_encoding.as_deref(),
                    if_none_match.as_deref(),
                );
                async move { answer.ok_or_else(warp::reject::not_found) }
            },
        )
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Encoding; 2] = [Encoding::Brotli, Encoding::Gzip];

    #[test]
    fn brotli_then_gzip_then_identity_when_all_are_equally_welcome() {
        assert_eq!(
            choose_encoding(Some("gzip, deflate, br, zstd"), &ALL),
            Encoding::Brotli
        );
        assert_eq!(
            choose_encoding(Some("gzip, deflate, br"), &[Encoding::Gzip]),
            Encoding::Gzip,
            "only what the file has"
        );
        assert_eq!(choose_encoding(Some("gzip"), &ALL), Encoding::Gzip);
        assert_eq!(choose_encoding(Some("x-gzip"), &ALL), Encoding::Gzip);
        assert_eq!(choose_encoding(Some("deflate"), &ALL), Encoding::Identity);
        assert_eq!(choose_encoding(None, &ALL), Encoding::Identity);
        assert_eq!(choose_encoding(Some(""), &ALL), Encoding::Identity);
        assert_eq!(choose_encoding(Some("br"), &[]), Encoding::Identity);
    }

    #[test]
    fn q_values_rank_codings_and_zero_refuses_one() {
        assert_eq!(
            choose_encoding(Some("br;q=0.5, gzip;q=0.8"), &ALL),
            Encoding::Gzip
        );
        assert_eq!(choose_encoding(Some("br;q=0, gzip"), &ALL), Encoding::Gzip);
        assert_eq!(
            choose_encoding(Some("BR; Q=0.0, GZIP;q=0"), &ALL),
            Encoding::Identity
        );
        assert_eq!(
            choose_encoding(Some("identity;q=1, br;q=0.9"), &ALL),
            Encoding::Identity,
            "identity asked for above br"
        );
        assert_eq!(
            choose_encoding(Some("*"), &ALL),
            Encoding::Brotli,
            "anything at all"
        );
        assert_eq!(
            choose_encoding(Some("*;q=0.1, br;q=0"), &ALL),
            Encoding::Gzip
        );
        assert_eq!(
            choose_encoding(Some("identity;q=0, *;q=0"), &ALL),
            Encoding::Identity,
            "when nothing is acceptable the file still goes out as it is"
        );
    }

    #[test]
    fn malformed_q_values_drop_their_entry_only() {
        assert_eq!(
            choose_encoding(Some("br;q=abc, gzip"), &ALL),
            Encoding::Gzip
        );
        assert_eq!(
            choose_encoding(Some("br;q=2, gzip;q=NaN"), &ALL),
            Encoding::Identity
        );
        assert_eq!(
            choose_encoding(Some(",,;q=1, br;foo;q=1"), &ALL),
            Encoding::Brotli
        );
    }

    #[test]
    fn hashed_names_are_immutable_and_others_are_not() {
        assert!(is_content_named("client-0123456789abcdef.js"));
        assert!(is_content_named("client_bg-0123456789abcdef.wasm"));
        assert!(is_content_named("sub/client-0123456789abcdef.js"));
        assert!(!is_content_named("index.html"));
        assert!(!is_content_named("client.js"));
        assert!(!is_content_named("client-0123456789ABCDEF.js"));
        assert!(!is_content_named("client-0123456789abcde.js"));
        assert!(!is_content_named("my-style.css"));
    }

    #[test]
    fn the_module_and_the_glue_have_their_content_types() {
        assert_eq!(content_type("client_bg-0.wasm"), "application/wasm");
        assert_eq!(
            content_type("client-0.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("README"), "application/octet-stream");
    }

    #[cfg(unix)]
    #[test]
    fn a_root_is_read_with_its_copies_and_without_hidden_files_or_linked_folders() {
        let root = std::env::temp_dir().join(format!("skirmish-web-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sub")).expect("make the root");
        for (name, bytes) in [
            ("index.html", "page"),
            ("index.html.gz", "not really gzip"),
            (".secret", "hidden"),
            ("sub/notes.txt", "notes"),
        ] {
            std::fs::write(root.join(name), bytes).expect("write a file");
        }
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).expect("link a parent");
        let files = WebFiles::load(&root).expect("the root loads");
        let _ = std::fs::remove_dir_all(&root);
        let mut paths: Vec<&str> = files.files.keys().map(String::as_str).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["favicon.ico", "index.html", "sub/notes.txt"]);
        let index = &files.files["index.html"];
        assert_eq!(
            index
                .variants
                .iter()
                .map(|v| v.encoding)
                .collect::<Vec<_>>(),
            [Encoding::Identity, Encoding::Gzip],
            "a copy beside a file is that file's, not a file of its own"
        );
    }

    #[test]
    fn the_placeholder_has_a_page_and_an_icon() {
        let files = WebFiles::placeholder();
        assert!(files.answer("/", None, None).is_some());
        assert!(files.answer("/favicon.ico", None, None).is_some());
        assert!(files.answer("/client.js", None, None).is_none());
    }
}
