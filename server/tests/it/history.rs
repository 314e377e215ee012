//! The REST API over old data, against a real server whose data directory a test
//! seeded through the store's own API: pages, caching headers, and every mistake a
//! client can make answered with a status and a JSON error.

use std::path::PathBuf;

use serde_json::{Value, json};
use server::Metrics;
use server::store::{DB_FILE, EndReason, MatchResult, PlayerResult, ResultSink, SqliteStore};
use shared::ProfileId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;

use crate::support::*;

/// A data directory of the test's own under cargo's scratch folder, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        DataDir(path)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn line(profile: u64, kills: u32, placing: u32) -> PlayerResult {
    PlayerResult {
        profile: ProfileId(profile),
        name: format!("p{profile:x}"),
        kills,
        deaths: 3 - placing.min(3),
        shots: 10,
        hits: kills,
        score: kills,
        placing,
    }
}

fn played(room: &str, players: Vec<PlayerResult>) -> MatchResult {
    MatchResult {
        room: room.into(),
        map: "arena".into(),
        started_at_ms: 1_767_225_600_000,
        ended_at_ms: 1_767_225_780_000,
        end_reason: EndReason::TimeLimit,
        players,
    }
}

/// Writes `results` through the store as a room would and waits until each is saved.
async fn save_all(store: &SqliteStore, results: Vec<MatchResult>) -> Vec<i64> {
    let mut ids = Vec::new();
    for result in results {
        let (saved, on_saved) = oneshot::channel();
        store.submit(result, saved);
        let id = timeout(PATIENCE, on_saved)
            .await
            .expect("saved within patience")
            .expect("the store saves the match");
        ids.push(id);
    }
    ids
}

/// A data directory holding `results`, and their ids in the order given.
async fn seeded(name: &str, results: Vec<MatchResult>) -> (DataDir, Vec<i64>) {
    let dir = DataDir::new(name);
    let store = SqliteStore::open(&dir.0, &Metrics::new()).expect("the store opens");
    let ids = save_all(&store, results).await;
    drop(store);
    (dir, ids)
}

/// What came back: the status, the head's lines lowercased up to the colon, the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("a JSON body ({err}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request with `extra` header lines; `support::http_get` does not show
/// the headers this file is about.
async fn request(server: &TestServer, method: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        server.addr
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("an answer within patience")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|status| status.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn get(server: &TestServer, path: &str) -> Answer {
    request(server, "GET", path, &[]).await
}

#[tokio::test]
async fn matches_are_listed_newest_first_in_pages_that_add_up() {
    let results = (0..5)
        .map(|n| {
            played(
                &format!("room{n}"),
                vec![line(0xa0 + n, 3, 1), line(0xb0 + n, 1, 2)],
            )
        })
        .collect();
    let (dir, ids) = seeded("list", results).await;
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;

    let first = get(&server, "/api/matches?limit=2").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let page = first.json();
    assert_eq!(page["matches"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["matches"][0]["id"], json!(ids[4]), "newest first");
    assert_eq!(
        page["next"],
        json!(ids[3]),
        "next is the last id on the page"
    );
    assert_eq!(
        page["matches"][0],
        json!({
            "id": ids[4], "room": "room4", "map": "arena",
            "started_at": 1_767_225_600_000_i64, "ended_at": 1_767_225_780_000_i64,
            "end_reason": "time_limit",
            "players": [
                {"profile": "00000000000000a4", "name": "pa4", "kills": 3, "deaths": 2,
                 "shots": 10, "hits": 3, "score": 3, "placing": 1},
                {"profile": "00000000000000b4", "name": "pb4", "kills": 1, "deaths": 1,
                 "shots": 10, "hits": 1, "score": 1, "placing": 2}
            ]
        })
    );

    let mut seen = Vec::new();
    let mut path = "/api/matches?limit=2".to_owned();
    loop {
        let page = get(&server, &path).await.json();
        for record in page["matches"].as_array().expect("a list of matches") {
            seen.push(record["id"].as_i64().expect("an id"));
        }
        match page["next"].as_i64() {
            Some(next) => path = format!("/api/matches?limit=2&before={next}"),
            None => break,
        }
    }
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(seen, newest_first, "every match once, newest first");

    let default_page = get(&server, "/api/matches").await.json();
    assert_eq!(default_page["matches"].as_array().map(Vec::len), Some(5));
    assert_eq!(default_page["next"], Value::Null);
}

#[tokio::test]
async fn one_match_is_served_whole_and_cached_for_good() {
    let (dir, ids) = seeded(
        "one",
        vec![played("alpha", vec![line(1, 2, 1), line(2, 0, 2)])],
    )
    .await;
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;

    let answer = get(&server, &format!("/api/matches/{}", ids[0])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("cache-control"),
        Some("public, max-age=31536000, immutable"),
        "a finished match never changes"
    );
    let record = answer.json();
    assert_eq!(record["id"], json!(ids[0]));
    assert_eq!(record["room"], "alpha");
    assert_eq!(record["players"].as_array().map(Vec::len), Some(2));

    let unknown = get(&server, &format!("/api/matches/{}", ids[0] + 1000)).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].is_string(), "{}", unknown.body);
    assert_ne!(
        unknown.header("cache-control"),
        Some("public, max-age=31536000, immutable"),
        "a match that does not exist yet may exist later"
    );
}

