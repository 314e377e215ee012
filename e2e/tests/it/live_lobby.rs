//! The lobby's room list is live: as bots join, a lobby page shows their room appear and
//! fill, and then close when they leave, with no request for `/api/rooms` after the page
//! loaded (the browser's own resource timing says which requests it made).

use std::collections::BTreeSet;
use std::time::Duration;

use client::bots::{BotsConfig, run};
use e2e::{Driver, PATIENCE, Page, Setup};
use tokio::time::{Instant, sleep};

const ROOM: &str = "live";
const CAPACITY: u16 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn the_lobby_shows_a_room_appear_fill_and_close_without_polling() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup
        .start_server_with(|config| {
            config.room_capacity = CAPACITY;
            config.room_grace_secs = 0.5;
        })
        .await?;
    let driver = Driver::start(&setup).await?;
    let page = driver
        .open("live-lobby", &format!("{}/", server.http_url()))
        .await?;
    let watched = watch(&page, &server.ws_url()).await;
    page.screenshot(&setup.artifacts).await?;
    let errors = page.errors().await?;
    page.close().await?;
    let counts = watched?;
    eprintln!("the lobby showed {ROOM} with {counts:?} players");
    assert!(errors.is_empty(), "no console errors: {errors:?}");
    Ok(())
}

/// Watches the lobby while bots fill a room and leave; returns the counts it showed.
async fn watch(page: &Page, ws_url: &str) -> anyhow::Result<BTreeSet<u16>> {
    page.wait_for_texts("#rooms li", "an empty room list", |rows| {
        rows.iter().any(|row| row.contains("No open rooms"))
    })
    .await?;
    let bots = tokio::spawn(run(BotsConfig {
        url: ws_url.to_owned(),
        count: usize::from(CAPACITY),
        duration: Duration::from_secs(6),
        room: Some(ROOM.to_owned()),
        name_prefix: "bot".into(),
        seed: 11,
        // One bot every 750 ms, so the page has time to show each count.
        ramp: Duration::from_secs(3),
        idle: true,
        trust: client::native::Trust::public(),
    }));

    let mut counts = BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    while !counts.contains(&CAPACITY) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the room never showed full; it showed {counts:?}"
        );
        if let Some(players) = players_shown(page).await? {
            counts.insert(players);
        }
        sleep(Duration::from_millis(50)).await;
    }
    let join_disabled = page
        .client
        .execute(
            "return document.querySelector('#rooms li button').disabled;",
            vec![],
        )
        .await?;
    assert_eq!(join_disabled, true, "a full room cannot be joined");
    assert!(
        counts.iter().any(|&players| players < CAPACITY),
        "the room was seen before it was full: {counts:?}"
    );

    bots.await?;
    page.wait_for_texts("#rooms li", "the room gone", |rows| {
        rows.iter().any(|row| row.contains("No open rooms"))
    })
    .await?;
    let polled = page
        .client
        .execute(
            "return performance.getEntriesByType('resource')
               .map(r => r.name).filter(name => name.includes('/api/rooms'));",
            vec![],
        )
        .await?;
    assert_eq!(
        polled,
        serde_json::json!([]),
        "the lobby never asked for /api/rooms"
    );
    Ok(counts)
}

/// The players the lobby shows in the room, if it lists it.
async fn players_shown(page: &Page) -> anyhow::Result<Option<u16>> {
    let rows = page.texts("#rooms li").await?;
    Ok(rows
        .iter()
        .filter(|row| row.contains(ROOM))
        .find_map(|row| {
            let (players, _) = row.split_once(&format!("/{CAPACITY} players"))?;
            players.split_whitespace().last()?.parse().ok()
        }))
}
