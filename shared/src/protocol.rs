//! The wire protocol, named by direction: `ClientMsg` goes up, `ServerMsg` comes down.
//! Every message is one binary WebSocket frame, encoded by `codec`.

use serde::{Deserialize, Serialize};

use crate::game::{GameEvent, InputFrame, MatchEnd};
use crate::ids::{PlayerId, ProfileId, Tick};
use crate::map::Map;
use crate::snapshot::{Fixed16, SnapshotBody};

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
        /// The identity token from an earlier welcome, if the client kept one. A token
        /// the server cannot verify is ignored: the player gets a fresh identity.
        token: Option<String>,
        /// Takes back a seat held since a lost connection, instead of joining afresh.
        /// The seat decides the room and the name; `name` and `room` are then unused.
        resume: Option<Resume>,
        /// A seat reserved for this client in a room of this process by another
        /// process of the cluster (`ServerMsg::Redirect`); it decides the room.
        reservation: Option<String>,
        /// Watch `room` without a seat instead of playing: the server answers
        /// `Watching`, sends the room a little in the past, and takes only acks and
        /// pings from then on.
        spectate: bool,
    },
    /// The inputs of the ticks since the last such message, oldest first (at most
    /// `MAX_INPUT_BATCH`, as many as the welcome's `input_batch` asks for), carrying the
    /// newest snapshot the client holds.
    Input {
        /// Low 16 bits of the tick of the newest snapshot applied, once there is one.
        ack: Option<Fixed16>,
        frames: Vec<InputFrame>,
    },
    /// A chat line for the room.
    Chat { text: String },
    /// Round-trip probe; the server answers `Pong` with the same nonce.
    Ping { nonce: u32 },
    /// Acknowledges a snapshot without sending input. Every client acknowledges the
    /// snapshots it applies, on its inputs or with this; the server sends deltas
    /// against them and stops sending to a client whose acks fall too far behind.
    Ack { tick: Fixed16 },
}

/// A request to take back the seat a lost connection left held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The resume token from the newest welcome; each one works once.
    pub token: String,
    /// The newest snapshot the client still holds, so the first snapshot after the
    /// resume can be a delta against it.
    pub newest_tick: Option<Tick>,
}

/// Messages from the server to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// The answer to a good `Hello`: who you are and where you are.
    Welcome(Box<Welcome>),
    /// The state of the room at one tick, as a delta against a snapshot this client
    /// acknowledged, or in full.
    Snapshot(SnapshotMsg),
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
    /// The match just ended: the results table, best placing first.
    MatchResults(Box<MatchResults>),
    /// The match's results are durably saved under this id (`/api/matches/{id}`).
    MatchSaved { match_id: i64 },
    /// Sent just before the server closes the connection, saying why in a form a client
    /// can act on (the WebSocket close frame carries the same code and text).
    Disconnect { reason: CloseReason, detail: String },
    /// A player's connection dropped; their seat is held for them while they reconnect.
    /// (After `Disconnect`, so a client of any version still reads a refusal.)
    PlayerAway { id: PlayerId },
    /// A player who was away is back in their seat.
    PlayerBack { id: PlayerId },
    /// A message from the server's operators to every player, shown prominently.
    Announcement { text: String },
    /// The room lives on another process of the cluster: connect to its game socket at
    /// `url` and say hello again there, with `reservation` (the seat held for this
    /// client) or, for a resume, the same resume token. The connection then closes
    /// with `CloseReason::Moved`.
    Redirect {
        url: String,
        reservation: Option<String>,
    },
    /// The answer to a spectator's `Hello`: the room it watches, as it stood
    /// `delay_ms` ago. Snapshots and the room's messages follow, all that far behind.
    Watching(Box<Watching>),
}

