//! What a connection measures of its player that the room cannot see (bytes received,
//! the round trip of the WebSocket ping), for the console's room inspector. The
//! connection writes and the room reads when asked, through relaxed atomics: neither
//! ever waits for the other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct LinkStats {
    /// Payload bytes received on the connection, every frame counted.
    bytes_in: AtomicU64,
    /// The last ping's round trip in microseconds; 0 until a pong has come back.
    rtt_us: AtomicU64,
}

impl LinkStats {
    pub(crate) fn received(&self, n_bytes: usize) {
        self.bytes_in.fetch_add(n_bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_us.store(micros, Ordering::Relaxed);
    }

    /// The last measured round trip, once there is one.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        match self.rtt_us.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_unknown_until_measured() {
        let stats = LinkStats::default();
        assert_eq!(stats.rtt(), None);
        stats.set_rtt(Duration::from_millis(42));
        assert_eq!(stats.rtt(), Some(Duration::from_millis(42)));
        stats.received(10);
        stats.received(5);
        assert_eq!(stats.bytes_in(), 15);
    }
}
