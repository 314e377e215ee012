//! Cutting connections mid-game: every player the proxy cuts comes back into its own
//! seat, the lobby's counts never drop, and nobody else notices.

use std::collections::BTreeMap;
use std::time::Duration;

use client::bots::{BotsConfig, run};
use client::core::RoomView;
use client::native::{Connection, Hello};
use harness::proxy::{Cut, Delay, Proxy};
use shared::PlayerId;
use shared::protocol::ServerMsg;
use tokio::time::{Instant, sleep, timeout};

const BOTS: usize = 32;

/// What a player who was never cut saw of the others while they were.
#[derive(Debug, Default)]
struct Observed {
    /// The longest wait between two snapshots.
    longest_gap: Duration,
    away: BTreeMap<PlayerId, u32>,
    back: BTreeMap<PlayerId, u32>,
    left: Vec<PlayerId>,
    joined_late: Vec<PlayerId>,
    /// Players whose score went down between two snapshots: a seat started anew.
    scores_reset: Vec<PlayerId>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cut_player_resumes_into_its_own_seat_and_nobody_else_notices() {
    let mut config = server::Config::for_addr("127.0.0.1:0".parse().expect("an address"));
    config.data_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cuts-{}", std::process::id()));
    config.room_capacity = 40;
    // No match ends (and resets the scores) while the test runs.
    config.match_score_limit = 1000;
    let server = server::start(config).await.expect("the server starts");
    let proxy = Proxy::start(server.addr, Delay::default())
        .await
        .expect("the proxy starts");

    let mut observer = Connection::join(&server.ws_url(), Hello::new("observer").in_room("cuts"))
        .await
        .expect("the observer joins, straight to the server");
    let bots = tokio::spawn(run(BotsConfig {
        url: format!("ws://{}/ws", proxy.addr()),
        count: BOTS,
        duration: Duration::from_secs(15),
        room: Some("cuts".into()),
        name_prefix: "bot".into(),
        seed: 5,
        ramp: Duration::from_secs(1),
        idle: false,
        trust: client::native::Trust::public(),
    }));
    let started = Instant::now();
    let watch_until = started + Duration::from_secs(14);
    let observed = tokio::spawn(async move {
        let mut observed = Observed::default();
        let mut view = RoomView::default();
        let _ = view.apply(&ServerMsg::Welcome(Box::new(observer.welcome.clone())));
        let mut scores: BTreeMap<PlayerId, u16> = BTreeMap::new();
        let mut last_snapshot = Instant::now();
        let seated_by = started + Duration::from_secs(3);
        while Instant::now() < watch_until {
            let Ok(Ok(Some(msg))) = timeout(Duration::from_secs(1), observer.recv()).await else {
                break;
            };
            view.apply(&msg).expect("the observer's snapshots apply");
            match msg {
                ServerMsg::Snapshot(_) => {
                    observed.longest_gap = observed.longest_gap.max(last_snapshot.elapsed());
                    last_snapshot = Instant::now();
                    for player in view.snapshot.iter().flat_map(|s| &s.players) {
                        let before = scores.insert(player.id, player.score).unwrap_or(0);
                        if player.score < before {
                            observed.scores_reset.push(player.id);
                        }
                    }
                    // Acknowledged, or the server would stop sending deltas.
                    if let Some(ack) = view.ack_message() {
                        let _ = observer.send(&ack).await;
                    }
                }
                ServerMsg::PlayerAway { id } => *observed.away.entry(id).or_default() += 1,
                ServerMsg::PlayerBack { id } => *observed.back.entry(id).or_default() += 1,
                ServerMsg::PlayerLeft { id } => observed.left.push(id),
                ServerMsg::PlayerJoined { id, .. } if Instant::now() > seated_by => {
                    observed.joined_late.push(id);
                }
                _ => {}
            }
        }
        let _ = observer.close().await;
        observed
    });

    // Everyone seated, then each bot's connection cut once: the even cuts with a reset,
    // the odd ones by going silent.
    sleep(Duration::from_secs(3)).await;
    let mut lowest_count = u16::MAX;
    let mut cuts = 0;
    let cutting_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < cutting_until {
        if cuts < BOTS {
            let how = if cuts % 2 == 0 {
                Cut::Reset
            } else {
                Cut::Silent
            };
            if proxy.cut_oldest(Duration::from_millis(500), how) {
                cuts += 1;
            }
        }
        let seated = seated_in_lobby(server.addr).await;
        lowest_count = lowest_count.min(seated);
        sleep(Duration::from_millis(150)).await;
    }

    let report = bots.await.expect("the bots ran");
    let observed = observed.await.expect("the observer ran");
    assert_eq!(cuts, BOTS, "every bot's connection was cut once");
    assert_eq!(report.failed, 0, "no bot failed: {report:?}");
    assert_eq!(
        (report.resumed, report.resume_failed, report.seats_lost),
        (BOTS as u64, 0, 0),
        "every bot resumed into its own seat (same player id): {report:?}"
    );
    assert_eq!(
        lowest_count,
        BOTS as u16 + 1,
        "the lobby's count (GET /api/rooms) never dropped while seats were held"
    );
    assert!(observed.left.is_empty(), "nobody left: {observed:?}");
    assert!(
        observed.joined_late.is_empty(),
        "nobody joined anew: {observed:?}"
    );
    assert!(
        observed.scores_reset.is_empty(),
        "every score carried on: {observed:?}"
    );
    assert_eq!(
        observed.back.len(),
        observed.away.len(),
        "everyone seen away came back: {observed:?}"
    );
    assert!(
        observed.longest_gap < Duration::from_millis(500),
        "the uncut player's snapshots never stopped: {observed:?}"
    );
    server.shutdown().await;
}

/// Players seated in every room, as `GET /api/rooms` lists them.
async fn seated_in_lobby(addr: std::net::SocketAddr) -> u16 {
    let body = tokio::task::spawn_blocking(move || harness::http::get(addr, "/api/rooms"))
        .await
        .expect("the request ran")
        .expect("GET /api/rooms answers");
    let rooms: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    rooms
        .as_array()
        .expect("a list of rooms")
        .iter()
        .map(|room| room["players"].as_u64().expect("a player count") as u16)
        .sum()
}
