use std::time::Duration;

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn healthz_answers_200() {
    let server = start_server(|_| {}).await;
    let (status, body) = http_get(&server, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
}

#[tokio::test]
async fn rooms_api_lists_rooms_with_players_capacity_and_phase() {
    let server = start_server(|config| config.room_capacity = 8).await;
    let _a = join_room(&server, "ann", "alpha").await;
    let _b = join_room(&server, "bob", "alpha").await;
    let (status, body) = http_get(&server, "/api/rooms").await;
    assert_eq!(status, 200);
    let rooms: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(
        rooms,
        serde_json::json!([{ "id": "alpha", "players": 2, "capacity": 8, "phase": "playing" }])
    );
}

#[tokio::test]
async fn metrics_expose_ticks_occupancy_and_traffic() {
    let server = start_server(|_| {}).await;
    let mut conn = join(&server, "ann").await;
    next_snapshot(&mut conn).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = http_get_at(server.admin_addr(), "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "skirmish_tick_duration_seconds_bucket",
        "skirmish_tick_lateness_seconds_bucket",
        "skirmish_tick_duration_max_seconds",
        "skirmish_tick_lateness_max_seconds",
        "skirmish_players 1\n",
        "skirmish_rooms 1\n",
        "skirmish_ws_sent_bytes_total",
        "skirmish_ws_sent_messages_total",
        "skirmish_ws_received_bytes_total",
        "skirmish_ws_received_messages_total",
    ] {
        assert!(
            body.contains(name),
            "metrics should include {name}:\n{body}"
        );
    }
}

#[tokio::test]
async fn the_public_port_does_not_answer_metrics_by_default() {
    let server = start_server(|_| {}).await;
    let (status, _) = http_get(&server, "/metrics").await;
    assert_eq!(status, 404, "/metrics is on the admin listener only");
    let (status, body) = http_get_at(server.admin_addr(), "/metrics").await;
    assert_eq!(status, 200, "the admin listener answers it");
    assert!(body.contains("skirmish_connections"));
    // One test server at a time: each holds the tests' turn.
    drop(server);
    let kept = start_server(|config| config.public_metrics = true).await;
    let (status, _) = http_get(&kept, "/metrics").await;
    assert_eq!(status, 200, "--public-metrics keeps it on the public port");
}

#[tokio::test]
async fn root_serves_a_page() {
    let server = start_server(|_| {}).await;
    let (status, body) = http_get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("Skirmish"));
}
