//! A connection's sending side. The room writes its frames straight into the socket
//! from the room's own thread: one vectored write per client per snapshot, carrying the
//! messages queued since the last one and then the snapshot, its body borrowed in place
//! from the room's shared encoding. Nothing is copied or woken unless the
//! socket cannot take a frame at once; then the rest waits in a backlog that the
//! connection's task drains as the socket becomes writable.
//!
//! Every write to the socket, from the room or from the connection (pings, pongs,
//! close), goes through one lock, so frames never interleave on the wire.
//!
//! The socket is not in the runtime's poller for good: a reader that waits for data
//! registers for it while it waits (`WireIo`), and the backlog's drain for room to
//! write while the socket is full. A seated player's socket, read by its room at its
//! ticks, is in the poller for nothing, so an arriving message wakes no thread.
//!
//! On a TLS connection the session lives under the same lock: every write is sealed
//! into a record there and written at once, still from the writer's own thread, and the
//! connection's reads open records under it too. Records the socket did not take wait
//! in the session, and nothing new is sealed until they have gone.

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use parking_lot::Mutex;
use rustls::ServerConnection;
use tokio::io::{AsyncRead, Interest, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};
use tungstenite::protocol::frame::coding::Data;

use crate::net::frame::{binary_header, header, ping_header};
use crate::ops::metrics::Metrics;
use crate::rooms::outbox::{Downlink, Overflow, Queued};

/// Bytes that may wait for a client that reads slowly. A client this far behind on
/// messages that must arrive is not going to catch up; it is closed instead.
pub(crate) const BACKLOG_LIMIT: usize = 64 * 1024;
/// A backlog that has not moved for this long means the peer stopped reading: its TCP
/// window is shut.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(5);
/// A drained backlog keeps its buffer up to this size; a bigger one (after a burst) is
/// freed, so a connection that was once slow does not hold the memory for good.
const BACKLOG_KEEP: usize = 4 * 1024;

/// Why a connection's writes cannot go on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("the send backlog is over its limit")]
    Overflow,
    #[error("the send backlog made no progress for {WRITE_STALL:?}")]
    Stalled,
    #[error("the socket failed")]
    Broken,
}

#[derive(Debug)]
pub(crate) struct Wire {
    /// Non-blocking, and registered with the runtime's poller only while someone waits
    /// on it (see `readiness`).
    socket: TcpStream,
    /// Whether `State::tls` holds a session (fixed for the connection's life), so a
    /// plain connection's reads never take the lock.
    encrypted: bool,
    state: Mutex<State>,
    /// Tells the connection's task that the backlog has bytes to drain.
    backlog_filled: Notify,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes accepted but not yet written, in order. It may start mid-frame: the rest of
    /// a frame the socket took only part of.
    backlog: Vec<u8>,
    /// The newest snapshot frame that found a backlog. It goes out after the backlog,
    /// unless a newer snapshot replaces it first: a late snapshot is worth nothing.
    snapshot: Vec<u8>,
    /// The payload bytes of that snapshot, counted when it goes out.
    snapshot_payload: usize,
    /// When the backlog last moved (or filled).
    progress_at: Option<Instant>,
    broken: bool,
    /// The connection is closing: its close frame is on its way, and nothing from the
    /// room may follow it.
    sealed: bool,
    /// The TLS session of an encrypted connection. It holds records sealed but not yet
    /// written, which go out before anything else.
    tls: Option<Box<ServerConnection>>,
}

impl State {
    /// Whether bytes accepted earlier have yet to reach the socket.
    fn backed_up(&self) -> bool {
        !self.backlog.is_empty() || self.records_waiting()
    }

    /// Whether the TLS session holds records the socket has not taken.
    fn records_waiting(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }
}

impl Wire {
    /// The sending side of `socket` (non-blocking), through `tls` when the connection
    /// is encrypted.
    pub(crate) fn new(
        socket: TcpStream,
        tls: Option<Box<ServerConnection>>,
        metrics: Arc<Metrics>,
    ) -> Wire {
        Wire {
            socket,
            encrypted: tls.is_some(),
            state: Mutex::new(State {
                tls,
                ..State::default()
            }),
            backlog_filled: Notify::new(),
            metrics,
        }
    }

