//! What every backend's writer shares: how many results are still on their way (so
//! `flush` can wait for them), the pause between tries, the store's metrics, and how a
//! match's lines add up per player. Backend-independent, so the backends count alike.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use shared::ProfileId;

use crate::Metrics;
use crate::store::PlayerResult;

/// Matches written in one transaction at most. A busy store writes many matches per
/// commit instead of one: the disk's sync rate, not the match rate, is what it pays for.
pub(crate) const BATCH: usize = 64;

/// The store's metric handles, cloned out of `Metrics` once.
#[derive(Clone, Debug)]
pub(crate) struct StoreMetrics {
    pub(crate) queue_depth: Gauge,
    pub(crate) saved: Counter,
    pub(crate) dropped: Counter,
    pub(crate) write_failures: Counter,
}

impl StoreMetrics {
    pub(crate) fn from_metrics(metrics: &Metrics) -> StoreMetrics {
        StoreMetrics {
            queue_depth: metrics.store_queue_depth.clone(),
            saved: metrics.store_results_saved.clone(),
            dropped: metrics.store_results_dropped.clone(),
            write_failures: metrics.store_write_failures.clone(),
        }
    }
}

/// What a store and its writer share: how many results are accepted but not yet
/// written or given up on, and whether the store is closing.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pending: AtomicUsize,
    stopping: AtomicBool,
    /// Held only to wait on `changed` without missing a wake-up; guards nothing.
    lock: Mutex<()>,
    changed: Condvar,
}

impl Progress {
    /// Counts a result in before it is queued, so `flush` never sees the queue empty
    /// while a result is on its way into it. Lock-free: rooms call it.
    pub(crate) fn accept(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// A result was written, or given up on.
    pub(crate) fn finish(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Waits until nothing is pending, or `deadline`. True if nothing is.
    pub(crate) fn wait_drained(&self, deadline: Instant) -> bool {
        let mut guard = self.lock.lock();
        while self.pending() > 0 {
            if self.changed.wait_until(&mut guard, deadline).timed_out() {
                return self.pending() == 0;
            }
        }
        true
    }

    /// From now on a failed write is given up on at once, and a writer waiting to
    /// retry wakes.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Sleeps for `pause`, or less if the store starts closing.
    pub(crate) fn pause(&self, pause: Duration) {
        let deadline = Instant::now() + pause;
        let mut guard = self.lock.lock();
        while !self.stopping() {
            if self.changed.wait_until(&mut guard, deadline).timed_out() {
                return;
            }
        }
    }
}

/// One player's part in a match's lifetime stats and rating: their lines summed, in
/// case one profile held two seats, with their best placing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProfileTotals {
    pub(crate) profile: ProfileId,
    pub(crate) name: String,
    /// Sums of `u32`s over a room's seats: far from overflowing, and both databases'
    /// integers are signed.
    pub(crate) kills: i64,
    pub(crate) deaths: i64,
    pub(crate) shots: i64,
    pub(crate) hits: i64,
    pub(crate) score: i64,
    pub(crate) placing: u32,
}

/// The match's lines, one per profile, in the order each profile first appears.
pub(crate) fn per_profile(players: &[PlayerResult]) -> Vec<ProfileTotals> {
    let mut totals: Vec<ProfileTotals> = Vec::with_capacity(players.len());
    for player in players {
        match totals.iter_mut().find(|t| t.profile == player.profile) {
            Some(seen) => {
                seen.kills += i64::from(player.kills);
                seen.deaths += i64::from(player.deaths);
                seen.shots += i64::from(player.shots);
                seen.hits += i64::from(player.hits);
                seen.score += i64::from(player.score);
                seen.placing = seen.placing.min(player.placing);
            }
            None => totals.push(ProfileTotals {
                profile: player.profile,
                name: player.name.clone(),
                kills: i64::from(player.kills),
                deaths: i64::from(player.deaths),
                shots: i64::from(player.shots),
                hits: i64::from(player.hits),
                score: i64::from(player.score),
                placing: player.placing,
            }),
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn line(profile: u64, kills: u32, placing: u32) -> PlayerResult {
        PlayerResult {
            profile: ProfileId(profile),
            name: format!("p{profile}"),
            kills,
            deaths: 1,
            shots: 10,
            hits: 5,
            score: kills,
            placing,
        }
    }

    #[test]
    fn a_profile_in_two_seats_counts_once_with_its_lines_summed() {
        let totals = per_profile(&[line(1, 3, 2), line(2, 5, 1), line(1, 4, 3)]);
        assert_eq!(totals.len(), 2, "one entry per profile");
        assert_eq!(totals[0].profile, ProfileId(1), "first appearance first");
        assert_eq!((totals[0].kills, totals[0].deaths), (7, 2));
        assert_eq!(totals[0].placing, 2, "the better placing counts");
        assert_eq!(totals[1].kills, 5);
    }

    #[test]
    fn pause_ends_early_when_the_store_stops() {
        let progress = Arc::new(Progress::default());
        let stopper = {
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                progress.stop();
            })
        };
        let started = Instant::now();
        progress.pause(Duration::from_secs(30));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a writer waiting to retry wakes when the store closes"
        );
        stopper.join().expect("the stopping thread ends");
    }

    #[test]
    fn wait_drained_times_out_while_a_result_is_pending() {
        let progress = Progress::default();
        progress.accept();
        assert!(!progress.wait_drained(Instant::now() + Duration::from_millis(20)));
        progress.finish();
        assert!(progress.wait_drained(Instant::now() + Duration::from_millis(20)));
    }
}
