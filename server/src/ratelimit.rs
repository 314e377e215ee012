//! A token bucket on tokio's clock (so paused-clock tests can drive it), for the
//! per-connection limits.

use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    capacity: f32,
    per_second: f32,
    tokens: f32,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens that refills at `per_second`.
    pub fn new(burst: u32, per_second: f32) -> TokenBucket {
        TokenBucket {
            capacity: burst as f32,
            per_second,
            tokens: burst as f32,
            refilled_at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = (now - self.refilled_at).as_secs_f32();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_refills_at_its_rate() {
        let mut bucket = TokenBucket::new(3, 2.0);
        assert!(
            (0..3).all(|_| bucket.try_take()),
            "the burst is available at once"
        );
        assert!(!bucket.try_take(), "empty after the burst");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(bucket.try_take(), "one token after half a second at 2/s");
        assert!(!bucket.try_take());
    }
}
