//! One game WebSocket: the handshake, then a reader that feeds the room and a writer
//! that drains the outbox. Bad input costs only this connection, closed with a code
//! and a reason; the room and the other players never wait on it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared::codec::{decode_client, encode_server, peek_hello_version};
use shared::consts::{CHAT_BURST, CHAT_PER_SECOND, PROTOCOL_VERSION};
use shared::protocol::{ClientMsg, CloseReason, InputFrame, ServerMsg};
use shared::text::{sanitize_chat, validate_name, validate_room_name};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use warp::ws::{Message, WebSocket};

use crate::AppState;
use crate::ack::AckSlot;
use crate::lobby::Seat;
use crate::outbox::{OutboxRx, OutboxTx, outbox};
use crate::ratelimit::TokenBucket;
use crate::room::{PlayerLink, RoomCmd};

/// Input frames that may wait for the room's next tick. A client that fills this is
/// sending far faster than any tick rate and is closed for flooding.
const INPUT_QUEUE: usize = 32;
/// How long a closing connection waits for the client's half of the close handshake.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Why this end closes the connection, as it will be told to the client.
type Refusal = (CloseReason, String);

pub async fn serve_socket(ws: WebSocket, app: Arc<AppState>) {
    app.metrics.connections.inc();
    let (sink, mut stream) = ws.split();
    let (outbox_tx, outbox_rx) = outbox();
    let (close_tx, close_rx) = oneshot::channel();
    let writer = tokio::spawn(conn_writer(sink, outbox_rx, close_rx, Arc::clone(&app)));

    let ended = session(&mut stream, outbox_tx, &app).await;
    let reason_label = match &ended {
        Ok(()) => "client_closed".to_owned(),
        Err((reason, _)) => format!("{reason:?}"),
    };
    app.metrics.count_disconnect(&reason_label);
    if let Err(refusal) = ended {
        tracing::debug!(reason = ?refusal.0, detail = %refusal.1, "closing connection");
        let _ = close_tx.send(refusal);
        // Keep reading so the client's close frame is seen and the handshake completes.
        let _ = timeout(CLOSE_LINGER, async {
            while stream.next().await.is_some() {}
        })
        .await;
    } else {
        drop(close_tx);
    }
    let _ = writer.await;
    app.metrics.connections.dec();
}

/// Runs the connection from hello to goodbye. `Ok` means the client left on its own.
async fn session(
    stream: &mut SplitStream<WebSocket>,
    outbox_tx: OutboxTx,
    app: &AppState,
) -> Result<(), Refusal> {
    let hello = match timeout(app.join_timeout, next_frame(stream, app)).await {
        Err(_) => {
            return Err((
                CloseReason::Timeout,
                "no hello within the join timeout".into(),
            ));
        }
        Ok(frame) => frame?,
    };
    let Some(hello) = hello else { return Ok(()) };
    let (name, room) = read_hello(&hello)?;
    let seat = app.lobby.reserve(room.as_deref()).map_err(|_| {
        let room = room.as_deref().unwrap_or("?");
        (CloseReason::RoomFull, format!("room {room} is full"))
    })?;

    let pongs = outbox_tx.reliable_sender();
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let acks = Arc::new(AckSlot::default());
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = RoomCmd::Join {
        name,
        link: PlayerLink {
            inputs: input_rx,
            acks: Arc::clone(&acks),
            outbox: outbox_tx,
        },
        reply: reply_tx,
    };
    let shutting_down = || {
        (
            CloseReason::ServerShutdown,
            "the room is closing".to_owned(),
        )
    };
    seat.commands
        .send(join)
        .await
        .map_err(|_| shutting_down())?;
    let id = reply_rx.await.map_err(|_| shutting_down())?;

    let uplink = Uplink {
        id,
        seat: &seat,
        inputs: input_tx,
        acks: &acks,
        replies: pongs,
    };
    let played = play(stream, uplink, app).await;
    let _ = seat.commands.send(RoomCmd::Leave { id }).await;
    played
}

/// Reads the next binary frame. `Ok(None)` means the client closed or vanished.
async fn next_frame(
    stream: &mut SplitStream<WebSocket>,
    app: &AppState,
) -> Result<Option<Bytes>, Refusal> {
    while let Some(frame) = stream.next().await {
        let msg = match frame {
            Ok(msg) => msg,
            Err(err) => return read_error(&err),
        };
        app.metrics.ws_received_messages.inc();
        app.metrics
            .ws_received_bytes
            .inc_by(msg.as_bytes().len() as u64);
        if msg.is_binary() {
            return Ok(Some(msg.into_bytes()));
        }
        if msg.is_text() {
            return Err((
                CloseReason::Malformed,
                "text frames are not part of the protocol".into(),
            ));
        }
        // Close, ping and pong are the WebSocket layer's business; keep reading so it
        // can answer them and see the end of the stream.
    }
    Ok(None)
}

/// A transport error: an oversize message gets its close code; anything else means
/// the peer is gone and there is nobody left to tell.
fn read_error(err: &warp::Error) -> Result<Option<Bytes>, Refusal> {
    let source = std::error::Error::source(err);
    if let Some(tungstenite::Error::Capacity(capacity)) =
        source.and_then(|e| e.downcast_ref::<tungstenite::Error>())
    {
        return Err((CloseReason::TooBig, capacity.to_string()));
    }
    tracing::debug!(%err, "websocket read error");
    Ok(None)
}

