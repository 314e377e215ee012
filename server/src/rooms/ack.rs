//! The newest snapshot a client has acknowledged, handed from its connection to its
//! room through one atomic: the connection overwrites, the room reads each snapshot
//! tick. Latest wins, nothing queues, and neither side ever waits for the other.

use std::sync::atomic::{AtomicU32, Ordering};

/// Set above the 16 tick bits once anything has been acknowledged.
const PRESENT: u32 = 1 << 16;

#[derive(Debug, Default)]
pub struct AckSlot(AtomicU32);

impl AckSlot {
    /// Records the low 16 bits of an acknowledged snapshot tick.
    pub fn store(&self, tick_low: u16) {
        self.0
            .store(PRESENT | u32::from(tick_low), Ordering::Relaxed);
    }

    /// The newest acknowledgement, if any has arrived.
    pub fn load(&self) -> Option<u16> {
        let value = self.0.load(Ordering::Relaxed);
        (value & PRESENT != 0).then_some(value as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_starts_empty_and_keeps_the_latest() {
        let slot = AckSlot::default();
        assert_eq!(slot.load(), None);
        slot.store(0);
        assert_eq!(slot.load(), Some(0), "tick 0 is a real acknowledgement");
        slot.store(65_535);
        assert_eq!(slot.load(), Some(65_535));
    }
}
