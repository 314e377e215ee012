//! The server as an Agones GameServer, against `test_agones::SdkStandIn`, a STAND-IN for
//! the SDK server's HTTP gateway (no Kubernetes runs here): a real server process,
//! given `AGONES_SDK_HTTP_PORT` as Agones gives it, says Ready only once its port
//! accepts connections, pings Health on its timer, keeps the players label and Counter
//! as bots come and go, and on SIGTERM closes its players (1001) before it calls
//! Shutdown; a GameServer Agones shuts down drains the process; an SDK server that is
//! not there yet costs nothing and is caught up with; under `--redis` the GameServer's
//! address is the process's public URL; and without the variable nothing is called.

use std::time::Duration;

use client::bots::{BotsConfig, run};
use client::native::Hello;
use shared::protocol::{CloseReason, ServerMsg};
use test_agones::SdkStandIn;
use tokio::time::{Instant, sleep, timeout};

use crate::support::*;

/// Where Agones's SDK server listens for HTTP unless told otherwise.
const AGONES_DEFAULT_HTTP_PORT: u16 = 9358;

/// A loopback port free a moment ago, so the test knows the game's port (and can put
/// the stand-in on a port nothing answers yet).
fn free_port() -> u16 {
    test_scratch::free_port().expect("a free port")
}

/// The server binary on `game_port`, run as Agones runs it: `AGONES_SDK_HTTP_PORT`
/// names the SDK server, and health pings go every 200 ms.
fn start_under_agones(sdk_port: u16, game_port: u16, extra_args: &[&str]) -> ServerProcess {
    start_under_agones_on(&format!("127.0.0.1:{game_port}"), sdk_port, extra_args)
}