    /// Sends a binary message that must arrive: written now if the socket takes it,
    /// else queued behind what is already waiting.
    pub(crate) fn send_message(&self, payload: &[u8]) -> Result<(), WireError> {
        self.send_data(Data::Binary, payload)
    }

    /// Sends a text or binary message that must arrive, as `send_message` does.
    pub(crate) fn send_data(&self, data: Data, payload: &[u8]) -> Result<(), WireError> {
        let (header, header_len) = header(data, payload.len());
        let mut state = self.state.lock();
        if self.write_or_queue(&mut state, [&header[..header_len], payload, &[], &[]])? {
            self.count(1, payload.len());
        }
        Ok(())
    }

    /// Sends, in one write, the `queued` messages (which must arrive) and then a
    /// snapshot made of a per-client head and the shared body. If the socket is backed
    /// up, the messages join the backlog and the snapshot waits in a one-frame slot,
    /// where the next snapshot replaces it: a late snapshot is worth nothing.
    pub(crate) fn send_snapshot(
        &self,
        queued: &Queued,
        head: &[u8],
        body: &[u8],
    ) -> Result<(), WireError> {
        let payload_len = head.len() + body.len();
        let (header, header_len) = binary_header(payload_len);
        let mut state = self.state.lock();
        if state.sealed {
            return Ok(());
        }
        if !state.backed_up() {
            let parts = [&queued.frames[..], &header[..header_len], head, body];
            if self.write_or_queue(&mut state, parts)? {
                self.count(queued.messages + 1, queued.payload as usize + payload_len);
            }
        } else {
            if self.write_or_queue(&mut state, [&queued.frames, &[], &[], &[]])? {
                self.count(queued.messages, queued.payload as usize);
            }
            state.snapshot.clear();
            for part in [&header[..header_len], head, body] {
                state.snapshot.extend_from_slice(part);
            }
            state.snapshot_payload = payload_len;
        }
        Ok(())
    }

    /// Sends a message of the room's that must arrive, unless the connection has begun
    /// to close: after its close frame a WebSocket endpoint sends no data.
    pub(crate) fn send_room_message(&self, payload: &[u8]) -> Result<(), WireError> {
        let (header, header_len) = binary_header(payload.len());
        let mut state = self.state.lock();
        if state.sealed {
            return Ok(());
        }
        if self.write_or_queue(&mut state, [&header[..header_len], payload, &[], &[]])? {
            self.count(1, payload.len());
        }
        Ok(())
    }

    /// Stops the room's writes for good, a waiting snapshot included: the connection is
    /// about to send (or answer) a close frame, after which a WebSocket endpoint must
    /// send no data.
    pub(crate) fn seal(&self) {
        let mut state = self.state.lock();
        state.sealed = true;
        state.snapshot.clear();
    }

    /// Sends a WebSocket ping carrying `payload` (at most 125 bytes), in order with
    /// everything else.
    /// `Ok(false)`: nothing was sent (the connection is closing or broken).
    pub(crate) fn send_ping(&self, payload: &[u8]) -> Result<bool, WireError> {
        let (header, header_len) = ping_header(payload.len());
        let mut state = self.state.lock();
        if state.sealed {
            // After a close frame a WebSocket endpoint sends nothing more.
            return Ok(false);
        }
        let sent = self.write_or_queue(&mut state, [&header[..header_len], payload, &[], &[]])?;
        if sent {
            self.count(1, 0);
        }
        Ok(sent)
    }

    /// Raw bytes from the WebSocket layer (its pongs and close frames), kept in order
    /// with everything else.
    fn send_raw(&self, bytes: &[u8]) -> Result<(), WireError> {
        let mut state = self.state.lock();
        self.write_or_queue(&mut state, [bytes, &[], &[], &[]])
            .map(|_| ())
    }

    /// Counts messages handed to the socket (or to its backlog).
    pub(crate) fn count(&self, messages: u64, payload_bytes: usize) {
        self.metrics.ws_sent_messages.inc_by(messages);
        self.metrics.ws_sent_bytes.inc_by(payload_bytes as u64);
    }

