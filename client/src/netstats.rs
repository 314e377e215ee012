//! The numbers a player's net graph shows: per-second rates (frames, snapshots, bytes each
//! way) and the round-trip time measured with pings. Time is passed in, in seconds, so the
//! same code runs natively and in the browser.

use shared::protocol::ClientMsg;

/// How often the round trip is measured, in seconds.
const PING_EVERY_SECS: f64 = 1.0;

/// A ping unanswered for this long is forgotten, so a lost one does not stop the next.
const PING_GIVE_UP_SECS: f64 = 5.0;

/// Weight of a new round-trip sample in the smoothed value shown.
const RTT_WEIGHT: f64 = 0.25;

/// Counts events over whole seconds and reports the last complete second.
#[derive(Clone, Copy, Debug, Default)]
pub struct RateMeter {
    window_start: Option<f64>,
    in_window: f64,
    last_second: f64,
}

impl RateMeter {
    pub fn add(&mut self, amount: f64, now: f64) {
        self.roll(now);
        self.in_window += amount;
    }

    /// The amount counted per second over the last complete window.
    pub fn per_second(&mut self, now: f64) -> f64 {
        self.roll(now);
        self.last_second
    }

    fn roll(&mut self, now: f64) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now - start;
        if elapsed >= 1.0 {
            // A window of several seconds (a hidden tab) still reports a per-second rate.
            self.last_second = if elapsed < 2.0 {
                self.in_window / elapsed
            } else {
                0.0
            };
            self.in_window = 0.0;
            self.window_start = Some(now);
        }
    }
}

/// Sends a ping now and then and measures the answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct PingTracker {
    next_nonce: u32,
    outstanding: Option<(u32, f64)>,
    last_sent: Option<f64>,
    /// Smoothed round-trip time in milliseconds; `None` before the first answer.
    pub rtt_ms: Option<f64>,
}

impl PingTracker {
    /// The ping to send at `now`, if one is due.
    pub fn due(&mut self, now: f64) -> Option<ClientMsg> {
        if let Some((_, sent_at)) = self.outstanding
            && now - sent_at < PING_GIVE_UP_SECS
        {
            return None;
        }
        if self
            .last_sent
            .is_some_and(|last| now - last < PING_EVERY_SECS)
        {
            return None;
        }
        self.next_nonce = self.next_nonce.wrapping_add(1);
        self.outstanding = Some((self.next_nonce, now));
        self.last_sent = Some(now);
        Some(ClientMsg::Ping {
            nonce: self.next_nonce,
        })
    }

    /// Takes the server's answer to a ping.
    pub fn pong(&mut self, nonce: u32, now: f64) {
        let Some((sent_nonce, sent_at)) = self.outstanding else {
            return;
        };
        if sent_nonce != nonce {
            return;
        }
        self.outstanding = None;
        let sample = (now - sent_at) * 1e3;
        self.rtt_ms = Some(match self.rtt_ms {
            Some(rtt) => rtt + (sample - rtt) * RTT_WEIGHT,
            None => sample,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_meter_reports_the_last_whole_second() {
        let mut meter = RateMeter::default();
        for i in 0..30 {
            meter.add(100.0, f64::from(i) / 30.0);
        }
        let rate = meter.per_second(1.0);
        assert!(
            (rate - 3000.0).abs() < 1.0,
            "30 x 100 in a second, got {rate}"
        );
        assert_eq!(meter.per_second(3.5), 0.0, "nothing came since");
    }

    #[test]
    fn pings_are_spaced_and_answered_pings_give_a_round_trip() {
        let mut ping = PingTracker::default();
        let Some(ClientMsg::Ping { nonce }) = ping.due(0.0) else {
            panic!("the first ping is due at once");
        };
        assert!(ping.due(0.5).is_none(), "one ping at a time");
        ping.pong(nonce, 0.040);
        assert!(ping.due(0.5).is_none(), "not before a second has passed");
        let rtt = ping.rtt_ms.expect("answered");
        assert!((rtt - 40.0).abs() < 1e-6);
        assert!(ping.due(1.0).is_some());
    }
}
