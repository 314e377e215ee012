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

    /// Schedules this room's next tick, a snapshot tick, so that its snapshots fall in
    /// the widest gap between those of `others` (the playing rooms on its thread).
    /// Encoding and writing snapshots is most of a tick's work; rooms that snapshot at
    /// the same moment make each other late. Used when a room starts or wakes.
    pub(crate) fn start_in_gap(&mut self, others: impl Iterator<Item = Instant>, now: Instant) {
        let settings = &self.room.settings;
        let cycle = Duration::from_secs_f64(1.0 / f64::from(settings.snapshot_hz)).as_nanos();
        let mut offsets: Vec<u128> = others
            .map(|due| due.saturating_duration_since(now).as_nanos() % cycle)
            .collect();
        offsets.sort_unstable();
        let start = match (offsets.first(), offsets.last()) {
            (Some(&first), Some(&last)) => {
                // The gap that wraps around the cycle, then each gap between neighbours.
                let wrap = (first + cycle - last, last);
                let widest = offsets
                    .windows(2)
                    .map(|pair| (pair[1] - pair[0], pair[0]))
                    .fold(
                        wrap,
                        |widest, gap| if gap.0 > widest.0 { gap } else { widest },
                    );
                (widest.1 + widest.0 / 2) % cycle
            }
            _ => 0,
        };
        self.next_tick = now + Duration::from_nanos(start as u64);
        self.snapshot_credit = u32::from(settings.tick_hz) - u32::from(settings.snapshot_hz);
    }

    /// Takes a parked room back to playing, phased against `others`.
    pub(crate) fn wake(&mut self, others: impl Iterator<Item = Instant>, now: Instant) {
        self.parked.store(false, Ordering::SeqCst);
        self.start_in_gap(others, now);
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
        room.step(&mut self.commands, self.dt);
        self.snapshot_credit += snapshot_hz;
        if self.snapshot_credit >= tick_hz {
            self.snapshot_credit -= tick_hz;
            room.send_snapshots();
        }
        let duration = work_started.elapsed();
        room.metrics.tick_duration.observe(duration.as_secs_f64());
        room.tick_times.record(duration);
        self.last_timing = Some(TickTiming { lateness, duration });

        self.next_tick += self.period;
        // After a long stall (a suspended process, an overloaded machine) resume the
        // schedule from now instead of running a burst of catch-up ticks.
        if now.saturating_duration_since(self.next_tick) > self.period * 5 {
            self.next_tick = now + self.period;
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
