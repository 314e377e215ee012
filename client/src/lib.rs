//! The Skirmish client. The platform-free core rebuilds the room from what the server
//! sends (`core`), predicts the local player (`predict`), interpolates everyone else
//! (`interp`) and ties them into a `session`; `sticks` turns touches into input.
//! `native` and `bots` drive it from a native process; `web` is the browser shell.

pub mod backoff;
pub mod core;
pub mod interp;
pub mod netstats;
pub mod predict;
pub mod session;
pub mod sticks;

#[cfg(not(target_arch = "wasm32"))]
pub mod bots;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
mod web;
