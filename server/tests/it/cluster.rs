//! Server processes joined in a cluster through one private redis-server (`--redis`):
//! every lobby lists the same rooms; bots that all ask one process are seated on
//! several; a process killed outright leaves the directory within seconds while the
//! players elsewhere play on; Redis away makes joins fail cleanly, and once it is back
//! the directory is whole again; Redis unreachable at start stops the server; a drained
//! process's players join again elsewhere; with a shared PostgreSQL (`--database`), a
//! match that ends on one process is listed on the others, through a database restart.

use std::collections::BTreeSet;
use std::time::Duration;

use client::bots::{BotsConfig, run};
use client::native::{Hello, NetError};
use serde_json::Value;
use shared::protocol::{CloseReason, ServerMsg};
use test_postgres::Postgres;
use test_redis::Redis;
use tokio::time::{Instant, sleep, timeout};

use crate::spectators::Spectator;
use crate::support::*;

/// Seats per room: 48 bots need six rooms, more than one process's share.
const CAPACITY: &str = "8";

/// A private redis-server; `None` when this run has none.
fn redis(test: &str) -> Option<Redis> {
    let bin = test_redis::server_bin(test)?;
    Some(Redis::start(&bin).expect("a private redis-server starts"))
}

/// The identity key every process of the cluster shares, so a resume token issued by
/// one verifies on another.
fn shared_secret() -> std::path::PathBuf {
    let dir = fresh_data_dir();
    std::fs::create_dir_all(&dir).expect("make a folder for the key");
    let path = dir.join("identity.key");
    std::fs::write(&path, "a cluster-wide identity key of 32 bytes or more")
        .expect("write the key");
    path
}

fn start_process(redis: &Redis, secret: &std::path::Path, extra: &[&str]) -> ServerProcess {
    let secret = secret.display().to_string();
    let url = redis.url();
    let mut args = vec![
        "--redis",
        &url,
        "--secret-file",
        &secret,
        "--room-capacity",
        CAPACITY,
    ];
    args.extend(extra);
    ServerProcess::start(&args)
}

