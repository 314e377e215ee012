//! A connection's reading side: its WebSocket (`socket`) and the limits every frame is held
//! to (size, message and byte rates, the idle deadline). The connection's task reads it
//! while it waits for a hello, and a spectator's throughout. Once a player is seated,
//! the room reads it instead, at its ticks (`Uplink::pull`): the socket leaves the
//! runtime's poller, so an arriving message wakes no thread, and a tick takes all that
//! arrived in one go. The task then only waits to hear that the reading ended.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::noop_waker_ref;
use parking_lot::Mutex;
use shared::PlayerId;
use shared::codec::encode_server;
use shared::consts::{CHAT_BURST, CHAT_PER_SECOND};
use shared::protocol::{CloseReason, ServerMsg};
use tokio::sync::Notify;
use tokio::time::Instant;
use tungstenite::Message;

use crate::net::conn::{ConnLimits, read_error};
use crate::net::inbound::{Inbound, Refusal, read_message};
use crate::net::ratelimit::TokenBucket;
use crate::net::socket::Socket;
use crate::net::wire::Wire;
use crate::ops::metrics::Metrics;
use crate::rooms::ack::AckSlot;
use crate::rooms::directory::RoomHandle;
use crate::rooms::input_queue::InputQueue;
use crate::rooms::link_stats::LinkStats;
use crate::rooms::room::RoomCmd;
use crate::rooms::uplink::Uplink;

/// How long after a ping the room looks every tick for its pong.
const PONG_TIMED_FOR: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Reader {
    state: Mutex<Reading>,
    /// A ping may be waiting for its pong, so the room should look every tick. Kept out
    /// of the lock: on most ticks the room needs only this to know it may pass by.
    timing: AtomicBool,
    /// Tells the connection's task that the room's reading came to an end.
    ended: Notify,
}

#[derive(Debug)]
struct Reading {
    /// `None` once the connection's close has taken it.
    socket: Option<Socket>,
    wire: Arc<Wire>,
    metrics: Arc<Metrics>,
    idle_timeout: Duration,
    /// Without a frame by then, the peer is gone (or never said hello).
    deadline: Instant,
    /// Whether each frame pushes the deadline back (after the hello).
    live: bool,
    messages: TokenBucket,
    bytes: TokenBucket,
    /// What this connection measures for the console: bytes in, the ping's round trip.
    stats: Arc<LinkStats>,
    /// The payload and time of the ping awaiting its pong.
    ping_out: Option<(u64, Instant)>,
    /// The code of the client's close frame, once one arrived (1005 if it had none).
    close_code: Option<u16>,
    /// Where a seated player's messages go, while the room reads them.
    seat: Option<Seated>,
    /// How the room's reading ended: `Ok` when the client closed or vanished.
    end: Option<Result<(), Refusal>>,
}

/// Where a seated player's messages go.
#[derive(Debug)]
pub(crate) struct Seated {
    id: PlayerId,
    room: RoomHandle,
    acks: Arc<AckSlot>,
    chat: TokenBucket,
}

impl Seated {
    pub(crate) fn new(id: PlayerId, room: RoomHandle, acks: Arc<AckSlot>) -> Seated {
        Seated {
            id,
            room,
            acks,
            chat: TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND),
        }
    }
}

/// What one frame from the socket came to, once it passed the limits.
enum Frame {
    Data(Bytes),
    /// A ping, pong or close: the WebSocket layer's business.
    Control,
    /// The client closed or vanished.
    Closed,
}

impl Reader {
    pub(crate) fn new(
        socket: Socket,
        wire: Arc<Wire>,
        metrics: Arc<Metrics>,
        limits: &ConnLimits,
    ) -> Reader {
        Reader {
            state: Mutex::new(Reading {
                socket: Some(socket),
                wire,
                metrics,
                idle_timeout: limits.idle_timeout,
                deadline: Instant::now() + limits.join_timeout,
                live: false,
                messages: TokenBucket::new(limits.msg_burst, limits.msg_rate),
                bytes: TokenBucket::new(limits.byte_burst, limits.byte_rate),
                stats: Arc::default(),
                ping_out: None,
                close_code: None,
                seat: None,
                end: None,
            }),
            timing: AtomicBool::new(false),
            ended: Notify::new(),
        }
    }

