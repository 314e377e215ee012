use std::time::Duration;

use client::bots::{BotsConfig, run};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_bots_play_without_errors() {
    let server = start_server(|_| {}).await;
    let report = run(BotsConfig {
        url: server.ws_url(),
        trust: client::native::Trust::public(),
        count: 32,
        duration: Duration::from_secs(3),
        room: None,
        name_prefix: "bot".into(),
        seed: 7,
        ramp: Duration::from_millis(500),
        idle: false,
    })
    .await;
    assert_eq!(report.connected, 32, "every bot joins: {report:?}");
    assert_eq!(report.failed, 0, "no bot fails: {report:?}");
    assert_eq!(report.decode_errors, 0);
    assert_eq!(report.disconnects, 0);
    assert!(
        report.snapshots_per_bot_per_s > 20.0,
        "bots receive snapshots: {report:?}"
    );
    assert_eq!(server.rooms().len(), 2, "32 bots fill two rooms of 16");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_bots_play_two_matches_and_both_are_recorded() {
    let server = start_server(|config| {
        config.match_time_limit_secs = 5.0;
        config.match_results_secs = 1.0;
    })
    .await;
    let report = run(BotsConfig {
        url: server.ws_url(),
        trust: client::native::Trust::public(),
        count: 16,
        // Two matches of 5 s, each with 1 s of results, and ample time to save the
        // second on a busy machine.
        duration: Duration::from_secs(18),
        room: Some("arena".into()),
        name_prefix: "bot".into(),
        seed: 11,
        ramp: Duration::from_millis(300),
        idle: false,
    })
    .await;
    assert_eq!(report.failed, 0, "no bot fails: {report:?}");
    let (status, body) = http_get(&server, "/api/matches").await;
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let matches = page["matches"].as_array().expect("a list of matches");
    assert!(matches.len() >= 2, "two matches recorded: {body}");
    for record in matches.iter().take(2) {
        let players = record["players"].as_array().expect("players");
        assert_eq!(players.len(), 16, "16 player rows: {record}");
        let total = |field: &str| -> u64 {
            players
                .iter()
                .map(|p| p[field].as_u64().expect("a count"))
                .sum()
        };
        assert_eq!(
            total("kills"),
            total("deaths"),
            "every kill is someone's death: {record}"
        );
        assert!(total("shots") > 0, "the bots fought: {record}");
    }
    let (status, body) = http_get(&server, "/api/leaderboard?limit=100").await;
    assert_eq!(status, 200, "{body}");
    let board: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let entries = board["players"].as_array().expect("the ranked players");
    assert_eq!(entries.len(), 16, "every bot is ranked: {body}");
}