/// `/api/rooms` of one process.
async fn rooms(server: &ServerProcess) -> Vec<Value> {
    let (status, body) = http_get_at(server.addr, "/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    let rooms: Value = serde_json::from_str(&body).expect("JSON");
    rooms.as_array().expect("a list of rooms").clone()
}

fn ids(rooms: &[Value]) -> BTreeSet<String> {
    rooms
        .iter()
        .map(|room| room["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn page(server: &ServerProcess) -> String {
    format!("http://{}", server.addr)
}

/// Reads for `span`; true if snapshots kept coming and the connection stayed open.
async fn plays_on(client: &mut Client, span: Duration) -> bool {
    let end = Instant::now() + span;
    let mut snapshots = 0;
    while Instant::now() < end {
        match timeout(end - Instant::now(), client.recv()).await {
            Err(_) => break,
            Ok(Ok(Some(ServerMsg::Snapshot(_)))) => snapshots += 1,
            Ok(Ok(Some(ServerMsg::Disconnect { .. }))) | Ok(Ok(None)) | Ok(Err(_)) => {
                return false;
            }
            Ok(Ok(Some(_))) => {}
        }
    }
    snapshots > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_lobby_spread_bots_and_forget_a_killed_one() {
    let _turn = serial().await;
    let Some(redis) = redis("three_processes_share_one_lobby_spread_bots_and_forget_a_killed_one")
    else {
        return;
    };
    let secret = shared_secret();
    let a = start_process(&redis, &secret, &[]);
    let b = start_process(&redis, &secret, &[]);
    let c = start_process(&redis, &secret, &[]);
    // Every process has registered once its first heartbeat is in.
    sleep(Duration::from_millis(1500)).await;

    let bots = tokio::spawn(run(BotsConfig {
        url: a.ws_url.clone(),
        trust: client::native::Trust::public(),
        count: 48,
        duration: Duration::from_secs(25),
        room: None,
        name_prefix: "bot".into(),
        seed: 13,
        ramp: Duration::from_secs(3),
        idle: false,
    }));
    let all_seated = eventually(Duration::from_secs(30), async || {
        let listed = rooms(&a).await;
        let players: u64 = listed
            .iter()
            .map(|room| room["players"].as_u64().unwrap_or(0))
            .sum();
        players == 48
    })
    .await;
    let listed = rooms(&a).await;
    assert!(all_seated, "A's lobby counts the 48 bots: {listed:?}");

    for other in [&b, &c] {
        let same = eventually(Duration::from_secs(5), async || {
            ids(&rooms(other).await) == ids(&rooms(&a).await)
        })
        .await;
        assert!(
            same,
            "every lobby lists the same rooms: {:?} and {:?}",
            rooms(other).await,
            rooms(&a).await
        );
    }
    let hosts: BTreeSet<String> = listed
        .iter()
        .filter(|room| room["players"].as_u64() > Some(0))
        .map(|room| room["server"].as_str().expect("a server").to_owned())
        .collect();
    assert!(
        hosts.len() > 1,
        "bots that all asked A are seated on more than one process: {listed:?}"
    );
    let on_b: BTreeSet<String> = listed
        .iter()
        .filter(|room| room["server"].as_str() == Some(page(&b).as_str()))
        .map(|room| room["id"].as_str().expect("an id").to_owned())
        .collect();
    assert!(!on_b.is_empty(), "B runs some of the rooms: {listed:?}");

    // Players who stay: one on A, one on C, each in a room of its own process.
    let mut on_a = Client::connect_url(&a.ws_url, Hello::new("stays-a").in_room("witness-a"))
        .await
        .expect("a player joins on A");
    let mut on_c = Client::connect_url(&c.ws_url, Hello::new("stays-c").in_room("witness-c"))
        .await
        .expect("a player joins on C");

    let killed_at = Instant::now();
    b.signal("-KILL");
    let gone = eventually(Duration::from_secs(10), async || {
        ids(&rooms(&a).await).is_disjoint(&on_b)
    })
    .await;
    assert!(
        gone,
        "B's rooms {on_b:?} leave A's lobby within 10 s: {:?}",
        rooms(&a).await
    );
    eprintln!(
        "B's rooms left A's lobby {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(
        plays_on(&mut on_a, Duration::from_secs(2)).await,
        "the player on A plays on"
    );
    assert!(
        plays_on(&mut on_c, Duration::from_secs(2)).await,
        "the player on C plays on"
    );

    let report = bots.await.expect("the bots ran");
    assert_eq!(report.connected, 48, "every bot joined: {report:?}");
    assert_eq!(
        report.failed, 0,
        "bots whose process died found a seat elsewhere: {report:?}"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_room_lives_on_one_process_and_joins_elsewhere_are_sent_there() {
    let _turn = serial().await;
    let Some(redis) = redis("a_named_room_lives_on_one_process_and_joins_elsewhere_are_sent_there")
    else {
        return;
    };
    let secret = shared_secret();
    let a = start_process(&redis, &secret, &[]);
    let b = start_process(&redis, &secret, &[]);
    sleep(Duration::from_millis(1500)).await;
    let ann = Client::connect_url(&a.ws_url, Hello::new("ann").in_room("duel"))
        .await
        .expect("ann opens the room on A");
    assert_eq!(ann.url, a.ws_url, "the room opens where it was asked for");
    let bob = Client::connect_url(&b.ws_url, Hello::new("bob").in_room("duel"))
        .await
        .expect("bob follows B's redirect to A");
    assert_eq!(bob.url, a.ws_url, "bob ends up on the room's process");
    assert_eq!(bob.welcome.room, "duel");
    assert!(
        bob.welcome.roster.iter().any(|entry| entry.name == "ann"),
        "bob sits with ann: {:?}",
        bob.welcome.roster
    );

    // A resume presented to B is sent on to the room's process too.
    let token = bob.welcome.resume_token.clone();
    let bob_id = bob.welcome.player_id;
    drop(bob);
    let back = Client::connect_url(&b.ws_url, Hello::new("bob").resuming(token, None))
        .await
        .expect("bob resumes through B");
    assert!(back.welcome.resumed, "the seat is taken back");
    assert_eq!(back.welcome.player_id, bob_id);
    assert_eq!(back.url, a.ws_url);

    // A reservation is good once, and only where it was made for.
    let forged = Hello {
        reservation: Some("0123456789abcdef0123456789abcdef".into()),
        ..Hello::new("eve")
    };
    let refused = Client::connect_url(&a.ws_url, forged).await.map(|_| ());
    assert!(
        matches!(
            refused,
            Err(NetError::Refused {
                reason: CloseReason::ResumeRefused,
                ..
            })
        ),
        "an unknown reservation is refused: {refused:?}"
    );

    // A spectator who asks B to watch the room is sent to A as a join is, and
    // watches there.
    let mut eve = Spectator::watch_at(&b.ws_url, "duel").await;
    let first = timeout(PATIENCE, eve.recv()).await.expect("B answers");
    assert_eq!(
        first,
        Some(ServerMsg::Redirect {
            url: a.ws_url.clone(),
            reservation: None,
        }),
        "a spectator needs no seat reserved, only the room's process"
    );
    assert_eq!(eve.closed().await, (Some(4009), Some(CloseReason::Moved)));
    let mut eve = Spectator::watch_at(&a.ws_url, "duel").await;
    let greeting = timeout(PATIENCE, eve.recv()).await.expect("A answers");
    assert!(
        matches!(&greeting, Some(ServerMsg::Watching(watching)) if watching.room == "duel"),
        "the room's process lets the spectator watch: {greeting:?}"
    );
    drop(ann);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_fail_cleanly_while_redis_is_away_and_the_directory_heals_after() {
    let _turn = serial().await;
    let Some(mut redis) =
        redis("joins_fail_cleanly_while_redis_is_away_and_the_directory_heals_after")
    else {
        return;
    };
    let secret = shared_secret();
    let a = start_process(&redis, &secret, &[]);
    let b = start_process(&redis, &secret, &[]);
    sleep(Duration::from_millis(1500)).await;
    let mut player = Client::connect_url(&a.ws_url, Hello::new("ann").in_room("kept"))
        .await
        .expect("a player joins on A");

    redis.stop();
    let refused = Client::connect_url(&b.ws_url, Hello::new("bob").in_room("elsewhere"))
        .await
        .map(|_| ());
    match refused {
        Err(NetError::Refused { reason, detail }) => {
            assert_eq!(reason, CloseReason::ServerShutdown, "{detail}");
            assert!(
                detail.contains("unreachable"),
                "the refusal says why: {detail}"
            );
        }
        other => panic!("a join while Redis is away is refused with a reason: {other:?}"),
    }
    assert!(
        plays_on(&mut player, Duration::from_secs(2)).await,
        "the room plays on without Redis"
    );

    redis.restart().expect("Redis comes back (empty)");
    let whole = eventually(Duration::from_secs(10), async || {
        ids(&rooms(&b).await).contains("kept")
    })
    .await;
    assert!(
        whole,
        "B lists A's room again once Redis is back: {:?}",
        rooms(&b).await
    );
    let bob = Client::connect_url(&b.ws_url, Hello::new("bob").in_room("kept"))
        .await
        .expect("joins work again");
    assert_eq!(bob.url, a.ws_url, "and find the room on its process");
}

#[tokio::test]
async fn redis_unreachable_at_start_stops_the_server_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let redis = format!("redis://127.0.0.1:{port}/");
    let stderr = tokio::task::spawn_blocking(move || refused_start(&["--redis", &redis]))
        .await
        .expect("the server ran");
    assert!(
        stderr.contains("connect to Redis") && stderr.contains(&port.to_string()),
        "the error names Redis and its address: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_takes_a_process_out_of_the_cluster_and_tells_its_players_to_join_again() {
    let _turn = serial().await;
    let Some(redis) =
        redis("sigterm_takes_a_process_out_of_the_cluster_and_tells_its_players_to_join_again")
    else {
        return;
    };
    let secret = shared_secret();
    let a = start_process(&redis, &secret, &[]);
    let mut c = start_process(&redis, &secret, &[]);
    let mut player = Client::connect_url(&c.ws_url, Hello::new("cy").in_room("on-c"))
        .await
        .expect("a player joins on C");
    let listed = eventually(Duration::from_secs(5), async || {
        ids(&rooms(&a).await).contains("on-c")
    })
    .await;
    assert!(listed, "A lists C's room: {:?}", rooms(&a).await);
    // Bots that ask A for C's room are sent to C, and play there until C stops.
    let bots = tokio::spawn(run(BotsConfig {
        url: a.ws_url.clone(),
        trust: client::native::Trust::public(),
        count: 3,
        duration: Duration::from_secs(20),
        room: Some("on-c".into()),
        name_prefix: "drained".into(),
        seed: 7,
        ramp: Duration::ZERO,
        idle: false,
    }));
    let seated = eventually(Duration::from_secs(10), async || {
        rooms(&a)
            .await
            .iter()
            .any(|room| room["id"] == "on-c" && room["players"].as_u64() == Some(4))
    })
    .await;
    assert!(seated, "the bots sit in C's room: {:?}", rooms(&a).await);

    let stopped_at = Instant::now();
    c.signal("-TERM");
    let said = timeout(Duration::from_secs(10), async {
        loop {
            match player.recv().await {
                Ok(Some(ServerMsg::Disconnect { reason, detail })) => return (reason, detail),
                Ok(Some(_)) => {}
                other => panic!("the player is told before the close: {other:?}"),
            }
        }
    })
    .await
    .expect("the player hears that C stops");
    assert_eq!(said.0, CloseReason::ServerShutdown, "{}", said.1);
    assert!(
        said.1.contains("join again"),
        "the reason says to join again: {}",
        said.1
    );
    // A reads the directory each second; C's entries would expire only after 5 s. (The
    // bots, told to join again, may already have opened `on-c` anew on A.)
    let left = eventually(Duration::from_secs(2), async || {
        !rooms(&a)
            .await
            .iter()
            .any(|room| room["server"].as_str() == Some(page(&c).as_str()))
    })
    .await;
    assert!(
        left && stopped_at.elapsed() < Duration::from_secs(4),
        "C took itself out of A's lobby, before its entries could expire: {:?} after SIGTERM",
        stopped_at.elapsed()
    );
    assert!(
        c.exited(Duration::from_secs(15)).await.success(),
        "C exits cleanly"
    );
    eprintln!(
        "C was out of the cluster and exited {:?} after SIGTERM",
        stopped_at.elapsed()
    );

    let back = Client::connect_url(&a.ws_url, Hello::new("cy").in_room("on-c"))
        .await
        .expect("the player joins again through A");
    assert_eq!(back.url, a.ws_url, "the room opens anew on a live process");

    let report = bots.await.expect("the bots ran");
    assert_eq!(
        (report.rejoined, report.failed),
        (3, 0),
        "every bot told to join again did, and played on elsewhere: {report:?}"
    );
}

/// The room of this name in a lobby's list.
async fn listed(server: &ServerProcess, id: &str) -> Option<Value> {
    rooms(server)
        .await
        .into_iter()
        .find(|room| room["id"] == id)
}

fn match_ids(page: &Value) -> BTreeSet<i64> {
    page["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|record| record["id"].as_i64().expect("an id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_saved_on_one_process_show_on_the_others_and_survive_a_database_restart() {
    let _turn = serial().await;
    let test = "results_saved_on_one_process_show_on_the_others_and_survive_a_database_restart";
    let (Some(redis), Some(postgres_bin)) = (redis(test), test_postgres::bin_dir(test)) else {
        return;
    };
    let postgres = Postgres::start(&postgres_bin).expect("a private PostgreSQL starts");
    let database = postgres.create_database("skirmish").expect("a database");
    let secret = shared_secret();
    // Results shown long enough for the directory (a beat a second) to carry them.
    let args = [
        "--database",
        &database,
        "--match-time-limit-secs",
        "5",
        "--match-results-secs",
        "4",
    ];
    let a = start_process(&redis, &secret, &args);
    let b = start_process(&redis, &secret, &args);
    let c = start_process(&redis, &secret, &args);
    sleep(Duration::from_millis(1500)).await;
    let mut ann = Client::connect_url(&c.ws_url, Hello::new("ann").in_room("final"))
        .await
        .expect("ann joins on C");
    let _bob = Client::connect_url(&c.ws_url, Hello::new("bob").in_room("final"))
        .await
        .expect("bob joins on C");

    let seen = eventually(Duration::from_secs(5), async || {
        listed(&a, "final").await.is_some_and(|room| {
            room["players"] == 2
                && room["phase"] == "playing"
                && room["server"].as_str() == Some(page(&c).as_str())
        })
    })
    .await;
    assert!(seen, "A lists C's room: {:?}", listed(&a, "final").await);
    let first = match_saved(&mut ann).await;
    let results = eventually(Duration::from_secs(4), async || {
        listed(&a, "final")
            .await
            .is_some_and(|room| room["phase"] == "results")
    })
    .await;
    assert!(
        results,
        "A's lobby shows that C's match is over: {:?}",
        listed(&a, "final").await
    );
    let on_a = get_json(&a, "/api/matches").await;
    assert_eq!(match_ids(&on_a), BTreeSet::from([first]), "{on_a}");
    assert_eq!(names(&on_a["matches"][0]), ["ann", "bob"]);

    // The database goes away mid-run: C's next result waits in its spool, and is
    // saved once the database is back.
    postgres.stop().expect("the database stops");
    let spooled = eventually(MATCH_PATIENCE, async || {
        metric(&c, "skirmish_store_spool_depth")
            .await
            .is_some_and(|depth| depth >= 1.0)
    })
    .await;
    assert!(spooled, "C keeps the next result in its spool");
    postgres.restart().expect("the database starts again");
    let second = match_saved(&mut ann).await;
    let flushed = eventually(Duration::from_secs(10), async || {
        metric(&c, "skirmish_store_spool_depth").await == Some(0.0)
    })
    .await;
    assert!(flushed, "C's spool empties into the database");
    let on_b = match_ids(&get_json(&b, "/api/matches").await);
    assert!(
        on_b.contains(&first) && on_b.contains(&second),
        "B lists the match saved before the outage and the one spooled through it: {on_b:?}"
    );
}
