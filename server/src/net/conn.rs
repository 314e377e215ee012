//! One game WebSocket, served by one task: it reads the client's hello and seats the
//! player, pings, drains the wire's backlog when the socket was full, and closes with a
//! code and a reason. Once the player is seated the room reads the socket and writes
//! into it itself (see `reader` and `wire`), so in the steady state neither an input
//! nor a snapshot costs this task anything. Bad input costs only this connection; the
//! room and the other players never wait on it.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Fuse, FutureExt};
use shared::PlayerId;
use shared::codec::encode_server;
use shared::consts::MAX_CLIENT_MSG_BYTES;
use shared::protocol::{CloseReason, Resume, ServerMsg};
use tokio::sync::oneshot;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep, sleep_until, timeout};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::CloseFrame;

use crate::AppState;
use crate::cluster::{ClusterError, Placement};
use crate::net::caps::ConnSlot;
use crate::net::inbound::{Hello, Refusal, SpectatorInbound, read_hello, read_spectator_message};
use crate::net::reader::{Reader, Seated, reply};
use crate::net::socket::Socket;
use crate::net::upgrade::Handover;
use crate::net::wire::{Wire, WireError};
use crate::rooms::ack::AckSlot;
use crate::rooms::directory::{RoomHandle, Seat, SeatRefused};
use crate::rooms::input_queue::InputQueue;
use crate::rooms::operator::KICKED;
use crate::rooms::outbox::{Kick, Outbox};
use crate::rooms::room::{LinkId, PlayerLink, ResumeRefused, RoomCmd};
use crate::rooms::spectators::{SpectatorLink, WatchRefused};

/// How long a closing connection waits for the client's half of the close handshake
/// before the socket is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// The per-connection limits, set once from the flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    pub(crate) join_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) msg_rate: f32,
    pub(crate) msg_burst: u32,
    pub(crate) byte_rate: f32,
    pub(crate) byte_burst: u32,
}

/// The game socket's settings. The read buffer holds the largest client message, not
/// tungstenite's 128 KiB default: that was most of what an idle connection cost.
/// tungstenite's own writes (pongs, close frames) go out as they are made.
pub(crate) fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(MAX_CLIENT_MSG_BYTES)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MSG_BYTES))
        .max_frame_size(Some(MAX_CLIENT_MSG_BYTES))
}

pub(crate) async fn serve_socket(handover: Handover, app: Arc<AppState>, slot: ConnSlot) {
    let Some((wire, io, read_ahead)) = handover.into_wire(Arc::clone(&app.metrics)) else {
        return;
    };
    app.metrics.connections.inc();
    let socket = Socket::new(io, &read_ahead, socket_config());
    let (kick_tx, kick_rx) = oneshot::channel();
    let mut conn = Conn::new(socket, wire, &app, kick_rx);

    let ended = session(&mut conn, kick_tx, &app, &slot).await;
    app.metrics.count_disconnect(match &ended {
        Ok(()) => "client_closed",
        Err((reason, _)) => reason.label(),
    });
    if let Err(refusal) = ended {
        tracing::debug!(reason = ?refusal.0, detail = %refusal.1, "closing connection");
        conn.close(refusal).await;
    }
    app.metrics.connections.dec();
    drop(slot);
}

/// The connection's task's side: the reading (its own until the player is seated, the
/// room's after), and what it waits on besides.
///
/// What it waits on (shutdown, the wire's backlog, the deadline) is made once and
/// polled in place, rather than made afresh for every frame, each with a lock to
/// register and another to let go.
struct Conn {
    reader: Arc<Reader>,
    wire: Arc<Wire>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Drains the wire's backlog; it ends only when writing cannot go on.
    drive: Drive,
    /// Fires at the idle deadline as it was when last set. Frames push the deadline
    /// back without touching the timer; the timer catches up when it fires.
    idle: Pin<Box<Sleep>>,
    /// Whether the room reads the socket (the player is seated).
    room_reads: bool,
    pings: Interval,
    /// The room's way to close this connection.
    kick: oneshot::Receiver<Kick>,
    kick_open: bool,
    /// Numbers the pings, so a pong is matched to its own ping.
    pings_sent: u64,
}

