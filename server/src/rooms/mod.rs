//! The rooms layer: the directory of rooms and their seats, each room's world and
//! players, and the threads that tick them. Rooms reach connections only through the
//! `Downlink` their outboxes write to and the `Uplink` they read from, so they run
//! without sockets in their tests.

pub(crate) mod ack;
pub(crate) mod directory;
pub(crate) mod input_queue;
pub(crate) mod inspect;
pub(crate) mod link_stats;
pub(crate) mod listing;
pub(crate) mod operator;
pub(crate) mod outbox;
mod outgoing;
mod recorder;
pub(crate) mod results;
mod rewind_judge;
pub(crate) mod room;
pub(crate) mod runner;
pub(crate) mod scheduler;
pub(crate) mod seat_token;
mod snapshots;
pub(crate) mod spectators;
pub(crate) mod uplink;

#[cfg(test)]
mod tests;
