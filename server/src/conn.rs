//! One game WebSocket: the handshake, then a reader that feeds the room and a writer
//! that drains the outbox. Bad input costs only this connection, closed with a code
//! and a reason; the room and the other players never wait on it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared::codec::encode_server;
use shared::consts::{CHAT_BURST, CHAT_PER_SECOND, MAX_CLIENT_MSG_BYTES};
use shared::protocol::{CloseReason, InputFrame, ServerMsg};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, timeout, timeout_at};
use tokio_util::sync::{CancellationToken, DropGuard};
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::CloseFrame;

use crate::AppState;
use crate::ack::AckSlot;
use crate::caps::ConnSlot;
use crate::inbound::{Inbound, Refusal, read_hello, read_message};
use crate::lobby::Seat;
use crate::outbox::{OutboxRx, OutboxTx, outbox};
use crate::ratelimit::TokenBucket;
use crate::room::{PlayerLink, RoomCmd};
use crate::upgrade::Socket;

/// Input frames that may wait for the room's next tick. A burst past this (after a
/// network hiccup) loses its newest frames; a sustained flood is the message bucket's.
const INPUT_QUEUE: usize = 32;
/// How long a closing connection waits for the client's half of the close handshake,
/// and for the writer to flush the close frame, before the socket is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// A single send that takes this long means the peer has stopped reading: its TCP
/// window is shut. The connection is dropped rather than held open by a dead reader.
const WRITE_STALL: Duration = Duration::from_secs(5);

/// The per-connection limits, set once from the flags.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub join_timeout: Duration,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub msg_rate: f32,
    pub msg_burst: u32,
    pub byte_rate: f32,
    pub byte_burst: u32,
}

/// The game socket's settings. The read buffer holds the largest client message, not
/// tungstenite's 128 KiB default: that is most of what an idle connection costs. Each
/// frame is written as it is sent (no write buffer to fill first): a snapshot is due now.
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(MAX_CLIENT_MSG_BYTES)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MSG_BYTES))
        .max_frame_size(Some(MAX_CLIENT_MSG_BYTES))
}

pub async fn serve_socket(ws: Socket, app: Arc<AppState>, slot: ConnSlot) {
    app.metrics.connections.inc();
    let (sink, stream) = ws.split();
    let (outbox_tx, outbox_rx) = outbox();
    let (close_tx, close_rx) = oneshot::channel();
    let writer_failed = CancellationToken::new();
    let mut writer = tokio::spawn(conn_writer(
        sink,
        outbox_rx,
        close_rx,
        writer_failed.clone().drop_guard(),
        Arc::clone(&app),
    ));
    let mut reader = Reader::new(stream, &app, writer_failed);

    let ended = session(&mut reader, outbox_tx, &app).await;
    let reason_label = match &ended {
        Ok(()) => "client_closed".to_owned(),
        Err((reason, _)) => format!("{reason:?}"),
    };
    app.metrics.count_disconnect(&reason_label);
    if let Err(refusal) = ended {
        tracing::debug!(reason = ?refusal.0, detail = %refusal.1, "closing connection");
        let _ = close_tx.send(refusal);
        reader.linger().await;
    } else {
        drop(close_tx);
    }
    // The writer ends once it has flushed its close frame; one that cannot (its peer
    // reads nothing) is cut off, which drops the socket.
    if timeout(CLOSE_LINGER, &mut writer).await.is_err() {
        writer.abort();
    }
    app.metrics.connections.dec();
    drop(slot);
}

/// The reading half with its limits: a deadline that each received frame pushes back,
/// and token buckets for messages and bytes.
struct Reader<'a> {
    stream: SplitStream<Socket>,
    app: &'a AppState,
    limits: ConnLimits,
    /// Without a frame by then, the peer is gone (or never said hello).
    deadline: Instant,
    /// Whether each frame pushes the deadline back (after the hello).
    live: bool,
    messages: TokenBucket,
    bytes: TokenBucket,
    /// Cancelled when the writer gives up on a peer that does not read.
    writer_failed: CancellationToken,
}