/// What a spectator is told when it starts watching a room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watching {
    pub room: String,
    pub tick_hz: u16,
    pub snapshot_hz: u16,
    /// How far behind the room's present everything this spectator gets is.
    pub delay_ms: u32,
    pub map: Map,
    /// Everyone in the room at the moment the spectator's first snapshot shows.
    pub roster: Vec<RosterEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub player_id: PlayerId,
    /// The nickname as the room knows it (validated and de-duplicated).
    pub name: String,
    pub room: String,
    pub tick_hz: u16,
    pub snapshot_hz: u16,
    /// Ticks of input the client gathers into each `Input` message: the server decides
    /// how many messages it reads per player.
    pub input_batch: u8,
    pub tick: Tick,
    pub map: Map,
    /// Everyone in the room, including the new player.
    pub roster: Vec<RosterEntry>,
    /// The player's lasting identity, and the token that proves it on the next visit.
    pub profile: ProfileId,
    pub token: String,
    /// Takes this seat back after a lost connection, once, within the grace window
    /// (`Hello::resume`). A new one comes with every welcome.
    pub resume_token: String,
    /// This welcome answers a resume: the same player in the same seat, whose state
    /// carries on; the next snapshot may be a delta against the tick the client named.
    pub resumed: bool,
}

/// A finished match as the room shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchResults {
    pub reason: MatchEnd,
    /// Everyone seated when it ended, best placing first.
    pub lines: Vec<ResultLine>,
}

/// One player's line in a match's results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultLine {
    pub id: PlayerId,
    pub profile: ProfileId,
    pub name: String,
    pub kills: u32,
    pub deaths: u32,
    pub shots: u32,
    pub hits: u32,
    pub score: u32,
    /// 1 for the winner; equal scores share a placing.
    pub placing: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub id: PlayerId,
    pub name: String,
    /// Their connection dropped and their seat is held while they reconnect.
    pub away: bool,
}

/// A snapshot on the wire: a small header for one client, then the body that every
/// client with the same baseline shares. Encoded as the header's bytes followed by the
/// body's, so the body can be encoded once and copied behind each header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMsg {
    pub header: SnapshotHeader,
    pub body: SnapshotBody,
}

/// Which tick a snapshot describes, and against what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickRef {
    /// A full snapshot of this tick.
    Full(Tick),
    /// A delta against the acknowledged snapshot whose tick has these low 16 bits,
    /// describing the tick `after` ticks later.
    Delta { baseline_low: u16, after: u32 },
}

/// The per-client part of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub tick: TickRef,
    /// Low 16 bits of the last input sequence of this client that the state includes.
    pub ack_input_low: u16,
    /// This client's own velocity, which prediction needs and others' views do not.
    /// `None` when at rest.
    pub own_vel: Option<[i16; 2]>,
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
    /// The server runs as many rooms as it may, and the request needed a new one.
    RoomLimit,
    /// This address opened too many new rooms in a short time.
    TooManyNewRooms,
    /// The room failed inside the server; its players were let go.
    RoomCrashed,
    /// A resume token was tampered with, used already, or outlived its seat.
    ResumeRefused,
    /// The seat was taken back by a newer connection of the same player.
    Replaced,
    /// An operator removed the player (from the console or its API); the seat is not
    /// held. The detail says "kicked by an operator", and the operator's reason if any.
    Kicked,
    /// The room lives on another process; the `Redirect` just sent says where.
    Moved,
    /// The room has as many spectators as it admits.
    SpectatorsFull,
    /// A spectator sent something other than an acknowledgement or a ping.
    SpectatorOnly,
    /// The room a spectator asked for is not open.
    NoSuchRoom,
}

