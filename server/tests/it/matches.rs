//! Matches end to end with the real server binary on a data directory of its own: a
//! match reported saved survives kill -9, one still being played is all kill -9 loses,
//! SIGTERM saves the match in play with the end reason "shutdown", and the room list
//! shows where each room's match is.

use std::time::Duration;

use client::native::Hello;
use serde_json::Value;
use shared::game::GameEvent;
use shared::protocol::ServerMsg;
use tokio::time::timeout;

use crate::support::*;

/// The server binary on `data_dir`, with short matches.
fn start_on(data_dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start_on(data_dir, &SHORT_MATCHES)
}

async fn join_arena(server: &ServerProcess, name: &str) -> Client {
    Client::connect_url(&server.ws_url, Hello::new(name).in_room("arena"))
        .await
        .expect("join")
}

async fn matches(server: &ServerProcess) -> Vec<Value> {
    let (status, body) = http_get_at(server.addr, "/api/matches").await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    page["matches"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_saved_match_survives_kill_9_and_kill_9_loses_only_the_match_in_play() {
    let _turn = serial().await;
    let data_dir = fresh_data_dir();
    let first = start_on(&data_dir);
    let mut ann = join_arena(&first, "ann").await;
    let _bob = join_arena(&first, "bob").await;
    let saved_id = match_saved(&mut ann).await;
    first.signal("-KILL");
    drop(first);

    let second = start_on(&data_dir);
    let (status, body) = http_get_at(second.addr, &format!("/api/matches/{saved_id}")).await;
    assert_eq!(
        status, 200,
        "the saved match is there after kill -9: {body}"
    );
    let record: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(names(&record), ["ann", "bob"]);
    assert_eq!(record["end_reason"], "time_limit");

    // A match in play when the process is killed is lost, and nothing else is.
    let _cy = join_arena(&second, "cy").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.signal("-KILL");
    drop(second);
    let third = start_on(&data_dir);
    let matches = matches(&third).await;
    assert_eq!(matches.len(), 1, "only the saved match: {matches:?}");
    assert_eq!(matches[0]["id"], saved_id);
}

#[tokio::test]
async fn sigterm_saves_the_match_in_play_as_shutdown() {
    let _turn = serial().await;
    let data_dir = fresh_data_dir();
    let mut first = start_on(&data_dir);
    let mut ann = join_arena(&first, "ann").await;
    let _bob = join_arena(&first, "bob").await;
    next_snapshot(&mut ann).await;
    first.signal("-TERM");
    let status = first.exited(Duration::from_secs(10)).await;
    assert!(status.success(), "a clean exit: {status}");
    drop(first);

    let second = start_on(&data_dir);
    let matches = matches(&second).await;
    assert_eq!(matches.len(), 1, "{matches:?}");
    assert_eq!(matches[0]["end_reason"], "shutdown");
    assert_eq!(names(&matches[0]), ["ann", "bob"]);
}

/// The phase `/api/rooms` lists for the room `arena`.
async fn listed_phase(server: &ServerProcess) -> Option<String> {
    let (status, body) = http_get_at(server.addr, "/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    let rooms: Value = serde_json::from_str(&body).expect("JSON");
    rooms
        .as_array()?
        .iter()
        .find(|room| room["id"] == "arena")
        .and_then(|room| room["phase"].as_str().map(str::to_owned))
}

/// Reads until the room announces `wanted`.
async fn event(client: &mut Client, wanted: impl Fn(&GameEvent) -> bool) {
    timeout(MATCH_PATIENCE, async {
        loop {
            match client.recv().await {
                Ok(Some(ServerMsg::Event(event))) if wanted(&event) => return,
                Ok(Some(_)) => {}
                other => panic!("the connection ended first: {other:?}"),
            }
        }
    })
    .await
    .expect("the event comes");
}

#[tokio::test]
async fn the_room_list_shows_each_rooms_match_phase() {
    let _turn = serial().await;
    // Results long enough to be seen by a poll on a busy machine.
    let server = ServerProcess::start_on(
        &fresh_data_dir(),
        &["--match-time-limit-secs", "5", "--match-results-secs", "6"],
    );
    let mut ann = join_arena(&server, "ann").await;
    assert_eq!(listed_phase(&server).await.as_deref(), Some("playing"));

    event(&mut ann, |event| {
        matches!(event, GameEvent::MatchOver { .. })
    })
    .await;
    let shown = eventually(Duration::from_secs(2), async || {
        listed_phase(&server).await.as_deref() == Some("results")
    })
    .await;
    assert!(shown, "the list shows results after the match's end");

    event(&mut ann, |event| matches!(event, GameEvent::MatchStarted)).await;
    let shown = eventually(Duration::from_secs(2), async || {
        listed_phase(&server).await.as_deref() == Some("playing")
    })
    .await;
    assert!(shown, "the list shows playing once the next match began");
}