    /// Writes `parts` now, or what the socket did not take into the backlog. `Ok(false)`:
    /// the socket is broken and the bytes went nowhere. A backlog past its limit takes
    /// no more, but an empty one takes any one message, however big.
    fn write_or_queue(&self, state: &mut State, parts: [&[u8]; 4]) -> Result<bool, WireError> {
        if state.broken {
            // The connection's task has seen it and is ending; nothing reaches the peer.
            return Ok(false);
        }
        let total: usize = parts.iter().map(|part| part.len()).sum();
        let was_backed_up = state.backed_up();
        let mut written = 0;
        if !was_backed_up {
            let slices = parts.map(IoSlice::new);
            match send(&self.socket, state.tls.as_deref_mut(), &slices) {
                Ok(n) => written = n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    state.broken = true;
                    self.backlog_filled.notify_one();
                    return Ok(false);
                }
            }
        }
        if written == total {
            if !was_backed_up && state.records_waiting() {
                // Sealed whole, but the socket took only part of the records.
                state.progress_at = Some(Instant::now());
                self.backlog_filled.notify_one();
            }
            return Ok(true);
        }
        if !state.backlog.is_empty() && state.backlog.len() + total > BACKLOG_LIMIT {
            return Err(WireError::Overflow);
        }
        if !was_backed_up {
            state.progress_at = Some(Instant::now());
        }
        let mut skip = written;
        for part in parts {
            let from = skip.min(part.len());
            state.backlog.extend_from_slice(&part[from..]);
            skip -= from;
        }
        self.backlog_filled.notify_one();
        Ok(true)
    }

    /// Writes what the TLS session queued by itself (an alert, a key update), or hands
    /// it to the connection's task if the socket is full.
    fn write_session_records(&self, state: &mut State) {
        let was_backed_up = !state.backlog.is_empty();
        let Some(tls) = state.tls.as_deref_mut() else {
            return;
        };
        if write_records(tls, &self.socket).is_err() {
            state.broken = true;
            self.backlog_filled.notify_one();
        } else if tls.wants_write() {
            if !was_backed_up {
                state.progress_at = Some(Instant::now());
            }
            self.backlog_filled.notify_one();
        }
    }

    /// Drains the backlog whenever there is one, for as long as the connection lives.
    /// Returns only when writing cannot go on. Cancelling it loses nothing: the backlog
    /// stays in the wire.
    pub(crate) async fn drive(&self) -> WireError {
        loop {
            if let Err(err) = self.drained().await {
                return err;
            }
            self.backlog_filled.notified().await;
        }
    }

    /// Writes until nothing waits: the backlog, then the waiting snapshot. While the
    /// socket is full it waits to be told there is room, registered for that until done.
    pub(crate) async fn drained(&self) -> Result<(), WireError> {
        let Some(mut stalled_at) = self.drain()? else {
            return Ok(());
        };
        let socket = self.registered().map_err(|_| WireError::Broken)?;
        loop {
            match timeout_at(stalled_at, socket.writable()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(WireError::Broken),
                Err(_) => return Err(WireError::Stalled),
            }
            // Draining through the registration: a socket still full clears the news
            // that it had room, and news that came meanwhile stays.
            let drained = socket.try_io(Interest::WRITABLE, || match self.drain() {
                Ok(Some(at)) => {
                    stalled_at = at;
                    Err(io::ErrorKind::WouldBlock.into())
                }
                other => Ok(other.map(drop)),
            });
            if let Ok(done) = drained {
                return done;
            }
        }
    }

    /// The socket registered with the runtime's poller, for as long as the result
    /// lives. It is a second descriptor of the same socket, so the socket itself stays
    /// out of the poller, and each waiter registers on its own.
    fn registered(&self) -> io::Result<tokio::net::TcpStream> {
        tokio::net::TcpStream::from_std(self.socket.try_clone()?)
    }

    /// Writes as much of the backlog (then the waiting snapshot) as the socket takes.
    /// `Ok(None)`: all written. `Ok(Some(t))`: the socket is full; stalled if still at `t`.
    fn drain(&self) -> Result<Option<Instant>, WireError> {
        let mut state = self.state.lock();
        let state = &mut *state;
        loop {
            if state.broken {
                return Err(WireError::Broken);
            }
            let stalled_at =
                |state: &State| state.progress_at.unwrap_or_else(Instant::now) + WRITE_STALL;
            if let Some(tls) = state.tls.as_deref_mut() {
                match write_records(tls, &self.socket) {
                    Ok(n) if n > 0 => state.progress_at = Some(Instant::now()),
                    Ok(_) => {}
                    Err(_) => {
                        state.broken = true;
                        return Err(WireError::Broken);
                    }
                }
                if state.records_waiting() {
                    return Ok(Some(stalled_at(state)));
                }
            }
            if state.backlog.is_empty() {
                if state.backlog.capacity() > BACKLOG_KEEP {
                    state.backlog = Vec::new();
                }
                if state.snapshot.is_empty() {
                    return Ok(None);
                }
                std::mem::swap(&mut state.backlog, &mut state.snapshot);
                state.progress_at = Some(Instant::now());
                self.count(1, state.snapshot_payload);
            }
            let backlog = [IoSlice::new(&state.backlog)];
            match send(&self.socket, state.tls.as_deref_mut(), &backlog) {
                Ok(n) => {
                    state.backlog.drain(..n);
                    state.progress_at = Some(Instant::now());
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Some(stalled_at(state)));
                }
                Err(_) => {
                    state.broken = true;
                    return Err(WireError::Broken);
                }
            }
        }
    }

    /// Reads what the socket holds into `buf` without waiting (opening records first on
    /// an encrypted connection): `WouldBlock` when nothing is there yet. The end of the
    /// stream, with or without a TLS peer's close_notify, reads as the end (0).
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.encrypted {
            return (&self.socket).read(buf);
        }
        let mut state = self.state.lock();
        loop {
            let Some(tls) = state.tls.as_deref_mut() else {
                return Err(io::Error::other("no TLS session"));
            };
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(err) => return Err(err),
            }
            tls.read_tls(&mut SocketReader(&self.socket))?;
            let processed = tls.process_new_packets();
            if tls.wants_write() {
                self.write_session_records(&mut state);
            }
            if let Err(err) = processed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        }
    }
}

