use std::time::Duration;

use shared::consts::MAX_CLIENT_MSG_BYTES;
use shared::game::InputFrame;
use shared::protocol::{ClientMsg, CloseReason, ServerMsg};

use crate::support::*;

#[tokio::test]
async fn a_malformed_frame_closes_only_that_connection() {
    let server = start_server(|_| {}).await;
    let mut others = vec![
        join_room(&server, "ann", "arena").await,
        join_room(&server, "bob", "arena").await,
    ];
    let baseline = Baseline::take(&server);
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
    drop(rogue);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_twenty_byte_frame_with_a_huge_length_prefix_is_closed_with_1007() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "prefix").await];
    let baseline = Baseline::take(&server);
    let mut rogue = join_room(&server, "rogue", "prefix").await;
    // Chat (tag 2) whose text claims u64::MAX bytes, in a 20-byte frame.
    let mut frame = vec![2u8, 0xFD];
    frame.extend_from_slice(&u64::MAX.to_le_bytes());
    frame.extend_from_slice(&[b'a'; 10]);
    assert_eq!(frame.len(), 20);
    rogue.send_raw(frame).await.expect("send the lie");
    let (close, _) = expect_closed(&mut rogue).await;
    assert_eq!(close.map(|(code, _)| code), Some(1007));
    drop(rogue);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn an_oversize_frame_is_closed_with_1009() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "big").await];
    let baseline = Baseline::take(&server);
    let mut rogue = join_room(&server, "rogue", "big").await;
    let _ = rogue.send_raw(vec![0u8; MAX_CLIENT_MSG_BYTES * 4]).await;
    let (close, _) = expect_closed(&mut rogue).await;
    let (code, reason) = close.expect("a close frame, not a dropped socket");
    assert_eq!(code, 1009);
    assert!(!reason.is_empty(), "the close frame carries a reason");
    drop(rogue);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_non_finite_aim_is_refused_as_malformed() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "nan").await];
    let baseline = Baseline::take(&server);
    let mut rogue = join_room(&server, "nan", "nan").await;
    let input = InputFrame {
        aim: f32::NAN,
        ..InputFrame::default()
    };
    let input = rogue.view.input_message(input);
    rogue.send(&input).await.expect("send");
    let (close, _) = expect_closed(&mut rogue).await;
    assert_eq!(close.map(|(code, _)| code), Some(1007));
    drop(rogue);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_text_frame_is_refused() {
    use futures_util::SinkExt;
    let server = start_server(|_| {}).await;
    let baseline = Baseline::take(&server);
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
    drop(rogue);
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_message_flood_is_closed_with_1008_and_the_room_keeps_its_pace() {
    let server = start_server(|_| {}).await;
    let mut watcher = join_room(&server, "ann", "flood").await;
    let baseline = Baseline::take(&server);
    let mut rogue = join_room(&server, "rogue", "flood").await;
    let flood = tokio::spawn(async move {
        for nonce in 0..5_000 {
            if rogue.send(&ClientMsg::Ping { nonce }).await.is_err() {
                break;
            }
        }
        let closed = expect_closed(&mut rogue).await;
        drop(rogue);
        closed
    });
    // 30 snapshots/s while the flood lasts: the other player's room does not slow down.
    let seen = count_snapshots(&mut watcher, Duration::from_secs(1)).await;
    assert!(
        seen >= 25,
        "the watcher got {seen} snapshots in 1 s during the flood"
    );
    let (close, goodbye) = flood.await.expect("flood task");
    assert_eq!(close.map(|(code, _)| code), Some(1008));
    assert!(matches!(
        goodbye,
        Some(ServerMsg::Disconnect {
            reason: CloseReason::Flood,
            ..
        })
    ));
    still_playing(std::slice::from_mut(&mut watcher)).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_byte_flood_of_big_messages_is_closed_with_1008() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "bytes").await];
    let baseline = Baseline::take(&server);
    let mut rogue = join_room(&server, "rogue", "bytes").await;
    // Each line is under the size limit; together they are far over the byte rate.
    let text = "x".repeat(MAX_CLIENT_MSG_BYTES - 16);
    for _ in 0..64 {
        if rogue
            .send(&ClientMsg::Chat { text: text.clone() })
            .await
            .is_err()
        {
            break;
        }
    }
    let (close, goodbye) = expect_closed(&mut rogue).await;
    assert_eq!(close.map(|(code, _)| code), Some(1008));
    assert!(matches!(
        goodbye,
        Some(ServerMsg::Disconnect {
            reason: CloseReason::Flood,
            ..
        })
    ));
    drop(rogue);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}
