//! Things that happen in the game and that a client shows once: hits, kills, respawns.

use serde::{Deserialize, Serialize};

use crate::ids::PlayerId;

/// One happening in a room's step, in the order the step saw it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum GameEvent {
    Hit { target: PlayerId, by: PlayerId },
    Killed { victim: PlayerId, by: PlayerId },
    Respawned { id: PlayerId },
}
