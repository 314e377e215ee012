//! The room's check on what a shooter claims to have seen: believed within a tolerance of
//! the connection's measured round trip plus the interpolation delay, clamped (and
//! counted) beyond it, and never further back than the room rewinds.

use std::sync::Arc;

use shared::Tick;
use shared::consts::REWIND_CLAIM_TOLERANCE_MS;
use shared::game::ViewTime;
use shared::game::rewind::{RewindLimits, expected_ticks_ago, judge_claim};

use crate::ops::metrics::Metrics;
use crate::rooms::link_stats::LinkStats;
use crate::rooms::room::RoomSettings;

#[derive(Debug)]
pub(super) struct RewindJudge {
    limits: RewindLimits,
    tick_hz: u16,
    snapshot_hz: u16,
    metrics: Arc<Metrics>,
}

impl RewindJudge {
    pub(super) fn new(settings: &RoomSettings, metrics: Arc<Metrics>) -> RewindJudge {
        let tick_hz = settings.tick_hz;
        RewindJudge {
            limits: RewindLimits {
                max_ticks: settings.max_rewind_ticks as f32,
                tolerance_ticks: f32::from(REWIND_CLAIM_TOLERANCE_MS) / 1000.0 * f32::from(tick_hz),
            },
            tick_hz,
            snapshot_hz: settings.snapshot_hz,
            metrics,
        }
    }

    /// The view a shot fired at tick `now` is judged at: the claim if it is believable,
    /// else the nearest that is. `None` while the room does not rewind.
    pub(super) fn judge(&self, claim: ViewTime, now: Tick, link: &LinkStats) -> Option<ViewTime> {
        if self.limits.max_ticks <= 0.0 {
            return None;
        }
        // Until the first pong the round trip is unknown; the tolerance covers a
        // typical one, and the cap bounds the rest.
        let rtt_secs = link.rtt().map_or(0.0, |rtt| rtt.as_secs_f32());
        let expected = expected_ticks_ago(rtt_secs, self.tick_hz, self.snapshot_hz);
        let claimed = claim.ticks_ago(now);
        let judged = judge_claim(claimed, expected, self.limits);
        if judged.implausible {
            self.metrics.rewind_claims_clamped.inc();
        }
        if judged.ticks_ago == claimed {
            return Some(claim);
        }
        Some(ViewTime::ticks_before(now, judged.ticks_ago))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn judge(max_rewind_ticks: u32) -> RewindJudge {
        RewindJudge {
            limits: RewindLimits {
                max_ticks: max_rewind_ticks as f32,
                tolerance_ticks: 12.0,
            },
            tick_hz: 60,
            snapshot_hz: 30,
            metrics: Arc::new(Metrics::default()),
        }
    }

    fn link_with_rtt(ms: u64) -> LinkStats {
        let link = LinkStats::default();
        link.set_rtt(Duration::from_millis(ms));
        link
    }

    #[test]
    fn an_honest_claim_stands_and_is_not_counted() {
        let judge = judge(15);
        let now = Tick(1_000);
        let claim = ViewTime::between(Tick(985), Tick(987), 0.5);
        assert_eq!(judge.judge(claim, now, &link_with_rtt(150)), Some(claim));
        assert_eq!(judge.metrics.rewind_claims_clamped.get(), 0);
    }

    #[test]
    fn a_claim_a_second_old_is_clamped_to_the_cap_and_counted() {
        let judge = judge(15);
        let now = Tick(1_000);
        let forged = ViewTime::between(Tick(940), Tick(942), 0.0);
        let judged = judge
            .judge(forged, now, &link_with_rtt(150))
            .expect("the room rewinds");
        assert_eq!(
            judged.ticks_ago(now),
            15.0,
            "rewound by the cap, not a second"
        );
        assert_eq!(judge.metrics.rewind_claims_clamped.get(), 1);
    }

    #[test]
    fn a_room_that_does_not_rewind_ignores_every_claim() {
        let judge = judge(0);
        let forged = ViewTime::between(Tick(940), Tick(942), 0.0);
        assert_eq!(judge.judge(forged, Tick(1_000), &link_with_rtt(150)), None);
        assert_eq!(judge.metrics.rewind_claims_clamped.get(), 0);
    }
}