#[tokio::test]
async fn a_player_has_lifetime_stats_a_rating_a_rank_and_recent_matches() {
    let (winner, loser) = (0x00ab_cdef_0123_4567_u64, 0xffff_0000_ffff_0000_u64);
    let results = (0..12)
        .map(|n| {
            played(
                &format!("r{n}"),
                vec![line(winner, 4, 1), line(loser, 2, 2)],
            )
        })
        .collect();
    let (dir, ids) = seeded("player", results).await;
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;

    let answer = get(&server, "/api/players/00abcdef01234567").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-cache"));
    assert!(answer.header("etag").is_some(), "a player page has an ETag");
    let player = answer.json();
    assert_eq!(player["profile"], "00abcdef01234567");
    assert_eq!(player["matches"], 12);
    assert_eq!(player["wins"], 12);
    assert_eq!(player["kills"], 48);
    assert_eq!(player["rank"], 1);
    assert!(
        player["rating"].as_f64().expect("a rating") > 0.0,
        "twelve wins raise a newcomer's 0: {player}"
    );
    assert!(player["skill"].is_number() && player["uncertainty"].is_number());
    let recent: Vec<i64> = player["recent_matches"]
        .as_array()
        .expect("recent matches")
        .iter()
        .map(|m| m["id"].as_i64().expect("an id"))
        .collect();
    let newest_ten: Vec<i64> = ids.iter().rev().take(10).copied().collect();
    assert_eq!(recent, newest_ten, "the ten newest, newest first");
    assert_eq!(player["recent_matches"][0]["placing"], 1);

    let other = get(&server, "/api/players/FFFF0000FFFF0000").await.json();
    assert_eq!(other["rank"], 2, "upper-case hex names the same player");
    assert_eq!(other["wins"], 0);

    let nobody = get(&server, "/api/players/0000000000000001").await;
    assert_eq!(nobody.status, 404);
    assert!(nobody.json()["error"].is_string());
}