impl Conn {
    fn new(socket: Socket, wire: Arc<Wire>, app: &AppState, kick: oneshot::Receiver<Kick>) -> Conn {
        let limits = app.limits;
        let mut pings =
            tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let reader = Arc::new(Reader::new(
            socket,
            Arc::clone(&wire),
            Arc::clone(&app.metrics),
            &limits,
        ));
        let (deadline, _) = reader.deadline();
        let drive = drive(&wire);
        Conn {
            reader,
            wire,
            shutdown: Box::pin(app.shutdown.clone().cancelled_owned()),
            drive,
            idle: Box::pin(sleep_until(deadline)),
            room_reads: false,
            pings,
            kick,
            kick_open: true,
            pings_sent: 0,
        }
    }

    /// From now on any frame proves the peer alive; silence longer than the idle
    /// timeout (which spans at least one ping and its pong) ends the connection.
    fn go_live(&mut self) {
        let deadline = self.reader.go_live();
        // The idle timeout may be shorter than what was left of the join timeout.
        self.idle.as_mut().reset(deadline);
    }

    /// Sends a message of this connection's own (a pong, a notice), in order with the
    /// room's.
    fn reply(&self, msg: &ServerMsg) -> Result<(), Refusal> {
        reply(&self.wire, msg)
    }

    /// Reads the next binary frame, or once the room reads the socket, waits for its
    /// reading to end (then `Ok(None)`, or why it ended). `Ok(None)` means the client
    /// closed or vanished. Meanwhile it pings, drains the wire, and hears kicks and
    /// shutdown.
    async fn next_frame(&mut self) -> Result<Option<Bytes>, Refusal> {
        loop {
            tokio::select! {
                biased;
                () = &mut self.shutdown => {
                    return Err((CloseReason::ServerShutdown, SHUTTING_DOWN.into()));
                }
                kicked = &mut self.kick, if self.kick_open => match kicked {
                    Ok(Kick { reason, detail }) => {
                        return Err((reason, detail.unwrap_or_else(|| kick_detail(reason).into())));
                    }
                    Err(_) => self.kick_open = false,
                },
                failed = &mut self.drive => return match failed {
                    WireError::Broken => Ok(None),
                    WireError::Stalled | WireError::Overflow => {
                        Err((CloseReason::TooSlow, "the client stopped reading".into()))
                    }
                },
                // Before the pings: a reading that ended may have answered a close frame,
                // after which nothing more may be sent.
                ended = self.reader.ended(), if self.room_reads => return ended.map(|()| None),
                _ = self.pings.tick() => {
                    self.pings_sent += 1;
                    self.reader.ping(self.pings_sent);
                }
                frame = poll_fn(|cx| self.reader.poll_frame(cx)), if !self.room_reads => {
                    return frame;
                }
                () = &mut self.idle => {
                    let (deadline, live) = self.reader.deadline();
                    if deadline > self.idle.deadline() {
                        self.idle.as_mut().reset(deadline);
                        continue;
                    }
                    return Err(if live {
                        (CloseReason::Timeout, "no input or pong within the idle timeout".into())
                    } else {
                        (CloseReason::Timeout, "no hello within the join timeout".into())
                    });
                }
            }
        }
    }

    /// Says why, sends the close frame (after which the room's writes are dropped), and
    /// waits (a little) for the client's half of the close handshake, draining the wire
    /// meanwhile.
    async fn close(&mut self, (reason, detail): Refusal) {
        self.wire.seal();
        let goodbye = ServerMsg::Disconnect {
            reason,
            detail: detail.clone(),
        };
        let _ = self.wire.send_message(&encode_server(&goodbye));
        let Some(mut socket) = self.reader.take_socket() else {
            return;
        };
        // Anew: the drive that ended the reading may have run to its end.
        self.drive = drive(&self.wire);
        close_socket(&mut socket, &mut self.drive, reason, &detail).await;
    }
}

/// `Wire::drive` on a wire of one's own, to keep across frames. Once ended it stays
/// pending, so a select that polls it again waits on its other branches.
type Drive = Fuse<Pin<Box<dyn Future<Output = WireError> + Send + Sync>>>;

fn drive(wire: &Arc<Wire>) -> Drive {
    let wire = Arc::clone(wire);
    let drive: Pin<Box<dyn Future<Output = WireError> + Send + Sync>> =
        Box::pin(async move { wire.drive().await });
    drive.fuse()
}