impl Drop for Wire {
    /// Tells a TLS peer the session ended on purpose rather than being cut, if the
    /// socket takes the alert now.
    fn drop(&mut self) {
        let state = self.state.get_mut();
        if state.broken {
            return;
        }
        if let Some(tls) = state.tls.as_deref_mut() {
            tls.send_close_notify();
            let _ = write_records(tls, &self.socket);
        }
    }
}

/// Hands `parts` to the socket, sealed into one TLS record first on an encrypted
/// connection. Returns how many of the bytes of `parts` were taken: on a TLS connection,
/// sealed, of which the socket may have taken only some records so far.
fn send(
    socket: &TcpStream,
    tls: Option<&mut ServerConnection>,
    parts: &[IoSlice<'_>],
) -> io::Result<usize> {
    let Some(tls) = tls else {
        return (&*socket).write_vectored(parts);
    };
    write_records(tls, socket)?;
    if tls.wants_write() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let sealed = tls.writer().write_vectored(parts)?;
    write_records(tls, socket)?;
    Ok(sealed)
}

/// Writes the session's sealed records until none are left or the socket is full.
/// Returns the bytes written.
fn write_records(tls: &mut ServerConnection, socket: &TcpStream) -> io::Result<usize> {
    let mut written = 0;
    while tls.wants_write() {
        match tls.write_tls(&mut SocketWriter(socket)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(err),
        }
    }
    Ok(written)
}

/// The socket as the TLS session writes records: without waiting.
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The socket as the TLS session reads records: without waiting.
struct SocketReader<'a>(&'a TcpStream);

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Downlink for Wire {
    fn send_snapshot(&self, queued: &Queued, head: &[u8], body: &[u8]) -> Result<(), Overflow> {
        match Wire::send_snapshot(self, queued, head, body) {
            Err(WireError::Overflow) => Err(Overflow),
            _ => Ok(()),
        }
    }

    fn send_now(&self, payload: &[u8]) -> Result<(), Overflow> {
        match self.send_room_message(payload) {
            Err(WireError::Overflow) => Err(Overflow),
            _ => Ok(()),
        }
    }
}

/// The socket as the WebSocket layer sees it (see `socket`): reads from the socket, and
/// writes through the wire, in order with the room's frames. Writes never wait; a write
/// past the backlog limit fails, which ends the connection.
///
/// A read that finds nothing waits for data, registered with the runtime's poller,
/// unless the reader polls on its own schedule (`poll_on_schedule`): then it is only
/// pending, and no thread is woken when data arrives.
#[derive(Debug)]
pub(crate) struct WireIo {
    wire: Arc<Wire>,
    /// The socket's registration for reading, made when a read first had to wait.
    readable: Option<tokio::net::TcpStream>,
    on_schedule: bool,
    /// On schedule: this look has found the socket empty, so reading again before the
    /// next look would be a system call for nothing.
    dry: bool,
}

