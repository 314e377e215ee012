//! Snapshots as they travel: the quantized state of a room at one tick (`QState`), and
//! the delta (`SnapshotBody`) that turns a baseline the client has acknowledged into it.
//! A delta names only the entities that changed and, for each, only the fields that did.

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::consts::tuning::PROJECTILE_SPEED;
use crate::game::world::aim_direction;
use crate::game::{MatchClock, World};
use crate::ids::{PlayerId, Tick};
use crate::quant::*;
use crate::view::{PlayerState, ProjectileState, Snapshot};

/// A player as snapshots carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QPlayer {
    pub id: PlayerId,
    pub pos: [Fixed16; 2],
    pub aim: u8,
    pub health: u8,
    pub alive: bool,
    pub score: u16,
}

/// A projectile as snapshots carry it: where and when it was fired and which way.
/// It flies straight at a known speed, so its position at any tick follows from these,
/// and a delta never needs to mention it again until it is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QProjectile {
    pub id: u8,
    pub owner: PlayerId,
    pub origin: [Fixed16; 2],
    pub direction: u16,
    pub spawn_tick: Tick,
}

/// The quantized state of a room at one tick. Both lists are sorted by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QState {
    pub tick: Tick,
    pub players: Vec<QPlayer>,
    pub projectiles: Vec<QProjectile>,
    pub clock: MatchClock,
}

/// A u16 written as two fixed bytes: grid positions are mostly above bincode's
/// one-byte varint range, where a varint would take three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fixed16(pub u16);

impl Serialize for Fixed16 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.to_le_bytes().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Fixed16 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <[u8; 2]>::deserialize(deserializer).map(|bytes| Fixed16(u16::from_le_bytes(bytes)))
    }
}

/// What changed in one player present in both baseline and current state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayerDelta {
    /// Grid steps moved along x and y since the baseline.
    pub moved: [i32; 2],
    pub aim: Option<u8>,
    pub health: Option<u8>,
    pub alive: Option<bool>,
    pub score: Option<u16>,
}

/// A projectile that appeared since the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectileSpawn {
    pub id: u8,
    pub owner: PlayerId,
    pub origin: [Fixed16; 2],
    pub direction: u16,
    /// Ticks between the spawn and the snapshot's tick.
    pub age: u16,
}

/// The shared part of a snapshot: identical for every client with the same baseline,
/// so it is encoded once per baseline, not once per client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotBody {
    /// One bit per player kept from the baseline (in id order): set if it changed.
    pub changed_bits: Vec<u8>,
    /// One delta per set bit, in the same order.
    pub changed: Vec<PlayerDelta>,
    pub added: Vec<QPlayer>,
    pub removed: Vec<PlayerId>,
    pub projectiles_added: Vec<ProjectileSpawn>,
    pub projectiles_removed: Vec<u8>,
    /// The match clock, when it differs from the baseline's (always in a full snapshot).
    pub clock: Option<MatchClock>,
}

/// Why a delta cannot be applied to the state the client holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("the delta's baseline is not one this client holds")]
    MissingBaseline,
    #[error("the changed-players bitmap does not match the baseline")]
    BadBitmap,
    #[error("a position left the grid")]
    OutOfRange,
    #[error("an entity id appears twice")]
    DuplicateId,
}

impl QState {
    /// Quantizes the world as it stands.
    pub fn of_world(world: &World) -> QState {
        let players = world
            .players()
            .iter()
            .map(|p| {
                let [x, y] = quantize_pos(p.body.pos);
                QPlayer {
                    id: p.id,
                    pos: [Fixed16(x), Fixed16(y)],
                    aim: quantize_aim(p.aim),
                    health: p.health,
                    alive: p.is_alive(),
                    score: p.score,
                }
            })
            .collect();
        let mut projectiles: Vec<QProjectile> = world
            .projectiles()
            .iter()
            .map(|p| {
                let [x, y] = quantize_pos(p.origin);
                QProjectile {
                    id: p.id,
                    owner: p.owner,
                    origin: [Fixed16(x), Fixed16(y)],
                    direction: quantize_direction(p.direction),
                    spawn_tick: p.spawn_tick,
                }
            })
            .collect();
        projectiles.sort_by_key(|p| p.id);
        QState {
            tick: world.tick,
            players,
            projectiles,
            clock: world.clock(),
        }
    }