/// Sends the close frame (the reason's code, and `detail`) on a sealed wire, and waits
/// (a little) for the client's half of the close handshake, draining the wire meanwhile
/// with `drive` (the wire's `drive`).
pub(crate) async fn close_socket(
    socket: &mut Socket,
    drive: impl Future<Output = WireError>,
    reason: CloseReason,
    detail: &str,
) {
    tokio::pin!(drive);
    let _ = socket.send(Message::Close(Some(CloseFrame {
        code: reason.close_code().into(),
        reason: close_text(detail).into(),
    })));
    let _ = timeout(CLOSE_LINGER, async {
        loop {
            tokio::select! {
                frame = socket.next() => if !matches!(frame, Some(Ok(_))) { break },
                _ = &mut drive => break,
            }
        }
    })
    .await;
}

/// A transport error: an oversize message or a full send backlog gets its close code;
/// anything else means the peer is gone and there is nobody left to tell.
pub(crate) fn read_error(err: &tungstenite::Error) -> Result<Option<Bytes>, Refusal> {
    match err {
        tungstenite::Error::Capacity(capacity) => {
            return Err((CloseReason::TooBig, capacity.to_string()));
        }
        // A pong or close reply that found the send backlog full.
        tungstenite::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<WireError>().is_some()) =>
        {
            return Err((CloseReason::TooSlow, "the client stopped reading".into()));
        }
        _ => {}
    }
    tracing::debug!(%err, "websocket read error");
    Ok(None)
}

/// Runs the connection from hello to goodbye. `Ok` means the client closed or vanished.
async fn session(
    conn: &mut Conn,
    kick: oneshot::Sender<Kick>,
    app: &AppState,
    slot: &ConnSlot,
) -> Result<(), Refusal> {
    let Some(hello) = conn.next_frame().await? else {
        return Ok(());
    };
    let hello = read_hello(&hello)?;
    if hello.spectate
        && let Some(room) = hello.room
    {
        return spectate(conn, kick, app, room).await;
    }
    let acks = Arc::new(AckSlot::default());
    let link = PlayerLink {
        id: LinkId(app.next_link.fetch_add(1, Ordering::Relaxed)),
        inputs: InputQueue::default(),
        acks: Arc::clone(&acks),
        outbox: Outbox::new(Arc::clone(&conn.wire) as Arc<_>, kick),
        stats: conn.reader.stats(),
        uplink: Arc::clone(&conn.reader) as Arc<_>,
    };
    let link_id = link.id;
    let (id, room) = match hello.resume {
        Some(resume) => resume_seat(app, resume, link, conn).await?,
        None => join_seat(app, hello, link, slot, conn).await?,
    };

    conn.go_live();
    let seated = Seated::new(id, room.clone(), acks);
    conn.reader.hand_to_room(seated);
    conn.room_reads = true;
    let played = conn.next_frame().await.map(|_| ());
    let farewell = if keeps_seat(&played, conn.reader.close_code()) {
        RoomCmd::Lost { id, link: link_id }
    } else {
        RoomCmd::Leave { id, link: link_id }
    };
    let _ = room.send(farewell).await;
    played
}

/// Watches a room without a seat, from admission to goodbye: the room sends, this
/// connection only hands on acknowledgements and answers pings.
async fn spectate(
    conn: &mut Conn,
    kick: oneshot::Sender<Kick>,
    app: &AppState,
    room: String,
) -> Result<(), Refusal> {
    let Some(handle) = app.directory.find(&room) else {
        // In a cluster the room may be another process's: the client is sent there,
        // as a join would be, and says the same hello again.
        if let Some(cluster) = &app.cluster
            && let Some(url) = cluster.owner_socket(&room).await.map_err(cluster_refusal)?
        {
            return Err(redirect(app, conn, url, None));
        }
        return Err((CloseReason::NoSuchRoom, format!("room {room} is not open")));
    };
    let acks = Arc::new(AckSlot::default());
    let link = SpectatorLink {
        id: LinkId(app.next_link.fetch_add(1, Ordering::Relaxed)),
        acks: Arc::clone(&acks),
        outbox: Outbox::new(Arc::clone(&conn.wire) as Arc<_>, kick),
    };
    let link_id = link.id;
    let (reply_tx, mut reply_rx) = oneshot::channel();
    let request = RoomCmd::Watch {
        link,
        reply: reply_tx,
    };
    let admitted = timeout(app.limits.join_timeout, async {
        handle.send(request).await.ok()?;
        (&mut reply_rx).await.ok()
    })
    .await;
    match admitted {
        Ok(Some(Ok(()))) => {}
        Ok(Some(Err(WatchRefused::Full))) => {
            return Err((
                CloseReason::SpectatorsFull,
                format!("room {room} has as many spectators as it admits"),
            ));
        }
        Ok(None) => return Err(room_closing()),
        Err(_) => {
            if let Ok(Ok(())) = reply_rx.try_recv() {
                handle.try_send(RoomCmd::Unwatch { link: link_id });
            }
            return Err(room_too_slow());
        }
    }
    app.metrics.spectators.inc();
    conn.go_live();
    let watched = watch(conn, &acks).await;
    let _ = handle.send(RoomCmd::Unwatch { link: link_id }).await;
    app.metrics.spectators.dec();
    watched
}

