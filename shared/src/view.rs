//! The room as a client sees it: the state one snapshot describes once decoded, with
//! positions back in world units. The simulation produces these; snapshots carry them.

use glam::Vec2;

use crate::game::MatchClock;
use crate::ids::{PlayerId, Seq, Tick};

/// The room's state at one tick, as a client reconstructs it from snapshots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub tick: Tick,
    /// The last input sequence of the receiving player that this state includes.
    pub ack_input: Seq,
    pub players: Vec<PlayerState>,
    pub projectiles: Vec<ProjectileState>,
    /// The match phase and the tick it ends at.
    pub clock: MatchClock,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlayerState {
    pub id: PlayerId,
    pub pos: Vec2,
    /// Known for the receiving client's own player only; zero for the others.
    pub vel: Vec2,
    pub aim: f32,
    /// 0 while dead.
    pub health: u8,
    pub alive: bool,
    pub score: u16,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProjectileState {
    pub id: u8,
    pub owner: PlayerId,
    pub pos: Vec2,
    pub vel: Vec2,
}
