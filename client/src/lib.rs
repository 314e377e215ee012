//! The Skirmish client. `core` is platform-free (it decodes and applies what the server
//! sends) and is shared by every client; `native` speaks the protocol over a real
//! WebSocket from a native process, and `bots` plays with it headlessly.

pub mod core;

#[cfg(not(target_arch = "wasm32"))]
pub mod bots;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
