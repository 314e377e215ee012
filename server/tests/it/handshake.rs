use client::native::{Hello, NetError};
use shared::consts::PROTOCOL_VERSION;
use shared::protocol::CloseReason;

use crate::support::*;

#[tokio::test]
async fn join_is_answered_with_a_welcome() {
    let server = start_server(|config| {
        config.tick_hz = 50;
        config.snapshot_hz = 25;
    })
    .await;
    let conn = join(&server, "ann").await;
    let welcome = &conn.welcome;
    assert_eq!(welcome.name, "ann");
    assert_eq!((welcome.tick_hz, welcome.snapshot_hz), (50, 25));
    assert!(!welcome.map.walls.is_empty(), "the welcome carries the map");
    assert_eq!(welcome.roster.len(), 1);
    assert_eq!(welcome.roster[0].id, welcome.player_id);
}

#[tokio::test]
async fn protocol_version_mismatch_is_refused_clearly() {
    let server = start_server(|_| {}).await;
    let mut hello = Hello::new("old");
    hello.protocol = PROTOCOL_VERSION + 1;
    let refused = Client::connect(&server, hello).await;
    match refused {
        Err(NetError::Refused { reason, detail }) => {
            assert_eq!(
                reason,
                CloseReason::VersionMismatch {
                    server: PROTOCOL_VERSION
                }
            );
            assert!(
                detail.contains("protocol"),
                "detail says what is wrong: {detail}"
            );
        }
        other => panic!("expected a version refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_nickname_is_refused() {
    let server = start_server(|_| {}).await;
    let refused = Client::connect(&server, Hello::new("<script>")).await;
    assert!(
        matches!(
            refused,
            Err(NetError::Refused {
                reason: CloseReason::BadName,
                ..
            })
        ),
        "got {refused:?}"
    );
}

#[tokio::test]
async fn duplicate_nicknames_are_made_unique_within_a_room() {
    let server = start_server(|_| {}).await;
    let first = join_room(&server, "sam", "dupes").await;
    let second = join_room(&server, "sam", "dupes").await;
    assert_eq!(first.welcome.name, "sam");
    assert_eq!(second.welcome.name, "sam2");
}

#[tokio::test]
async fn silent_socket_is_closed_after_the_join_timeout() {
    let server = start_server(|config| config.join_timeout_secs = 0.3).await;
    let mut others = vec![join_room(&server, "ann", "quiet").await];
    let baseline = Baseline::take(&server);
    let mut socket =
        client::native::open_socket(&server.ws_url(), &client::native::Trust::public())
            .await
            .expect("upgrade");
    use futures_util::StreamExt;
    let mut close_code = None;
    let waited = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(frame)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(Some(close)) = frame {
                close_code = Some(u16::from(close.code));
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the server should close a socket that never says hello"
    );
    assert_eq!(close_code, Some(1008));
    drop(socket);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}
