//! A room with its schedule: what a room thread runs, one tick at a time. The time is
//! always handed in, never read, so a test drives a room with a manual clock exactly as
//! the room thread drives it with the real one.
//!
//! A room with nobody in it is parked: it does not step its world, and it wakes only
//! to see whether its empty grace period is over, or when a command arrives for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shared::game::Phase;
use shared::protocol::CloseReason;
use tokio::sync::mpsc;

use crate::ops::metrics::Metrics;
use crate::rooms::room::{Room, RoomCmd, RoomSettings};

/// A room's identity for as long as it runs. Names are reused (a room closes and is
/// opened again); keys are not, so nothing of a closed room can touch its successor.
pub(crate) type RoomKey = u64;

/// How often a parked room looks at its grace period.
const PARKED_PERIOD: Duration = Duration::from_secs(1);
/// The slots per tick period that a thread's playing rooms start their ticks in. A
/// thread wakes once per slot in use, not once per room, and a wake-up costs about what
/// a ten-player room's tick does: so, few slots. The rooms of a slot run one after
/// another and make its last one late, which the snapshot cycle's slots (this many
/// times the ticks per snapshot) keep to a few snapshotting rooms a slot.
pub(crate) const SLOTS_PER_TICK: u32 = 4;

/// A room and when it runs next.
#[derive(Debug)]
pub(crate) struct RoomRunner {
    key: RoomKey,
    room: Room,
    commands: mpsc::Receiver<RoomCmd>,
    /// Set while the room is parked; whoever sends it a command wakes its thread.
    parked: Arc<AtomicBool>,
    period: Duration,
    dt: f32,
    /// When the next tick is due.
    next_tick: Instant,
    snapshot_credit: u32,
    empty_since: Option<Instant>,
    /// How late the last tick started and how long it took, for its thread's timing.
    last_timing: Option<TickTiming>,
    /// The match phase the directory was last told of.
    listed_phase: Phase,
}

/// One tick's timing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TickTiming {
    pub(crate) lateness: Duration,
    pub(crate) duration: Duration,
}

/// What a tick left the room as.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ticked {
    /// The room goes on: playing, or parked until it is due again.
    Open,
    /// The room has been empty for its whole grace period. It closes if the directory
    /// agrees that no seat was reserved meanwhile; otherwise it stays parked.
    Expired,
}

impl RoomRunner {
    pub(crate) fn new(
        key: RoomKey,
        id: String,
        settings: Arc<RoomSettings>,
        commands: mpsc::Receiver<RoomCmd>,
        parked: Arc<AtomicBool>,
        metrics: Arc<Metrics>,
        now: Instant,
    ) -> RoomRunner {
        RoomRunner {
            key,
            period: Duration::from_secs_f64(1.0 / f64::from(settings.tick_hz)),
            dt: shared::consts::tick_dt(settings.tick_hz),
            room: Room::new(id, settings, metrics),
            commands,
            parked,
            next_tick: now,
            snapshot_credit: 0,
            empty_since: Some(now),
            last_timing: None,
            listed_phase: Phase::default(),
        }
    }

    pub(crate) fn key(&self) -> RoomKey {
        self.key
    }

    pub(crate) fn id(&self) -> &str {
        &self.room.id
    }

    /// The timing of the last tick that stepped the room, taken once.
    pub(crate) fn take_timing(&mut self) -> Option<TickTiming> {
        self.last_timing.take()
    }

    /// The match's phase if it changed since last asked, for the directory's listing.
    pub(crate) fn take_phase_change(&mut self) -> Option<Phase> {
        let phase = self.room.world.clock().phase;
        (phase != self.listed_phase).then(|| {
            self.listed_phase = phase;
            phase
        })
    }

    /// When the next tick is due.
    pub(crate) fn due(&self) -> Instant {
        self.next_tick
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }

    /// A parked room with a command waiting must wake for it.
    pub(crate) fn wants_waking(&self) -> bool {
        self.is_parked() && !self.commands.is_empty()
    }

