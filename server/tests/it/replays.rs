//! Replays end to end: bots play a short match on the real server, and its replay is
//! served whole, by ranges and to `HEAD`, and reads back through the viewer's decoder.

use std::time::Duration;

use client::bots::{BotsConfig, run};
use shared::replay::{MAGIC, decode};

use crate::support::*;

/// Plays one short match with `n_bots` bots and returns the first saved match's id.
async fn play_a_match(server: &TestServer, n_bots: usize) -> i64 {
    let report = run(BotsConfig {
        url: server.ws_url(),
        trust: client::native::Trust::public(),
        count: n_bots,
        // A 5 s match, 1 s of results, and time to save it on a busy machine.
        duration: Duration::from_secs(9),
        room: Some("arena".into()),
        name_prefix: "bot".into(),
        seed: 5,
        ramp: Duration::from_millis(200),
        idle: false,
    })
    .await;
    assert_eq!(report.failed, 0, "no bot fails: {report:?}");
    let (status, body) = http_get(server, "/api/matches").await;
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    page["matches"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a saved match: {body}"))
}

/// The replay file once the writer has kept it (it follows the store's word).
async fn fetch_replay(server: &TestServer, id: i64) -> RawResponse {
    let path = format!("/api/matches/{id}/replay");
    for _ in 0..100 {
        let response = http_request(server.addr, "GET", &path, &[]).await;
        if response.status != 404 {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replay of match {id} is served within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bots_match_is_served_as_a_replay_whole_by_range_and_to_head() {
    let server = start_server(|config| {
        config.match_time_limit_secs = 5.0;
        config.match_results_secs = 1.0;
    })
    .await;
    let id = play_a_match(&server, 4).await;
    let whole = fetch_replay(&server, id).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let len = whole.body.len();
    assert_eq!(
        whole.header("content-length"),
        Some(len.to_string().as_str())
    );

    let replay = decode(&whole.body).expect("the served file is a replay");
    assert_eq!(replay.damage, None, "the served file is whole");
    assert_eq!(replay.header.room, "arena");
    assert!(
        replay.states.len() > 60,
        "seconds of play at the snapshot rate: {}",
        replay.states.len()
    );
    let roster = replay.roster_at(replay.states.len() - 1);
    assert_eq!(roster.len(), 4, "{roster:?}");
    assert!(roster.iter().all(|entry| entry.name.starts_with("bot")));
    let last = replay.states.last().expect("a state");
    assert_eq!(last.players.len(), 4, "every bot is in the last state");

    let path = format!("/api/matches/{id}/replay");
    let head = http_request(server.addr, "GET", &path, &[("Range", "bytes=0-7")]).await;
    assert_eq!(head.status, 206);
    assert_eq!(head.body, MAGIC, "the first eight bytes are the magic");
    assert_eq!(
        head.header("content-range"),
        Some(format!("bytes 0-7/{len}").as_str())
    );
    let tail = http_request(server.addr, "GET", &path, &[("Range", "bytes=-10")]).await;
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, whole.body[len - 10..]);
    let beyond = format!("bytes={len}-");
    let past = http_request(server.addr, "GET", &path, &[("Range", &beyond)]).await;
    assert_eq!(past.status, 416, "a range past the end is unsatisfiable");
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    let headed = http_request(server.addr, "HEAD", &path, &[]).await;
    assert_eq!(headed.status, 200);
    assert_eq!(
        headed.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(headed.body.is_empty(), "HEAD sends no body");

    let unknown = http_request(server.addr, "GET", "/api/matches/999999/replay", &[]).await;
    assert_eq!(unknown.status, 404, "an unknown match has no replay");
    let malformed = http_request(server.addr, "GET", "/api/matches/x1/replay", &[]).await;
    assert_eq!(malformed.status, 400);

    let viewer = http_request(server.addr, "GET", &format!("/replay/{id}"), &[]).await;
    assert_eq!(
        viewer.status, 302,
        "the viewer's short address sends to the page"
    );
    assert_eq!(
        viewer.header("location"),
        Some(format!("/?replay={id}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_replay_cut_short_or_with_a_flipped_byte_plays_up_to_the_damage() {
    let server = start_server(|config| {
        config.match_time_limit_secs = 5.0;
        config.match_results_secs = 1.0;
    })
    .await;
    let id = play_a_match(&server, 3).await;
    let whole = fetch_replay(&server, id).await.body;
    let intact = decode(&whole).expect("the whole file reads");
    assert_eq!(intact.damage, None);
    let n_states = intact.states.len();

    let cut = &whole[..whole.len() * 2 / 3];
    let truncated = decode(cut).expect("the header survives the cut");
    let damage = truncated.damage.expect("the cut is reported");
    assert_eq!(damage.problem, shared::replay::Problem::Truncated);
    assert!(
        truncated.states.len() > n_states / 2 && truncated.states.len() < n_states,
        "about two thirds play: {} of {n_states}",
        truncated.states.len()
    );
    assert_eq!(truncated.states, intact.states[..truncated.states.len()]);

    let mut flipped = whole.clone();
    let flip_at = whole.len() / 2;
    flipped[flip_at] ^= 0x40;
    let corrupted = decode(&flipped).expect("the header is before the flip");
    let damage = corrupted.damage.clone().expect("the flipped byte is found");
    assert!(
        damage.offset as usize <= flip_at,
        "reported at the frame holding byte {flip_at}: {damage}"
    );
    assert!(
        corrupted.states.len() > n_states / 4 && corrupted.states.len() < n_states,
        "about half plays: {} of {n_states}",
        corrupted.states.len()
    );
    assert_eq!(corrupted.states, intact.states[..corrupted.states.len()]);
    // Seeking in what survives starts at a keyframe that survived.
    let last = corrupted.states.len() - 1;
    let key = corrupted.keyframe_before(last).expect("a keyframe before");
    assert!(corrupted.keyframes.contains(&key) && key <= last);
}
