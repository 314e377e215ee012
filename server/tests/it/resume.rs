//! Seats that survive a dropped connection: held for the grace window, taken back with
//! the resume token of the newest welcome, once, and refused clearly otherwise.

use std::time::Duration;

use client::native::{Hello, NetError};
use futures_util::SinkExt;
use shared::PlayerId;
use shared::protocol::{CloseReason, ServerMsg, TickRef};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::*;

/// Waits until `watcher` is told `id` is away.
async fn seen_away(watcher: &mut Client, id: PlayerId) {
    recv_until(watcher, |msg, _| match msg {
        ServerMsg::PlayerAway { id: away } if *away == id => Some(()),
        ServerMsg::PlayerLeft { id: left } if *left == id => {
            panic!("{id:?} left; their seat should be held")
        }
        _ => None,
    })
    .await;
}

/// Takes a seat back with `token`, holding snapshots up to what `old` has seen.
async fn resume(
    server: &server::Server,
    name: &str,
    token: &str,
    old: &Client,
) -> Result<Client, NetError> {
    Client::connect(
        server,
        Hello::new(name).resuming(token, old.view.newest_tick()),
    )
    .await
}

fn refusal_detail(refused: Result<Client, NetError>) -> String {
    match refused {
        Err(NetError::Refused {
            reason: CloseReason::ResumeRefused,
            detail,
        }) => detail,
        other => panic!("expected a resume refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_vanished_player_takes_its_seat_back_and_others_see_it_away_then_back() {
    let server = start_server(|_| {}).await;
    let mut ann = join_room(&server, "ann", "back").await;
    let mut bob = join_room(&server, "bob", "back").await;
    let ann_id = ann.welcome.player_id;
    next_snapshot(&mut ann).await;
    next_snapshot(&mut ann).await;
    let token = ann.welcome.resume_token.clone();
    let Client { conn, view } = ann;
    // The socket goes without a close frame: a lost connection, not a goodbye.
    drop(conn);
    seen_away(&mut bob, ann_id).await;
    assert_eq!(server.rooms()[0].players, 2, "the seat still counts");

    let mut back = Client::connect(
        &server,
        Hello::new("ann").resuming(&token, view.newest_tick()),
    )
    .await
    .expect("the seat is taken back");
    assert!(back.welcome.resumed);
    assert_eq!(back.welcome.player_id, ann_id, "the same seat");
    assert_ne!(
        back.welcome.resume_token, token,
        "a new token for the next time"
    );
    back.view = view;
    back.view
        .apply(&ServerMsg::Welcome(Box::new(back.welcome.clone())))
        .expect("the welcome applies");
    let first = recv_until(&mut back, |msg, _| match msg {
        ServerMsg::Snapshot(snapshot) => Some(snapshot.header),
        _ => None,
    })
    .await;
    assert!(
        matches!(first.tick, TickRef::Delta { .. }),
        "the first snapshot is a delta against the tick the client held: {first:?}"
    );
    recv_until(&mut bob, |msg, _| match msg {
        ServerMsg::PlayerBack { id } if *id == ann_id => Some(()),
        ServerMsg::PlayerJoined { .. } | ServerMsg::PlayerLeft { .. } => {
            panic!("others see no join or leave: {msg:?}")
        }
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn tampered_replayed_and_expired_tokens_are_refused() {
    let server = start_server(|config| config.resume_grace_secs = 1.0).await;
    let mut watcher = join_room(&server, "watcher", "tokens").await;
    let ann = join_room(&server, "ann", "tokens").await;
    let ann_id = ann.welcome.player_id;
    let first_token = ann.welcome.resume_token.clone();

    let mut tampered = first_token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let detail = refusal_detail(resume(&server, "ann", &tampered, &ann).await);
    assert!(detail.contains("not valid"), "{detail}");

    drop(ann);
    seen_away(&mut watcher, ann_id).await;
    let again = resume(&server, "ann", &first_token, &watcher)
        .await
        .expect("the first use works");
    let newest_token = again.welcome.resume_token.clone();
    drop(again);
    seen_away(&mut watcher, ann_id).await;
    let detail = refusal_detail(resume(&server, "ann", &first_token, &watcher).await);
    assert!(detail.contains("used already"), "a replay: {detail}");

    // Past the window the seat is gone, and so is what its newest token could take back.
    recv_until(&mut watcher, |msg, _| match msg {
        ServerMsg::PlayerLeft { id } if *id == ann_id => Some(()),
        _ => None,
    })
    .await;
    let detail = refusal_detail(resume(&server, "ann", &newest_token, &watcher).await);
    assert!(detail.contains("no longer held"), "expired: {detail}");
    assert_eq!(
        server.metrics().resumes_refused.get(),
        3,
        "each refusal is counted"
    );
}

#[tokio::test]
async fn a_normal_close_gives_the_seat_up_and_a_page_going_away_keeps_it() {
    let server = start_server(|_| {}).await;
    let mut watcher = join_room(&server, "watcher", "exits").await;
    let ann = join_room(&server, "ann", "exits").await;
    let ann_id = ann.welcome.player_id;
    ann.close().await.expect("a normal close");
    recv_until(&mut watcher, |msg, _| match msg {
        ServerMsg::PlayerLeft { id } if *id == ann_id => Some(()),
        ServerMsg::PlayerAway { id } if *id == ann_id => panic!("a goodbye holds no seat"),
        _ => None,
    })
    .await;

    // A reloading page closes with 1001, going away: its seat waits for it.
    let mut carl = join_room(&server, "carl", "exits").await;
    let carl_id = carl.welcome.player_id;
    carl.socket_mut()
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "reloading".into(),
        })))
        .await
        .expect("send the close");
    seen_away(&mut watcher, carl_id).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), carl.close()).await;
}
