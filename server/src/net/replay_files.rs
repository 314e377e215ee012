//! `GET /api/matches/{id}/replay`: a saved match's replay file, whole or by a byte
//! range, so a viewer can fetch the index and seek without the rest; and `/replay/{id}`,
//! which sends a browser to the viewer. `byte_span` is the one pure reading of `Range`.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_range_header::{RangeUnsatisfiableError, parse_range_header};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION,
};
use warp::http::{Response as HttpResponse, StatusCode};
use warp::reply::{Reply, Response};

use crate::net::api::parse_match_id;
use crate::net::http::{IMMUTABLE, get_or_head};
use crate::store::replays::replay_path;

/// Which bytes of a file of known length a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ByteSpan {
    /// No range, one this server ignores (several, malformed): the whole file, 200.
    Whole,
    /// One satisfiable range, clamped to the file: 206.
    Part(RangeInclusive<u64>),
    /// A range wholly beyond the file: 416.
    Unsatisfiable,
}

/// Reads a `Range` header against a file of `len` bytes. Only single byte ranges are
/// served as parts; RFC 9110 lets a server answer any other with the whole file.
pub(crate) fn byte_span(range: Option<&str>, len: u64) -> ByteSpan {
    let Some(range) = range else {
        return ByteSpan::Whole;
    };
    let parsed = match parse_range_header(range) {
        Ok(parsed) => parsed,
        Err(RangeUnsatisfiableError::Unsatisfiable) => return ByteSpan::Unsatisfiable,
        Err(_) => return ByteSpan::Whole,
    };
    match parsed.validate(len) {
        Ok(ranges) => match <[_; 1]>::try_from(ranges) {
            Ok([one]) => ByteSpan::Part(one),
            Err(_) => ByteSpan::Whole,
        },
        Err(RangeUnsatisfiableError::Unsatisfiable) => ByteSpan::Unsatisfiable,
        Err(_) => ByteSpan::Whole,
    }
}

async fn serve(segment: String, range: Option<String>, data_dir: Arc<PathBuf>) -> Response {
    let Ok(id) = parse_match_id(&segment) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "a match id is a positive whole number\n",
        );
    };
    let path = replay_path(&data_dir, id);
    // A replay is a few hundred KiB at most: read whole, off the runtime's workers.
    let bytes = match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            return plain(StatusCode::NOT_FOUND, "no replay of that match here\n");
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, match_id = id, "a replay could not be read");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the replay cannot be read\n",
            );
        }
        Err(_) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the replay cannot be read\n",
            );
        }
    };
    let len = bytes.len() as u64;
    let answer = HttpResponse::builder()
        .header(ACCEPT_RANGES, "bytes")
        .header(CACHE_CONTROL, IMMUTABLE);
    let answer = match byte_span(range.as_deref(), len) {
        ByteSpan::Whole => answer
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(Bytes::from(bytes)),
        ByteSpan::Part(span) => {
            // Invariant: `validate` clamps a span to the file's bytes.
            let part = bytes[*span.start() as usize..=*span.end() as usize].to_vec();
            answer
                .status(StatusCode::PARTIAL_CONTENT)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(
                    CONTENT_RANGE,
                    format!("bytes {}-{}/{len}", span.start(), span.end()),
                )
                .header(CONTENT_LENGTH, part.len())
                .body(Bytes::from(part))
        }
        ByteSpan::Unsatisfiable => answer
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(CONTENT_RANGE, format!("bytes */{len}"))
            .body(Bytes::new()),
    };
    answer.map_or_else(
        |_| StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Reply::into_response,
    )
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    warp::reply::with_status(text, status).into_response()
}

/// The viewer's address: the page's assets are named relative to `/`, so the viewer
/// runs there, and `/replay/{id}` is a short way to it.
fn viewer(segment: String) -> Response {
    match parse_match_id(&segment) {
        Ok(id) => HttpResponse::builder()
            .status(StatusCode::FOUND)
            .header(LOCATION, format!("/?replay={id}"))
            .body(Bytes::new())
            .map_or_else(
                |_| StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                Reply::into_response,
            ),
        Err(_) => plain(StatusCode::NOT_FOUND, "no such replay\n"),
    }
}

/// `GET` and `HEAD` on `/api/matches/{id}/replay`, from `<data_dir>/replays`, and on
/// `/replay/{id}`, the viewer.
pub(crate) fn routes(data_dir: PathBuf) -> BoxedFilter<(Response,)> {
    let data_dir = Arc::new(data_dir);
    let file = warp::path!("api" / "matches" / String / "replay")
        .and(get_or_head())
        .and(warp::header::optional::<String>("range"))
        .and(warp::any().map(move || Arc::clone(&data_dir)))
        .then(serve);
    let viewer = warp::path!("replay" / String)
        .and(get_or_head())
        .map(viewer);
    file.or(viewer).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_range_is_the_whole_file() {
        assert_eq!(byte_span(None, 100), ByteSpan::Whole);
    }

    #[test]
    fn single_ranges_are_clamped_parts() {
        assert_eq!(byte_span(Some("bytes=0-9"), 100), ByteSpan::Part(0..=9));
        assert_eq!(byte_span(Some("bytes=90-"), 100), ByteSpan::Part(90..=99));
        assert_eq!(byte_span(Some("bytes=-10"), 100), ByteSpan::Part(90..=99));
        assert_eq!(
            byte_span(Some("bytes=95-500"), 100),
            ByteSpan::Part(95..=99)
        );
    }

    #[test]
    fn a_range_past_the_end_is_unsatisfiable() {
        assert_eq!(byte_span(Some("bytes=100-"), 100), ByteSpan::Unsatisfiable);
        assert_eq!(
            byte_span(Some("bytes=200-300"), 100),
            ByteSpan::Unsatisfiable
        );
    }

    #[test]
    fn malformed_or_several_ranges_get_the_whole_file() {
        for header in ["lines=1-2", "bytes=9-1", "bytes=x-y", "bytes=0-1,5-6", ""] {
            assert_eq!(byte_span(Some(header), 100), ByteSpan::Whole, "{header}");
        }
    }
}
