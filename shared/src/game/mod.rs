//! The game rules as a pure, deterministic step: the same state, inputs and `dt` always
//! give the same next state, on the server and in client prediction alike.

pub mod collide;
pub mod event;
pub mod input;
pub mod matches;
pub mod movement;
pub mod rewind;
pub mod world;

pub use event::GameEvent;
pub use input::{InputFrame, InvalidInput, ViewTime, buttons};
pub use matches::{MatchClock, MatchEnd, MatchRules, Phase};
pub use movement::{Body, step_body};
pub use world::{MatchStats, Player, Projectile, World};
