//! Pauses between tries of something that failed, for every retry loop in the server
//! (the stores' writers, the Agones client): doubling from the first up to the longest.

use std::time::Duration;

/// Pauses doubling from `first` up to `longest`. A copy starts from where the
/// original stands, so a setting can be handed out as a fresh backoff.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    first: Duration,
    longest: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, longest: Duration) -> Backoff {
        Backoff {
            first,
            longest,
            next: first,
        }
    }

    /// The pause before the next try; the one after it is twice as long, up to `longest`.
    pub(crate) fn next(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.longest);
        pause
    }

    /// After a success: the next pause is the first again.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_longest_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        let pauses: Vec<_> = (0..4).map(|_| backoff.next()).collect();
        assert_eq!(
            pauses,
            [250, 500, 1000, 1000].map(Duration::from_millis).to_vec()
        );
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(250));
    }
}
