//! What a room tells the operators' console about itself: its match, its tick times and
//! each player's ping, traffic, input rate and acknowledgement lag. The room answers
//! an inspection at its next tick from figures it keeps as it goes (a ring of recent
//! tick times, counters rolled once a second), so being inspected costs it a few
//! microseconds and never makes it wait.

use std::time::Duration;

use serde::Serialize;
use shared::Tick;
use shared::game::Phase;

use crate::rooms::room::{Occupant, Room};

/// Tick times remembered: about two seconds at 60 Hz.
const TICK_TIMES: usize = 128;

/// The room's most recent tick times, in microseconds, newest overwriting oldest.
#[derive(Debug)]
pub(super) struct TickTimes {
    micros: [u32; TICK_TIMES],
    next: usize,
    filled: usize,
}

impl Default for TickTimes {
    fn default() -> TickTimes {
        TickTimes {
            micros: [0; TICK_TIMES],
            next: 0,
            filled: 0,
        }
    }
}

impl TickTimes {
    pub(super) fn record(&mut self, took: Duration) {
        self.micros[self.next] = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.next = (self.next + 1) % TICK_TIMES;
        self.filled = (self.filled + 1).min(TICK_TIMES);
    }

    /// The `q` quantile of the remembered tick times, in milliseconds (nearest rank).
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.filled == 0 {
            return None;
        }
        let mut sorted = self.micros[..self.filled].to_vec();
        sorted.sort_unstable();
        let rank = ((q * self.filled as f64).ceil() as usize).clamp(1, self.filled);
        Some(f64::from(sorted[rank - 1]) / 1e3)
    }
}

/// A player's counters at one tick, to make per-second rates of.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    at: Tick,
    bytes_in: u64,
    bytes_out: u64,
    inputs: u64,
}

/// The counters a player's rates are taken against: `older` is one to two seconds old,
/// so a rate always spans at least a second.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RateWindow {
    older: Option<Counters>,
    newer: Option<Counters>,
}

/// One room as the console shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RoomReport {
    pub(crate) id: String,
    /// `playing`, or `results` while a finished match's results stand.
    pub(crate) phase: &'static str,
    /// Seconds left in the phase.
    pub(crate) seconds_left: f64,
    /// Tick time over the last two seconds or so, in milliseconds.
    pub(crate) tick_p50_ms: Option<f64>,
    pub(crate) tick_p99_ms: Option<f64>,
    /// Payload bytes per second, summed over the players.
    pub(crate) bytes_in_per_s: f64,
    pub(crate) bytes_out_per_s: f64,
    pub(crate) players: Vec<PlayerReport>,
}

/// One player as the console's inspector shows them.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PlayerReport {
    pub(crate) id: u8,
    pub(crate) name: String,
    /// The player's lasting identity, as 16 hex digits.
    pub(crate) profile: String,
    /// The connection dropped; the seat is held for a resume.
    pub(crate) away: bool,
    /// The round trip of the server's last WebSocket ping; `None` until one came back.
    pub(crate) ping_ms: Option<f64>,
    pub(crate) bytes_in_per_s: f64,
    pub(crate) bytes_out_per_s: f64,
    /// Inputs taken from the player's queue per second (applied or dropped).
    pub(crate) inputs_per_s: f64,
    /// How far behind the room's tick the newest snapshot the player acknowledged is,
    /// in milliseconds; `None` when none the room still holds is acknowledged.
    pub(crate) ack_lag_ms: Option<f64>,
}

impl Room {
    /// Takes every player's counters as the start of the next rate window; once a second.
    pub(super) fn roll_rate_windows(&mut self) {
        let now = self.world.tick;
        for occupant in &mut self.occupants {
            let counters = counters(occupant, now);
            let window = &mut occupant.rates;
            window.older = window.newer.replace(counters);
        }
    }

    /// The room as the console shows it, now.
    pub(super) fn report(&self) -> RoomReport {
        let tick_hz = f64::from(self.settings.tick_hz);
        let now = self.world.tick;
        let players: Vec<PlayerReport> = self
            .occupants
            .iter()
            .map(|occupant| {
                let current = counters(occupant, now);
                let base = occupant.rates.older.or(occupant.rates.newer);
                let rate = |pick: fn(&Counters) -> u64| {
                    base.map_or(0.0, |base| {
                        let ticks = current.at.since(base.at);
                        if ticks <= 0 {
                            return 0.0;
                        }
                        pick(&current).saturating_sub(pick(&base)) as f64 * tick_hz
                            / f64::from(ticks)
                    })
                };
                let link = occupant.link.as_ref();
                PlayerReport {
                    id: occupant.id.0,
                    name: occupant.name.clone(),
                    profile: occupant.profile.to_hex(),
                    away: link.is_none(),
                    ping_ms: link
                        .and_then(|link| link.stats.rtt())
                        .map(|rtt| rtt.as_secs_f64() * 1e3),
                    bytes_in_per_s: rate(|c| c.bytes_in),
                    bytes_out_per_s: rate(|c| c.bytes_out),
                    inputs_per_s: rate(|c| c.inputs),
                    ack_lag_ms: occupant
                        .acked
                        .map(|acked| f64::from(now.since(acked).max(0)) * 1e3 / tick_hz),
                }
            })
            .collect();
        let clock = self.world.clock();
        RoomReport {
            id: self.id.clone(),
            phase: match clock.phase {
                Phase::Playing => "playing",
                Phase::Results => "results",
            },
            seconds_left: f64::from(clock.ticks_left(now)) / tick_hz,
            tick_p50_ms: self.tick_times.quantile_ms(0.50),
            tick_p99_ms: self.tick_times.quantile_ms(0.99),
            bytes_in_per_s: players.iter().map(|p| p.bytes_in_per_s).sum(),
            bytes_out_per_s: players.iter().map(|p| p.bytes_out_per_s).sum(),
            players,
        }
    }
}

fn counters(occupant: &Occupant, now: Tick) -> Counters {
    let link = occupant.link.as_ref();
    Counters {
        at: now,
        bytes_in: link.map_or(0, |link| link.stats.bytes_in()),
        bytes_out: link.map_or(0, |link| link.outbox.sent_bytes()),
        inputs: occupant.inputs_taken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_quantiles_come_from_the_remembered_ticks() {
        let mut times = TickTimes::default();
        assert_eq!(times.quantile_ms(0.99), None, "no tick yet");
        for micros in 1..=100 {
            times.record(Duration::from_micros(micros * 10));
        }
        assert_eq!(times.quantile_ms(0.50), Some(0.5));
        assert_eq!(times.quantile_ms(0.99), Some(0.99));
        for _ in 0..TICK_TIMES {
            times.record(Duration::from_micros(200));
        }
        assert_eq!(
            times.quantile_ms(0.99),
            Some(0.2),
            "old ticks are forgotten once the ring has turned"
        );
    }
}
