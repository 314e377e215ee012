//! A WebSocket echo behind `--echo-route`, so the Autobahn protocol-compliance cases
//! can exercise the real upgrade path (hyper accept loop, our handshake, tungstenite) without
//! the game protocol in the way. Never enabled by default.

use tungstenite::protocol::WebSocketConfig;

use crate::upgrade::{Handover, websocket};
use futures_util::{SinkExt, StreamExt};

/// Sends every text and binary message back as it came. Pings, pongs and the close
/// handshake are tungstenite's: reading until the stream ends lets it answer them.
pub async fn echo(handover: Handover) {
    let mut socket = websocket(
        handover.stream,
        handover.read_ahead,
        WebSocketConfig::default(),
    )
    .await;
    while let Some(Ok(msg)) = socket.next().await {
        if (msg.is_text() || msg.is_binary()) && socket.send(msg).await.is_err() {
            break;
        }
    }
}
