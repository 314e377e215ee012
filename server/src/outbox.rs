//! What a room holds of each connection: the messages queued for it since its last
//! snapshot, the wire they go out on, and a way to kick. Sending never waits, so a slow
//! client can never stall the room or grow its memory.

use std::sync::Arc;

use shared::protocol::CloseReason;
use tokio::sync::oneshot;

use crate::wire::{Queued, Wire, WireError};

/// The room's end of a connection.
#[derive(Debug)]
pub struct Outbox {
    wire: Arc<Wire>,
    kick: Option<oneshot::Sender<CloseReason>>,
    /// Messages that must arrive, waiting for the next snapshot's write.
    queued: Queued,
}

/// The client's backlog is full: it reads too slowly to stay.
#[derive(Debug)]
pub struct Overflow;

impl Outbox {
    pub fn new(wire: Arc<Wire>, kick: oneshot::Sender<CloseReason>) -> Outbox {
        Outbox {
            wire,
            kick: Some(kick),
            queued: Queued::default(),
        }
    }

    /// Queues a message that must arrive. It goes out with the next snapshot, in the
    /// same write and before it, so a client gets one write per snapshot tick.
    pub fn queue(&mut self, payload: &[u8]) {
        self.queued.push(payload);
    }

    /// Writes the queued messages and a snapshot (a per-client head and the shared
    /// body). A connection that is gone is not an error: the room learns of the leave
    /// through its command channel.
    pub fn send_snapshot(&mut self, head: &[u8], body: &[u8]) -> Result<(), Overflow> {
        let sent = self.wire.send_snapshot(&self.queued, head, body);
        self.queued.clear();
        match sent {
            Err(WireError::Overflow) => Err(Overflow),
            _ => Ok(()),
        }
    }

    /// Asks the connection to close with `reason`. Only the first kick counts.
    pub fn kick(&mut self, reason: CloseReason) {
        if let Some(kick) = self.kick.take() {
            let _ = kick.send(reason);
        }
    }
}