#[tokio::test]
async fn the_leaderboard_pages_by_rating_with_an_opaque_cursor() {
    // Six players, each beating the next in a chain of matches.
    let results = (0..5)
        .flat_map(|_| {
            (0..5u64).map(|n| played("ladder", vec![line(n + 1, 2, 1), line(n + 2, 1, 2)]))
        })
        .collect();
    let (dir, _) = seeded("leaderboard", results).await;
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;

    let whole = get(&server, "/api/leaderboard").await.json();
    let everyone = whole["players"].as_array().expect("players").clone();
    assert_eq!(everyone.len(), 6);
    assert_eq!(whole["next"], Value::Null);
    assert_eq!(
        everyone[0]["profile"], "0000000000000001",
        "the unbeaten player leads"
    );
    for (index, entry) in everyone.iter().enumerate() {
        assert_eq!(entry["rank"], json!(index + 1));
    }
    for pair in everyone.windows(2) {
        assert!(pair[0]["rating"].as_f64() >= pair[1]["rating"].as_f64());
    }

    let mut paged = Vec::new();
    let mut path = "/api/leaderboard?limit=4".to_owned();
    loop {
        let page = get(&server, &path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        paged.extend(page["players"].as_array().expect("players").iter().cloned());
        match page["next"].as_str() {
            Some(cursor) => path = format!("/api/leaderboard?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        paged, everyone,
        "the pages add up to the whole board, in order"
    );
}

#[tokio::test]
async fn client_mistakes_get_400_with_a_json_error() {
    let (dir, _) = seeded("mistakes", vec![played("a", vec![line(1, 1, 1)])]).await;
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;
    for path in [
        "/api/matches?limit=0",
        "/api/matches?limit=-1",
        "/api/matches?limit=abc",
        "/api/matches?limit=99999999999999999999999",
        "/api/matches?limit=",
        "/api/matches?before=0",
        "/api/matches?before=1%27%3B%20DROP%20TABLE%20matches%3B--",
        "/api/matches?before=1&before=2",
        "/api/matches/0",
        "/api/matches/-5",
        "/api/matches/abc",
        "/api/matches/1%3B",
        "/api/matches/99999999999999999999999",
        "/api/players/xyz",
        "/api/players/00000000000000000001",
        "/api/players/%27%20OR%201=1",
        "/api/leaderboard?limit=0",
        "/api/leaderboard?cursor=nonsense",
        "/api/leaderboard?cursor=7ff8000000000000000000000000000f",
    ] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        let error = answer.json();
        assert!(
            error["error"].as_str().is_some_and(|text| !text.is_empty()),
            "{path}: a JSON error saying what was wrong, not {}",
            answer.body
        );
    }
    let still_there = get(&server, "/api/matches").await.json();
    assert_eq!(still_there["matches"].as_array().map(Vec::len), Some(1));
    let capped = get(&server, "/api/matches?limit=100000").await;
    assert_eq!(capped.status, 200, "a large limit is capped, not refused");
}

#[tokio::test]
async fn lists_revalidate_with_an_etag_until_a_new_match_is_saved() {
    let (dir, _) = seeded(
        "etag",
        vec![played("a", vec![line(1, 1, 1), line(2, 0, 2)])],
    )
    .await;
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;

    for path in [
        "/api/matches",
        "/api/leaderboard",
        "/api/players/0000000000000001",
    ] {
        let first = get(&server, path).await;
        assert_eq!(first.status, 200);
        assert_eq!(first.header("cache-control"), Some("no-cache"), "{path}");
        let etag = first.header("etag").expect("an ETag").to_owned();
        let again = request(&server, "GET", path, &[("If-None-Match", &etag)]).await;
        assert_eq!(again.status, 304, "{path}: unchanged, so not modified");
        assert!(again.body.is_empty(), "a 304 has no body");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        let other = request(&server, "GET", path, &[("If-None-Match", "\"stale\"")]).await;
        assert_eq!(other.status, 200);
    }

    let before = get(&server, "/api/matches").await;
    let etag = before.header("etag").expect("an ETag").to_owned();
    // A second store on the same file, as another process would be: the server's
    // readers see its commit.
    let writer = SqliteStore::open(&dir.0, &Metrics::new()).expect("a second store opens");
    save_all(&writer, vec![played("b", vec![line(1, 2, 1)])]).await;
    drop(writer);
    let after = request(&server, "GET", "/api/matches", &[("If-None-Match", &etag)]).await;
    assert_eq!(after.status, 200, "a new match changes the list");
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert_eq!(after.json()["matches"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn head_answers_like_get_without_the_body() {
    let (dir, ids) = seeded("head", vec![played("a", vec![line(1, 1, 1)])]).await;
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;
    for path in [
        "/api/matches".to_owned(),
        format!("/api/matches/{}", ids[0]),
        "/api/players/0000000000000001".to_owned(),
        "/api/leaderboard".to_owned(),
    ] {
        let got = get(&server, &path).await;
        let head = request(&server, "HEAD", &path, &[]).await;
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD has no body");
        assert_eq!(head.header("content-type"), got.header("content-type"));
        assert_eq!(head.header("cache-control"), got.header("cache-control"));
    }
    let bad = request(&server, "HEAD", "/api/matches?limit=0", &[]).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn an_empty_history_is_an_empty_page() {
    let dir = DataDir::new("empty");
    let server = start_server(|config| config.data_dir = dir.0.clone()).await;
    let matches = get(&server, "/api/matches").await;
    assert_eq!(matches.status, 200);
    assert_eq!(matches.json(), json!({"matches": [], "next": null}));
    assert_eq!(
        get(&server, "/api/leaderboard").await.json(),
        json!({"players": [], "next": null})
    );
    assert!(
        dir.0.join(DB_FILE).is_file(),
        "the server made its database in the data directory"
    );
}

#[tokio::test]
async fn a_damaged_database_stops_the_server_at_start_and_is_kept() {
    let _turn = serial().await;
    let dir = DataDir::new("damaged");
    std::fs::create_dir_all(&dir.0).expect("create the data directory");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let db = dir.0.join(DB_FILE);
    std::fs::write(&db, &garbage).expect("write garbage");
    let mut config = server::Config::for_addr("127.0.0.1:0".parse().expect("an address"));
    config.data_dir = dir.0.clone();
    let err = server::start(config)
        .await
        .expect_err("a damaged database stops the start");
    let message = format!("{err:#}");
    assert!(
        message.contains(&db.display().to_string()),
        "the error names the file: {message}"
    );
    assert_eq!(
        std::fs::read(&db).expect("the file is still there"),
        garbage,
        "the file is never replaced"
    );
}

#[tokio::test]
async fn the_store_reports_its_queue_and_its_losses_in_metrics() {
    let server = start_server(|_| {}).await;
    let (status, body) = http_get_at(server.admin_addr(), "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "skirmish_store_queue_depth 0\n",
        "skirmish_store_results_saved_total 0\n",
        "skirmish_store_results_dropped_total 0\n",
        "skirmish_store_write_failures_total 0\n",
    ] {
        assert!(
            body.contains(name),
            "metrics should include {name:?}:\n{body}"
        );
    }
}