    /// The state as a client draws it. Projectiles are placed along their paths at this
    /// tick; `dt` is the room's tick period.
    pub fn to_snapshot(&self, dt: f32) -> Snapshot {
        Snapshot {
            tick: self.tick,
            clock: self.clock,
            ack_input: crate::Seq(0),
            players: self
                .players
                .iter()
                .map(|p| PlayerState {
                    id: p.id,
                    pos: dequantize_pos([p.pos[0].0, p.pos[1].0]),
                    vel: glam::Vec2::ZERO,
                    aim: dequantize_aim(p.aim),
                    health: p.health,
                    alive: p.alive,
                    score: p.score,
                })
                .collect(),
            projectiles: self
                .projectiles
                .iter()
                .map(|p| {
                    let dir = aim_direction(dequantize_direction(p.direction));
                    let flown = self.tick.since(p.spawn_tick).max(0) as f32 * dt;
                    let vel = dir * PROJECTILE_SPEED;
                    ProjectileState {
                        id: p.id,
                        owner: p.owner,
                        pos: dequantize_pos([p.origin[0].0, p.origin[1].0]) + vel * flown,
                        vel,
                    }
                })
                .collect(),
        }
    }
}

/// The delta from `baseline` (or from nothing: a full snapshot) to `current`.
pub fn diff(baseline: Option<&QState>, current: &QState) -> SnapshotBody {
    let empty = QState::default();
    let base = baseline.unwrap_or(&empty);
    let mut body = SnapshotBody::default();
    let mut kept = 0usize;
    let (mut base_idx, mut cur_idx) = (0, 0);
    while base_idx < base.players.len() || cur_idx < current.players.len() {
        let old = base.players.get(base_idx);
        let new = current.players.get(cur_idx);
        match (old, new) {
            (Some(old), Some(new)) if old.id == new.id => {
                let delta = player_delta(old, new);
                if kept.is_multiple_of(8) {
                    body.changed_bits.push(0);
                }
                if delta != PlayerDelta::default() {
                    body.changed_bits[kept / 8] |= 1 << (kept % 8);
                    body.changed.push(delta);
                }
                kept += 1;
                base_idx += 1;
                cur_idx += 1;
            }
            (Some(old), new) if new.is_none_or(|new| old.id < new.id) => {
                body.removed.push(old.id);
                base_idx += 1;
            }
            (_, Some(new)) => {
                body.added.push(*new);
                cur_idx += 1;
            }
            (_, None) => break,
        }
    }
    if body.changed.is_empty() {
        body.changed_bits.clear();
    }
    for old in &base.projectiles {
        if !current.projectiles.contains(old) {
            body.projectiles_removed.push(old.id);
        }
    }
    if baseline.is_none_or(|base| base.clock != current.clock) {
        body.clock = Some(current.clock);
    }
    for new in &current.projectiles {
        if !base.projectiles.contains(new) {
            body.projectiles_added.push(ProjectileSpawn {
                id: new.id,
                owner: new.owner,
                origin: new.origin,
                direction: new.direction,
                age: current
                    .tick
                    .since(new.spawn_tick)
                    .clamp(0, i32::from(u16::MAX)) as u16,
            });
        }
    }
    body
}

fn player_delta(old: &QPlayer, new: &QPlayer) -> PlayerDelta {
    fn changed<T: PartialEq>(old: T, new: T) -> Option<T> {
        (old != new).then_some(new)
    }
    PlayerDelta {
        moved: [
            i32::from(new.pos[0].0) - i32::from(old.pos[0].0),
            i32::from(new.pos[1].0) - i32::from(old.pos[1].0),
        ],
        aim: changed(old.aim, new.aim),
        health: changed(old.health, new.health),
        alive: changed(old.alive, new.alive),
        score: changed(old.score, new.score),
    }
}

