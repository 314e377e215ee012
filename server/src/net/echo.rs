//! A WebSocket echo behind `--echo-route`, so the Autobahn protocol-compliance cases
//! exercise the real path of a game connection: the hyper accept loop, our handshake,
//! tungstenite reading, and every write through the same `Wire` that game frames take.
//! Never enabled by default.

use std::sync::Arc;

use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::coding::Data;

use crate::net::socket::Socket;
use crate::net::upgrade::Handover;
use crate::ops::metrics::Metrics;

/// Sends every text and binary message back as it came. Pings, pongs and the close
/// handshake are tungstenite's, written through the wire as the game's are. Unlike a
/// game connection, the echo waits for each message to be written before reading the
/// next: the compliance cases send far more than a game client's backlog holds.
pub(crate) async fn echo(handover: Handover, metrics: Arc<Metrics>) {
    let Some((wire, io, read_ahead)) = handover.into_wire(metrics) else {
        return;
    };
    let mut socket = Socket::new(io, &read_ahead, WebSocketConfig::default());
    loop {
        let msg = tokio::select! {
            msg = socket.next() => msg,
            _ = wire.drive() => break,
        };
        let sent = match msg {
            Some(Ok(Message::Text(text))) => wire.send_data(Data::Text, text.as_bytes()),
            Some(Ok(Message::Binary(bytes))) => wire.send_data(Data::Binary, &bytes),
            Some(Ok(msg)) => {
                if msg.is_close() {
                    // tungstenite answers it on the next read; nothing may follow.
                    wire.seal();
                }
                Ok(())
            }
            Some(Err(_)) | None => break,
        };
        if sent.is_err() || wire.drained().await.is_err() {
            break;
        }
    }
}