async fn watch(conn: &mut Conn, acks: &AckSlot) -> Result<(), Refusal> {
    while let Some(bytes) = conn.next_frame().await? {
        match read_spectator_message(&bytes)? {
            SpectatorInbound::Ack(tick) => acks.store(tick),
            SpectatorInbound::Ping { nonce } => conn.reply(&ServerMsg::Pong { nonce })?,
        }
    }
    Ok(())
}

/// Whether a connection that ended this way leaves its seat held for a resume: it
/// vanished, went quiet, stopped reading, or closed without saying goodbye (a reloading
/// page closes with 1001, a dropped browser socket with no code). A normal closure
/// (1000) is a goodbye, and closing for misbehaving gives the seat up too.
fn keeps_seat(ended: &Result<(), Refusal>, close_code: Option<u16>) -> bool {
    match ended {
        Ok(()) => close_code != Some(1000),
        Err((reason, _)) => matches!(reason, CloseReason::Timeout | CloseReason::TooSlow),
    }
}

/// Reserves a seat and has its room seat a new player in it.
async fn join_seat(
    app: &AppState,
    hello: Hello,
    link: PlayerLink,
    slot: &ConnSlot,
    conn: &Conn,
) -> Result<(PlayerId, RoomHandle), Refusal> {
    let Seat { handle, lease } = reserve(app, &hello, slot, conn).await?;
    let (profile, token) = app.identities.admit(hello.token.as_deref());
    let link_id = link.id;
    let (reply_tx, mut reply_rx) = oneshot::channel();
    let join = RoomCmd::Join {
        name: hello.name,
        profile,
        token,
        link,
        lease,
        reply: reply_tx,
    };
    // A room that cannot take a join within the join timeout is not coming back to it.
    let joined = timeout(app.limits.join_timeout, async {
        handle.send(join).await.ok()?;
        (&mut reply_rx).await.ok()
    })
    .await;
    match joined {
        Ok(Some(id)) => Ok((id, handle)),
        Ok(None) => Err(room_closing()),
        Err(_) => {
            // The room may have seated us just as the wait ran out: then it must hear
            // that we left, or the seat would be a ghost until the stall timeout.
            if let Ok(id) = reply_rx.try_recv() {
                handle.try_send(RoomCmd::Leave { id, link: link_id });
            }
            Err(room_too_slow())
        }
    }
}

/// Reserves the seat a hello asks for: here, or in a cluster wherever its room lives,
/// in which case the client is told where to go (and the connection ends with that).
async fn reserve(
    app: &AppState,
    hello: &Hello,
    slot: &ConnSlot,
    conn: &Conn,
) -> Result<Seat, Refusal> {
    let directory = Arc::clone(&app.directory);
    let room = hello.room.as_deref();
    let Some(cluster) = &app.cluster else {
        return directory
            .reserve(room, slot.address())
            .map_err(|refused| seat_refusal(refused, room));
    };
    if let Some(token) = &hello.reservation {
        let redeemed = cluster.redeem(token).await.map_err(cluster_refusal)?;
        let Some(redeemed) = redeemed else {
            return Err((
                CloseReason::ResumeRefused,
                "the seat reservation is unknown, used or expired".into(),
            ));
        };
        return directory
            .reserve_redeemed(&redeemed.room, redeemed.quick_play)
            .map_err(|refused| seat_refusal(refused, Some(&redeemed.room)));
    }
    if directory.is_draining() {
        return Err(seat_refusal(SeatRefused::Draining, room));
    }
    match cluster.place(room, &directory.list()).await {
        Ok(Placement::Here(room)) => directory
            .reserve(room.as_deref(), slot.address())
            .map_err(|refused| seat_refusal(refused, room.as_deref())),
        Ok(Placement::Elsewhere { url, reservation }) => {
            Err(redirect(app, conn, url, Some(reservation)))
        }
        Err(ClusterError::RoomFull) => Err(seat_refusal(SeatRefused::RoomFull, room)),
        Err(err) => Err(cluster_refusal(err)),
    }
}

