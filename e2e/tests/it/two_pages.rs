//! Two players join one room by deep link, see each other on the scoreboard, see each
//! other move, and chat; neither page logs an error.

use std::time::Duration;

use e2e::{Driver, Page, Setup, close_pages, position_of};
use fantoccini::key::Key;

const ROOM: &str = "e2e";
/// How long a key is held, and the least distance that must show on the other page.
const HOLD: Duration = Duration::from_secs(1);
const LEAST_MOVE: f64 = 100.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn two_pages_join_by_deep_link_see_each_other_move_and_chat() -> anyhow::Result<()> {
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

    let played = play(&ann, &bob).await;
    close_pages(vec![ann, bob], &setup.artifacts, played).await
}

/// Both see each other on the scoreboard, Bob sees Ann move, a chat line reaches both,
/// and Bob's net graph opens.
pub(crate) async fn play(ann: &Page, bob: &Page) -> anyhow::Result<()> {
    for page in [ann, bob] {
        page.wait_for_texts(
            "#scoreboard .name",
            "both names on the scoreboard",
            |names| names.iter().any(|n| n == "ann") && names.iter().any(|n| n == "bob"),
        )
        .await?;
    }

    // Ann walks towards the middle of the arena; Bob's page must show her go.
    let seen = bob
        .wait_for_probe("ann on bob's page", |probe| {
            position_of(probe, "ann").is_some()
        })
        .await?;
    let (start_x, _) = position_of(&seen, "ann").unwrap_or_default();
    let (key, direction) = if start_x < 1600.0 {
        ('d', 1.0)
    } else {
        ('a', -1.0)
    };
    ann.hold_key(key, HOLD).await?;
    let moved = bob
        .wait_for_probe("ann moving on bob's page", |probe| {
            position_of(probe, "ann").is_some_and(|(x, _)| (x - start_x) * direction > LEAST_MOVE)
        })
        .await?;
    eprintln!(
        "ann moved from x = {start_x:.0} to {:?} on bob's page",
        position_of(&moved, "ann")
    );

    // Enter opens the chat box, Enter sends; the line reaches the other page.
    let line = "hello from ann";
    ann.press(Key::Enter.into()).await?;
    ann.type_text(line).await?;
    ann.press(Key::Enter.into()).await?;
    for page in [bob, ann] {
        page.wait_for_texts("#chat-log li", "the chat line", |lines| {
            lines.iter().any(|l| l.contains(line))
        })
        .await?;
    }

    // N opens the net graph (it stays open for the screenshot).
    bob.press('n').await?;
    bob.wait_for_texts("#netgraph", "the net graph", |texts| {
        texts
            .iter()
            .any(|t| t.contains("fps") && t.contains("mispredict"))
    })
    .await?;
    Ok(())
}
