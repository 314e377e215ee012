//! What a room holds of each connection: the messages queued for it since its last
//! snapshot, the downlink they go out on, and a way to kick. Sending never waits, so a
//! slow client can never stall the room or grow its memory.

use std::fmt;
use std::sync::Arc;

use shared::protocol::CloseReason;
use tokio::sync::oneshot;

use crate::net::frame::binary_header;

/// Where a room's frames for one client go: the socket's sending side in the server
/// (`net::wire::Wire`), an in-memory recorder in the room's tests. Implementations never
/// block; what the client cannot take at once is theirs to hold or refuse.
pub(crate) trait Downlink: Send + Sync + fmt::Debug {
    /// Writes the `queued` messages (which must arrive) and then a snapshot made of a
    /// per-client head and the shared body, in one write where the socket allows.
    fn send_snapshot(&self, queued: &Queued, head: &[u8], body: &[u8]) -> Result<(), Overflow>;

    /// Writes one message that must arrive now rather than with the next snapshot
    /// (a spectator's first word, whose first snapshot may be seconds away). Nothing is
    /// written once the connection has begun to close.
    fn send_now(&self, payload: &[u8]) -> Result<(), Overflow>;
}

/// Messages that must arrive, framed as binary WebSocket frames and waiting for the
/// next snapshot's write.
#[derive(Debug, Default)]
pub(crate) struct Queued {
    pub(crate) frames: Vec<u8>,
    pub(crate) messages: u64,
    pub(crate) payload: u64,
}

impl Queued {
    /// A queue that held a burst (a welcome, say) keeps at most this much of its buffer.
    const KEEP: usize = 512;

    /// Appends `payload` as a whole binary frame.
    pub(crate) fn push(&mut self, payload: &[u8]) {
        let (header, header_len) = binary_header(payload.len());
        self.frames.extend_from_slice(&header[..header_len]);
        self.frames.extend_from_slice(payload);
        self.messages += 1;
        self.payload += payload.len() as u64;
    }

    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        if self.frames.capacity() > Self::KEEP {
            self.frames = Vec::new();
        }
        self.messages = 0;
        self.payload = 0;
    }
}

/// Why the room lets a connection go: the reason, and what to tell the client in place
/// of the reason's usual words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Kick {
    pub(crate) reason: CloseReason,
    pub(crate) detail: Option<String>,
}

/// The client's backlog is full: it reads too slowly to stay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

/// The room's end of a connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    downlink: Arc<dyn Downlink>,
    kick: Option<oneshot::Sender<Kick>>,
    /// Messages that must arrive, waiting for the next snapshot's write.
    queued: Queued,
    /// Payload bytes handed to the downlink, for the console's inspector.
    sent_bytes: u64,
}

impl Outbox {
    pub(crate) fn new(downlink: Arc<dyn Downlink>, kick: oneshot::Sender<Kick>) -> Outbox {
        Outbox {
            downlink,
            kick: Some(kick),
            queued: Queued::default(),
            sent_bytes: 0,
        }
    }

    /// Queues a message that must arrive. It goes out with the next snapshot, in the
    /// same write and before it, so a client gets one write per snapshot tick.
    pub(crate) fn queue(&mut self, payload: &[u8]) {
        self.queued.push(payload);
    }

    /// Writes the queued messages and a snapshot (a per-client head and the shared
    /// body). A connection that is gone is not an error: the room learns of the leave
    /// through its command channel.
    pub(crate) fn send_snapshot(&mut self, head: &[u8], body: &[u8]) -> Result<(), Overflow> {
        let sent = self.downlink.send_snapshot(&self.queued, head, body);
        self.sent_bytes += self.queued.payload + (head.len() + body.len()) as u64;
        self.queued.clear();
        sent
    }

    /// Writes a message that must arrive at once, ahead of anything queued later.
    pub(crate) fn send_now(&mut self, payload: &[u8]) -> Result<(), Overflow> {
        self.sent_bytes += payload.len() as u64;
        self.downlink.send_now(payload)
    }

    /// Payload bytes written (or handed to the backlog) so far.
    pub(crate) fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }

    /// Asks the connection to close with `reason`. Only the first kick counts.
    pub(crate) fn kick(&mut self, reason: CloseReason) {
        self.kick_with(reason, None);
    }

    /// Asks the connection to close with `reason`, telling the client `detail` instead
    /// of the reason's usual words. Only the first kick counts.
    pub(crate) fn kick_with(&mut self, reason: CloseReason, detail: Option<String>) {
        if let Some(kick) = self.kick.take() {
            let _ = kick.send(Kick { reason, detail });
        }
    }
}
