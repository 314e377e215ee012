//! What a room holds of each connection: the wire its frames go out on, and a way to
//! kick. Every send is a non-blocking write or a bounded queue, so a slow client can
//! never stall the room or grow its memory.

use std::sync::Arc;

use shared::protocol::CloseReason;
use tokio::sync::oneshot;

use crate::wire::{Wire, WireError};

/// The room's end of a connection.
#[derive(Debug)]
pub struct Outbox {
    wire: Arc<Wire>,
    kick: Option<oneshot::Sender<CloseReason>>,
}

/// The client's backlog is full: it reads too slowly to stay.
#[derive(Debug)]
pub struct Overflow;

impl Outbox {
    pub fn new(wire: Arc<Wire>, kick: oneshot::Sender<CloseReason>) -> Outbox {
        Outbox {
            wire,
            kick: Some(kick),
        }
    }

    /// Sends a snapshot (a per-client head and the shared body); if the socket is
    /// backed up, it replaces any snapshot still waiting there.
    pub fn put_snapshot(&self, head: &[u8], body: &[u8]) {
        self.wire.send_snapshot(head, body);
    }

    /// Withdraws the snapshot still waiting for the socket, if any.
    pub fn clear_snapshot(&self) {
        self.wire.clear_snapshot();
    }

    /// Sends a message that must arrive. A connection that is gone is not an error: the
    /// room learns of the leave through its command channel.
    pub fn send_reliable(&self, bytes: &[u8]) -> Result<(), Overflow> {
        match self.wire.send_message(bytes) {
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