impl CloseReason {
    /// Every reason (a `VersionMismatch` stands for all of its versions), so counts by
    /// reason can list them all.
    pub const ALL: [CloseReason; 19] = [
        CloseReason::VersionMismatch { server: 0 },
        CloseReason::RoomFull,
        CloseReason::BadName,
        CloseReason::Malformed,
        CloseReason::TooBig,
        CloseReason::Flood,
        CloseReason::Timeout,
        CloseReason::TooSlow,
        CloseReason::ServerShutdown,
        CloseReason::RoomLimit,
        CloseReason::TooManyNewRooms,
        CloseReason::RoomCrashed,
        CloseReason::ResumeRefused,
        CloseReason::Replaced,
        CloseReason::Kicked,
        CloseReason::Moved,
        CloseReason::SpectatorsFull,
        CloseReason::SpectatorOnly,
        CloseReason::NoSuchRoom,
    ];

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
            CloseReason::RoomLimit => 4004,
            CloseReason::TooManyNewRooms => 4005,
            CloseReason::RoomCrashed => 1011,
            CloseReason::ResumeRefused => 4006,
            CloseReason::Replaced => 4007,
            CloseReason::Kicked => 4008,
            CloseReason::Moved => 4009,
            CloseReason::SpectatorsFull => 4010,
            CloseReason::SpectatorOnly => 4011,
            CloseReason::NoSuchRoom => 4012,
        }
    }

    /// The refusal a close code stands for, for a close that came without a
    /// `Disconnect` message. Only the codes that name one reason are mapped.
    pub fn from_close_code(code: u16) -> Option<CloseReason> {
        match code {
            4001 => Some(CloseReason::VersionMismatch { server: 0 }),
            4002 => Some(CloseReason::RoomFull),
            4003 => Some(CloseReason::BadName),
            4004 => Some(CloseReason::RoomLimit),
            4005 => Some(CloseReason::TooManyNewRooms),
            1011 => Some(CloseReason::RoomCrashed),
            4006 => Some(CloseReason::ResumeRefused),
            4007 => Some(CloseReason::Replaced),
            4008 => Some(CloseReason::Kicked),
            4009 => Some(CloseReason::Moved),
            4010 => Some(CloseReason::SpectatorsFull),
            4011 => Some(CloseReason::SpectatorOnly),
            4012 => Some(CloseReason::NoSuchRoom),
            _ => None,
        }
    }

    /// A stable snake_case name, for metric labels and logs.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::VersionMismatch { .. } => "version_mismatch",
            CloseReason::RoomFull => "room_full",
            CloseReason::BadName => "bad_name",
            CloseReason::Malformed => "malformed",
            CloseReason::TooBig => "too_big",
            CloseReason::Flood => "flood",
            CloseReason::Timeout => "timeout",
            CloseReason::TooSlow => "too_slow",
            CloseReason::ServerShutdown => "server_shutdown",
            CloseReason::RoomLimit => "room_limit",
            CloseReason::TooManyNewRooms => "too_many_new_rooms",
            CloseReason::RoomCrashed => "room_crashed",
            CloseReason::ResumeRefused => "resume_refused",
            CloseReason::Replaced => "replaced",
            CloseReason::Kicked => "kicked",
            CloseReason::Moved => "moved",
            CloseReason::SpectatorsFull => "spectators_full",
            CloseReason::SpectatorOnly => "spectator_only",
            CloseReason::NoSuchRoom => "no_such_room",
        }
    }
}

mod header_flags {
    pub const DELTA: u8 = 1 << 0;
    pub const OWN_VEL: u8 = 1 << 1;
}

