//! When to try again after losing the connection: a delay that doubles with each failed
//! try up to a cap, with jitter, so a restarted server is not met by every client at once.

/// The delay before the first retry, and the most any retry waits, in seconds.
pub const FIRST_RETRY_SECS: f64 = 0.5;
pub const MAX_RETRY_SECS: f64 = 10.0;

/// Seconds to wait after `failed_attempts` failures in a row (1 or more). `jitter` is a
/// uniform random number in [0, 1); it spreads the delay over half to one and a half times
/// the base.
pub fn retry_delay(failed_attempts: u32, jitter: f64) -> f64 {
    let doublings = failed_attempts.saturating_sub(1).min(16) as i32;
    let base = (FIRST_RETRY_SECS * 2f64.powi(doublings)).min(MAX_RETRY_SECS);
    base * (0.5 + jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let middle = |attempts| retry_delay(attempts, 0.5);
        assert_eq!(middle(1), FIRST_RETRY_SECS);
        assert_eq!(middle(2), 2.0 * FIRST_RETRY_SECS);
        assert_eq!(middle(3), 4.0 * FIRST_RETRY_SECS);
        assert_eq!(middle(40), MAX_RETRY_SECS);
    }

    #[test]
    fn jitter_spreads_each_delay_around_its_base() {
        assert_eq!(retry_delay(3, 0.0), 1.0);
        assert!((retry_delay(3, 0.999) - 3.0).abs() < 0.01);
    }
}
