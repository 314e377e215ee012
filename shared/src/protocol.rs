//! The wire protocol, named by direction: `ClientMsg` goes up, `ServerMsg` comes down.
//! Every message is one binary WebSocket frame, encoded by `codec`.

use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::ids::{PlayerId, Seq, Tick};
use crate::map::Map;

/// Messages from a client to the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// First message on a connection. Must stay variant 0 with `protocol` first, so any
    /// future server can read the version of any past client and refuse it clearly.
    Hello {
        /// The client's `PROTOCOL_VERSION`.
        protocol: u16,
        /// Requested nickname; the server validates it and may add a suffix.
        name: String,
        /// Room to join by name; `None` means join-or-create.
        room: Option<String>,
    },
    /// One tick's worth of input.
    Input(InputFrame),
    /// A chat line for the room.
    Chat { text: String },
    /// Round-trip probe; the server answers `Pong` with the same nonce.
    Ping { nonce: u32 },
}

/// Buttons held during one client tick.
pub mod buttons {
    pub const UP: u8 = 1 << 0;
    pub const DOWN: u8 = 1 << 1;
    pub const LEFT: u8 = 1 << 2;
    pub const RIGHT: u8 = 1 << 3;
    pub const FIRE: u8 = 1 << 4;
    /// Every bit that means something; the server masks off the rest.
    pub const ALL: u8 = UP | DOWN | LEFT | RIGHT | FIRE;
}

/// The input for one simulation tick of the sending player. Carries no position: the
/// server simulates movement itself and never trusts a client's idea of where it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputFrame {
    /// Increases by one per frame; the server applies frames in this order, once each.
    pub seq: Seq,
    /// Bit set of `buttons`.
    pub buttons: u8,
    /// Aim angle in radians, 0 along +x, counter-clockwise towards +y.
    pub aim: f32,
}

/// Why an input frame cannot be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// The aim is NaN or infinite; no honest client produces one.
    #[error("aim is not a finite number")]
    NonFiniteAim,
}

impl InputFrame {
    /// The frame as the server applies it: unknown button bits cleared and the aim wrapped
    /// into (-pi, pi]. A frame no honest client could send is an error.
    pub fn validated(self) -> Result<InputFrame, InvalidInput> {
        if !self.aim.is_finite() {
            return Err(InvalidInput::NonFiniteAim);
        }
        let tau = core::f32::consts::TAU;
        let mut aim = self.aim % tau;
        if aim > core::f32::consts::PI {
            aim -= tau;
        } else if aim <= -core::f32::consts::PI {
            aim += tau;
        }
        Ok(InputFrame {
            seq: self.seq,
            buttons: self.buttons & buttons::ALL,
            aim,
        })
    }
}

/// Messages from the server to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// The answer to a good `Hello`: who you are and where you are.
    Welcome(Box<Welcome>),
    /// The state of the room at one tick.
    Snapshot(Snapshot),
    /// Someone entered the room.
    PlayerJoined { id: PlayerId, name: String },
    /// Someone left the room; their entity is gone from later snapshots.
    PlayerLeft { id: PlayerId },
    /// Something happened in the game that a client shows once.
    Event(GameEvent),
    /// A chat line, stamped by the server with its sender.
    Chat {
        from: PlayerId,
        name: String,
        text: String,
    },
    /// Answer to `Ping`.
    Pong { nonce: u32 },
    /// A line from the server itself for this player only, such as a chat limit reached.
    Notice { text: String },
    /// Sent just before the server closes the connection, saying why in a form a client
    /// can act on (the WebSocket close frame carries the same code and text).
    Disconnect { reason: CloseReason, detail: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub player_id: PlayerId,
    /// The nickname as the room knows it (validated and de-duplicated).
    pub name: String,
    pub room: String,
    pub tick_hz: u16,
    pub snapshot_hz: u16,
    pub tick: Tick,
    pub map: Map,
    /// Everyone in the room, including the new player.
    pub roster: Vec<RosterEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub id: PlayerId,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub tick: Tick,
    /// The last input sequence of the receiving player that this state includes.
    pub ack_input: Seq,
    pub players: Vec<PlayerState>,
    pub projectiles: Vec<ProjectileState>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlayerState {
    pub id: PlayerId,
    pub pos: Vec2,
    pub vel: Vec2,
    pub aim: f32,
    /// 0 while dead.
    pub health: u8,
    pub alive: bool,
    pub score: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectileState {
    pub id: u16,
    pub owner: PlayerId,
    pub pos: Vec2,
    pub vel: Vec2,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum GameEvent {
    Hit { target: PlayerId, by: PlayerId },
    Killed { victim: PlayerId, by: PlayerId },
    Respawned { id: PlayerId },
}

/// Why the server ends a connection. Each maps to one WebSocket close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The client speaks another protocol version.
    VersionMismatch { server: u16 },
    /// The requested room has no free seat.
    RoomFull,
    /// The nickname or room name is not acceptable.
    BadName,
    /// A frame did not decode, or was not binary, or came out of order.
    Malformed,
    /// A frame was larger than the server accepts.
    TooBig,
    /// The client sent more than its rate limit.
    Flood,
    /// The client did not say hello, or stopped answering, in time.
    Timeout,
    /// The client read too slowly for the messages that must reach it.
    TooSlow,
    /// The server is shutting down or restarting.
    ServerShutdown,
}

impl CloseReason {
    /// The WebSocket close code: standard codes where one fits, 4000-4999 for the rest.
    pub fn close_code(self) -> u16 {
        match self {
            CloseReason::ServerShutdown => 1001,
            CloseReason::Malformed => 1007,
            CloseReason::Flood | CloseReason::Timeout | CloseReason::TooSlow => 1008,
            CloseReason::TooBig => 1009,
            CloseReason::VersionMismatch { .. } => 4001,
            CloseReason::RoomFull => 4002,
            CloseReason::BadName => 4003,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_masks_unknown_buttons_and_wraps_aim() {
        let frame = InputFrame {
            seq: Seq(3),
            buttons: 0xFF,
            aim: 3.0 * core::f32::consts::PI,
        };
        let valid = frame.validated().expect("finite aim is valid");
        assert_eq!(valid.buttons, buttons::ALL);
        assert!(
            (valid.aim - core::f32::consts::PI).abs() < 1e-4,
            "aim {}",
            valid.aim
        );
        assert_eq!(valid.seq, Seq(3));
    }

    #[test]
    fn validation_refuses_non_finite_aim() {
        for aim in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let frame = InputFrame {
                aim,
                ..InputFrame::default()
            };
            assert_eq!(frame.validated(), Err(InvalidInput::NonFiniteAim));
        }
    }

    #[test]
    fn every_close_reason_has_a_valid_close_code() {
        let reasons = [
            CloseReason::VersionMismatch { server: 1 },
            CloseReason::RoomFull,
            CloseReason::BadName,
            CloseReason::Malformed,
            CloseReason::TooBig,
            CloseReason::Flood,
            CloseReason::Timeout,
            CloseReason::TooSlow,
            CloseReason::ServerShutdown,
        ];
        for reason in reasons {
            let code = reason.close_code();
            assert!(
                matches!(code, 1001 | 1007..=1009 | 4000..=4999),
                "{reason:?} -> {code}"
            );
        }
    }
}