/// Rebuilds the state at `tick` from `baseline` (or nothing) and a delta. Rejects, never
/// panics on, a delta that does not fit the baseline.
pub fn apply(
    baseline: Option<&QState>,
    tick: Tick,
    body: &SnapshotBody,
) -> Result<QState, DeltaError> {
    let empty = QState::default();
    let base = baseline.unwrap_or(&empty);
    let mut players: Vec<QPlayer> = base
        .players
        .iter()
        .filter(|p| !body.removed.contains(&p.id))
        .copied()
        .collect();
    let n_set: usize = body
        .changed_bits
        .iter()
        .map(|b| b.count_ones() as usize)
        .sum();
    if n_set != body.changed.len() || body.changed_bits.len() > players.len().div_ceil(8) {
        return Err(DeltaError::BadBitmap);
    }
    let mut deltas = body.changed.iter();
    for (kept_idx, player) in players.iter_mut().enumerate() {
        let bit = body
            .changed_bits
            .get(kept_idx / 8)
            .is_some_and(|b| b & (1 << (kept_idx % 8)) != 0);
        if !bit {
            continue;
        }
        let delta = deltas.next().ok_or(DeltaError::BadBitmap)?;
        for axis in 0..2 {
            let moved = i32::from(player.pos[axis].0)
                .checked_add(delta.moved[axis])
                .and_then(|moved| u16::try_from(moved).ok())
                .ok_or(DeltaError::OutOfRange)?;
            player.pos[axis] = Fixed16(moved);
        }
        player.aim = delta.aim.unwrap_or(player.aim);
        player.health = delta.health.unwrap_or(player.health);
        player.alive = delta.alive.unwrap_or(player.alive);
        player.score = delta.score.unwrap_or(player.score);
    }
    if deltas.next().is_some() {
        return Err(DeltaError::BadBitmap);
    }
    players.extend_from_slice(&body.added);
    players.sort_by_key(|p| p.id);
    if players.windows(2).any(|w| w[0].id == w[1].id) {
        return Err(DeltaError::DuplicateId);
    }

    let mut projectiles: Vec<QProjectile> = base
        .projectiles
        .iter()
        .filter(|p| !body.projectiles_removed.contains(&p.id))
        .copied()
        .collect();
    projectiles.extend(body.projectiles_added.iter().map(|spawn| QProjectile {
        id: spawn.id,
        owner: spawn.owner,
        origin: spawn.origin,
        direction: spawn.direction,
        spawn_tick: Tick(tick.0.wrapping_sub(u32::from(spawn.age))),
    }));
    projectiles.sort_by_key(|p| p.id);
    if projectiles.windows(2).any(|w| w[0].id == w[1].id) {
        return Err(DeltaError::DuplicateId);
    }
    Ok(QState {
        tick,
        players,
        projectiles,
        clock: body.clock.unwrap_or(base.clock),
    })
}

// On the wire, optional parts are announced by a leading flag byte and then simply
// present or absent: an `Option` per field would cost a byte each, even when empty.

mod flags {
    pub const MOVED_X: u8 = 1 << 0;
    pub const MOVED_Y: u8 = 1 << 1;
    pub const AIM: u8 = 1 << 2;
    pub const HEALTH: u8 = 1 << 3;
    pub const ALIVE: u8 = 1 << 4;
    pub const SCORE: u8 = 1 << 5;

    pub const CHANGED: u8 = 1 << 0;
    pub const ADDED: u8 = 1 << 1;
    pub const REMOVED: u8 = 1 << 2;
    pub const PROJECTILES_ADDED: u8 = 1 << 3;
    pub const PROJECTILES_REMOVED: u8 = 1 << 4;
    pub const CLOCK: u8 = 1 << 5;
}

/// Upper bound on the elements of any flagged tuple; bincode reads only what is there.
const MAX_TUPLE: usize = 1 << 16;

