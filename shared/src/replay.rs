//! A recorded match: the file format, and the one pure decoder both the server's tests
//! and the browser's viewer read replays with. A damaged file plays up to the damage.
//!
//! A file is `MAGIC` and then frames, each `[payload length: u32 LE][CRC-32 of the
//! payload: u32 LE][payload]`. Payloads are `ReplayFrame`s in the snapshot encoding the
//! game sends: a header, then keyframes (full snapshots) every `REPLAY_KEYFRAME_SECS`
//! with deltas against the previous frame between them, rosters whenever the seats
//! change, and last an index of where every keyframe starts.

use serde::{Deserialize, Serialize};

use crate::codec::{decode_replay_frame, encode_replay_frame};
use crate::consts::MAX_REPLAY_FRAME_BYTES;
use crate::ids::{PlayerId, Tick};
use crate::map::Map;
use crate::snapshot::{DeltaError, QState, SnapshotBody, apply};

/// The first bytes of every replay file; the last byte is the format's version.
pub const MAGIC: &[u8; 8] = b"SKRPLAY\x01";
/// Bytes before each payload: its length and its checksum.
pub const FRAME_HEAD_BYTES: usize = 8;

/// What a replay is of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayHeader {
    pub room: String,
    /// The arena, whole: a viewer draws it as a player's page does.
    pub map: Map,
    pub tick_hz: u16,
    /// Frames recorded per second.
    pub snapshot_hz: u16,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: i64,
}

/// A seated player's name, for following them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterName {
    pub id: PlayerId,
    pub name: String,
}

/// Where a keyframe starts in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyframeEntry {
    pub tick: Tick,
    /// Byte offset of the keyframe's length prefix from the start of the file.
    pub offset: u64,
}

/// One frame's payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReplayFrame {
    /// Always the first frame.
    Header(ReplayHeader),
    /// Everyone seated from the next snapshot on.
    Roster(Vec<RosterName>),
    /// The whole state at `tick`: where a seek can start.
    Keyframe { tick: Tick, body: SnapshotBody },
    /// The state at `tick` as a delta against the frame before it, at `baseline`.
    Delta {
        baseline: Tick,
        tick: Tick,
        body: SnapshotBody,
    },
    /// Every keyframe, in order. Always the last frame.
    Index(Vec<KeyframeEntry>),
}

/// Appends `frame` to `out`, with its length and checksum in front.
pub fn write_frame(frame: &ReplayFrame, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEAD_BYTES]);
    encode_replay_frame(frame, out);
    let payload = &out[start + FRAME_HEAD_BYTES..];
    // Invariant: a payload is bounded by MAX_REPLAY_FRAME_BYTES, far below u32::MAX.
    let len = u32::try_from(payload.len()).expect("a replay frame fits a u32 length");
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What is wrong with a replay, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replay damaged at byte {offset}: {problem}")]
pub struct Damage {
    /// Where the first bad frame starts.
    pub offset: u64,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file does not start as a replay of this format.
    #[error("not a replay file of this version")]
    NotAReplay,
    /// The file ends inside a frame, or before its index.
    #[error("the file ends early")]
    Truncated,
    /// A frame's length is beyond any valid frame.
    #[error("a frame claims {0} bytes")]
    TooLong(u32),
    /// A frame's bytes are not what its checksum says.
    #[error("checksum mismatch")]
    Checksum,
    /// A frame's checksum holds but its payload is not a frame.
    #[error("undecodable frame: {0}")]
    Undecodable(String),
    /// The first frame is not a header, or a header comes again.
    #[error("frames out of order")]
    OutOfOrder,
    /// A delta does not follow the frame it is against, or does not fit it.
    #[error("a delta does not fit its baseline: {0}")]
    BadDelta(DeltaError),
    /// The index names keyframes other than those in the file.
    #[error("the index does not match the keyframes")]
    BadIndex,
}

/// A replay as far as it could be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub header: ReplayHeader,
    /// The state at every recorded frame, in order.
    pub states: Vec<QState>,
    /// Indices into `states` of the keyframes, with their ticks.
    pub keyframes: Vec<usize>,
    /// Each roster, with the index into `states` from which it holds.
    pub rosters: Vec<(usize, Vec<RosterName>)>,
    /// The first damage met; everything before it was read.
    pub damage: Option<Damage>,
}

impl Replay {
    /// The index of the keyframe at or before `state_idx`: where a seek starts.
    pub fn keyframe_before(&self, state_idx: usize) -> Option<usize> {
        let after = self.keyframes.partition_point(|&key| key <= state_idx);
        after.checked_sub(1).map(|idx| self.keyframes[idx])
    }

    /// The roster in force at `state_idx`.
    pub fn roster_at(&self, state_idx: usize) -> &[RosterName] {
        let after = self.rosters.partition_point(|(from, _)| *from <= state_idx);
        after
            .checked_sub(1)
            .map_or(&[], |idx| self.rosters[idx].1.as_slice())
    }
}

