use shared::consts::MAX_CLIENT_MSG_BYTES;
use shared::protocol::{CloseReason, InputFrame, ServerMsg};

use crate::support::*;

/// Each of `conns` still receives fresh snapshots.
async fn still_playing(conns: &mut [Client]) {
    for conn in conns {
        let first = next_snapshot(conn).await;
        let later = next_snapshot(conn).await;
        assert!(later.tick.since(first.tick) > 0, "snapshots keep coming");
    }
}

#[tokio::test]
async fn a_malformed_frame_closes_only_that_connection() {
    let server = start_server(|_| {}).await;
    let mut others = vec![
        join_room(&server, "ann", "arena").await,
        join_room(&server, "bob", "arena").await,
    ];
    let mut rogue = join_room(&server, "rogue", "arena").await;
    rogue
        .send_raw(vec![0xFF, 0xFF, 0xFF])
        .await
        .expect("send garbage");

    let (close, goodbye) = expect_closed(&mut rogue).await;
    let (code, reason) = close.expect("a close frame, not a dropped socket");
    assert_eq!(code, 1007);
    assert!(!reason.is_empty(), "the close frame carries a reason");
    assert!(matches!(
        goodbye,
        Some(ServerMsg::Disconnect {
            reason: CloseReason::Malformed,
            ..
        })
    ));
    still_playing(&mut others).await;
}

#[tokio::test]
async fn an_oversize_frame_is_closed_with_1009() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "big").await];
    let mut rogue = join_room(&server, "rogue", "big").await;
    let _ = rogue.send_raw(vec![0u8; MAX_CLIENT_MSG_BYTES * 4]).await;
    let (close, _) = expect_closed(&mut rogue).await;
    assert_eq!(close.map(|(code, _)| code), Some(1009));
    still_playing(&mut others).await;
}

#[tokio::test]
async fn a_non_finite_aim_is_refused_as_malformed() {
    let server = start_server(|_| {}).await;
    let mut rogue = join(&server, "nan").await;
    let input = InputFrame {
        aim: f32::NAN,
        ..InputFrame::default()
    };
    let input = rogue.view.input_message(input);
    rogue.send(&input).await.expect("send");
    let (close, _) = expect_closed(&mut rogue).await;
    assert_eq!(close.map(|(code, _)| code), Some(1007));
}

#[tokio::test]
async fn a_text_frame_is_refused() {
    use futures_util::SinkExt;
    let server = start_server(|_| {}).await;
    let mut rogue = join(&server, "texter").await;
    rogue
        .socket_mut()
        .send(tokio_tungstenite::tungstenite::Message::text(
            "{\"move\":1}",
        ))
        .await
        .expect("send text");
    let (close, _) = expect_closed(&mut rogue).await;
    assert_eq!(close.map(|(code, _)| code), Some(1007));
}