    /// Players seated right now.
    #[cfg(test)]
    pub(crate) fn players(&self) -> usize {
        self.room.occupants.len()
    }

    /// How the room runs, for tests that change what rooms share.
    #[cfg(test)]
    pub(crate) fn settings(&self) -> &RoomSettings {
        &self.room.settings
    }

    /// The room's world, for tests that check what the players did.
    #[cfg(test)]
    pub(crate) fn world(&self) -> &shared::game::World {
        &self.room.world
    }

    /// When the next tick that sends snapshots is due.
    pub(crate) fn next_snapshot_due(&self) -> Instant {
        let (tick_hz, snapshot_hz) = (
            u32::from(self.room.settings.tick_hz),
            u32::from(self.room.settings.snapshot_hz),
        );
        let ticks_away = tick_hz
            .saturating_sub(self.snapshot_credit)
            .div_ceil(snapshot_hz)
            .saturating_sub(1);
        self.next_tick + self.period * ticks_away
    }

    /// Schedules this room's next tick, a snapshot tick, on its thread's grid of slots.
    /// `others` are the next snapshot ticks of the playing rooms on its thread.
    /// - Its snapshots go in a slot of the snapshot cycle that the fewest others send
    ///   theirs in: encoding and writing snapshots is most of a tick's work, and rooms
    ///   that snapshot together make each other late.
    /// - Of those, it prefers a slot whose ticks fall with another room's: rooms that
    ///   tick together share the thread's wake-up, which costs more than a small room's
    ///   tick.
    /// - Then the one farthest from the busy slots.
    ///
    /// Used when a room starts or wakes.
    pub(crate) fn start_in_slot(&mut self, others: impl Iterator<Item = Instant>, now: Instant) {
        let settings = &self.room.settings;
        let slot = (self.period / SLOTS_PER_TICK).max(Duration::from_nanos(1));
        let ticks_per_snapshot = settings.ticks_per_snapshot();
        let slots = i128::from(SLOTS_PER_TICK * ticks_per_snapshot);
        let slot_ns = slot.as_nanos() as i128;
        let others: Vec<Instant> = others.collect();
        // The grid is that of the rooms already on the thread; the first one sets it.
        let anchor = others.iter().copied().min().unwrap_or(now);
        let from_anchor = |at: Instant| -> i128 {
            if at >= anchor {
                at.duration_since(anchor).as_nanos() as i128
            } else {
                -(anchor.duration_since(at).as_nanos() as i128)
            }
        };
        // The first grid point at or after now; each other room's slot is counted from it.
        let first_ns = (from_anchor(now) + slot_ns - 1).div_euclid(slot_ns) * slot_ns;
        let first = if first_ns >= 0 {
            anchor + Duration::from_nanos(first_ns as u64)
        } else {
            anchor - Duration::from_nanos((-first_ns) as u64)
        };
        let mut counts = vec![0u32; slots as usize];
        for due in &others {
            let index = ((from_anchor(*due) - first_ns) as f64 / slot_ns as f64).round() as i128;
            counts[index.rem_euclid(slots) as usize] += 1;
        }
        let fewest = counts.iter().copied().min().unwrap_or(0);
        let distance_to_busy = |index: i128| -> i128 {
            (1..slots)
                .find(|step| {
                    counts[(index + step).rem_euclid(slots) as usize] > 0
                        || counts[(index - step).rem_euclid(slots) as usize] > 0
                })
                .unwrap_or(slots)
        };
        // The slots a tick period apart from `index` are the ones whose rooms tick with it.
        let shares_ticks = |index: i128| {
            (0..i128::from(ticks_per_snapshot)).any(|period| {
                counts[(index + period * i128::from(SLOTS_PER_TICK)).rem_euclid(slots) as usize] > 0
            })
        };
        let chosen = (0..slots)
            .filter(|&index| counts[index as usize] == fewest)
            .max_by_key(|&index| (shares_ticks(index), distance_to_busy(index), -index))
            .unwrap_or(0);
        self.next_tick = first + slot * chosen as u32;
        self.snapshot_credit = u32::from(settings.tick_hz) - u32::from(settings.snapshot_hz);
    }

