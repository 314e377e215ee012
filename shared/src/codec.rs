//! The one place where messages become bytes and back. Everything else calls these
//! functions, so the encoding (bincode 2, standard config) could be swapped here alone.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::{Serialize, de::DeserializeOwned};

use crate::consts::{
    MAX_CLIENT_MSG_BYTES, MAX_LOBBY_MSG_BYTES, MAX_REPLAY_FRAME_BYTES, MAX_SERVER_MSG_BYTES,
};
use crate::lobby::LobbyMsg;
use crate::protocol::{ClientMsg, ServerMsg, SnapshotHeader};
use crate::replay::ReplayFrame;
use crate::snapshot::SnapshotBody;

/// Why a frame could not be read as a message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The frame is longer than any valid message in this direction.
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    /// The bytes are not a message (bad tag, truncated, a length beyond the limit, bad UTF-8).
    #[error("undecodable frame: {0}")]
    Invalid(#[from] bincode::error::DecodeError),
    /// A message decoded but bytes were left over, so the frame was not what it claimed.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes { extra: usize },
}

const fn config<const LIMIT: usize>() -> Configuration<LittleEndian, Varint, Limit<LIMIT>> {
    bincode::config::standard().with_limit::<LIMIT>()
}

fn encode<T: Serialize>(msg: &T, out: &mut Vec<u8>) {
    // Invariant: every protocol type is a plain serde data type (no maps with non-string
    // keys, no unsized sequences) and the target is a Vec, so encoding cannot fail.
    bincode::serde::encode_into_std_write(msg, out, bincode::config::standard())
        .expect("protocol types always encode");
}

/// Decodes exactly one message that must fill the frame. The size limit bounds every
/// length prefix inside, so a hostile prefix cannot make the decoder allocate more.
fn decode<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > LIMIT {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit: LIMIT,
        });
    }
    let (msg, used) = bincode::serde::decode_from_slice(bytes, config::<LIMIT>())?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(msg)
}

pub fn encode_client(msg: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode(msg, &mut out);
    out
}

pub fn encode_server(msg: &ServerMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(msg, &mut out);
    out
}

/// Encodes the shared part of a snapshot, once for every client with its baseline.
pub fn encode_snapshot_body(body: &SnapshotBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(body, &mut out);
    out
}

/// The index of `ServerMsg::Snapshot` among the variants, which bincode writes first.
const SNAPSHOT_VARIANT: u32 = 1;

/// Appends the start of a `ServerMsg::Snapshot` for one client to `out`. Followed by a
/// body from `encode_snapshot_body`, it makes the same bytes `encode_server` would give,
/// without re-encoding (or copying) the body for every client.
pub fn encode_snapshot_head(header: &SnapshotHeader, out: &mut Vec<u8>) {
    encode(&SNAPSHOT_VARIANT, out);
    encode(header, out);
}

/// A whole `ServerMsg::Snapshot`: one client's head followed by a shared body.
pub fn encode_snapshot(header: &SnapshotHeader, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    encode_snapshot_head(header, &mut out);
    out.extend_from_slice(body);
    out
}

/// True if a server frame holds a snapshot, read from its first byte without decoding.
pub fn is_snapshot_frame(bytes: &[u8]) -> bool {
    bytes.first() == Some(&(SNAPSHOT_VARIANT as u8))
}

/// How many bytes a value takes on the wire; for measuring, not for sending.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut out = Vec::new();
    encode(value, &mut out);
    out.len()
}

pub fn decode_client(bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    decode::<ClientMsg, MAX_CLIENT_MSG_BYTES>(bytes)
}

pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode::<ServerMsg, MAX_SERVER_MSG_BYTES>(bytes)
}

/// Encodes a lobby feed message, once for every lobby connection.
pub fn encode_lobby(msg: &LobbyMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(msg, &mut out);
    out
}

pub fn decode_lobby(bytes: &[u8]) -> Result<LobbyMsg, DecodeError> {
    decode::<LobbyMsg, MAX_LOBBY_MSG_BYTES>(bytes)
}

/// Appends one replay frame's payload (without its length and checksum) to `out`.
pub fn encode_replay_frame(frame: &ReplayFrame, out: &mut Vec<u8>) {
    encode(frame, out);
}

pub fn decode_replay_frame(bytes: &[u8]) -> Result<ReplayFrame, DecodeError> {
    decode::<ReplayFrame, MAX_REPLAY_FRAME_BYTES>(bytes)
}