impl WireIo {
    pub(crate) fn new(wire: Arc<Wire>) -> WireIo {
        WireIo {
            wire,
            readable: None,
            on_schedule: false,
            dry: false,
        }
    }

    /// From now on the reader looks for data at its own times (a room, at its ticks):
    /// a read that finds nothing is pending, registered for nothing. It may be polled
    /// from a thread outside the runtime.
    pub(crate) fn poll_on_schedule(&mut self) {
        self.on_schedule = true;
        self.readable = None;
    }

    /// On schedule: a new look at the socket begins, so reads go to the socket again.
    pub(crate) fn look_again(&mut self) {
        self.dry = false;
    }

    /// From now on a read that finds nothing waits to be woken when data arrives.
    pub(crate) fn wake_on_data(&mut self) {
        self.on_schedule = false;
        self.dry = false;
    }
}

impl AsyncRead for WireIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.dry {
            return Poll::Pending;
        }
        let room = buf.remaining();
        match this.wire.read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                // Less than asked for: the socket held no more (or ended) just now. On
                // TLS it says only that the session's opened records ran out.
                this.dry = this.on_schedule && !this.wire.encrypted && n < room;
                return Poll::Ready(Ok(()));
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Poll::Ready(Err(err)),
        }
        if this.on_schedule {
            this.dry = true;
            return Poll::Pending;
        }
        let readable = match &mut this.readable {
            Some(readable) => readable,
            None => match this.wire.registered() {
                Ok(readable) => this.readable.insert(readable),
                Err(err) => return Poll::Ready(Err(err)),
            },
        };
        loop {
            ready!(readable.poll_read_ready(cx))?;
            // Reading through the registration: nothing there clears the news of data
            // (which may predate the read above), and news that came meanwhile stays.
            let wire = &this.wire;
            match readable.try_io(Interest::READABLE, || wire.read(buf.initialize_unfilled())) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl WireIo {
    /// Writes the WebSocket layer's own frames (pongs, close frames) through the wire.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.wire.send_raw(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use client::native::Trust;
    use harness::certs::Authority;
    use rustls_pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;
    use crate::net::frame::binary_payloads;
    use crate::net::tls::{Certificates, TlsFiles, server_config};

    /// A wire on one end of a real loopback connection, and the peer's end.
    async fn wire_and_peer() -> (Arc<Wire>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let peer = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server_end, _) = listener.accept().await.expect("accept");
        let socket = server_end.into_std().expect("a std socket");
        (
            Arc::new(Wire::new(socket, None, Arc::new(Metrics::new()))),
            peer,
        )
    }

    /// Sends messages the peer does not read until the socket refuses more, so the
    /// next frame must wait in the backlog.
    fn fill_socket(wire: &Wire) {
        let filler = vec![7u8; 16 * 1024];
        while wire.state.lock().backlog.is_empty() {
            wire.send_message(&filler).expect("under the limit");
        }
    }

    /// A wire over TLS on one end of a real loopback connection, the socket as the
    /// WebSocket layer reads it, and the peer's end (a TLS client trusting a test CA).
    async fn tls_wire_and_peer() -> (Arc<Wire>, WireIo, TlsStream<TcpStream>) {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("skirmish-wire-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for the certificates");
        let authority = Authority::new("wire test CA", Duration::from_secs(86_400)).expect("a CA");
        let leaf = authority
            .issue_localhost(1, Duration::from_secs(86_400))
            .expect("a certificate");
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, &leaf.cert_pem).expect("write the certificate");
        std::fs::write(&files.key, &leaf.key_pem).expect("write the key");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &authority.cert_pem).expect("write the CA");
        let (certificates, _) = Certificates::load(files).expect("load the certificate");
        let acceptor = TlsAcceptor::from(server_config(Arc::new(certificates)).expect("config"));
        let connector = TlsConnector::from(
            Trust::with_ca_file(&ca_file)
                .expect("trust the CA")
                .client_config(),
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let name = ServerName::try_from("localhost").expect("a name");
            connector
                .connect(name, tcp)
                .await
                .expect("client handshake")
        });
        let (tcp, _) = listener.accept().await.expect("accept");
        let (tcp, session) = acceptor
            .accept(tcp)
            .await
            .expect("server handshake")
            .into_inner();
        let peer = client.await.expect("client task");
        let wire = Arc::new(Wire::new(
            tcp.into_std().expect("a std socket"),
            Some(Box::new(session)),
            Arc::new(Metrics::new()),
        ));
        let io = WireIo::new(Arc::clone(&wire));
        (wire, io, peer)
    }

    /// Drives the wire until everything it holds has gone out, then closes it and
    /// returns the payloads of every frame the peer received.
    async fn frames_received<P>(wire: Arc<Wire>, mut peer: P) -> Vec<Vec<u8>>
    where
        P: AsyncRead + Unpin + Send + 'static,
    {
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            peer.read_to_end(&mut received).await.expect("read");
            received
        });
        let driver = {
            let wire = Arc::clone(&wire);
            tokio::spawn(async move { wire.drive().await })
        };
        while {
            let state = wire.state.lock();
            state.backed_up() || !state.snapshot.is_empty()
        } {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        driver.abort();
        let _ = driver.await;
        drop(wire);
        binary_payloads(&reader.await.expect("reader"))
    }

    #[tokio::test]
    async fn frames_the_socket_takes_arrive_whole_and_in_order() {
        let (wire, peer) = wire_and_peer().await;
        let mut queued = Queued::default();
        queued.push(b"welcome");
        queued.push(b"joined");
        wire.send_snapshot(&queued, b"head-", b"shared body")
            .expect("send");
        wire.send_message(&[1u8; 300]).expect("send");
        assert!(wire.state.lock().backlog.is_empty(), "nothing had to wait");
        assert_eq!(
            frames_received(wire, peer).await,
            vec![
                b"welcome".to_vec(),
                b"joined".to_vec(),
                b"head-shared body".to_vec(),
                vec![1u8; 300]
            ]
        );
    }

    #[tokio::test]
    async fn a_backed_up_socket_gets_only_the_newest_snapshot_after_its_backlog() {
        let (wire, peer) = wire_and_peer().await;
        fill_socket(&wire);
        wire.send_snapshot(&Queued::default(), b"old-", b"snapshot")
            .expect("send");
        let mut queued = Queued::default();
        queued.push(b"must arrive");
        wire.send_snapshot(&queued, b"new-", b"snapshot")
            .expect("send");
        let frames = frames_received(wire, peer).await;
        let tail: Vec<&[u8]> = frames[frames.len() - 2..]
            .iter()
            .map(Vec::as_slice)
            .collect();
        assert_eq!(tail, [&b"must arrive"[..], &b"new-snapshot"[..]]);
        assert!(
            !frames.iter().any(|f| f.as_slice() == b"old-snapshot"),
            "the older snapshot was replaced"
        );
    }

    #[tokio::test]
    async fn over_tls_frames_arrive_whole_and_in_order_and_reads_are_opened() {
        let (wire, mut io, mut peer) = tls_wire_and_peer().await;
        peer.write_all(b"from the client").await.expect("send");
        peer.flush().await.expect("flush");
        let mut heard = [0u8; 15];
        tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut heard))
            .await
            .expect("the record arrives")
            .expect("read through the session");
        assert_eq!(&heard, b"from the client");

        let mut queued = Queued::default();
        queued.push(b"welcome");
        wire.send_snapshot(&queued, b"head-", b"shared body")
            .expect("send");
        wire.send_message(&[1u8; 300]).expect("send");
        drop(io);
        assert_eq!(
            frames_received(wire, peer).await,
            vec![
                b"welcome".to_vec(),
                b"head-shared body".to_vec(),
                vec![1u8; 300]
            ],
            "the frames, then a close_notify that ends the stream cleanly"
        );
    }

    #[tokio::test]
    async fn over_tls_a_backed_up_socket_gets_only_the_newest_snapshot_after_its_backlog() {
        let (wire, io, peer) = tls_wire_and_peer().await;
        fill_socket(&wire);
        wire.send_snapshot(&Queued::default(), b"old-", b"snapshot")
            .expect("send");
        let mut queued = Queued::default();
        queued.push(b"must arrive");
        wire.send_snapshot(&queued, b"new-", b"snapshot")
            .expect("send");
        drop(io);
        let frames = frames_received(wire, peer).await;
        let tail: Vec<&[u8]> = frames[frames.len() - 2..]
            .iter()
            .map(Vec::as_slice)
            .collect();
        assert_eq!(tail, [&b"must arrive"[..], &b"new-snapshot"[..]]);
        assert!(
            !frames.iter().any(|f| f.as_slice() == b"old-snapshot"),
            "the older snapshot was replaced"
        );
    }

    #[tokio::test]
    async fn a_sealed_wire_takes_nothing_more_from_the_room() {
        let (wire, peer) = wire_and_peer().await;
        wire.send_snapshot(&Queued::default(), b"before ", b"close")
            .expect("send");
        wire.seal();
        wire.send_message(b"goodbye").expect("send");
        wire.send_snapshot(&Queued::default(), b"after ", b"close")
            .expect("send");
        assert_eq!(
            frames_received(wire, peer).await,
            vec![b"before close".to_vec(), b"goodbye".to_vec()]
        );
    }

    #[tokio::test]
    async fn sealing_drops_a_waiting_snapshot_but_not_the_backlog() {
        let (wire, peer) = wire_and_peer().await;
        fill_socket(&wire);
        wire.send_snapshot(&Queued::default(), b"stale ", b"snapshot")
            .expect("send");
        wire.seal();
        wire.send_message(b"goodbye").expect("send");
        let frames = frames_received(wire, peer).await;
        assert_eq!(frames.last().map(Vec::as_slice), Some(&b"goodbye"[..]));
        assert!(!frames.iter().any(|f| f.as_slice() == b"stale snapshot"));
    }

    #[tokio::test]
    async fn messages_past_the_backlog_limit_overflow() {
        let (wire, _peer) = wire_and_peer().await;
        fill_socket(&wire);
        let message = vec![0u8; 1000];
        let mut queued = 0;
        let overflowed = loop {
            match wire.send_message(&message) {
                Ok(()) => queued += 1,
                Err(err) => break err,
            }
            assert!(queued <= BACKLOG_LIMIT / 1000, "the limit holds");
        };
        assert_eq!(overflowed, WireError::Overflow);
        assert!(queued >= BACKLOG_LIMIT / 1000 - 20, "only {queued} queued");
    }

    /// Looks at the socket again and again, as a room at its ticks would, until a read
    /// comes back.
    async fn look_until_read(io: &mut WireIo, buf: &mut ReadBuf<'_>) {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        // Loopback delivers at once; the bound is generous, for a loaded machine.
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            io.look_again();
            if Pin::new(&mut *io).poll_read(&mut cx, buf).is_ready() {
                return;
            }
            assert!(Instant::now() < give_up, "the bytes never showed");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_reader_on_its_own_schedule_registers_for_nothing_and_finds_what_came_since() {
        let (wire, mut peer) = wire_and_peer().await;
        let mut io = WireIo::new(Arc::clone(&wire));
        io.poll_on_schedule();
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let mut bytes = [0u8; 16];
        let mut buf = ReadBuf::new(&mut bytes);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_pending());
        assert!(
            io.readable.is_none(),
            "nothing to read, and no registration made"
        );

        peer.write_all(b"input").await.expect("send");
        look_until_read(&mut io, &mut buf).await;
        assert_eq!(buf.filled(), b"input");
        assert!(io.readable.is_none(), "still registered for nothing");

        // A short read means the socket was empty: the same look reads no more.
        peer.write_all(b"more").await.expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
        buf.clear();
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_pending());
        look_until_read(&mut io, &mut buf).await;
        assert_eq!(buf.filled(), b"more");

        io.wake_on_data();
        let reader = tokio::spawn(async move {
            let mut heard = [0u8; 5];
            io.read_exact(&mut heard).await.map(|_| heard)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        peer.write_all(b"later").await.expect("send");
        let heard = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("a reader waiting on data is woken by it")
            .expect("reader task")
            .expect("read");
        assert_eq!(&heard, b"later");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_stalls_the_wire() {
        let (wire, _peer) = wire_and_peer().await;
        fill_socket(&wire);
        let started = Instant::now();
        assert_eq!(wire.drive().await, WireError::Stalled);
        assert!(started.elapsed() >= WRITE_STALL);
    }
}
