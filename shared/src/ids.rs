//! Newtypes for ids and counters, with wrap-around ordering for the ones that wrap.

use serde::{Deserialize, Serialize};

/// A player's id, unique within a room for the player's lifetime there. One byte,
/// since a room seats at most `MAX_ROOM_CAPACITY` players.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PlayerId(pub u8);

/// A player's lasting identity across rooms, matches and visits: a random number the
/// server issues (inside a signed token) on a first visit. Written as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProfileId(pub u64);

impl ProfileId {
    /// The 16 lowercase hex digits it is written as, in URLs and JSON.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Reads exactly 16 hex digits; anything else is `None`.
    pub fn from_hex(text: &str) -> Option<ProfileId> {
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(ProfileId)
    }
}

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
    fn profile_ids_read_back_only_from_sixteen_hex_digits() {
        let id = ProfileId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_hex(), "00abcdef01234567");
        assert_eq!(ProfileId::from_hex(&id.to_hex()), Some(id));
        for bad in [
            "",
            "abc",
            "00abcdef0123456g",
            "+0abcdef01234567",
            "00abcdef012345678",
        ] {
            assert_eq!(ProfileId::from_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tick_since_is_signed_across_wrap() {
        assert_eq!(Tick(1).since(Tick(u32::MAX)), 2);
        assert_eq!(Tick(u32::MAX).since(Tick(1)), -2);
        assert_eq!(Tick(u32::MAX).next(), Tick(0));
    }
}