/// Reads the protocol version from a frame that starts like a `Hello` of any version,
/// even one this build cannot decode in full. `Hello` is variant 0 and its first field is
/// the version, a layout every version keeps.
pub fn peek_hello_version(bytes: &[u8]) -> Option<u16> {
    let (tag, version): (u32, u16) = bincode::serde::decode_from_slice(bytes, config::<16>())
        .ok()?
        .0;
    (tag == 0).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::PROTOCOL_VERSION;
    use crate::game::{GameEvent, InputFrame, MatchClock, MatchEnd, Phase, ViewTime, buttons};
    use crate::ids::{PlayerId, Seq, Tick};
    use crate::map::Map;
    use crate::protocol::*;
    use crate::snapshot::*;

    fn every_client_msg() -> Vec<ClientMsg> {
        vec![
            ClientMsg::Hello {
                protocol: PROTOCOL_VERSION,
                name: "zoë".into(),
                room: Some("lobby".into()),
                token: Some("v1.0123456789abcdef.00".into()),
                resume: None,
                reservation: None,
                spectate: true,
            },
            ClientMsg::Hello {
                protocol: PROTOCOL_VERSION,
                name: "zoë".into(),
                room: None,
                token: None,
                resume: Some(Resume {
                    token: "s1.lobby.3.ffffffffffffffff.0000000000000001.00".into(),
                    newest_tick: Some(Tick(u32::MAX)),
                }),
                reservation: Some("0123456789abcdef0123456789abcdef".into()),
                spectate: false,
            },
            ClientMsg::Input {
                ack: Some(Fixed16(513)),
                frames: vec![
                    InputFrame {
                        seq: Seq(u32::MAX),
                        buttons: buttons::UP | buttons::FIRE,
                        aim: -1.5,
                        view: Some(ViewTime::between(Tick(65_535), Tick(65_537), 0.25)),
                    },
                    InputFrame {
                        seq: Seq(0),
                        buttons: 0,
                        aim: 0.5,
                        view: None,
                    },
                ],
            },
            ClientMsg::Chat { text: "gg".into() },
            ClientMsg::Ping { nonce: 7 },
            ClientMsg::Ack { tick: Fixed16(9) },
        ]
    }

    fn snapshot_msg() -> SnapshotMsg {
        let player = QPlayer {
            id: PlayerId(3),
            pos: [Fixed16(12), Fixed16(40_000)],
            aim: 200,
            health: 75,
            alive: true,
            score: 2,
        };
        SnapshotMsg {
            header: SnapshotHeader {
                tick: TickRef::Delta {
                    baseline_low: 65_000,
                    after: 2,
                },
                ack_input_low: 41,
                own_vel: Some([-48, 5]),
            },
            body: SnapshotBody {
                changed_bits: vec![0b101],
                changed: vec![
                    PlayerDelta {
                        moved: [3, -200],
                        aim: Some(9),
                        ..PlayerDelta::default()
                    },
                    PlayerDelta {
                        score: Some(300),
                        alive: Some(false),
                        health: Some(0),
                        ..PlayerDelta::default()
                    },
                ],
                added: vec![player],
                removed: vec![PlayerId(4)],
                clock: Some(MatchClock {
                    phase: Phase::Results,
                    ends: Tick(123_456),
                }),
                projectiles_added: vec![ProjectileSpawn {
                    id: 9,
                    owner: PlayerId(3),
                    origin: [Fixed16(1), Fixed16(2)],
                    direction: 40_000,
                    age: 1,
                }],
                projectiles_removed: vec![7],
            },
        }
    }

    fn every_server_msg() -> Vec<ServerMsg> {
        let full = SnapshotMsg {
            header: SnapshotHeader {
                tick: TickRef::Full(Tick(1 << 30)),
                ack_input_low: 0,
                own_vel: None,
            },
            body: SnapshotBody::default(),
        };
        vec![
            ServerMsg::Welcome(Box::new(Welcome {
                player_id: PlayerId(3),
                name: "ann".into(),
                room: "r1".into(),
                tick_hz: 60,
                snapshot_hz: 30,
                input_batch: 2,
                tick: Tick(99),
                map: Map::test_arena(),
                roster: vec![
                    RosterEntry {
                        id: PlayerId(3),
                        name: "ann".into(),
                        away: false,
                    },
                    RosterEntry {
                        id: PlayerId(4),
                        name: "bob".into(),
                        away: true,
                    },
                ],
                profile: crate::ProfileId(u64::MAX),
                token: "v1.ffffffffffffffff.00".into(),
                resume_token: "s1.r1.3.ffffffffffffffff.0000000000000001.00".into(),
                resumed: true,
            })),
            ServerMsg::PlayerAway { id: PlayerId(4) },
            ServerMsg::PlayerBack { id: PlayerId(4) },
            ServerMsg::MatchResults(Box::new(MatchResults {
                reason: MatchEnd::ScoreLimit,
                lines: vec![ResultLine {
                    id: PlayerId(3),
                    profile: crate::ProfileId(7),
                    name: "ann".into(),
                    kills: 20,
                    deaths: 3,
                    shots: 90,
                    hits: 41,
                    score: 20,
                    placing: 1,
                }],
            })),
            ServerMsg::MatchSaved { match_id: 42 },
            ServerMsg::Snapshot(snapshot_msg()),
            ServerMsg::Snapshot(full),
            ServerMsg::Notice {
                text: "slow down".into(),
            },
            ServerMsg::Announcement {
                text: "restarting in 5 minutes".into(),
            },
            ServerMsg::Redirect {
                url: "wss://b.play.example.com/ws".into(),
                reservation: Some("0123456789abcdef0123456789abcdef".into()),
            },
            ServerMsg::PlayerJoined {
                id: PlayerId(4),
                name: "bob".into(),
            },
            ServerMsg::PlayerLeft { id: PlayerId(4) },
            ServerMsg::Watching(Box::new(Watching {
                room: "r1".into(),
                tick_hz: 60,
                snapshot_hz: 30,
                delay_ms: 2_000,
                map: Map::test_arena(),
                roster: vec![RosterEntry {
                    id: PlayerId(3),
                    name: "ann".into(),
                    away: false,
                }],
            })),
            ServerMsg::Event(GameEvent::Killed {
                victim: PlayerId(4),
                by: PlayerId(3),
            }),
            ServerMsg::Chat {
                from: PlayerId(3),
                name: "ann".into(),
                text: "hi".into(),
            },
            ServerMsg::Pong { nonce: 7 },
            ServerMsg::Disconnect {
                reason: CloseReason::VersionMismatch { server: 1 },
                detail: "update".into(),
            },
        ]
    }

    #[test]
    fn client_messages_round_trip() {
        for msg in every_client_msg() {
            let bytes = encode_client(&msg);
            assert_eq!(decode_client(&bytes).expect("decodes"), msg);
        }
    }

    #[test]
    fn server_messages_round_trip() {
        for msg in every_server_msg() {
            let bytes = encode_server(&msg);
            assert_eq!(decode_server(&bytes).expect("decodes"), msg);
        }
    }

    #[test]
    fn input_frame_is_small_on_the_wire() {
        let frame = |seq| InputFrame {
            seq: Seq(seq),
            buttons: buttons::ALL,
            aim: 1.0,
            view: None,
        };
        let bytes = encode_client(&ClientMsg::Input {
            ack: Some(Fixed16(1000)),
            frames: vec![frame(1000), frame(1001)],
        });
        assert!(
            bytes.len() <= 21,
            "two ticks of input took {} bytes",
            bytes.len()
        );
        let with_view = encode_client(&ClientMsg::Input {
            ack: Some(Fixed16(1000)),
            frames: vec![
                InputFrame {
                    view: Some(ViewTime::between(Tick(990), Tick(992), 0.5)),
                    ..frame(1000)
                },
                frame(1001),
            ],
        });
        assert_eq!(
            with_view.len(),
            bytes.len() + 4,
            "a shot's view costs 4 bytes, and only on the frame that fires"
        );
    }

    #[test]
    fn header_plus_shared_body_is_the_whole_snapshot() {
        let msg = snapshot_msg();
        let spliced = encode_snapshot(&msg.header, &encode_snapshot_body(&msg.body));
        assert_eq!(spliced, encode_server(&ServerMsg::Snapshot(msg)));
    }

    #[test]
    fn an_idle_delta_snapshot_takes_at_most_8_bytes() {
        let idle = ServerMsg::Snapshot(SnapshotMsg {
            header: SnapshotHeader {
                tick: TickRef::Delta {
                    baseline_low: 60_000,
                    after: 2,
                },
                ack_input_low: 60_000,
                own_vel: None,
            },
            body: SnapshotBody::default(),
        });
        let len = encode_server(&idle).len();
        assert!(len <= 8, "idle snapshot took {len} bytes");
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode_client(&ClientMsg::Ping { nonce: 1 });
        bytes.push(0);
        assert!(matches!(
            decode_client(&bytes),
            Err(DecodeError::TrailingBytes { extra: 1 })
        ));
    }

    #[test]
    fn truncated_frames_are_rejected() {
        let bytes = encode_client(&every_client_msg()[0]);
        for cut in 0..bytes.len() {
            assert!(
                decode_client(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // Chat variant (tag 2), then a string length of u64::MAX as a varint (0xFD + 8 bytes).
        let mut bytes = vec![2u8, 0xFD];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&[b'a'; 9]);
        assert!(matches!(
            decode_client(&bytes),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn oversize_frame_is_rejected_before_decoding() {
        let bytes = vec![0u8; MAX_CLIENT_MSG_BYTES + 1];
        assert!(matches!(
            decode_client(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn hello_version_is_readable_from_any_future_hello() {
        let hello = encode_client(&ClientMsg::Hello {
            protocol: 4242,
            name: "x".into(),
            room: None,
            token: None,
            resume: None,
            reservation: None,
            spectate: false,
        });
        assert_eq!(peek_hello_version(&hello), Some(4242));
        // A future Hello with extra fields appended still shows its version.
        let mut future = hello.clone();
        future.extend_from_slice(&[1, 2, 3]);
        assert_eq!(peek_hello_version(&future), Some(4242));
        assert_eq!(
            peek_hello_version(&encode_client(&ClientMsg::Ping { nonce: 1 })),
            None
        );
    }
}