impl Serialize for PlayerDelta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut mask = 0;
        mask |= if self.moved[0] != 0 {
            flags::MOVED_X
        } else {
            0
        };
        mask |= if self.moved[1] != 0 {
            flags::MOVED_Y
        } else {
            0
        };
        mask |= if self.aim.is_some() { flags::AIM } else { 0 };
        mask |= if self.health.is_some() {
            flags::HEALTH
        } else {
            0
        };
        mask |= if self.alive.is_some() {
            flags::ALIVE
        } else {
            0
        };
        mask |= if self.score.is_some() {
            flags::SCORE
        } else {
            0
        };
        let mut tuple = serializer.serialize_tuple(1 + mask.count_ones() as usize)?;
        tuple.serialize_element(&mask)?;
        for axis in 0..2 {
            if self.moved[axis] != 0 {
                tuple.serialize_element(&self.moved[axis])?;
            }
        }
        if let Some(aim) = self.aim {
            tuple.serialize_element(&aim)?;
        }
        if let Some(health) = self.health {
            tuple.serialize_element(&health)?;
        }
        if let Some(alive) = self.alive {
            tuple.serialize_element(&alive)?;
        }
        if let Some(score) = self.score {
            tuple.serialize_element(&score)?;
        }
        tuple.end()
    }
}

fn required<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("snapshot ended early"))
}

fn if_flag<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    mask: u8,
    flag: u8,
) -> Result<Option<T>, A::Error> {
    if mask & flag != 0 {
        required(seq).map(Some)
    } else {
        Ok(None)
    }
}

impl<'de> Deserialize<'de> for PlayerDelta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DeltaVisitor;
        impl<'de> Visitor<'de> for DeltaVisitor {
            type Value = PlayerDelta;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a player delta")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PlayerDelta, A::Error> {
                let mask: u8 = required(&mut seq)?;
                Ok(PlayerDelta {
                    moved: [
                        if_flag(&mut seq, mask, flags::MOVED_X)?.unwrap_or(0),
                        if_flag(&mut seq, mask, flags::MOVED_Y)?.unwrap_or(0),
                    ],
                    aim: if_flag(&mut seq, mask, flags::AIM)?,
                    health: if_flag(&mut seq, mask, flags::HEALTH)?,
                    alive: if_flag(&mut seq, mask, flags::ALIVE)?,
                    score: if_flag(&mut seq, mask, flags::SCORE)?,
                })
            }
        }
        deserializer.deserialize_tuple(MAX_TUPLE, DeltaVisitor)
    }
}

