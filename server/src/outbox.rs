//! What a room hands a connection: a latest-wins slot for snapshots, a small bounded
//! queue for messages that must arrive, and a way to kick. The room only ever does
//! non-blocking sends, so a slow client can never stall it or grow its memory.

use bytes::Bytes;
use shared::protocol::CloseReason;
use tokio::sync::{mpsc, oneshot, watch};

/// Messages that must arrive (welcome, joins, chat, events) that may wait for one client.
pub const RELIABLE_QUEUE: usize = 256;

/// The room's end.
#[derive(Debug)]
pub struct OutboxTx {
    snapshot: watch::Sender<Bytes>,
    reliable: mpsc::Sender<Bytes>,
    kick: Option<oneshot::Sender<CloseReason>>,
}

/// The connection writer's end.
#[derive(Debug)]
pub struct OutboxRx {
    pub snapshot: watch::Receiver<Bytes>,
    pub reliable: mpsc::Receiver<Bytes>,
    pub kick: oneshot::Receiver<CloseReason>,
}

pub fn outbox() -> (OutboxTx, OutboxRx) {
    let (snapshot_tx, snapshot_rx) = watch::channel(Bytes::new());
    let (reliable_tx, reliable_rx) = mpsc::channel(RELIABLE_QUEUE);
    let (kick_tx, kick_rx) = oneshot::channel();
    (
        OutboxTx {
            snapshot: snapshot_tx,
            reliable: reliable_tx,
            kick: Some(kick_tx),
        },
        OutboxRx {
            snapshot: snapshot_rx,
            reliable: reliable_rx,
            kick: kick_rx,
        },
    )
}

/// The client's reliable queue is full: it reads too slowly to stay.
#[derive(Debug)]
pub struct Overflow;

impl OutboxTx {
    /// Replaces any snapshot the writer has not sent yet.
    pub fn put_snapshot(&self, bytes: Bytes) {
        self.snapshot.send_replace(bytes);
    }

    /// Withdraws the snapshot the writer has not sent yet, if any.
    pub fn clear_snapshot(&self) {
        self.snapshot.send_if_modified(|pending| {
            pending.clear();
            false
        });
    }

    /// Queues a message that must arrive. A closed connection is not an error: the
    /// room learns of the leave through its command channel.
    pub fn send_reliable(&self, bytes: Bytes) -> Result<(), Overflow> {
        match self.reliable.try_send(bytes) {
            Err(mpsc::error::TrySendError::Full(_)) => Err(Overflow),
            _ => Ok(()),
        }
    }

    /// A clone of the reliable sender, for replies the connection sends itself (pong).
    pub fn reliable_sender(&self) -> mpsc::Sender<Bytes> {
        self.reliable.clone()
    }

    /// Asks the connection to close with `reason`. Only the first kick counts.
    pub fn kick(&mut self, reason: CloseReason) {
        if let Some(kick) = self.kick.take() {
            let _ = kick.send(reason);
        }
    }
}