/// Tells the client where its room lives; the refusal then closes this connection.
fn redirect(app: &AppState, conn: &Conn, url: String, reservation: Option<String>) -> Refusal {
    app.metrics.cluster_redirects.inc();
    if let Err(refusal) = conn.reply(&ServerMsg::Redirect { url, reservation }) {
        return refusal;
    }
    (
        CloseReason::Moved,
        "the room is on another server; follow the redirect".into(),
    )
}

fn cluster_refusal(err: ClusterError) -> Refusal {
    tracing::warn!(%err, "a join waited on the cluster directory in vain");
    (
        CloseReason::ServerShutdown,
        "the cluster directory is unreachable; try again shortly".into(),
    )
}

/// Has the room named in a resume token give its held seat to this connection (in a
/// cluster, the room may live on another process: the client is sent there).
async fn resume_seat(
    app: &AppState,
    resume: Resume,
    link: PlayerLink,
    conn: &Conn,
) -> Result<(PlayerId, RoomHandle), Refusal> {
    let refused = |why: String| {
        app.metrics.resumes_refused.inc();
        (CloseReason::ResumeRefused, why)
    };
    let Some(claim) = app.seat_tokens.read(&resume.token) else {
        tracing::info!("a resume token that does not verify was presented");
        return Err(refused("the resume token is not valid".into()));
    };
    let Some(handle) = app.directory.find(&claim.room) else {
        if let Some(cluster) = &app.cluster {
            let owner = cluster
                .owner_socket(&claim.room)
                .await
                .map_err(cluster_refusal)?;
            if let Some(url) = owner {
                return Err(redirect(app, conn, url, None));
            }
        }
        return Err(refused(ResumeRefused::SeatGone.to_string()));
    };
    let link_id = link.id;
    let (reply_tx, mut reply_rx) = oneshot::channel();
    let resume = RoomCmd::Resume {
        claim,
        newest_tick: resume.newest_tick,
        link,
        reply: reply_tx,
    };
    let resumed = timeout(app.limits.join_timeout, async {
        handle.send(resume).await.ok()?;
        (&mut reply_rx).await.ok()
    })
    .await;
    match resumed {
        Ok(Some(Ok(id))) => Ok((id, handle)),
        Ok(Some(Err(why))) => Err(refused(why.to_string())),
        Ok(None) => Err(room_closing()),
        Err(_) => {
            // Seated just as the wait ran out: the seat goes back to being held.
            if let Ok(Ok(id)) = reply_rx.try_recv() {
                handle.try_send(RoomCmd::Lost { id, link: link_id });
            }
            Err(room_too_slow())
        }
    }
}

fn room_closing() -> Refusal {
    (
        CloseReason::ServerShutdown,
        "the room is closing".to_owned(),
    )
}

fn room_too_slow() -> Refusal {
    (
        CloseReason::Timeout,
        "the room did not seat this player in time".to_owned(),
    )
}

/// What a refused seat tells the client.
fn seat_refusal(refused: SeatRefused, room: Option<&str>) -> Refusal {
    let room = room.unwrap_or("?");
    match refused {
        SeatRefused::RoomFull => (CloseReason::RoomFull, format!("room {room} is full")),
        SeatRefused::RoomLimit => (
            CloseReason::RoomLimit,
            "the server runs as many rooms as it can".to_owned(),
        ),
        SeatRefused::TooManyNewRooms => (
            CloseReason::TooManyNewRooms,
            "too many new rooms from this address; wait a minute".to_owned(),
        ),
        SeatRefused::Draining => (
            CloseReason::ServerShutdown,
            "the server is draining and takes no new players; try again shortly".to_owned(),
        ),
    }
}

/// What a player whose server stops is told: the game goes on, elsewhere in a cluster
/// or here once it is back, so clients join again.
const SHUTTING_DOWN: &str = "server is shutting down; join again to play on";

/// What a player removed by the room is told.
fn kick_detail(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::ServerShutdown => SHUTTING_DOWN,
        CloseReason::RoomCrashed => "the room failed; join again to open it anew",
        CloseReason::Replaced => "this seat was taken back by a newer connection",
        CloseReason::TooSlow => "the client stopped reading",
        CloseReason::Kicked => KICKED,
        _ => "removed from the room",
    }
}

/// A close frame's reason must fit in 123 bytes of UTF-8.
fn close_text(detail: &str) -> String {
    let mut end = detail.len().min(123);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail[..end].to_owned()
}
