//! The replay viewer in the browser: bots play an eight-second match, then a page opens
//! `/replay/{id}` and plays it, changes speed, follows a player, seeks and pauses, with
//! no console errors; the match's page links to the viewer.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use client::bots::{BotsConfig, run};
use e2e::{Driver, PATIENCE, Page, Setup};
use serde_json::Value;
use tokio::time::{Instant, sleep};

/// The viewer's clock, `m:ss / m:ss`, as seconds shown and seconds in all.
async fn clock(page: &Page) -> anyhow::Result<(u64, u64)> {
    let text = page
        .eval("return document.getElementById('replay-time').innerText;")
        .await?;
    let text = text.as_str().context("the clock is text")?;
    let secs = |part: &str| -> Option<u64> {
        let (minutes, seconds) = part.trim().split_once(':')?;
        Some(minutes.parse::<u64>().ok()? * 60 + seconds.parse::<u64>().ok()?)
    };
    let (shown, total) = text.split_once('/').context("two times")?;
    Ok((
        secs(shown).context("the time shown")?,
        secs(total).context("the length")?,
    ))
}

async fn click(page: &Page, id: &str) -> anyhow::Result<()> {
    page.eval(&format!(
        "document.getElementById('{id}').click(); return true;"
    ))
    .await?;
    Ok(())
}

/// Plays bots until a match is saved and its replay kept; the match's id.
async fn play_a_match(server: &server::Server) -> anyhow::Result<i64> {
    let report = run(BotsConfig {
        url: server.ws_url(),
        trust: client::native::Trust::public(),
        count: 3,
        duration: Duration::from_secs(12),
        room: Some("arena".into()),
        name_prefix: "bot".into(),
        seed: 9,
        ramp: Duration::from_millis(200),
        idle: false,
    })
    .await;
    ensure!(report.failed == 0, "no bot fails: {report:?}");
    let addr = server.addr;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<i64>> {
            let page: Value = serde_json::from_str(&harness::http::get(addr, "/api/matches")?)?;
            let Some(id) = page["matches"][0]["id"].as_i64() else {
                return Ok(None);
            };
            // The replay's bytes are not text, so a read of them is "malformed" to this
            // client: only a status other than 200 means it is not kept yet.
            match harness::http::get(addr, &format!("/api/matches/{id}/replay")) {
                Err(harness::http::HttpError::Status { .. }) => Ok(None),
                _ => Ok(Some(id)),
            }
        })
        .await??;
        if let Some(id) = answer {
            return Ok(id);
        }
        if Instant::now() > deadline {
            bail!("no match with a replay was saved within {PATIENCE:?}");
        }
        sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn a_replay_plays_in_the_browser_with_speeds_following_seeking_and_pause()
-> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup
        .start_server_with(|config| {
            config.match_time_limit_secs = 8.0;
            config.match_results_secs = 1.0;
        })
        .await?;
    let id = play_a_match(&server).await?;
    let driver = Driver::start(&setup).await?;
    let base = server.http_url();
    let viewer = driver
        .open("replay-viewer", &format!("{base}/replay/{id}"))
        .await?;
    let checked = watch(&viewer, id).await;
    let _ = viewer.screenshot(&setup.artifacts).await;
    let errors = viewer.errors().await?;
    viewer.close().await?;
    checked?;
    ensure!(
        errors.is_empty(),
        "no console errors or uncaught exceptions in the viewer: {errors:?}"
    );

    let match_page = driver
        .open("replay-match-page", &format!("{base}/?match={id}"))
        .await?;
    let link = match_page
        .wait_for_eval(
            "the match page's link to its replay",
            "const a = document.getElementById('match-replay'); \
             return a.hidden ? null : a.getAttribute('href');",
            |href| href.is_string(),
        )
        .await;
    match_page.close().await?;
    assert_eq!(link?, Value::from(format!("/replay/{id}")));
    Ok(())
}

async fn watch(viewer: &Page, id: i64) -> anyhow::Result<()> {
    let url = viewer.client.current_url().await?;
    ensure!(
        url.as_str().ends_with(&format!("/?replay={id}")),
        "the short address leads to the viewer: {url}"
    );
    viewer
        .wait_for_eval(
            "the replay read whole",
            "return document.getElementById('replay-status').hidden;",
            |hidden| hidden == &Value::Bool(true),
        )
        .await?;
    let (_, total) = clock(viewer).await?;
    ensure!(total >= 7, "the replay holds the match: {total} s");

    // Playing at 1x, the clock moves.
    let deadline = Instant::now() + PATIENCE;
    while clock(viewer).await?.0 < 2 {
        ensure!(Instant::now() < deadline, "the replay plays");
        sleep(Duration::from_millis(100)).await;
    }
    click(viewer, "replay-follow").await?;
    viewer
        .wait_for_texts("#replay-following", "a player followed", |texts| {
            texts.len() == 1 && texts[0].starts_with("following bot")
        })
        .await?;

    // Paused (at 1x, with seconds of the match still to play), the replay stays.
    click(viewer, "replay-play").await?;
    viewer
        .wait_for_texts("#replay-play", "the pause", |texts| texts == ["Play"])
        .await?;
    let paused_at = viewer
        .eval("return document.getElementById('replay-seek').value;")
        .await?;
    sleep(Duration::from_millis(600)).await;
    let still = viewer
        .eval("return document.getElementById('replay-seek').value;")
        .await?;
    ensure!(
        paused_at == still,
        "paused, the replay stays: {paused_at} then {still}"
    );

    // Seeking to the start lands on the first keyframe (shown at the next frame drawn).
    viewer
        .eval(
            "const seek = document.getElementById('replay-seek'); seek.value = '1'; \
             seek.dispatchEvent(new Event('input')); return true;",
        )
        .await?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (shown, _) = clock(viewer).await?;
        if shown <= 1 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the seek went back to the start: {shown} s"
        );
        sleep(Duration::from_millis(100)).await;
    }

    click(viewer, "replay-speed-3").await?;
    let pressed = viewer
        .eval("return document.getElementById('replay-speed-3').getAttribute('aria-pressed');")
        .await?;
    ensure!(pressed == "true", "4x is the speed now: {pressed}");

    // Played again, at 4x, it goes on from the start.
    click(viewer, "replay-play").await?;
    let deadline = Instant::now() + PATIENCE;
    while clock(viewer).await?.0 < 2 {
        ensure!(Instant::now() < deadline, "playback goes on after the seek");
        sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