// The header leads with a flag byte, so a full snapshot, a delta and a client at rest
// each carry only what they need; see `snapshot` for the same pattern in the body.
impl Serialize for SnapshotHeader {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut flags = 0;
        if matches!(self.tick, TickRef::Delta { .. }) {
            flags |= header_flags::DELTA;
        }
        if self.own_vel.is_some() {
            flags |= header_flags::OWN_VEL;
        }
        let mut tuple = serializer.serialize_tuple(6)?;
        tuple.serialize_element(&flags)?;
        match self.tick {
            TickRef::Full(tick) => tuple.serialize_element(&tick.0.to_le_bytes())?,
            TickRef::Delta {
                baseline_low,
                after,
            } => {
                tuple.serialize_element(&Fixed16(baseline_low))?;
                tuple.serialize_element(&after)?;
            }
        }
        tuple.serialize_element(&Fixed16(self.ack_input_low))?;
        if let Some(vel) = self.own_vel {
            tuple.serialize_element(&vel)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for SnapshotHeader {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};
        struct HeaderVisitor;
        fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
            seq.next_element()?
                .ok_or_else(|| A::Error::custom("snapshot header ended early"))
        }
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = SnapshotHeader;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a snapshot header")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SnapshotHeader, A::Error> {
                let flags: u8 = next(&mut seq)?;
                let tick = if flags & header_flags::DELTA != 0 {
                    let baseline_low: Fixed16 = next(&mut seq)?;
                    TickRef::Delta {
                        baseline_low: baseline_low.0,
                        after: next(&mut seq)?,
                    }
                } else {
                    TickRef::Full(Tick(u32::from_le_bytes(next(&mut seq)?)))
                };
                let ack_input_low: Fixed16 = next(&mut seq)?;
                let own_vel = if flags & header_flags::OWN_VEL != 0 {
                    Some(next(&mut seq)?)
                } else {
                    None
                };
                Ok(SnapshotHeader {
                    tick,
                    ack_input_low: ack_input_low.0,
                    own_vel,
                })
            }
        }
        deserializer.deserialize_tuple(6, HeaderVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason, so a new one cannot be left out of the checks below.
    const REASONS: [CloseReason; 19] = CloseReason::ALL;

    /// Fails to compile when a reason is added without a place in `CloseReason::ALL`.
    fn position_in_all(reason: CloseReason) -> usize {
        match reason {
            CloseReason::VersionMismatch { .. } => 0,
            CloseReason::RoomFull => 1,
            CloseReason::BadName => 2,
            CloseReason::Malformed => 3,
            CloseReason::TooBig => 4,
            CloseReason::Flood => 5,
            CloseReason::Timeout => 6,
            CloseReason::TooSlow => 7,
            CloseReason::ServerShutdown => 8,
            CloseReason::RoomLimit => 9,
            CloseReason::TooManyNewRooms => 10,
            CloseReason::RoomCrashed => 11,
            CloseReason::ResumeRefused => 12,
            CloseReason::Replaced => 13,
            CloseReason::Kicked => 14,
            CloseReason::Moved => 15,
            CloseReason::SpectatorsFull => 16,
            CloseReason::SpectatorOnly => 17,
            CloseReason::NoSuchRoom => 18,
        }
    }

    #[test]
    fn all_lists_every_reason_once_in_order() {
        for (idx, reason) in CloseReason::ALL.into_iter().enumerate() {
            assert_eq!(position_in_all(reason), idx, "{reason:?}");
        }
    }

    #[test]
    fn every_close_reason_has_a_valid_close_code() {
        for reason in REASONS {
            let code = reason.close_code();
            assert!(
                matches!(code, 1001 | 1007..=1009 | 1011 | 4000..=4999),
                "{reason:?} -> {code}"
            );
        }
    }

    #[test]
    fn refusal_codes_map_back_to_their_reason() {
        for reason in REASONS {
            if let Some(back) = CloseReason::from_close_code(reason.close_code()) {
                assert_eq!(back.label(), reason.label(), "code {}", reason.close_code());
            }
        }
        assert_eq!(
            CloseReason::from_close_code(4005),
            Some(CloseReason::TooManyNewRooms)
        );
        assert_eq!(CloseReason::from_close_code(1000), None);
        assert_eq!(
            CloseReason::from_close_code(4008),
            Some(CloseReason::Kicked),
            "a kick is told apart from every other close"
        );
    }

    #[test]
    fn labels_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for reason in REASONS {
            let label = reason.label();
            assert!(
                !label.is_empty() && label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{reason:?} has label {label:?}"
            );
            assert!(seen.insert(label), "{label} is used twice");
        }
    }
}
