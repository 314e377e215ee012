//! A token bucket on tokio's clock (so paused-clock tests can drive it), for the
//! per-connection limits and the per-address budget for opening rooms.

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct TokenBucket {
    capacity: f32,
    per_second: f32,
    tokens: f32,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens that refills at `per_second`.
    pub(crate) fn new(burst: u32, per_second: f32) -> TokenBucket {
        TokenBucket {
            capacity: burst as f32,
            per_second,
            tokens: burst as f32,
            refilled_at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self) -> bool {
        self.try_take_n(1)
    }

    /// Takes `n` tokens if there are that many; otherwise takes none.
    pub(crate) fn try_take_n(&mut self, n: u32) -> bool {
        self.refill();
        let n = n as f32;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

impl TokenBucket {
    /// True when the bucket has refilled to its burst: forgetting it loses nothing.
    pub(crate) fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.capacity
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = (now - self.refilled_at).as_secs_f32();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.refilled_at = now;
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

    #[tokio::test(start_paused = true)]
    async fn taking_many_is_all_or_nothing() {
        let mut bucket = TokenBucket::new(100, 10.0);
        assert!(bucket.try_take_n(60));
        assert!(!bucket.try_take_n(41), "only 40 left");
        assert!(bucket.try_take_n(40), "a refused take costs nothing");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(bucket.try_take_n(10));
        assert!(!bucket.try_take_n(1));
    }
}
