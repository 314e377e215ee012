//! Losing the network for a moment: the page notices (the connection went silent), says
//! it is reconnecting, and comes back into the same seat with the same score, while the
//! others in the room see it away and back, never leaving.

use std::time::Duration;

use client::core::RoomView;
use client::native::{Connection, Hello};
use e2e::{Driver, Setup};
use harness::proxy::{Cut, Delay, Proxy};
use shared::protocol::ServerMsg;
use tokio::time::timeout;

/// Plays along as a quiet player (acknowledging every snapshot) until `stop`, keeping
/// the messages about who is in the room.
async fn watch(
    mut watcher: Connection,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<ServerMsg> {
    let mut view = RoomView::default();
    let _ = view.apply(&ServerMsg::Welcome(Box::new(watcher.welcome.clone())));
    let mut seen = Vec::new();
    loop {
        let msg = tokio::select! {
            _ = &mut stop => break,
            msg = timeout(Duration::from_secs(5), watcher.recv()) => msg,
        };
        let Ok(Ok(Some(msg))) = msg else { break };
        let _ = view.apply(&msg);
        if matches!(msg, ServerMsg::Snapshot(_))
            && let Some(ack) = view.ack_message()
        {
            let _ = watcher.send(&ack).await;
        }
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
    let _ = watcher.close().await;
    seen
}

/// The score the page shows for its own player, once it draws them.
fn score_of(probe: &serde_json::Value) -> Option<serde_json::Value> {
    probe["players"]
        .as_array()
        .and_then(|players| players.iter().find(|p| p["id"] == probe["me"]))
        .map(|p| p["score"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn a_page_that_loses_its_connection_resumes_into_its_seat() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let proxy = Proxy::start(server.addr, Delay::default()).await?;
    let watcher = Connection::join(&server.ws_url(), Hello::new("watcher").in_room("held")).await?;
    let (stop_watching, stopped) = tokio::sync::oneshot::channel::<()>();
    let watching = tokio::spawn(watch(watcher, stopped));
    let driver = Driver::start(&setup).await?;
    let page = driver
        .open(
            "resume",
            &format!("http://{}/?room=held&name=dana", proxy.addr()),
        )
        .await?;
    let outcome = async {
        let before = page
            .wait_for_probe("dana playing", |probe| {
                probe["phase"] == "playing" && score_of(probe).is_some()
            })
            .await?;
        let me = before["me"].clone();
        let score = score_of(&before);
        // The connection is reset, and the network stays away for a while.
        proxy.set_refusing(true);
        proxy.cut_all(Cut::Reset);
        page.wait_for_probe("dana reconnecting", |probe| {
            probe["phase"] == "reconnecting"
        })
        .await?;
        page.wait_for_texts("#overlay-title", "the reconnect shown", |texts| {
            texts.iter().any(|text| text.contains("Reconnecting"))
        })
        .await?;
        proxy.set_refusing(false);
        let back_in_seat = |probe: &serde_json::Value| {
            probe["phase"] == "playing" && probe["me"] == me && score_of(probe) == score
        };
        page.wait_for_probe("dana back in her seat, same score", back_in_seat)
            .await?;
        page.wait_for_texts("#chat-log", "the resume told", |lines| {
            lines.iter().any(|line| line.contains("back in your seat"))
        })
        .await?;

        // Then the network vanishes without a word: the page notices the silence.
        proxy.cut_all(Cut::Silent);
        page.wait_for_probe("dana reconnecting after the silence", |probe| {
            probe["phase"] != "playing"
        })
        .await?;
        page.wait_for_probe("dana back again, same score", back_in_seat)
            .await?;

        // A reload within the window lands in the same seat: the tab kept its token.
        page.client.refresh().await?;
        page.wait_for_probe("dana back after a reload, same score", back_in_seat)
            .await?;
        anyhow::Ok(())
    }
    .await;
    // Room messages ride with the next snapshot; give them a few.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_watching.send(());
    let seen = watching.await?;
    // While the network is down the browser logs its failed tries itself.
    let unexpected = page.close_after_cut_connections(&setup.artifacts).await?;
    outcome?;

    // What the room saw of dana after she joined: away after the reset, then back; away
    // while the page reloaded, then back; never a leave or another join. The silence
    // ended before the server noticed it (the resume replaced a connection it still took
    // for live), so nobody saw a thing.
    let dana = seen.iter().find_map(|msg| match msg {
        ServerMsg::PlayerJoined { id, name } if name == "dana" => Some(*id),
        _ => None,
    });
    let dana = dana.ok_or_else(|| anyhow::anyhow!("the room saw dana join: {seen:?}"))?;
    let after_join: Vec<&ServerMsg> = seen
        .iter()
        .skip_while(|msg| !matches!(msg, ServerMsg::PlayerJoined { .. }))
        .skip(1)
        .collect();
    assert_eq!(
        after_join,
        [
            &ServerMsg::PlayerAway { id: dana },
            &ServerMsg::PlayerBack { id: dana },
            &ServerMsg::PlayerAway { id: dana },
            &ServerMsg::PlayerBack { id: dana },
        ],
        "dana away and back after the reset and after the reload, and never a leave or a join"
    );
    assert!(unexpected.is_empty(), "no other errors: {unexpected:?}");
    Ok(())
}
