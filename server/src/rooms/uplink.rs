//! How a seated player's messages reach the room: the room reads them itself, on its
//! own ticks, from the player's socket. An arriving message wakes no thread and costs
//! no task; a tick takes whatever has arrived since the last look in one go.

use std::fmt::Debug;

/// A seated player's incoming side, as the room sees it.
pub(crate) trait Uplink: Send + Sync + Debug {
    /// Takes in, without waiting, everything the player sent since the last call: input
    /// into the link's queue, acknowledgements into its slot, chat as a room command,
    /// answers to pings on the wire. A connection that ends or misbehaves here is
    /// closed by its own task; the room hears of it as it always does.
    fn pull(&self);
}