/// Reads a whole replay file. Never panics and never allocates beyond the file's own
/// size: a damaged file gives what came before the damage and says where it was. `Err`
/// only if not even the header could be read.
pub fn decode(bytes: &[u8]) -> Result<Replay, Damage> {
    let damage = |offset: usize, problem| Damage {
        offset: offset as u64,
        problem,
    };
    if bytes.len() < MAGIC.len() {
        return Err(damage(0, Problem::Truncated));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(damage(0, Problem::NotAReplay));
    }
    let mut frames = Frames {
        bytes,
        offset: MAGIC.len(),
    };
    let header = match frames.next() {
        None => return Err(damage(MAGIC.len(), Problem::Truncated)),
        Some(Err(err)) => return Err(err),
        Some(Ok((_, ReplayFrame::Header(header)))) => header,
        Some(Ok(_)) => return Err(damage(MAGIC.len(), Problem::OutOfOrder)),
    };
    let mut replay = Replay {
        header,
        states: Vec::new(),
        keyframes: Vec::new(),
        rosters: Vec::new(),
        damage: None,
    };
    let mut keyframe_offsets = Vec::new();
    let mut index = None;
    let mut end = frames.offset;
    while let Some(frame) = frames.next() {
        let (offset, frame) = match frame {
            Ok(frame) => frame,
            Err(err) => {
                replay.damage = Some(err);
                return Ok(replay);
            }
        };
        if index.is_some() {
            // Nothing may follow the index.
            replay.damage = Some(damage(offset, Problem::OutOfOrder));
            return Ok(replay);
        }
        let state = match frame {
            ReplayFrame::Header(_) => Err(Problem::OutOfOrder),
            ReplayFrame::Roster(names) => {
                replay.rosters.push((replay.states.len(), names));
                end = frames.offset;
                continue;
            }
            ReplayFrame::Index(entries) => {
                index = Some((offset, entries));
                end = frames.offset;
                continue;
            }
            ReplayFrame::Keyframe { tick, body } => {
                keyframe_offsets.push(KeyframeEntry {
                    tick,
                    offset: offset as u64,
                });
                replay.keyframes.push(replay.states.len());
                apply(None, tick, &body).map_err(Problem::BadDelta)
            }
            ReplayFrame::Delta {
                baseline,
                tick,
                body,
            } => match replay.states.last() {
                Some(previous) if previous.tick == baseline => {
                    apply(Some(previous), tick, &body).map_err(Problem::BadDelta)
                }
                _ => Err(Problem::BadDelta(DeltaError::MissingBaseline)),
            },
        };
        match state {
            Ok(state) => replay.states.push(state),
            Err(problem) => {
                if replay.keyframes.last() == Some(&replay.states.len()) {
                    replay.keyframes.pop();
                }
                replay.damage = Some(damage(offset, problem));
                return Ok(replay);
            }
        }
        end = frames.offset;
    }
    replay.damage = match index {
        None => Some(damage(end, Problem::Truncated)),
        Some((offset, entries)) if entries != keyframe_offsets => {
            Some(damage(offset, Problem::BadIndex))
        }
        Some(_) => None,
    };
    Ok(replay)
}

