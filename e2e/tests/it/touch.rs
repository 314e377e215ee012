//! A phone held sideways (Chromium's mobile emulation, touch events sent through the
//! DevTools protocol): a drag on the left stick moves the player, and a drag on the
//! right stick fires.

use std::time::Duration;

use e2e::{Device, Driver, Page, Setup, position_of};
use serde_json::{Value, json};

const ROOM: &str = "touch";
const NAME: &str = "thumbs";
/// Where the thumbs land, in CSS pixels of the 844×390 screen, and how far they push.
const LEFT_THUMB: (f64, f64) = (140.0, 290.0);
const RIGHT_THUMB: (f64, f64) = (700.0, 290.0);
const PUSH: f64 = 70.0;
/// How far the player must have gone.
const LEAST_MOVE: f64 = 100.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn on_a_phone_the_left_stick_moves_and_the_right_stick_fires() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let driver = Driver::start(&setup).await?;
    let page = driver
        .open_as(
            "touch",
            &format!("{}/?room={ROOM}&name={NAME}", server.http_url()),
            Device::Phone,
        )
        .await?;
    let played = play_with_thumbs(&page).await;
    page.screenshot(&setup.artifacts).await?;
    let errors = page.errors().await?;
    page.close().await?;
    played?;
    assert!(errors.is_empty(), "no console errors: {errors:?}");
    Ok(())
}

async fn play_with_thumbs(page: &Page) -> anyhow::Result<()> {
    let seen = page
        .wait_for_probe("the player on the phone", |probe| {
            probe["phase"] == "playing" && position_of(probe, NAME).is_some()
        })
        .await?;
    assert_eq!(seen["touch"], true, "a phone gets the touch layout");
    let (start_x, _) = position_of(&seen, NAME).unwrap_or_default();
    // Towards the middle of the arena, so no wall is in the way.
    let direction = if start_x < 1600.0 { 1.0 } else { -1.0 };

    let (x, y) = LEFT_THUMB;
    touch(page, "touchStart", &[(0, x, y)]).await?;
    for step in 1..=5 {
        let pushed = x + direction * PUSH * f64::from(step) / 5.0;
        touch(page, "touchMove", &[(0, pushed, y)]).await?;
    }
    let moved = page
        .wait_for_probe("the player moving", |probe| {
            position_of(probe, NAME)
                .is_some_and(|(now_x, _)| (now_x - start_x) * direction > LEAST_MOVE)
        })
        .await;
    touch(page, "touchEnd", &[]).await?;
    let moved = moved?;
    eprintln!(
        "the left stick moved the player from x = {start_x:.0} to {:?}",
        position_of(&moved, NAME)
    );

    let (x, y) = RIGHT_THUMB;
    touch(page, "touchStart", &[(1, x, y)]).await?;
    touch(page, "touchMove", &[(1, x + direction * PUSH, y)]).await?;
    let fired = page
        .wait_for_probe("a shot of the player's", |probe| {
            probe["projectiles"]
                .as_array()
                .is_some_and(|shots| shots.iter().any(|shot| shot["owner"] == probe["me"]))
        })
        .await;
    touch(page, "touchEnd", &[]).await?;
    fired?;
    Ok(())
}

/// One touch event through the DevTools protocol: `points` are the touches still on
/// the screen afterwards, as (id, x, y).
async fn touch(page: &Page, kind: &str, points: &[(u32, f64, f64)]) -> anyhow::Result<Value> {
    let points: Vec<Value> = points
        .iter()
        .map(|&(id, x, y)| json!({ "id": id, "x": x, "y": y }))
        .collect();
    let sent = page
        .cdp(
            "Input.dispatchTouchEvent",
            json!({ "type": kind, "touchPoints": points }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    sent
}