impl<'a> Reader<'a> {
    fn new(
        stream: SplitStream<Socket>,
        app: &'a AppState,
        writer_failed: CancellationToken,
    ) -> Reader<'a> {
        let limits = app.limits;
        Reader {
            stream,
            app,
            limits,
            deadline: Instant::now() + limits.join_timeout,
            live: false,
            messages: TokenBucket::new(limits.msg_burst, limits.msg_rate),
            bytes: TokenBucket::new(limits.byte_burst, limits.byte_rate),
            writer_failed,
        }
    }

    /// From now on any frame proves the peer alive; silence longer than the idle
    /// timeout (which spans at least one ping and its pong) ends the connection.
    fn go_live(&mut self) {
        self.live = true;
        self.deadline = Instant::now() + self.limits.idle_timeout;
    }

    /// Reads the next binary frame. `Ok(None)` means the client closed or vanished.
    async fn next_frame(&mut self) -> Result<Option<Bytes>, Refusal> {
        loop {
            let frame = tokio::select! {
                frame = timeout_at(self.deadline, self.stream.next()) => frame,
                () = self.writer_failed.cancelled() => {
                    return Err((CloseReason::TooSlow, "the client stopped reading".into()));
                }
                () = self.app.shutdown.cancelled() => {
                    return Err((CloseReason::ServerShutdown, "server is shutting down".into()));
                }
            };
            let msg = match frame {
                Err(_) if self.live => {
                    return Err((
                        CloseReason::Timeout,
                        "no input or pong within the idle timeout".into(),
                    ));
                }
                Err(_) => {
                    return Err((
                        CloseReason::Timeout,
                        "no hello within the join timeout".into(),
                    ));
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(err))) => return read_error(&err),
                Ok(Some(Ok(msg))) => msg,
            };
            let n_bytes = msg.len();
            self.app.metrics.ws_received_messages.inc();
            self.app.metrics.ws_received_bytes.inc_by(n_bytes as u64);
            if self.live {
                self.deadline = Instant::now() + self.limits.idle_timeout;
            }
            // Control frames count too: a ping flood costs pongs.
            let n_bytes = u32::try_from(n_bytes).unwrap_or(u32::MAX);
            if !self.messages.try_take() || !self.bytes.try_take_n(n_bytes) {
                return Err((
                    CloseReason::Flood,
                    "more messages or bytes than the rate limit".into(),
                ));
            }
            if msg.is_binary() {
                return Ok(Some(msg.into_data()));
            }
            if msg.is_text() {
                return Err((
                    CloseReason::Malformed,
                    "text frames are not part of the protocol".into(),
                ));
            }
            // Close, ping and pong are the WebSocket layer's business; keep reading so it
            // can answer them (a close reply is flushed by the next read) and see the end.
        }
    }

    /// After this end has asked to close: keep reading, so the client's close frame is
    /// seen and the handshake completes, until the stream ends or the linger is over.
    async fn linger(&mut self) {
        let _ = timeout(CLOSE_LINGER, async {
            while let Some(Ok(_)) = self.stream.next().await {}
        })
        .await;
    }
}

/// A transport error: an oversize message gets its close code; anything else means
/// the peer is gone and there is nobody left to tell.
fn read_error(err: &tungstenite::Error) -> Result<Option<Bytes>, Refusal> {
    if let tungstenite::Error::Capacity(capacity) = err {
        return Err((CloseReason::TooBig, capacity.to_string()));
    }
    tracing::debug!(%err, "websocket read error");
    Ok(None)
}

/// Runs the connection from hello to goodbye. `Ok` means the client left on its own.
async fn session(
    reader: &mut Reader<'_>,
    outbox_tx: OutboxTx,
    app: &AppState,
) -> Result<(), Refusal> {
    let Some(hello) = reader.next_frame().await? else {
        return Ok(());
    };
    let hello = read_hello(&hello)?;
    let seat = app.lobby.reserve(hello.room.as_deref()).map_err(|_| {
        let room = hello.room.as_deref().unwrap_or("?");
        (CloseReason::RoomFull, format!("room {room} is full"))
    })?;

    let pongs = outbox_tx.reliable_sender();
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let acks = Arc::new(AckSlot::default());
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = RoomCmd::Join {
        name: hello.name,
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

    reader.go_live();
    let uplink = Uplink {
        id,
        seat: &seat,
        inputs: input_tx,
        acks: &acks,
        replies: pongs,
    };
    let played = play(reader, uplink).await;
    let _ = seat.commands.send(RoomCmd::Leave { id }).await;
    played
}

/// Where a seated player's messages go.
struct Uplink<'a> {
    id: shared::PlayerId,
    seat: &'a Seat,
    inputs: mpsc::Sender<InputFrame>,
    acks: &'a AckSlot,
    /// Replies the connection sends itself, such as pongs and notices.
    replies: mpsc::Sender<Bytes>,
}

