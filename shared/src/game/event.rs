//! Things that happen in the game and that a client shows once: hits, kills, respawns,
//! and the ends and starts of matches.

use serde::{Deserialize, Serialize};

use crate::game::matches::MatchEnd;
use crate::ids::PlayerId;

/// One happening in a room's step, in the order the step saw it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum GameEvent {
    Hit {
        target: PlayerId,
        by: PlayerId,
    },
    Killed {
        victim: PlayerId,
        by: PlayerId,
    },
    Respawned {
        id: PlayerId,
    },
    /// The match is over; its results stand until the next one starts.
    MatchOver {
        reason: MatchEnd,
    },
    /// A new match has started: scores are reset and everyone is respawned.
    MatchStarted,
}