fn read_hello(bytes: &[u8]) -> Result<(String, Option<String>), Refusal> {
    let version = peek_hello_version(bytes).ok_or_else(|| {
        (
            CloseReason::Malformed,
            "the first message must be hello".to_owned(),
        )
    })?;
    if version != PROTOCOL_VERSION {
        return Err((
            CloseReason::VersionMismatch {
                server: PROTOCOL_VERSION,
            },
            format!("protocol {version} is not supported; this server speaks {PROTOCOL_VERSION}"),
        ));
    }
    let Ok(ClientMsg::Hello { name, room, .. }) = decode_client(bytes) else {
        return Err((CloseReason::Malformed, "hello did not decode".into()));
    };
    let name =
        validate_name(&name).map_err(|err| (CloseReason::BadName, format!("nickname {err}")))?;
    let room = room
        .map(|room| validate_room_name(&room))
        .transpose()
        .map_err(|err| (CloseReason::BadName, format!("room name {err}")))?;
    Ok((name, room))
}

/// What the reader needs to pass a player's messages on.
struct Uplink<'a> {
    id: shared::PlayerId,
    seat: &'a Seat,
    inputs: mpsc::Sender<InputFrame>,
    acks: &'a AckSlot,
    /// Replies the connection sends itself, such as pongs and notices.
    replies: mpsc::Sender<Bytes>,
}

async fn play(
    stream: &mut SplitStream<WebSocket>,
    uplink: Uplink<'_>,
    app: &AppState,
) -> Result<(), Refusal> {
    let mut chat_budget = TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND);
    while let Some(bytes) = next_frame(stream, app).await? {
        let msg = decode_client(&bytes).map_err(|err| (CloseReason::Malformed, err.to_string()))?;
        match msg {
            ClientMsg::Input { ack, frame } => {
                if let Some(ack) = ack {
                    uplink.acks.store(ack.0);
                }
                let frame = frame
                    .validated()
                    .map_err(|err| (CloseReason::Malformed, err.to_string()))?;
                if let Err(mpsc::error::TrySendError::Full(_)) = uplink.inputs.try_send(frame) {
                    return Err((
                        CloseReason::Flood,
                        "input frames arrive faster than the tick rate".into(),
                    ));
                }
            }
            ClientMsg::Ack { tick } => uplink.acks.store(tick.0),
            ClientMsg::Chat { text } => {
                if !chat_budget.try_take() {
                    let notice = ServerMsg::Notice {
                        text: "chat limit reached: wait a moment".into(),
                    };
                    let _ = uplink.replies.try_send(encode_server(&notice).into());
                } else if let Some(text) = sanitize_chat(&text) {
                    let chat = RoomCmd::Chat {
                        id: uplink.id,
                        text,
                    };
                    let _ = uplink.seat.commands.try_send(chat);
                }
            }
            ClientMsg::Ping { nonce } => {
                let pong = encode_server(&ServerMsg::Pong { nonce });
                let _ = uplink.replies.try_send(pong.into());
            }
            ClientMsg::Hello { .. } => {
                return Err((CloseReason::Malformed, "hello sent twice".into()));
            }
        }
    }
    Ok(())
}

/// Owns the socket's sending half: sends whatever the outbox holds, newest snapshot
/// last, and closes with a reason when the reader, the room or shutdown asks.
async fn conn_writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: OutboxRx,
    mut close_rx: oneshot::Receiver<Refusal>,
    app: Arc<AppState>,
) {
    let mut kick_open = true;
    let mut snapshots_open = true;
    let close: Option<Refusal> = loop {
        let bytes = tokio::select! {
            biased;
            asked = &mut close_rx => break asked.ok(),
            kicked = &mut outbox.kick, if kick_open => match kicked {
                Ok(reason) => break Some((reason, "removed from the room".into())),
                Err(_) => { kick_open = false; continue; }
            },
            () = app.shutdown.cancelled() => {
                break Some((CloseReason::ServerShutdown, "server is shutting down".into()));
            }
            Some(bytes) = outbox.reliable.recv() => bytes,
            changed = outbox.snapshot.changed(), if snapshots_open => match changed {
                Ok(()) => {
                    let bytes = outbox.snapshot.borrow_and_update().clone();
                    if bytes.is_empty() {
                        continue;
                    }
                    bytes
                }
                Err(_) => { snapshots_open = false; continue; }
            },
        };
        let n_bytes = bytes.len() as u64;
        if sink.send(Message::binary(bytes)).await.is_err() {
            return;
        }
        app.metrics.ws_sent_messages.inc();
        app.metrics.ws_sent_bytes.inc_by(n_bytes);
    };
    if let Some((reason, detail)) = close {
        let goodbye = ServerMsg::Disconnect {
            reason,
            detail: detail.clone(),
        };
        let _ = sink.feed(Message::binary(encode_server(&goodbye))).await;
        let _ = sink
            .send(Message::close_with(
                reason.close_code(),
                close_text(&detail),
            ))
            .await;
    }
    let _ = sink.close().await;
}

/// A close frame's reason must fit in 123 bytes of UTF-8.
fn close_text(detail: &str) -> String {
    let mut end = detail.len().min(123);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail[..end].to_owned()
}