async fn play(reader: &mut Reader<'_>, uplink: Uplink<'_>) -> Result<(), Refusal> {
    let Uplink {
        id,
        seat,
        inputs,
        acks,
        replies,
    } = uplink;
    let mut chat_budget = TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND);
    while let Some(bytes) = reader.next_frame().await? {
        match read_message(&bytes)? {
            Inbound::Ack(tick) => acks.store(tick),
            Inbound::Input { ack, frame } => {
                if let Some(ack) = ack {
                    acks.store(ack);
                }
                match inputs.try_send(frame) {
                    Ok(()) => {}
                    // A burst after a network hiccup: the room drops a backlog anyway,
                    // and a sustained flood is the message bucket's to close.
                    Err(mpsc::error::TrySendError::Full(_)) => {}
                    // The room let go of this player (kicked); the writer is closing.
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Err((CloseReason::TooSlow, "removed from the room".into()));
                    }
                }
            }
            Inbound::Chat(text) => {
                if !chat_budget.try_take() {
                    let notice = ServerMsg::Notice {
                        text: "chat limit reached: wait a moment".into(),
                    };
                    let _ = replies.try_send(encode_server(&notice).into());
                } else if let Some(text) = text {
                    let _ = seat.commands.try_send(RoomCmd::Chat { id, text });
                }
            }
            Inbound::Ping { nonce } => {
                let _ = replies.try_send(encode_server(&ServerMsg::Pong { nonce }).into());
            }
        }
    }
    Ok(())
}

/// Owns the socket's sending half: sends whatever the outbox holds, newest snapshot
/// last, pings on a timer, and closes with a reason when the reader, the room or
/// shutdown asks. Dropping `failed` unsent tells the reader the peer stopped reading.
async fn conn_writer(
    mut sink: SplitSink<Socket, Message>,
    mut outbox: OutboxRx,
    mut close_rx: oneshot::Receiver<Refusal>,
    failed: DropGuard,
    app: Arc<AppState>,
) {
    let mut kick_open = true;
    let mut snapshots_open = true;
    let mut pings = tokio::time::interval_at(
        Instant::now() + app.limits.ping_interval,
        app.limits.ping_interval,
    );
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let close: Option<Refusal> = loop {
        let msg = tokio::select! {
            biased;
            asked = &mut close_rx => break asked.ok(),
            kicked = &mut outbox.kick, if kick_open => match kicked {
                Ok(reason) => break Some((reason, "removed from the room".into())),
                Err(_) => { kick_open = false; continue; }
            },
            () = app.shutdown.cancelled() => {
                break Some((CloseReason::ServerShutdown, "server is shutting down".into()));
            }
            Some(bytes) = outbox.reliable.recv() => Message::binary(bytes),
            changed = outbox.snapshot.changed(), if snapshots_open => match changed {
                Ok(()) => Message::binary(outbox.snapshot.borrow_and_update().clone()),
                Err(_) => { snapshots_open = false; continue; }
            },
            _ = pings.tick() => Message::Ping(Bytes::new()),
        };
        let n_bytes = msg.len() as u64;
        match timeout(WRITE_STALL, sink.send(msg)).await {
            Ok(Ok(())) => {}
            // The peer is gone, or not reading: nothing more can reach it.
            Ok(Err(_)) | Err(_) => return,
        }
        app.metrics.ws_sent_messages.inc();
        app.metrics.ws_sent_bytes.inc_by(n_bytes);
    };
    // From here on the writer ends by itself; the reader need not be told.
    drop(failed.disarm());
    if let Some((reason, detail)) = close {
        let goodbye = ServerMsg::Disconnect {
            reason,
            detail: detail.clone(),
        };
        let _ = timeout(WRITE_STALL, async {
            let _ = sink.feed(Message::binary(encode_server(&goodbye))).await;
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: reason.close_code().into(),
                    reason: close_text(&detail).into(),
                })))
                .await;
        })
        .await;
    }
    let _ = timeout(CLOSE_LINGER, sink.close()).await;
}

/// A close frame's reason must fit in 123 bytes of UTF-8.
fn close_text(detail: &str) -> String {
    let mut end = detail.len().min(123);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail[..end].to_owned()
}