/// As `start_under_agones`, listening on `addr`.
fn start_under_agones_on(addr: &str, sdk_port: u16, extra_args: &[&str]) -> ServerProcess {
    let sdk_port = sdk_port.to_string();
    let mut args = vec![
        "--addr",
        addr,
        "--agones-health-secs",
        "0.2",
        "--resume-grace-secs",
        "0.2",
    ];
    args.extend_from_slice(extra_args);
    ServerProcess::start_with_env(
        &fresh_data_dir(),
        &args,
        &[("AGONES_SDK_HTTP_PORT", &sdk_port)],
        std::process::Stdio::null(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_listening_health_on_a_timer_players_counted_and_shutdown_after_the_players_left()
 {
    let _turn = serial().await;
    let sdk = SdkStandIn::start().await.expect("the stand-in starts");
    sdk.declare_counter("players", 1000);
    let game_port = free_port();
    sdk.probe_on_ready(([127, 0, 0, 1], game_port).into());
    let mut server = start_under_agones(sdk.port(), game_port, &[]);

    let ready = sdk
        .wait_for(PATIENCE, |sdk| !sdk.calls_to("/ready").is_empty())
        .await;
    assert!(ready, "Ready arrives: {:?}", sdk.calls());
    let readies = sdk.calls_to("/ready");
    assert_eq!(
        readies[0].probe_accepted,
        Some(true),
        "when Ready arrived, the game's port accepted connections"
    );
    assert_eq!(
        (readies[0].method.as_str(), readies[0].status),
        ("POST", 200)
    );

    let started = Instant::now();
    sleep(Duration::from_millis(1500)).await;
    let healths = sdk.calls_to("/health");
    // Every 200 ms over 1.5 s is 7; a timer that fired once, or only at the start,
    // gives 1 or 2.
    assert!(
        healths.len() >= 4,
        "Health arrives repeatedly: {} in {:?}",
        healths.len(),
        started.elapsed()
    );
    assert!(
        healths
            .iter()
            .all(|call| call.method == "POST" && call.status == 200)
    );

    let game_url = format!("ws://127.0.0.1:{game_port}/ws");
    let mut last = Client::connect_url(&game_url, Hello::new("ag-stays").in_room("agones"))
        .await
        .expect("a player joins");
    let bots = tokio::spawn(run(BotsConfig {
        url: game_url.clone(),
        trust: client::native::Trust::public(),
        count: 3,
        duration: Duration::from_secs(4),
        room: Some("agones".into()),
        name_prefix: "ag-bot".into(),
        seed: 13,
        ramp: Duration::ZERO,
        idle: false,
    }));
    let four = sdk
        .wait_for(PATIENCE, |sdk| {
            sdk.label("players").as_deref() == Some("4") && sdk.counter("players") == Some(4)
        })
        .await;
    assert!(
        four,
        "the label and the Counter count the bots in: {:?}, {:?}",
        sdk.label("players"),
        sdk.counter("players")
    );
    let report = bots.await.expect("the bots ran");
    assert_eq!(report.failed, 0, "{report:?}");
    let one = sdk
        .wait_for(PATIENCE, |sdk| {
            sdk.label("players").as_deref() == Some("1") && sdk.counter("players") == Some(1)
        })
        .await;
    assert!(
        one,
        "the label and the Counter follow the bots out: {:?}, {:?}",
        sdk.label("players"),
        sdk.counter("players")
    );
    assert!(
        sdk.calls_to("/shutdown").is_empty(),
        "no Shutdown while serving"
    );

    server.signal("-TERM");
    let told = timeout(PATIENCE, async {
        loop {
            match last.recv().await {
                Ok(Some(ServerMsg::Disconnect { reason, .. })) => return reason,
                Ok(Some(_)) => {}
                other => panic!("the player is told before the close: {other:?}"),
            }
        }
    })
    .await
    .expect("the player hears of the shutdown");
    let told_at = Instant::now();
    assert_eq!(told, CloseReason::ServerShutdown, "closed with 1001");
    assert!(
        server.exited(Duration::from_secs(15)).await.success(),
        "the server exits cleanly"
    );
    let shutdowns = sdk.calls_to("/shutdown");
    assert_eq!(shutdowns.len(), 1, "one Shutdown: {shutdowns:?}");
    assert!(
        shutdowns[0].at >= told_at.into_std(),
        "Shutdown came after the players were closed"
    );
    let calls = sdk.calls();
    assert_eq!(
        calls.last().map(|call| call.path.as_str()),
        Some("/shutdown"),
        "Shutdown is the last call"
    );
    assert_eq!(sdk.calls_to("/ready").len(), 1, "Ready once");
    assert!(
        calls.iter().all(|call| call.status == 200),
        "every call is one the SDK documents: {:?}",
        calls
            .iter()
            .filter(|call| call.status != 200)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gameserver_agones_shuts_down_drains_the_process_and_then_it_calls_shutdown() {
    let _turn = serial().await;
    let sdk = SdkStandIn::start().await.expect("the stand-in starts");
    let game_port = free_port();
    let mut server = start_under_agones(
        sdk.port(),
        game_port,
        &["--match-time-limit-secs", "5", "--match-results-secs", "1"],
    );
    let mut player = Client::connect_url(
        &format!("ws://127.0.0.1:{game_port}/ws"),
        Hello::new("stays").in_room("drained"),
    )
    .await
    .expect("a player joins");
    assert!(
        sdk.wait_for(PATIENCE, |sdk| !sdk.calls_to("/ready").is_empty())
            .await,
        "Ready arrives"
    );

    sdk.set_deleting();
    sdk.set_state("Shutdown");
    let marked = sdk
        .wait_for(PATIENCE, |sdk| {
            sdk.label("draining").as_deref() == Some("true")
        })
        .await;
    assert!(
        marked,
        "the process marks itself draining: {:?}",
        sdk.calls()
    );
    assert!(
        sdk.calls_to("/shutdown").is_empty(),
        "a match is on: no Shutdown yet"
    );
    // The match ends within its 5 s, and the drained room closes where the next would start.
    let ended = timeout(Duration::from_secs(20), async {
        while let Ok(Some(_)) = player.recv().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the drained room closes once its match is over"
    );
    assert!(
        server.exited(Duration::from_secs(15)).await.success(),
        "the drained server exits cleanly"
    );
    assert_eq!(
        sdk.calls().last().map(|call| call.path.clone()).as_deref(),
        Some("/shutdown"),
        "and calls Shutdown last"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_server_not_there_yet_is_retried_while_the_game_goes_on() {
    let _turn = serial().await;
    let sdk_port = free_port();
    let game_port = free_port();
    let mut server = start_under_agones(sdk_port, game_port, &[]);
    let mut player = Client::connect_url(
        &format!("ws://127.0.0.1:{game_port}/ws"),
        Hello::new("early").in_room("early"),
    )
    .await
    .expect("a player joins while the SDK server is away");
    still_playing(std::slice::from_mut(&mut player)).await;

    sleep(Duration::from_secs(1)).await;
    let sdk = SdkStandIn::start_on(sdk_port)
        .await
        .expect("the stand-in takes the port");
    let caught_up = sdk
        .wait_for(Duration::from_secs(15), |sdk| {
            sdk.calls_to("/ready").len() == 1 && sdk.label("players").as_deref() == Some("1")
        })
        .await;
    assert!(
        caught_up,
        "Ready and the player count arrive once the SDK server is there: {:?}",
        sdk.calls()
    );
    still_playing(std::slice::from_mut(&mut player)).await;
    server.signal("-TERM");
    assert!(server.exited(Duration::from_secs(15)).await.success());
    assert_eq!(sdk.calls_to("/shutdown").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_the_gameservers_address_is_the_public_url() {
    let _turn = serial().await;
    let Some(bin) =
        test_redis::server_bin("in_a_cluster_the_gameservers_address_is_the_public_url")
    else {
        return;
    };
    let redis = test_redis::Redis::start(&bin).expect("a private redis-server starts");
    let sdk = SdkStandIn::start().await.expect("the stand-in starts");
    let game_port = free_port();
    // As Agones sees it: the node's address and the port it maps to the container's.
    sdk.set_address("127.0.0.1", "game", game_port);
    let url = redis.url();
    let addr = format!("0.0.0.0:{game_port}");
    // On every interface, which without Agones would need --public-url.
    let mut server = start_under_agones_on(&addr, sdk.port(), &["--redis", &url]);
    let _player = Client::connect_url(
        &format!("ws://127.0.0.1:{game_port}/ws"),
        Hello::new("placed").in_room("placed"),
    )
    .await
    .expect("a player joins");
    let (status, body) = http_get_at(server.addr, "/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    let rooms: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let room = rooms
        .as_array()
        .and_then(|rooms| rooms.iter().find(|room| room["id"] == "placed"))
        .unwrap_or_else(|| panic!("the room is listed: {body}"));
    assert_eq!(
        room["server"].as_str(),
        Some(format!("http://127.0.0.1:{game_port}").as_str()),
        "the cluster knows the process by the GameServer's address"
    );
    server.signal("-TERM");
    assert!(server.exited(Duration::from_secs(15)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_agones_variables_no_sdk_call_is_made() {
    let _turn = serial().await;
    // On the SDK server's default port, so a client that fell back to it would be seen.
    let sdk = SdkStandIn::start_on(AGONES_DEFAULT_HTTP_PORT)
        .await
        .expect("the stand-in takes Agones's default SDK port");
    let mut server = ServerProcess::start(&[]);
    let _player = Client::connect_url(&server.ws_url, Hello::new("plain").in_room("plain"))
        .await
        .expect("a player joins");
    sleep(Duration::from_secs(1)).await;
    server.signal("-TERM");
    assert!(server.exited(Duration::from_secs(15)).await.success());
    assert!(
        sdk.calls().is_empty(),
        "nothing was asked of Agones: {:?}",
        sdk.calls()
    );
}
