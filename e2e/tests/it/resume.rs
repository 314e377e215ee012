//! Losing the network for a moment: the page notices (the connection went silent), says
//! it is reconnecting, and comes back into the same seat with the same score, while the
//! others in the room see it away and back, never leaving.

use std::time::Duration;

use client::native::{Connection, Hello};
use e2e::{Driver, Setup};
use harness::proxy::{Cut, Delay, Proxy};
use shared::protocol::ServerMsg;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn a_page_that_loses_its_connection_resumes_into_its_seat() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let proxy = Proxy::start(server.addr, Delay::default()).await?;
    let mut watcher =
        Connection::join(&server.ws_url(), Hello::new("watcher").in_room("held")).await?;
    let driver = Driver::start(&setup).await?;
    let page = driver
        .open(
            "resume",
            &format!("http://{}/?room=held&name=dana", proxy.addr()),
        )
        .await?;
    let outcome = async {
        let before = page
            .wait_for_probe("dana playing", |probe| probe["phase"] == "playing")
            .await?;
        let me = before["me"].clone();
        let score_of = |probe: &serde_json::Value| {
            probe["players"]
                .as_array()
                .and_then(|players| players.iter().find(|p| p["id"] == probe["me"]))
                .map(|p| p["score"].clone())
        };
        let score = score_of(&before);
        // The network goes away without a word, and stays away for a while.
        proxy.set_refusing(true);
        proxy.cut_all(Cut::Silent);
        page.wait_for_probe("dana reconnecting", |probe| {
            probe["phase"] == "reconnecting"
        })
        .await?;
        page.wait_for_texts("#overlay-title", "the reconnect shown", |texts| {
            texts.iter().any(|text| text.contains("Reconnecting"))
        })
        .await?;
        proxy.set_refusing(false);
        let after = page
            .wait_for_probe("dana back in her seat", |probe| {
                probe["phase"] == "playing" && probe["me"] == me
            })
            .await?;
        anyhow::ensure!(
            score_of(&after) == score,
            "the same score: {score:?} before, {:?} after",
            score_of(&after)
        );
        page.wait_for_texts("#chat-log", "the resume told", |lines| {
            lines.iter().any(|line| line.contains("back in your seat"))
        })
        .await?;
        anyhow::Ok(())
    }
    .await;
    let shot = page.screenshot(&setup.artifacts).await?;
    eprintln!("screenshot: {}", shot.display());
    let errors = page.errors().await?;
    page.close().await?;
    outcome?;

    // What the room saw: away, then back, and never a leave or a join.
    let mut seen = Vec::new();
    while let Ok(Ok(Some(msg))) = timeout(Duration::from_millis(200), watcher.recv()).await {
        if matches!(
            msg,
            ServerMsg::PlayerAway { .. }
                | ServerMsg::PlayerBack { .. }
                | ServerMsg::PlayerLeft { .. }
                | ServerMsg::PlayerJoined { .. }
        ) {
            seen.push(msg);
        }
    }
    let dana = seen.iter().find_map(|msg| match msg {
        ServerMsg::PlayerAway { id } => Some(*id),
        _ => None,
    });
    let dana = dana.ok_or_else(|| anyhow::anyhow!("the room saw dana away: {seen:?}"))?;
    assert!(
        seen.contains(&ServerMsg::PlayerBack { id: dana }),
        "and back: {seen:?}"
    );
    assert!(
        !seen.iter().any(|msg| matches!(
            msg,
            ServerMsg::PlayerLeft { .. } | ServerMsg::PlayerJoined { .. }
        )),
        "and never a leave or a join: {seen:?}"
    );
    // While the network is down the browser logs its failed tries itself.
    let unexpected: Vec<&String> = errors
        .iter()
        .filter(|error| !error.contains("WebSocket connection to"))
        .collect();
    assert!(unexpected.is_empty(), "no other errors: {unexpected:?}");
    Ok(())
}
