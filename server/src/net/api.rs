//! The REST API over old data, as JSON: finished matches, players and the leaderboard.
//! Each route's parameters become a checked value in one pure function (`parse_*`
//! below), so a client mistake is a 400 and never reaches the store; handlers read the
//! store on the blocking pool and shape the answer, with caching headers.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;
use shared::ProfileId;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, IF_NONE_MATCH};
use warp::http::{Response as HttpResponse, StatusCode};
use warp::reply::{Reply, Response};

use crate::net::http::{IMMUTABLE, REVALIDATE, etag_matches, get_or_head};
use crate::store::{LeaderboardCursor, LeaderboardEntry, MatchId, MatchStore, StoreError};

/// Items per page when the client does not say.
pub(crate) const DEFAULT_LIMIT: u32 = 20;
/// The most items one page holds; a larger `limit` is capped to it.
pub(crate) const MAX_LIMIT: u32 = 100;
/// How many of a player's matches their page shows.
pub(crate) const RECENT_MATCHES: u32 = 10;

// A finished match never changes, so caches may keep its page for good (`IMMUTABLE`);
// lists and players change with every match, so caches ask again (`REVALIDATE`).

/// An answer that is not the data asked for: its status and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// The store failed; what it said goes to the log, not to the client.
    fn unavailable() -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the match history cannot be read right now; try again soon".into(),
        }
    }

    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
        }
        json_response(
            self.status,
            &Body {
                error: &self.message,
            },
            "no-store",
        )
    }
}

/// `GET /api/matches?limit=&before=`, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatchListQuery {
    pub(crate) limit: u32,
    /// Only matches with smaller ids: the previous page's `next`.
    pub(crate) before: Option<MatchId>,
}

/// `GET /api/leaderboard?limit=&cursor=`, checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LeaderboardQuery {
    pub(crate) limit: u32,
    /// Where the previous page ended.
    pub(crate) after: Option<LeaderboardCursor>,
}

/// Reads `limit` and `before` from a raw query string; other names are ignored.
pub(crate) fn parse_match_list(query: &str) -> Result<MatchListQuery, ApiError> {
    let mut params = known_params(query, &["limit", "before"])?;
    let limit = parse_limit(params.remove("limit").as_deref())?;
    let before = params
        .remove("before")
        .map(|text| parse_match_id_in("before", &text))
        .transpose()?;
    Ok(MatchListQuery { limit, before })
}

/// Reads `limit` and `cursor` from a raw query string; other names are ignored.
pub(crate) fn parse_leaderboard(query: &str) -> Result<LeaderboardQuery, ApiError> {
    let mut params = known_params(query, &["limit", "cursor"])?;
    let limit = parse_limit(params.remove("limit").as_deref())?;
    let after = params
        .remove("cursor")
        .map(|text| decode_cursor(&text))
        .transpose()?;
    Ok(LeaderboardQuery { limit, after })
}

/// The `{id}` of `/api/matches/{id}`: a positive whole number, written plainly.
pub(crate) fn parse_match_id(segment: &str) -> Result<MatchId, ApiError> {
    parse_match_id_in("match id", segment)
}

/// The `{id}` of `/api/players/{id}`: a profile id, 16 hex digits.
pub(crate) fn parse_profile(segment: &str) -> Result<ProfileId, ApiError> {
    ProfileId::from_hex(segment)
        .ok_or_else(|| ApiError::bad_request("a player id is 16 hex digits"))
}

/// The leaderboard cursor as clients see it: 32 hex digits, the last entry's rating
/// (its bits, so it compares exactly) and then its profile. Opaque to clients.
pub(crate) fn encode_cursor(cursor: LeaderboardCursor) -> String {
    format!(
        "{:016x}{}",
        cursor.rating.to_bits(),
        cursor.profile.to_hex()
    )
}

fn decode_cursor(text: &str) -> Result<LeaderboardCursor, ApiError> {
    let malformed = || ApiError::bad_request("cursor is malformed: pass back a `next` as given");
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    let (rating_hex, profile_hex) = text.split_at(16);
    let rating_bits = u64::from_str_radix(rating_hex, 16).map_err(|_| malformed())?;
    let rating = f64::from_bits(rating_bits);
    let profile = ProfileId::from_hex(profile_hex).ok_or_else(malformed)?;
    if !rating.is_finite() {
        return Err(malformed());
    }
    Ok(LeaderboardCursor { rating, profile })
}

