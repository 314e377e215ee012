//! Matches: a room plays them back to back. A match is played until a score limit or a
//! time limit, then its results stand for a while (nobody fires), then the next begins
//! with scores reset and everyone respawned. Time is counted in ticks, so the cycle is
//! as deterministic as the rest of the step.

use serde::{Deserialize, Serialize};

use crate::consts::{
    DEFAULT_MATCH_RESULTS_SECS, DEFAULT_MATCH_SCORE_LIMIT, DEFAULT_MATCH_TIME_LIMIT_SECS,
    DEFAULT_TICK_HZ,
};
use crate::ids::Tick;

/// How a room's matches run; set once per room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchRules {
    /// The first player to this many kills wins the match.
    pub score_limit: u16,
    /// A match that nobody wins by score ends after this many ticks.
    pub time_limit_ticks: u32,
    /// How long the results stand before the next match.
    pub results_ticks: u32,
}

impl MatchRules {
    /// The rules for the given limits at `tick_hz` ticks per second.
    pub fn new(
        score_limit: u16,
        time_limit_secs: f64,
        results_secs: f64,
        tick_hz: u16,
    ) -> MatchRules {
        let ticks = |secs: f64| {
            (secs * f64::from(tick_hz))
                .round()
                .clamp(1.0, f64::from(u32::MAX)) as u32
        };
        MatchRules {
            score_limit,
            time_limit_ticks: ticks(time_limit_secs),
            results_ticks: ticks(results_secs),
        }
    }
}

impl Default for MatchRules {
    fn default() -> MatchRules {
        MatchRules::new(
            DEFAULT_MATCH_SCORE_LIMIT,
            DEFAULT_MATCH_TIME_LIMIT_SECS,
            DEFAULT_MATCH_RESULTS_SECS,
            DEFAULT_TICK_HZ,
        )
    }
}

/// Where a room is in its cycle of matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Playing,
    /// The match is over and its results stand; nobody fires.
    Results,
}

/// The phase and the tick it ends at: all a client needs to show the time left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchClock {
    pub phase: Phase,
    pub ends: Tick,
}

impl MatchClock {
    /// Ticks left in the phase at `tick`; zero once it is over.
    pub fn ticks_left(self, tick: Tick) -> u32 {
        self.ends.since(tick).max(0) as u32
    }
}

/// Why a match ended, as the game sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchEnd {
    ScoreLimit,
    TimeLimit,
}