impl Serialize for SnapshotBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut mask = 0;
        mask |= if self.changed.is_empty() {
            0
        } else {
            flags::CHANGED
        };
        mask |= if self.added.is_empty() {
            0
        } else {
            flags::ADDED
        };
        mask |= if self.removed.is_empty() {
            0
        } else {
            flags::REMOVED
        };
        mask |= if self.projectiles_added.is_empty() {
            0
        } else {
            flags::PROJECTILES_ADDED
        };
        mask |= if self.projectiles_removed.is_empty() {
            0
        } else {
            flags::PROJECTILES_REMOVED
        };
        mask |= if self.clock.is_some() {
            flags::CLOCK
        } else {
            0
        };
        let n_elements = 1 + mask.count_ones() as usize + self.changed.len();
        let mut tuple = serializer.serialize_tuple(n_elements)?;
        tuple.serialize_element(&mask)?;
        if !self.changed.is_empty() {
            tuple.serialize_element(&self.changed_bits)?;
            for delta in &self.changed {
                tuple.serialize_element(delta)?;
            }
        }
        if !self.added.is_empty() {
            tuple.serialize_element(&self.added)?;
        }
        if !self.removed.is_empty() {
            tuple.serialize_element(&self.removed)?;
        }
        if !self.projectiles_added.is_empty() {
            tuple.serialize_element(&self.projectiles_added)?;
        }
        if !self.projectiles_removed.is_empty() {
            tuple.serialize_element(&self.projectiles_removed)?;
        }
        if let Some(clock) = &self.clock {
            tuple.serialize_element(clock)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for SnapshotBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = SnapshotBody;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a snapshot body")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SnapshotBody, A::Error> {
                let mask: u8 = required(&mut seq)?;
                let mut body = SnapshotBody::default();
                if mask & flags::CHANGED != 0 {
                    body.changed_bits = required(&mut seq)?;
                    let n_changed: u32 = body.changed_bits.iter().map(|b| b.count_ones()).sum();
                    for _ in 0..n_changed {
                        body.changed.push(required(&mut seq)?);
                    }
                }
                body.added = if_flag(&mut seq, mask, flags::ADDED)?.unwrap_or_default();
                body.removed = if_flag(&mut seq, mask, flags::REMOVED)?.unwrap_or_default();
                body.projectiles_added =
                    if_flag(&mut seq, mask, flags::PROJECTILES_ADDED)?.unwrap_or_default();
                body.projectiles_removed =
                    if_flag(&mut seq, mask, flags::PROJECTILES_REMOVED)?.unwrap_or_default();
                body.clock = if_flag(&mut seq, mask, flags::CLOCK)?;
                Ok(body)
            }
        }
        deserializer.deserialize_tuple(MAX_TUPLE, BodyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;
    use crate::codec::{decode_client, decode_server, encode_snapshot_body};
    use crate::game::{InputFrame, buttons};
    use crate::map::Map;

    fn q_player(id: u8) -> impl Strategy<Value = QPlayer> {
        (
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<bool>(),
            any::<u16>(),
        )
            .prop_map(move |(x, y, aim, health, alive, score)| QPlayer {
                id: PlayerId(id),
                pos: [Fixed16(x), Fixed16(y)],
                aim,
                health,
                alive,
                score,
            })
    }

    fn q_state() -> impl Strategy<Value = QState> {
        let players = btree_map(any::<u8>(), any::<u8>(), 0..20)
            .prop_flat_map(|ids| ids.keys().map(|&id| q_player(id)).collect::<Vec<_>>());
        let projectiles = btree_map(
            any::<u8>(),
            (
                any::<u8>(),
                any::<u16>(),
                any::<u16>(),
                any::<u16>(),
                0u32..200,
            ),
            0..20,
        )
        .prop_map(|map| {
            map.into_iter()
                .map(|(id, (owner, x, y, direction, age))| QProjectile {
                    id,
                    owner: PlayerId(owner),
                    origin: [Fixed16(x), Fixed16(y)],
                    direction,
                    spawn_tick: Tick(1000 - age),
                })
                .collect::<Vec<_>>()
        });
        let clock = (any::<bool>(), any::<u32>()).prop_map(|(results, ends)| MatchClock {
            phase: if results {
                crate::game::Phase::Results
            } else {
                crate::game::Phase::Playing
            },
            ends: Tick(ends),
        });
        (players, projectiles, clock).prop_map(|(players, projectiles, clock)| QState {
            tick: Tick(1000),
            players,
            projectiles,
            clock,
        })
    }

    /// A baseline and a current state that shares some of its entities, as consecutive
    /// snapshots do.
    fn related_states() -> impl Strategy<Value = (QState, QState)> {
        (q_state(), q_state(), any::<u64>()).prop_map(|(base, other, mix)| {
            let mut current = base.clone();
            current.tick = Tick(1003);
            for (idx, player) in current.players.iter_mut().enumerate() {
                if mix >> (idx % 64) & 1 == 1 {
                    player.pos[0] = Fixed16(player.pos[0].0.wrapping_add(idx as u16));
                    player.aim = player.aim.wrapping_add(1);
                }
            }
            current.players.retain(|p| p.id.0 % 7 != (mix % 7) as u8);
            for extra in other.players {
                if current.players.iter().all(|p| p.id != extra.id) {
                    current.players.push(extra);
                }
            }
            current.players.sort_by_key(|p| p.id);
            current.projectiles.retain(|p| p.id % 3 != (mix % 3) as u8);
            for extra in other.projectiles {
                if current.projectiles.iter().all(|p| p.id != extra.id) {
                    current.projectiles.push(extra);
                }
            }
            current.projectiles.sort_by_key(|p| p.id);
            (base, current)
        })
    }

    proptest! {
        #[test]
        fn applying_a_delta_to_its_baseline_gives_the_current_state((base, current) in related_states()) {
            let body = diff(Some(&base), &current);
            prop_assert_eq!(apply(Some(&base), current.tick, &body), Ok(current.clone()));
        }

        #[test]
        fn a_full_snapshot_rebuilds_the_state_from_nothing(state in q_state()) {
            let body = diff(None, &state);
            prop_assert_eq!(apply(None, state.tick, &body), Ok(state));
        }

        #[test]
        fn a_delta_survives_the_wire((base, current) in related_states()) {
            let body = diff(Some(&base), &current);
            let bytes = encode_snapshot_body(&body);
            let (decoded, used): (SnapshotBody, usize) =
                bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).expect("decodes");
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(decoded, body);
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in vec(any::<u8>(), 0..300)) {
            let _ = decode_server(&bytes);
            let _ = decode_client(&bytes);
            let mut snapshot_like = vec![1u8];
            snapshot_like.extend_from_slice(&bytes);
            let _ = decode_server(&snapshot_like);
        }

        #[test]
        fn applying_any_delta_to_any_baseline_never_panics(base in q_state(), bytes in vec(any::<u8>(), 0..200)) {
            if let Ok((body, _)) = bincode::serde::decode_from_slice::<SnapshotBody, _>(
                &bytes,
                bincode::config::standard().with_limit::<4096>(),
            ) {
                let _ = apply(Some(&base), Tick(1001), &body);
            }
        }
    }

    #[test]
    fn hostile_deltas_are_refused_not_panicked_on() {
        let base = QState {
            tick: Tick(1),
            players: vec![QPlayer {
                id: PlayerId(1),
                pos: [Fixed16(100), Fixed16(100)],
                aim: 0,
                health: 100,
                alive: true,
                score: 0,
            }],
            clock: MatchClock::default(),
            projectiles: vec![],
        };
        let overflow = SnapshotBody {
            changed_bits: vec![1],
            changed: vec![PlayerDelta {
                moved: [i32::MAX, 0],
                ..PlayerDelta::default()
            }],
            ..SnapshotBody::default()
        };
        assert_eq!(
            apply(Some(&base), Tick(2), &overflow),
            Err(DeltaError::OutOfRange)
        );
        let stray_bit = SnapshotBody {
            changed_bits: vec![0b10],
            changed: vec![PlayerDelta {
                aim: Some(3),
                ..PlayerDelta::default()
            }],
            ..SnapshotBody::default()
        };
        assert_eq!(
            apply(Some(&base), Tick(2), &stray_bit),
            Err(DeltaError::BadBitmap)
        );
    }

    #[test]
    fn an_unchanged_state_gives_an_empty_delta() {
        let mut world = World::new(Map::test_arena());
        world.add_player(PlayerId(1));
        world.add_player(PlayerId(2));
        let state = QState::of_world(&world);
        assert_eq!(diff(Some(&state), &state), SnapshotBody::default());
    }

    #[test]
    fn projectiles_are_placed_along_their_paths() {
        let mut world = World::new(Map::test_arena());
        world.add_player(PlayerId(1));
        let fire = InputFrame {
            seq: crate::Seq(1),
            buttons: buttons::FIRE,
            // Down the open side of the arena from a corner spawn.
            aim: core::f32::consts::FRAC_PI_2,
            view: None,
        };
        let dt = 1.0 / 60.0;
        world.step(&[(PlayerId(1), fire)], dt, &mut Vec::new());
        for _ in 0..10 {
            world.step(&[], dt, &mut Vec::new());
        }
        let server_pos = world.projectiles()[0].pos;
        let client_pos = QState::of_world(&world).to_snapshot(dt).projectiles[0].pos;
        assert!(
            server_pos.distance(client_pos) < 0.5,
            "server {server_pos} vs client {client_pos}"
        );
    }
}
