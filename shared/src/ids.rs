//! Newtypes for ids and counters, with wrap-around ordering for the ones that wrap.

use serde::{Deserialize, Serialize};

/// A player's id, unique within a room for the player's lifetime there. One byte,
/// since a room seats at most `MAX_ROOM_CAPACITY` players.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PlayerId(pub u8);

/// A simulation tick number. Wraps after 2^32 ticks (2.2 years at 60 Hz).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tick(pub u32);

impl Tick {
    pub fn next(self) -> Tick {
        Tick(self.0.wrapping_add(1))
    }

    /// Signed distance from `earlier` to `self`, correct across wrap-around.
    pub fn since(self, earlier: Tick) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }
}

/// An input frame's sequence number. Starts at 1; 0 means "none yet". Wraps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Seq(pub u32);

impl Seq {
    pub fn next(self) -> Seq {
        Seq(self.0.wrapping_add(1))
    }

    /// Signed distance from `earlier` to `self`, correct across wrap-around.
    pub fn since(self, earlier: Seq) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// True if `self` comes strictly after `other` in wrap-around order.
    pub fn is_after(self, other: Seq) -> bool {
        self.since(other) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_order_survives_wrap_around() {
        assert!(Seq(0).is_after(Seq(u32::MAX)), "0 follows u32::MAX");
        assert!(Seq(5).is_after(Seq(u32::MAX - 5)));
        assert!(!Seq(u32::MAX).is_after(Seq(3)));
        assert!(!Seq(7).is_after(Seq(7)), "a seq is not after itself");
        assert_eq!(Seq(2).since(Seq(u32::MAX)), 3);
    }

    #[test]
    fn tick_since_is_signed_across_wrap() {
        assert_eq!(Tick(1).since(Tick(u32::MAX)), 2);
        assert_eq!(Tick(u32::MAX).since(Tick(1)), -2);
        assert_eq!(Tick(u32::MAX).next(), Tick(0));
    }
}