/// The parameters named in `known`, percent-decoded; others are ignored. A known name
/// given twice is refused, since either answer would be a guess.
fn known_params(
    query: &str,
    known: &[&'static str],
) -> Result<HashMap<&'static str, String>, ApiError> {
    let mut found = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let Some(name) = known.iter().copied().find(|known| *known == name) else {
            continue;
        };
        if found.insert(name, value.into_owned()).is_some() {
            return Err(ApiError::bad_request(format!("{name} is given twice")));
        }
    }
    Ok(found)
}

/// A positive whole number in plain digits (no sign, no spaces, no leading zeros) up
/// to `max`; `what` names it in the error.
fn parse_positive(what: &str, text: &str, max: u64) -> Result<u64, ApiError> {
    let plain = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    let value = plain.then(|| text.parse::<u64>().ok()).flatten();
    match value {
        Some(value) if value <= max => Ok(value),
        Some(_) => Err(ApiError::bad_request(format!(
            "{what} must be at most {max}"
        ))),
        None => Err(ApiError::bad_request(format!(
            "{what} must be a positive whole number"
        ))),
    }
}

/// `limit`: 20 when absent; 1 or more, and a large one means the most a page holds.
/// One too large to be a count at all (past 2^32) is refused as a mistake.
fn parse_limit(text: Option<&str>) -> Result<u32, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    let limit = parse_positive("limit", text, u64::from(u32::MAX))?;
    Ok(u32::try_from(limit).map_or(MAX_LIMIT, |limit| limit.min(MAX_LIMIT)))
}

fn parse_match_id_in(what: &str, text: &str) -> Result<MatchId, ApiError> {
    let max = u64::try_from(MatchId::MAX).unwrap_or(u64::MAX);
    let id = parse_positive(what, text, max)?;
    MatchId::try_from(id).map_err(|_| ApiError::bad_request(format!("{what} is too large")))
}

/// The JSON body of a page that changes, with an `ETag` from its bytes: 304 with no
/// body if the client already holds exactly these bytes. (The hash is std's SipHash
/// with fixed keys: stable while the binary is; after an upgrade a client refetches
/// once.)
fn revalidated_json(value: &impl Serialize, headers: &HeaderMap) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "an API answer did not serialize");
            return ApiError::unavailable().into_response();
        }
    };
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|theirs| etag_matches(theirs, &etag));
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Vec::new())
    } else {
        (StatusCode::OK, body)
    };
    let mut builder = HttpResponse::builder()
        .status(status)
        .header(ETAG, &etag)
        .header(CACHE_CONTROL, REVALIDATE);
    if !fresh {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    builder.body(body).map_or_else(
        |_| ApiError::unavailable().into_response(),
        Reply::into_response,
    )
}

fn json_response(status: StatusCode, value: &impl Serialize, cache_control: &str) -> Response {
    let built = serde_json::to_vec(value).ok().and_then(|body| {
        HttpResponse::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/json")
            .header(CACHE_CONTROL, cache_control)
            .body(body)
            .ok()
    });
    match built {
        Some(response) => response.into_response(),
        None => {
            tracing::error!("an API answer did not serialize");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Runs a read on the blocking pool, where the disk may keep it waiting without
/// holding up the runtime's workers.
async fn read<T: Send + 'static>(
    store: Arc<dyn MatchStore>,
    read: impl FnOnce(&dyn MatchStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(move || read(store.as_ref())).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "a read of the match history failed");
            Err(ApiError::unavailable())
        }
        Err(err) => {
            tracing::error!(error = %err, "a read of the match history panicked");
            Err(ApiError::unavailable())
        }
    }
}

/// The leaderboard page as served: its entries and the cursor for the next.
#[derive(Debug, Serialize)]
struct LeaderboardBody {
    players: Vec<LeaderboardEntry>,
    next: Option<String>,
}

async fn list_matches(query: String, headers: HeaderMap, store: Arc<dyn MatchStore>) -> Response {
    let answer = async {
        let params = parse_match_list(&query)?;
        read(store, move |store| {
            store.matches(params.limit, params.before)
        })
        .await
    };
    match answer.await {
        Ok(page) => revalidated_json(&page, &headers),
        Err(err) => err.into_response(),
    }
}

async fn show_match(segment: String, store: Arc<dyn MatchStore>) -> Response {
    let answer = async {
        let id = parse_match_id(&segment)?;
        read(store, move |store| store.match_by_id(id))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no match {id}")))
    };
    match answer.await {
        Ok(record) => json_response(StatusCode::OK, &record, IMMUTABLE),
        Err(err) => err.into_response(),
    }
}