    /// Polls for the next data frame, for the connection's own task. `Ok(None)`: the
    /// client closed or vanished.
    pub(crate) fn poll_frame(&self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Refusal>> {
        let mut reading = self.state.lock();
        loop {
            return Poll::Ready(match ready!(reading.poll_frame(cx)) {
                Ok(Frame::Data(bytes)) => Ok(Some(bytes)),
                Ok(Frame::Control) => continue,
                Ok(Frame::Closed) => Ok(None),
                Err(refusal) => Err(refusal),
            });
        }
    }

    /// From now on any frame proves the peer alive; silence longer than the idle
    /// timeout (which spans at least one ping and its pong) ends the connection.
    /// Returns the new deadline.
    pub(crate) fn go_live(&self) -> Instant {
        let mut reading = self.state.lock();
        reading.live = true;
        reading.deadline = Instant::now() + reading.idle_timeout;
        reading.deadline
    }

    /// The idle deadline as frames have pushed it, and whether the hello has come.
    pub(crate) fn deadline(&self) -> (Instant, bool) {
        let reading = self.state.lock();
        (reading.deadline, reading.live)
    }

    pub(crate) fn stats(&self) -> Arc<LinkStats> {
        Arc::clone(&self.state.lock().stats)
    }

    pub(crate) fn close_code(&self) -> Option<u16> {
        self.state.lock().close_code
    }

    /// Sends ping number `number`, whose pong measures the round trip.
    pub(crate) fn ping(&self, number: u64) {
        let mut reading = self.state.lock();
        if let Ok(true) = reading.wire.send_ping(&number.to_le_bytes()) {
            reading.ping_out = Some((number, Instant::now()));
            self.timing.store(true, Ordering::Relaxed);
        }
    }

    /// Hands the reading to the seat's room, which pulls at its ticks from now on.
    pub(crate) fn hand_to_room(&self, seat: Seated) {
        let mut reading = self.state.lock();
        if let Some(socket) = &mut reading.socket {
            socket.io_mut().poll_on_schedule();
        }
        reading.seat = Some(seat);
    }

    /// Waits until the room's reading ends, and says how.
    pub(crate) async fn ended(&self) -> Result<(), Refusal> {
        loop {
            if let Some(end) = self.state.lock().end.take() {
                return end;
            }
            self.ended.notified().await;
        }
    }

    /// Takes the socket back for the connection's task, to close it: the room reads no
    /// more, and the task's reads wait for data again.
    pub(crate) fn take_socket(&self) -> Option<Socket> {
        let mut reading = self.state.lock();
        reading.seat = None;
        let mut socket = reading.socket.take()?;
        socket.io_mut().wake_on_data();
        Some(socket)
    }
}

impl Uplink for Reader {
    fn pull(&self, due: bool, inputs: &mut InputQueue) {
        if !due && !self.timing.load(Ordering::Relaxed) {
            return;
        }
        let mut reading = self.state.lock();
        // A pong is timed by when it is read; one that takes longer than this is
        // read at the room's next look like anything else.
        let timing = reading
            .ping_out
            .is_some_and(|(_, sent_at)| sent_at.elapsed() < PONG_TIMED_FOR);
        self.timing.store(timing, Ordering::Relaxed);
        if reading.seat.is_none() || !(due || timing) {
            return;
        }
        // The client's bytes are parsed here, on the room's thread: a fault in that
        // must cost this connection, not the room and its other players.
        let looked = panic::catch_unwind(AssertUnwindSafe(|| reading.look(inputs)));
        let end = match looked {
            Ok(None) => return,
            Ok(Some(end)) => end,
            Err(_) => {
                tracing::error!("reading a player's socket panicked; closing that connection");
                Err((
                    CloseReason::Malformed,
                    "this connection's data could not be read".into(),
                ))
            }
        };
        reading.seat = None;
        reading.end = Some(end);
        self.ended.notify_one();
    }
}

impl Reading {
    /// Takes in all that waits in the socket. `Some`: the reading has ended, and how.
    fn look(&mut self, inputs: &mut InputQueue) -> Option<Result<(), Refusal>> {
        if let Some(socket) = &mut self.socket {
            socket.io_mut().look_again();
        }
        // Nothing is ever woken: the room looks again at its next tick.
        let mut cx = Context::from_waker(noop_waker_ref());
        loop {
            let Poll::Ready(frame) = self.poll_frame(&mut cx) else {
                return None;
            };
            match frame {
                Ok(Frame::Data(bytes)) => {
                    if let Err(refusal) = self.hand_on(&bytes, inputs) {
                        return Some(Err(refusal));
                    }
                }
                Ok(Frame::Control) => {}
                Ok(Frame::Closed) => return Some(Ok(())),
                Err(refusal) => return Some(Err(refusal)),
            }
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Frame, Refusal>> {
        let Some(socket) = &mut self.socket else {
            return Poll::Ready(Ok(Frame::Closed));
        };
        Poll::Ready(match ready!(socket.poll_next(cx)) {
            None => Ok(Frame::Closed),
            Some(Err(err)) => read_error(&err).map(|_| Frame::Closed),
            Some(Ok(msg)) => self.check(msg),
        })
    }

    /// Counts a frame, holds it to the limits, and says what it came to.
    fn check(&mut self, msg: Message) -> Result<Frame, Refusal> {
        if let Message::Close(frame) = &msg {
            // tungstenite answers it on the next read; nothing may follow the answer.
            self.wire.seal();
            self.close_code = Some(frame.as_ref().map_or(1005, |frame| frame.code.into()));
        }
        let n_bytes = msg.len();
        self.metrics.ws_received_messages.inc();
        self.metrics.ws_received_bytes.inc_by(n_bytes as u64);
        self.stats.received(n_bytes);
        if let Message::Pong(payload) = &msg
            && let Some((number, sent_at)) = self.ping_out
            && payload[..] == number.to_le_bytes()
        {
            self.stats.set_rtt(sent_at.elapsed());
            self.ping_out = None;
        }
        if self.live {
            self.deadline = Instant::now() + self.idle_timeout;
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
            return Ok(Frame::Data(msg.into_data()));
        }
        if msg.is_text() {
            return Err((
                CloseReason::Malformed,
                "text frames are not part of the protocol".into(),
            ));
        }
        Ok(Frame::Control)
    }

    /// Hands a seated player's message on to where it goes.
    fn hand_on(&mut self, bytes: &[u8], inputs: &mut InputQueue) -> Result<(), Refusal> {
        let message = read_message(bytes)?;
        let Some(seat) = &mut self.seat else {
            return Ok(());
        };
        match message {
            Inbound::Ack(tick) => seat.acks.store(tick),
            Inbound::Input { ack, frames } => {
                if let Some(ack) = ack {
                    seat.acks.store(ack);
                }
                inputs.extend(frames);
            }
            Inbound::Chat(text) => {
                if !seat.chat.try_take() {
                    let notice = ServerMsg::Notice {
                        text: "chat limit reached: wait a moment".into(),
                    };
                    return reply(&self.wire, &notice);
                }
                if let Some(text) = text {
                    seat.room.try_send(RoomCmd::Chat { id: seat.id, text });
                }
            }
            Inbound::Ping { nonce } => return reply(&self.wire, &ServerMsg::Pong { nonce }),
        }
        Ok(())
    }
}

/// Sends a message of the connection's own (a pong, a notice), in order with the room's.
pub(crate) fn reply(wire: &Wire, msg: &ServerMsg) -> Result<(), Refusal> {
    wire.send_message(&encode_server(msg))
        .map_err(|_| (CloseReason::TooSlow, "the client stopped reading".into()))
}