    /// Takes a parked room back to playing, phased against `others`.
    pub(crate) fn wake(&mut self, others: impl Iterator<Item = Instant>, now: Instant) {
        self.parked.store(false, Ordering::SeqCst);
        self.start_in_slot(others, now);
    }

    /// Runs the tick that is due at `now`.
    pub(crate) fn tick(&mut self, now: Instant) -> Ticked {
        if self.is_parked() {
            if self.commands.is_empty() {
                return self.stay_parked(now);
            }
            // Woken by its own parked tick with a command waiting: play from now.
            self.parked.store(false, Ordering::SeqCst);
            self.next_tick = now;
        }
        let (tick_hz, snapshot_hz) = (
            u32::from(self.room.settings.tick_hz),
            u32::from(self.room.settings.snapshot_hz),
        );
        let work_started = Instant::now();
        let room = &mut self.room;
        let lateness = now.saturating_duration_since(self.next_tick);
        room.metrics.tick_lateness.observe(lateness.as_secs_f64());
        self.snapshot_credit += snapshot_hz;
        let ticks_to_snapshot = tick_hz
            .saturating_sub(self.snapshot_credit)
            .div_ceil(snapshot_hz.max(1));
        room.step(&mut self.commands, self.dt, ticks_to_snapshot);
        if ticks_to_snapshot == 0 {
            self.snapshot_credit -= tick_hz;
            room.send_snapshots();
        }
        let duration = work_started.elapsed();
        room.metrics.tick_duration.observe(duration.as_secs_f64());
        room.tick_times.record(duration);
        self.last_timing = Some(TickTiming { lateness, duration });

        self.next_tick += self.period;
        // After a long stall (a suspended process, an overloaded machine) skip the ticks
        // missed instead of running a burst of catch-up ticks, staying on the grid.
        let behind = now.saturating_duration_since(self.next_tick);
        if behind > self.period * 5 {
            let missed = behind.as_nanos() / self.period.as_nanos();
            self.next_tick += self.period * (missed as u32 + 1);
        }

        if !self.room.is_empty() {
            self.empty_since = None;
            return Ticked::Open;
        }
        self.empty_since.get_or_insert(now);
        // The flag goes up before the queue is looked at, and a sender queues before it
        // looks at the flag, so a command sent meanwhile is seen by one side or the other.
        self.parked.store(true, Ordering::SeqCst);
        if !self.commands.is_empty() {
            self.parked.store(false, Ordering::SeqCst);
            return Ticked::Open;
        }
        self.stay_parked(now)
    }

    /// A parked room's tick: nothing but the grace period.
    fn stay_parked(&mut self, now: Instant) -> Ticked {
        let since = *self.empty_since.get_or_insert(now);
        // A room an operator closed, or one the server drains, does not wait for anyone.
        let grace = if self.room.closing || self.room.is_draining() {
            Duration::ZERO
        } else {
            self.room.settings.empty_grace
        };
        let left = grace.saturating_sub(now.saturating_duration_since(since));
        // A room whose close was refused (a seat was reserved meanwhile) waits for the
        // join to wake it, looking again a period later.
        self.next_tick = now
            + if left.is_zero() {
                PARKED_PERIOD
            } else {
                left.min(PARKED_PERIOD)
            };
        if left.is_zero() {
            Ticked::Expired
        } else {
            Ticked::Open
        }
    }

    /// Ends the match being played with the reason "shutdown", hands it to the store,
    /// and lets every player go: the server is stopping.
    pub(crate) fn close_for_shutdown(&mut self) {
        self.room.end_for_shutdown();
        self.evict_all(CloseReason::ServerShutdown);
    }

    /// Lets every player go with `reason` after the room failed, so none of them waits
    /// on a room that will never tick again.
    pub(crate) fn evict_all(&mut self, reason: CloseReason) {
        self.room.evict_all(reason);
        self.commands.close();
    }
}
