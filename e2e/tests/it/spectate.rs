//! A spectator page: the lobby's Watch button opens it, it shows the room's players
//! without being one of them (`/api/rooms` counts only the players), it hears a chat
//! line about the spectator delay (2 s by default) after a player's page does, and its
//! keys and buttons (tapped, on a phone) switch the player it follows. No page logs an
//! error.

use std::time::Duration;

use e2e::{Device, Driver, PATIENCE, Page, Setup, close_pages, position_of};
use fantoccini::key::Key;
use serde_json::{Value, json};
use shared::consts::DEFAULT_ROOM_CAPACITY;
use tokio::time::{Instant, sleep};

const ROOM: &str = "watched";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn a_spectator_page_watches_two_seconds_behind_and_follows_players() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let driver = Driver::start(&setup).await?;
    let base = server.http_url();
    let ann = driver
        .open("ann", &format!("{base}/?room={ROOM}&name=ann"))
        .await?;
    let bob = driver
        .open("bob", &format!("{base}/?room={ROOM}&name=bob"))
        .await?;
    let eve = driver.open("spectator", &format!("{base}/")).await?;

    let watched = watch(&ann, &eve).await;
    close_pages(vec![ann, bob, eve], &setup.artifacts, watched).await
}

async fn watch(ann: &Page, eve: &Page) -> anyhow::Result<()> {
    // The lobby lists the room the two players are in; its Watch button opens the
    // spectator's page.
    eve.wait_for_texts("#rooms li", "the players' room in the lobby", |rows| {
        rows.iter()
            .any(|row| row.contains(ROOM) && row.contains("2/"))
    })
    .await?;
    eve.eval(&format!(
        "Array.from(document.querySelectorAll('#rooms li'))
           .find(li => li.innerText.includes('{ROOM}'))
           .querySelector('.room-watch').click();"
    ))
    .await?;
    let shown = eve
        .wait_for_probe("both players on the spectator's page", |probe| {
            probe["spectating"] == true
                && position_of(probe, "ann").is_some()
                && position_of(probe, "bob").is_some()
        })
        .await?;
    assert_eq!(shown["room"], ROOM);
    let address = eve.eval("return location.search;").await?;
    assert_eq!(address, Value::from(format!("?room={ROOM}&spectate=1")));
    eve.wait_for_texts(
        "#scoreboard .name",
        "both names on the scoreboard",
        |names| {
            names.len() == 2 && names.iter().any(|n| n == "ann") && names.iter().any(|n| n == "bob")
        },
    )
    .await?;
    let rooms = api_rooms(eve).await?;
    assert_eq!(
        rooms,
        serde_json::json!([{
            "id": ROOM,
            "players": 2,
            "capacity": DEFAULT_ROOM_CAPACITY,
            "phase": "playing",
        }]),
        "the spectator is no player in /api/rooms"
    );

    // A chat line from Ann: her page shows it at once, the spectator's about two
    // seconds later.
    let line = "watch this";
    ann.press(Key::Enter.into()).await?;
    ann.type_text(line).await?;
    ann.press(Key::Enter.into()).await?;
    let (mut ann_saw, mut eve_saw) = (None, None);
    let deadline = Instant::now() + PATIENCE;
    while ann_saw.is_none() || eve_saw.is_none() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the line reached ann at {ann_saw:?} and the spectator at {eve_saw:?}"
        );
        for (page, seen) in [(ann, &mut ann_saw), (eve, &mut eve_saw)] {
            if seen.is_none() && shows_line(page, line).await? {
                *seen = Some(Instant::now());
            }
        }
        sleep(Duration::from_millis(25)).await;
    }
    let (Some(ann_saw), Some(eve_saw)) = (ann_saw, eve_saw) else {
        unreachable!("the loop ends once both saw the line");
    };
    let gap = eve_saw.saturating_duration_since(ann_saw);
    eprintln!("the spectator saw the chat line {gap:?} after ann's page");
    assert!(
        gap >= Duration::from_millis(1_400) && gap <= Duration::from_millis(3_500),
        "the spectator is about 2 s behind the players, not {gap:?}"
    );

    // Right follows the first player (by id: ann joined first), the on-screen button
    // the next, and Left goes back.
    eve.press(Key::Right.into()).await?;
    following(eve, "ann").await?;
    eve.eval("document.getElementById('spectate-next').click();")
        .await?;
    following(eve, "bob").await?;
    eve.press(Key::Left.into()).await?;
    following(eve, "ann").await?;
    let text = eve.texts("#spectate-following").await?;
    assert_eq!(
        text,
        ["following ann"],
        "the bar says whom the page follows"
    );
    Ok(())
}

async fn shows_line(page: &Page, line: &str) -> anyhow::Result<bool> {
    Ok(page
        .texts("#chat-log li")
        .await?
        .iter()
        .any(|text| text.contains(line)))
}

async fn following(page: &Page, name: &str) -> anyhow::Result<()> {
    page.wait_for_probe(&format!("the spectator following {name}"), |probe| {
        probe["following"] == name
    })
    .await?;
    Ok(())
}

/// `/api/rooms` as the page's own origin answers it.
async fn api_rooms(page: &Page) -> anyhow::Result<Value> {
    let body = page
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/rooms').then(r => r.text()).then(done, e => done(String(e)));",
            vec![],
        )
        .await?;
    let body = body.as_str().unwrap_or_default();
    Ok(serde_json::from_str(body)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn on_a_phone_a_tap_on_the_bar_follows_a_player() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let driver = Driver::start(&setup).await?;
    let base = server.http_url();
    let ann = driver
        .open("ann-watched", &format!("{base}/?room={ROOM}&name=ann"))
        .await?;
    let phone = driver
        .open_as(
            "spectator-phone",
            &format!("{base}/?room={ROOM}&spectate=1"),
            Device::Phone,
        )
        .await?;
    let tapped = tap_to_follow(&phone).await;
    close_pages(vec![ann, phone], &setup.artifacts, tapped).await
}

async fn tap_to_follow(phone: &Page) -> anyhow::Result<()> {
    let seen = phone
        .wait_for_probe("ann on the phone", |probe| {
            probe["spectating"] == true && position_of(probe, "ann").is_some()
        })
        .await?;
    assert_eq!(seen["touch"], true, "a phone gets the touch layout");
    let centre = phone
        .eval(
            "const r = document.getElementById('spectate-next').getBoundingClientRect();
             return [r.left + r.width / 2, r.top + r.height / 2];",
        )
        .await?;
    let (Some(x), Some(y)) = (centre[0].as_f64(), centre[1].as_f64()) else {
        anyhow::bail!("the ▶ button has no place on the screen: {centre}");
    };
    let point = json!([{ "id": 0, "x": x, "y": y }]);
    phone
        .cdp(
            "Input.dispatchTouchEvent",
            json!({ "type": "touchStart", "touchPoints": point }),
        )
        .await?;
    phone
        .cdp(
            "Input.dispatchTouchEvent",
            json!({ "type": "touchEnd", "touchPoints": [] }),
        )
        .await?;
    following(phone, "ann").await
}