async fn show_player(segment: String, headers: HeaderMap, store: Arc<dyn MatchStore>) -> Response {
    let answer = async {
        let profile = parse_profile(&segment)?;
        read(store, move |store| store.player(profile, RECENT_MATCHES))
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("no saved match for player {}", profile.to_hex()))
            })
    };
    match answer.await {
        Ok(player) => revalidated_json(&player, &headers),
        Err(err) => err.into_response(),
    }
}

async fn show_leaderboard(
    query: String,
    headers: HeaderMap,
    store: Arc<dyn MatchStore>,
) -> Response {
    let answer = async {
        let params = parse_leaderboard(&query)?;
        read(store, move |store| {
            store.leaderboard(params.limit, params.after)
        })
        .await
    };
    match answer.await {
        Ok(page) => revalidated_json(
            &LeaderboardBody {
                players: page.entries,
                next: page.next.map(encode_cursor),
            },
            &headers,
        ),
        Err(err) => err.into_response(),
    }
}

/// `GET` (and `HEAD`, which hyper answers without the body) on
/// `/api/matches`, `/api/matches/{id}`, `/api/players/{id}` and `/api/leaderboard`.
pub(crate) fn routes(store: Arc<dyn MatchStore>) -> BoxedFilter<(Response,)> {
    let with_store = warp::any().map(move || Arc::clone(&store));
    // The raw query, or none: parsing it is `parse_*`'s business alone.
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();

    let matches = warp::path!("api" / "matches")
        .and(get_or_head())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(with_store.clone())
        .then(list_matches);
    let one_match = warp::path!("api" / "matches" / String)
        .and(get_or_head())
        .and(with_store.clone())
        .then(show_match);
    let player = warp::path!("api" / "players" / String)
        .and(get_or_head())
        .and(warp::header::headers_cloned())
        .and(with_store.clone())
        .then(show_player);
    let leaderboard = warp::path!("api" / "leaderboard")
        .and(get_or_head())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(with_store)
        .then(show_leaderboard);

    matches
        .or(one_match)
        .unify()
        .or(player)
        .unify()
        .or(leaderboard)
        .unify()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_list_defaults_to_twenty_from_the_newest() {
        assert_eq!(
            parse_match_list(""),
            Ok(MatchListQuery {
                limit: DEFAULT_LIMIT,
                before: None
            })
        );
        assert_eq!(
            parse_match_list("limit=5&before=42&page=9&x"),
            Ok(MatchListQuery {
                limit: 5,
                before: Some(42)
            }),
            "unknown names are ignored"
        );
        assert_eq!(
            parse_match_list("before=%34%32"),
            Ok(MatchListQuery {
                limit: DEFAULT_LIMIT,
                before: Some(42)
            }),
            "values are percent-decoded"
        );
    }

    #[test]
    fn a_large_limit_is_capped_and_an_absurd_one_refused() {
        assert_eq!(parse_match_list("limit=100").map(|q| q.limit), Ok(100));
        assert_eq!(
            parse_match_list("limit=101").map(|q| q.limit),
            Ok(MAX_LIMIT)
        );
        assert_eq!(
            parse_match_list("limit=4294967295").map(|q| q.limit),
            Ok(MAX_LIMIT)
        );
        assert_eq!(
            parse_match_list("limit=4294967296").map_err(|e| e.status),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    /// Every query a client might get wrong, for both list routes.
    const BAD_LIMITS: &[&str] = &[
        "limit=",
        "limit=0",
        "limit=-1",
        "limit=+5",
        "limit=05",
        "limit=1.5",
        "limit=1e3",
        "limit=%201",
        "limit=ten",
        "limit=99999999999999999999",
        "limit=999999999999999999999999999999",
        "limit=1;DROP TABLE matches",
        "limit=1'--",
        "limit=%FF",
        "limit=1&limit=2",
    ];

    #[test]
    fn bad_limits_are_refused_on_both_lists() {
        for query in BAD_LIMITS {
            let err = parse_match_list(query).expect_err(query);
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(err.message.contains("limit"), "{query}: {}", err.message);
            let err = parse_leaderboard(query).expect_err(query);
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{query}");
        }
    }

    #[test]
    fn bad_before_cursors_are_refused() {
        for query in [
            "before=",
            "before=0",
            "before=-3",
            "before=abc",
            "before=9223372036854775808",
            "before=18446744073709551616",
            "before=1%20OR%201=1",
            "before=1;",
            "before=1&before=2",
        ] {
            let err = parse_match_list(query).expect_err(query);
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(err.message.contains("before"), "{query}: {}", err.message);
        }
        assert_eq!(
            parse_match_list("before=9223372036854775807").map(|q| q.before),
            Ok(Some(i64::MAX))
        );
    }

    #[test]
    fn leaderboard_cursors_read_back_and_malformed_ones_are_refused() {
        let cursor = LeaderboardCursor {
            rating: -3.25,
            profile: ProfileId(0x0123_4567_89ab_cdef),
        };
        let token = encode_cursor(cursor);
        assert_eq!(token.len(), 32);
        assert_eq!(
            parse_leaderboard(&format!("cursor={token}&limit=3")),
            Ok(LeaderboardQuery {
                limit: 3,
                after: Some(cursor)
            })
        );
        let not_finite = encode_cursor(LeaderboardCursor {
            rating: f64::NAN,
            ..cursor
        });
        for bad in [
            String::new(),
            "abc".into(),
            token[..31].into(),
            format!("{token}0"),
            format!("{}g", &token[..31]),
            format!("-{}", &token[1..]),
            not_finite,
            "' OR 1=1 --".into(),
        ] {
            let query = format!("cursor={}", bad.replace(' ', "+"));
            let err = parse_leaderboard(&query).expect_err(&query);
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(err.message.contains("cursor"), "{query}: {}", err.message);
        }
    }

    #[test]
    fn match_ids_are_plain_positive_numbers() {
        assert_eq!(parse_match_id("1"), Ok(1));
        assert_eq!(parse_match_id("9223372036854775807"), Ok(i64::MAX));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "01",
            "1.0",
            "1e3",
            "abc",
            "1%3B",
            "1;",
            "1 ",
            "0x10",
            "9223372036854775808",
            "99999999999999999999999",
        ] {
            assert_eq!(
                parse_match_id(bad).map_err(|e| e.status),
                Err(StatusCode::BAD_REQUEST),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn player_ids_are_sixteen_hex_digits() {
        assert_eq!(parse_profile("00000000000000ff"), Ok(ProfileId(0xff)));
        for bad in [
            "",
            "ff",
            "00000000000000fg",
            "000000000000000ff",
            "+0000000000000ff",
            "' OR '1'='1",
            "%30000000000000ff",
        ] {
            assert_eq!(
                parse_profile(bad).map_err(|e| e.status),
                Err(StatusCode::BAD_REQUEST),
                "{bad:?}"
            );
        }
    }

    /// A store whose every read fails, as one on a failing disk would.
    #[derive(Debug)]
    struct FailingStore;

    impl crate::store::ResultSink for FailingStore {
        fn submit(&self, _: crate::store::MatchResult, _: tokio::sync::oneshot::Sender<MatchId>) {}

        fn flush(&self, _: std::time::Duration) -> bool {
            true
        }
    }

    impl MatchStore for FailingStore {
        fn matches(
            &self,
            _: u32,
            _: Option<MatchId>,
        ) -> Result<crate::store::MatchPage, StoreError> {
            Err(StoreError::Busy)
        }

        fn match_by_id(&self, _: MatchId) -> Result<Option<crate::store::MatchRecord>, StoreError> {
            Err(StoreError::Busy)
        }

        fn player(
            &self,
            _: ProfileId,
            _: u32,
        ) -> Result<Option<crate::store::PlayerRecord>, StoreError> {
            Err(StoreError::Busy)
        }

        fn leaderboard(
            &self,
            _: u32,
            _: Option<LeaderboardCursor>,
        ) -> Result<crate::store::LeaderboardPage, StoreError> {
            Err(StoreError::Busy)
        }
    }

    #[tokio::test]
    async fn a_failing_store_is_a_503_and_a_client_mistake_still_a_400() {
        let store: Arc<dyn MatchStore> = Arc::new(FailingStore);
        let no_headers = HeaderMap::new;
        let failed = [
            list_matches(String::new(), no_headers(), Arc::clone(&store)).await,
            show_match("1".into(), Arc::clone(&store)).await,
            show_player("0000000000000001".into(), no_headers(), Arc::clone(&store)).await,
            show_leaderboard(String::new(), no_headers(), Arc::clone(&store)).await,
        ];
        for response in failed {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
                Some(&b"application/json"[..]),
                "a JSON error, not a page"
            );
        }
        let mistaken = [
            list_matches("limit=0".into(), no_headers(), Arc::clone(&store)).await,
            show_match("x".into(), Arc::clone(&store)).await,
            show_player("x".into(), no_headers(), Arc::clone(&store)).await,
            show_leaderboard("cursor=x".into(), no_headers(), store).await,
        ];
        for response in mistaken {
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "parameters are checked before the store is asked"
            );
        }
    }

    #[test]
    fn errors_are_json_with_the_status() {
        let response =
            ApiError::bad_request("limit must be a positive whole number").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
    }
}
