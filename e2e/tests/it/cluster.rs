//! Two server processes in a cluster on a private redis-server: a page opened on A for a
//! room that lives on B is sent there and plays with B's player, without the player
//! doing anything; when B shuts down, the page joins again by itself and plays on, on A.

use anyhow::Context;
use client::native::{Connection, Hello};
use e2e::{Driver, Setup};
use test_redis::Redis;

const ROOM: &str = "far";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle, Chromium and redis-server: `cargo xtask test` prepares them and runs it"]
async fn a_page_follows_its_room_to_another_process_and_joins_again_when_that_one_stops()
-> anyhow::Result<()> {
    let setup = Setup::from_env();
    let redis_bin = test_redis::server_bin("the browser's cluster test")
        .context("this test runs under `cargo xtask test`, which provides redis-server")?;
    let redis = Redis::start(&redis_bin)?;
    let secret = setup
        .artifacts
        .join(format!("cluster-{}.key", std::process::id()));
    std::fs::create_dir_all(&setup.artifacts)?;
    std::fs::write(
        &secret,
        "the browser cluster test's identity key, 32+ bytes",
    )?;
    let join_cluster = |config: &mut server::Config| {
        config.redis = Some(redis.url().parse().expect("a redis URL"));
        config.secret_file = Some(secret.clone());
    };
    let a = setup.start_server_with(join_cluster).await?;
    let b = setup.start_server_with(join_cluster).await?;

    // Bob opens the room on B and stays, reading what B sends him.
    let mut bob = Connection::join(&b.ws_url(), Hello::new("bob").in_room(ROOM)).await?;
    let bob_reads = tokio::spawn(async move { while let Ok(Some(_)) = bob.recv().await {} });

    let driver = Driver::start(&setup).await?;
    let page = driver
        .open("ann", &format!("{}/?room={ROOM}&name=ann", a.http_url()))
        .await?;
    let outcome = async {
        page.wait_for_texts(
            "#scoreboard .name",
            "ann beside bob, in the room on B",
            |names| names.iter().any(|n| n == "ann") && names.iter().any(|n| n == "bob"),
        )
        .await?;
        anyhow::ensure!(
            a.rooms().is_empty(),
            "A runs no room: the page was sent on to B"
        );
        // B leaves the cluster and tells its players to join again.
        b.shutdown().await;
        bob_reads.await?;
        page.wait_for_probe("ann playing again, alone", |probe| {
            probe["phase"] == "playing"
                && probe["room"] == ROOM
                && probe["players"]
                    .as_array()
                    .is_some_and(|players| players.len() == 1 && players[0]["name"] == "ann")
        })
        .await?;
        let on_a = a.rooms();
        anyhow::ensure!(
            on_a.iter().any(|room| room.id == ROOM && room.players == 1),
            "the room is open again on A, with ann in it: {on_a:?}"
        );
        Ok(())
    }
    .await;
    let unexpected = page.close_after_cut_connections(&setup.artifacts).await?;
    outcome?;
    assert!(unexpected.is_empty(), "no other errors: {unexpected:?}");
    Ok(())
}
