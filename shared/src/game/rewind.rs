//! Lag compensation's rules: where every player was over the last few hundred
//! milliseconds (a ring written once per tick, allocated once), where a target stood at a
//! moment in between, and how far a shooter's claimed view is believed.

use glam::Vec2;

use crate::ids::{PlayerId, Tick};

/// Where one player was at one tick, and which life that was.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trace {
    pub id: PlayerId,
    pub pos: Vec2,
    /// When this life began (a join, a respawn, a match start): a teleport. A player is
    /// never rewound across one.
    pub spawned_at: Tick,
}

#[derive(Clone, Debug, PartialEq)]
struct Frame {
    tick: Tick,
    traces: Vec<Trace>,
}

/// The last few ticks of every player's position. Frame `i` holds the tick whose number
/// is `i` modulo the ring's length, so a lookup is one index and a tick check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    frames: Vec<Frame>,
}

impl History {
    /// A ring that remembers `ticks` ticks back from the newest, for up to `n_players`
    /// players without allocating again.
    pub fn new(ticks: u32, n_players: usize) -> History {
        let frames = (0..=ticks)
            .map(|_| Frame {
                // No real tick matches until the frame is written: `record` sets it.
                tick: Tick(u32::MAX),
                traces: Vec::with_capacity(n_players),
            })
            .collect();
        History { frames }
    }

    /// How many ticks back a lookup can reach.
    pub fn depth(&self) -> u32 {
        self.frames.len().saturating_sub(1) as u32
    }

    /// Remembers where each player is at `tick`, overwriting the oldest tick.
    pub fn record(&mut self, tick: Tick, players: impl Iterator<Item = Trace>) {
        if self.frames.is_empty() {
            return;
        }
        let slot = tick.0 as usize % self.frames.len();
        let frame = &mut self.frames[slot];
        frame.tick = tick;
        frame.traces.clear();
        frame.traces.extend(players);
    }

    fn trace(&self, id: PlayerId, tick: Tick) -> Option<&Trace> {
        if self.frames.is_empty() {
            return None;
        }
        let frame = &self.frames[tick.0 as usize % self.frames.len()];
        if frame.tick != tick {
            return None;
        }
        frame.traces.iter().find(|t| t.id == id)
    }

    /// Where player `id`, in the life that began at `spawned_at`, stood `ticks_ago`
    /// ticks before `now`, between the two ticks around that moment. `None` when that is
    /// beyond the history, the player was not there, or was in an earlier life then: such
    /// a target is judged where it is now.
    pub fn position(
        &self,
        id: PlayerId,
        spawned_at: Tick,
        now: Tick,
        ticks_ago: f32,
    ) -> Option<Vec2> {
        let ticks_ago = ticks_ago.max(0.0);
        let whole = libm::floorf(ticks_ago);
        let fraction = ticks_ago - whole;
        let later = Tick(now.0.wrapping_sub(whole as u32));
        let same_life = |trace: &&Trace| trace.spawned_at == spawned_at;
        let at_later = self.trace(id, later).filter(same_life)?;
        if fraction == 0.0 {
            return Some(at_later.pos);
        }
        let earlier = Tick(later.0.wrapping_sub(1));
        let at_earlier = self.trace(id, earlier).filter(same_life)?;
        Some(at_later.pos.lerp(at_earlier.pos, fraction))
    }
}

/// How far back the server believes a shooter's view was.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judged {
    /// Ticks before now that the shot is judged at.
    pub ticks_ago: f32,
    /// The claim was further from the server's own estimate than it tolerates, and was
    /// moved to the edge of what it tolerates.
    pub implausible: bool,
}

/// What a claim is checked against, all in ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RewindLimits {
    /// The most any shot is rewound; 0 turns lag compensation off.
    pub max_ticks: f32,
    /// How far a claim may stray from the server's estimate before it is clamped.
    pub tolerance_ticks: f32,
}

/// How far back a client that measured `rtt_secs` round trip draws the room: a round
/// trip plus the interpolation delay, which the client keeps at two snapshot intervals
/// when the network is steady.
pub fn expected_ticks_ago(rtt_secs: f32, tick_hz: u16, snapshot_hz: u16) -> f32 {
    let tick_hz = f32::from(tick_hz.max(1));
    let interpolation_secs = 2.0 / f32::from(snapshot_hz.max(1));
    (rtt_secs + interpolation_secs) * tick_hz
}

