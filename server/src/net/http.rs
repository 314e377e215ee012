//! What every HTTP route shares: matching `GET` and `HEAD` alike, the caching policies,
//! and how an `If-None-Match` is compared with an `ETag`.

use warp::Filter;

/// Caches may keep the answer for good: it never changes under its URL (a finished
/// match, a file named by its content).
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Caches must ask again before each use; an `ETag` lets them do it cheaply.
pub(crate) const REVALIDATE: &str = "no-cache";

/// `GET` or `HEAD`. hyper answers a `HEAD` with the headers the `GET` would have, and
/// no body, so a route needs nothing more to serve both.
pub(crate) fn get_or_head() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::get().or(warp::head()).unify()
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, as RFC 9110 asks
/// for this header; `*` names any).
pub(crate) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|theirs| theirs == "*" || theirs.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let etag = "\"00ab\"";
        assert!(etag_matches("\"00ab\"", etag));
        assert!(etag_matches("W/\"00ab\"", etag));
        assert!(etag_matches("\"x\", \"00ab\"", etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches("\"00ac\"", etag));
        assert!(
            !etag_matches("00ab", etag),
            "an unquoted tag is a different tag"
        );
        assert!(!etag_matches("", etag));
    }
}
