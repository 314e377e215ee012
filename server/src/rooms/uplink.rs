//! How a seated player's messages reach the room: the room reads them itself, on its
//! own ticks, from the player's socket. An arriving message wakes no thread and costs
//! no task; a look takes whatever has arrived since the last one in one go.
//!
//! A look at a socket with nothing in it still costs a system call, so the room looks
//! on snapshot ticks only, when a snapshot interval's input (a frame a tick) is no
//! more than one tick may apply (`MAX_INPUTS_PER_TICK`): input read then shows in the
//! same snapshot as input read the moment it arrived. With more ticks a snapshot the
//! room looks every tick. The snapshot's baseline comes from the newest
//! acknowledgement; chat, pings and floods wait at most a snapshot interval. The
//! uplink itself looks every tick for a while after it sends a ping, so the round trip
//! it measures from the pong is off by a tick at most.

use std::fmt::Debug;

use crate::rooms::input_queue::InputQueue;

/// A seated player's incoming side, as the room sees it.
pub(crate) trait Uplink: Send + Sync + Debug {
    /// Takes in, without waiting, everything the player sent since the last look:
    /// input into `inputs` (the link's queue), acknowledgements into its slot, chat as
    /// a room command, answers to pings on the wire. `due`: the room needs what may have
    /// come; without it the uplink looks only if it has its own reason to. A connection
    /// that ends or misbehaves here is closed by its own task; the room hears of it as
    /// it always does.
    fn pull(&self, due: bool, inputs: &mut InputQueue);
}