/// Checks a shooter's claimed view (`claimed` ticks ago) against `expected`: a claim too
/// far off either way is moved to the edge of the tolerance, and every shot is then held
/// between now and the cap.
pub fn judge_claim(claimed: f32, expected: f32, limits: RewindLimits) -> Judged {
    let (low, high) = (
        expected - limits.tolerance_ticks,
        expected + limits.tolerance_ticks,
    );
    let implausible = !(low..=high).contains(&claimed);
    Judged {
        ticks_ago: claimed
            .clamp(low, high)
            .clamp(0.0, limits.max_ticks.max(0.0)),
        implausible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: PlayerId = PlayerId(7);

    fn trace(pos: Vec2, spawned_at: Tick) -> Trace {
        Trace {
            id: ME,
            pos,
            spawned_at,
        }
    }

    /// A history of `ME` walking one unit along x per tick, from tick 0 to `last`.
    fn walking(depth: u32, last: u32) -> History {
        let mut history = History::new(depth, 4);
        for tick in 0..=last {
            history.record(
                Tick(tick),
                [trace(Vec2::new(tick as f32, 0.0), Tick(0))].into_iter(),
            );
        }
        history
    }

    #[test]
    fn a_position_between_ticks_is_interpolated() {
        let history = walking(15, 100);
        let at = |ticks_ago| history.position(ME, Tick(0), Tick(100), ticks_ago);
        assert_eq!(
            at(0.0),
            Some(Vec2::new(100.0, 0.0)),
            "now is the newest tick"
        );
        assert_eq!(at(4.0), Some(Vec2::new(96.0, 0.0)));
        assert_eq!(at(4.25), Some(Vec2::new(95.75, 0.0)));
        assert_eq!(
            at(15.0),
            Some(Vec2::new(85.0, 0.0)),
            "the ring reaches its depth"
        );
    }

    #[test]
    fn the_ring_forgets_what_is_older_than_its_depth() {
        let history = walking(15, 100);
        assert_eq!(history.depth(), 15);
        assert_eq!(history.position(ME, Tick(0), Tick(100), 16.0), None);
        assert_eq!(
            history.position(ME, Tick(0), Tick(100), 14.5),
            Some(Vec2::new(85.5, 0.0)),
            "half a tick short of the depth still has both ticks"
        );
        assert_eq!(
            history.position(PlayerId(8), Tick(0), Tick(100), 1.0),
            None,
            "nobody else was recorded"
        );
    }

    #[test]
    fn recording_reuses_the_ring_without_growing_it() {
        let mut history = walking(15, 20);
        let capacities: Vec<usize> = history.frames.iter().map(|f| f.traces.capacity()).collect();
        for tick in 21..200 {
            history.record(Tick(tick), [trace(Vec2::ZERO, Tick(0))].into_iter());
        }
        let after: Vec<usize> = history.frames.iter().map(|f| f.traces.capacity()).collect();
        assert_eq!(
            capacities, after,
            "no frame's storage was replaced or grown"
        );
        assert_eq!(history.frames.len(), 16);
    }

    #[test]
    fn a_player_is_not_rewound_across_a_respawn() {
        let mut history = History::new(15, 4);
        for tick in 90..=100u32 {
            // Respawned at tick 96, far away.
            let (pos, life) = if tick < 96 {
                (Vec2::new(tick as f32, 0.0), Tick(0))
            } else {
                (Vec2::new(500.0, 500.0), Tick(96))
            };
            history.record(Tick(tick), [trace(pos, life)].into_iter());
        }
        let now = Tick(100);
        assert_eq!(
            history.position(ME, Tick(96), now, 2.0),
            Some(Vec2::new(500.0, 500.0)),
            "within this life the history serves"
        );
        assert_eq!(
            history.position(ME, Tick(96), now, 6.0),
            None,
            "before the respawn it was another life: judged where it is now"
        );
        assert_eq!(
            history.position(ME, Tick(96), now, 4.5),
            None,
            "nor half way across the teleport"
        );
    }

    const LIMITS: RewindLimits = RewindLimits {
        max_ticks: 15.0,
        tolerance_ticks: 12.0,
    };

    #[test]
    fn an_honest_claim_is_taken_as_it_is() {
        let expected = expected_ticks_ago(0.15, 60, 30);
        assert!(
            (expected - 13.0).abs() < 0.01,
            "150 ms and 2 snapshot intervals: {expected}"
        );
        let judged = judge_claim(14.2, expected, LIMITS);
        assert_eq!(
            judged,
            Judged {
                ticks_ago: 14.2,
                implausible: false
            }
        );
    }

    #[test]
    fn a_claim_a_second_old_is_clamped_and_then_capped() {
        let expected = expected_ticks_ago(0.15, 60, 30);
        let judged = judge_claim(60.0, expected, LIMITS);
        assert!(judged.implausible, "a second is far off 13 ticks");
        assert_eq!(judged.ticks_ago, 15.0, "held to the cap");
        let generous = RewindLimits {
            max_ticks: 60.0,
            ..LIMITS
        };
        assert_eq!(
            judge_claim(60.0, expected, generous).ticks_ago,
            25.0,
            "with a larger cap, the tolerance's edge binds: 13 + 12"
        );
    }

    #[test]
    fn a_claim_from_the_future_or_too_fresh_is_clamped_too() {
        let expected = expected_ticks_ago(0.3, 60, 30);
        let judged = judge_claim(0.0, expected, LIMITS);
        assert!(
            judged.implausible,
            "no view at all is implausible at 300 ms"
        );
        assert_eq!(judged.ticks_ago, 10.0, "22 expected, minus 12 tolerated");
        assert_eq!(
            judge_claim(-3.0, 2.0, LIMITS),
            Judged {
                ticks_ago: 0.0,
                implausible: false
            },
            "within tolerance, but never after now"
        );
    }

    #[test]
    fn a_cap_of_zero_rewinds_nothing() {
        let off = RewindLimits {
            max_ticks: 0.0,
            ..LIMITS
        };
        assert_eq!(judge_claim(10.0, 10.0, off).ticks_ago, 0.0);
    }
}
