//! Everything the server and the clients must agree on: the wire protocol and its codec,
//! the tick constants and limits, and the game rules as a pure, deterministic step.
//! No I/O and no clock live here, so the same code runs natively and in wasm32.

pub mod codec;
pub mod consts;
pub mod game;
pub mod ids;
pub mod lobby;
pub mod map;
pub mod protocol;
pub mod quant;
pub mod replay;
pub mod snapshot;
pub mod text;
pub mod view;

pub use ids::{PlayerId, ProfileId, Seq, Tick};
pub use map::Map;
pub use protocol::{ClientMsg, ServerMsg};
