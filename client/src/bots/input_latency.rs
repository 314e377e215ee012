//! How long a bot's input takes to show: from the moment it left the bot to the first
//! snapshot whose input acknowledgement includes it. What a player feels as lag on
//! their own actions, beyond what prediction hides.

use std::collections::VecDeque;

use shared::Seq;
use tokio::time::Instant;

/// Inputs sent and not yet seen acknowledged, oldest first. A resume that finds the
/// seat gone starts a new tracker with the new seat's sequence numbers.
#[derive(Debug, Default)]
pub(super) struct InputLatency {
    in_flight: VecDeque<(Seq, Instant)>,
}

/// More than a few seconds of inputs at any tick rate: beyond it the server is not
/// acknowledging at all, and the oldest are forgotten rather than grown without end.
const MAX_IN_FLIGHT: usize = 1024;

impl InputLatency {
    pub(super) fn sent(&mut self, seq: Seq, at: Instant) {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back((seq, at));
    }

    /// A snapshot arrived at `at` whose state includes every input up to `acked`:
    /// each input it shows for the first time adds its latency, in milliseconds.
    pub(super) fn acknowledged(&mut self, acked: Seq, at: Instant, latencies_ms: &mut Vec<f32>) {
        while let Some(&(seq, sent_at)) = self.in_flight.front() {
            if seq.is_after(acked) {
                break;
            }
            self.in_flight.pop_front();
            latencies_ms.push((at - sent_at).as_secs_f32() * 1e3);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_input_counts_once_from_its_send_to_the_first_snapshot_that_shows_it() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut latency = InputLatency::default();
        latency.sent(Seq(1), start);
        latency.sent(Seq(2), start + ms(16));
        latency.sent(Seq(3), start + ms(33));
        let mut seen = Vec::new();
        latency.acknowledged(Seq(2), start + ms(50), &mut seen);
        let rounded = |seen: &[f32]| seen.iter().map(|ms| ms.round()).collect::<Vec<_>>();
        assert_eq!(
            rounded(&seen),
            vec![50.0, 34.0],
            "inputs 1 and 2 show in this snapshot"
        );
        latency.acknowledged(Seq(2), start + ms(100), &mut seen);
        assert_eq!(
            seen.len(),
            2,
            "a later snapshot with the same ack adds nothing"
        );
        latency.acknowledged(Seq(3), start + ms(83), &mut seen);
        assert_eq!(
            rounded(&seen)[2],
            50.0,
            "input 3 is counted at its first snapshot"
        );
    }

    #[test]
    fn a_server_that_never_acknowledges_does_not_grow_the_tracker() {
        let start = Instant::now();
        let mut latency = InputLatency::default();
        for n in 0..(MAX_IN_FLIGHT as u32 * 2) {
            latency.sent(Seq(n), start);
        }
        assert_eq!(latency.in_flight.len(), MAX_IN_FLIGHT);
    }
}