/// The frames of a file after its magic, each with where it starts.
struct Frames<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Iterator for Frames<'_> {
    type Item = Result<(usize, ReplayFrame), Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.offset;
        let rest = &self.bytes[start..];
        if rest.is_empty() {
            return None;
        }
        let damage = |problem| {
            Some(Err(Damage {
                offset: start as u64,
                problem,
            }))
        };
        if rest.len() < FRAME_HEAD_BYTES {
            return damage(Problem::Truncated);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len as usize > MAX_REPLAY_FRAME_BYTES {
            return damage(Problem::TooLong(len));
        }
        let Some(payload) = rest[FRAME_HEAD_BYTES..].get(..len as usize) else {
            return damage(Problem::Truncated);
        };
        if crc32fast::hash(payload) != crc {
            return damage(Problem::Checksum);
        }
        match decode_replay_frame(payload) {
            Ok(frame) => {
                self.offset = start + FRAME_HEAD_BYTES + payload.len();
                Some(Ok((start, frame)))
            }
            Err(err) => damage(Problem::Undecodable(err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{MatchClock, Phase};
    use crate::snapshot::{Fixed16, QPlayer, diff};

    fn state(tick: u32, n_players: u8) -> QState {
        QState {
            tick: Tick(tick),
            players: (1..=n_players)
                .map(|id| QPlayer {
                    id: PlayerId(id),
                    pos: [
                        Fixed16(100 + (tick as u16) * u16::from(id)),
                        Fixed16(500 - tick as u16),
                    ],
                    aim: (tick as u8).wrapping_mul(id),
                    health: 100,
                    alive: true,
                    score: (tick / 10) as u16,
                })
                .collect(),
            projectiles: Vec::new(),
            clock: MatchClock {
                phase: Phase::Playing,
                ends: Tick(1000),
            },
        }
    }

    /// A file of `n_frames` states, a keyframe every `every`, as the server writes one.
    fn recording(n_frames: u32, every: u32) -> (Vec<u8>, Vec<QState>) {
        let mut out = MAGIC.to_vec();
        write_frame(
            &ReplayFrame::Header(ReplayHeader {
                room: "r".into(),
                map: Map {
                    name: "arena".into(),
                    size: glam::Vec2::new(2000.0, 1500.0),
                    walls: Vec::new(),
                    spawns: vec![glam::Vec2::new(100.0, 100.0)],
                },
                tick_hz: 60,
                snapshot_hz: 30,
                started_at_ms: 5,
            }),
            &mut out,
        );
        write_frame(
            &ReplayFrame::Roster(vec![RosterName {
                id: PlayerId(1),
                name: "ann".into(),
            }]),
            &mut out,
        );
        let mut index = Vec::new();
        let mut states: Vec<QState> = Vec::new();
        for n in 0..n_frames {
            let current = state(n * 2, 3);
            let frame = if n % every == 0 {
                index.push(KeyframeEntry {
                    tick: current.tick,
                    offset: out.len() as u64,
                });
                ReplayFrame::Keyframe {
                    tick: current.tick,
                    body: diff(None, &current),
                }
            } else {
                let previous = states.last().expect("a keyframe came first");
                ReplayFrame::Delta {
                    baseline: previous.tick,
                    tick: current.tick,
                    body: diff(Some(previous), &current),
                }
            };
            write_frame(&frame, &mut out);
            states.push(current);
        }
        write_frame(&ReplayFrame::Index(index), &mut out);
        (out, states)
    }

    #[test]
    fn a_whole_file_gives_every_state_and_its_keyframes() {
        let (bytes, states) = recording(20, 6);
        let replay = decode(&bytes).expect("the header reads");
        assert_eq!(replay.damage, None, "an intact file has no damage");
        assert_eq!(replay.states, states);
        assert_eq!(replay.keyframes, vec![0, 6, 12, 18]);
        assert_eq!(replay.keyframe_before(11), Some(6));
        assert_eq!(replay.roster_at(3)[0].name, "ann");
    }

    #[test]
    fn every_truncation_plays_up_to_the_cut_and_says_so() {
        let (bytes, states) = recording(12, 5);
        let header_end = MAGIC.len() + FRAME_HEAD_BYTES + 20;
        for cut in header_end..bytes.len() {
            let Ok(replay) = decode(&bytes[..cut]) else {
                continue;
            };
            let damage = replay.damage.expect("a cut file reports damage");
            assert_eq!(damage.problem, Problem::Truncated, "cut at {cut}");
            assert!(damage.offset as usize <= cut);
            assert_eq!(
                replay.states,
                states[..replay.states.len()],
                "what plays is a prefix of the recording"
            );
        }
    }

    #[test]
    fn a_flipped_byte_stops_the_replay_at_its_frame() {
        let (bytes, states) = recording(12, 5);
        let intact = decode(&bytes).expect("intact");
        for flip_at in MAGIC.len()..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[flip_at] ^= 0x10;
            let Ok(replay) = decode(&damaged) else {
                continue;
            };
            let damage = replay.damage.expect("a flipped byte is found");
            assert!(
                damage.offset as usize <= flip_at,
                "the damage is reported at or before byte {flip_at}"
            );
            assert_eq!(replay.states, states[..replay.states.len()]);
            assert!(replay.states.len() <= intact.states.len());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_after_the_magic_are_read_without_a_panic(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&tail);
            if let Ok(replay) = decode(&bytes) {
                proptest::prop_assert!(replay.damage.is_some(), "random bytes are damage");
            }
        }

        #[test]
        fn a_recording_with_random_bytes_spliced_in_plays_a_prefix(
            at in 0usize..2000,
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64)
        ) {
            let (bytes, states) = recording(10, 4);
            let at = MAGIC.len() + at % (bytes.len() - MAGIC.len());
            let mut spliced = bytes[..at].to_vec();
            spliced.extend_from_slice(&junk);
            spliced.extend_from_slice(&bytes[at..]);
            if let Ok(replay) = decode(&spliced) {
                proptest::prop_assert_eq!(&replay.states[..], &states[..replay.states.len()]);
            }
        }
    }

    #[test]
    fn a_foreign_file_is_not_a_replay() {
        let err = decode(b"GIF89a\x00\x00\x00\x00").expect_err("not a replay");
        assert_eq!(err.problem, Problem::NotAReplay);
    }

    #[test]
    fn a_frame_length_beyond_the_limit_is_damage_not_an_allocation() {
        let (mut bytes, _) = recording(3, 5);
        let first_frame = MAGIC.len();
        bytes[first_frame..first_frame + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode(&bytes).expect_err("the header frame is unreadable");
        assert_eq!(err.problem, Problem::TooLong(u32::MAX));
    }
}
