//! A player's input frames, read from the socket but not yet applied. The room reads
//! them in at its ticks (`Uplink::pull`) and takes what each tick needs, all on its own
//! thread: nothing is locked or shared.

use std::collections::VecDeque;

use shared::game::InputFrame;

/// Input frames that may wait for the room's next tick. A burst past this (after a
/// network hiccup) loses its newest frames; a sustained flood is the message bucket's.
const INPUT_QUEUE: usize = 32;

#[derive(Debug)]
pub(crate) struct InputQueue(VecDeque<InputFrame>);

impl Default for InputQueue {
    fn default() -> InputQueue {
        InputQueue(VecDeque::with_capacity(INPUT_QUEUE))
    }
}

impl InputQueue {
    /// Queues `frames` in order, as many as there is room for.
    pub(crate) fn extend(&mut self, frames: impl IntoIterator<Item = InputFrame>) {
        let room = INPUT_QUEUE.saturating_sub(self.0.len());
        self.0.extend(frames.into_iter().take(room));
    }

    /// The oldest frame waiting.
    pub(crate) fn pop_front(&mut self) -> Option<InputFrame> {
        self.0.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use shared::Seq;

    use super::*;

    fn frame(seq: u32) -> InputFrame {
        InputFrame {
            seq: Seq(seq),
            ..InputFrame::default()
        }
    }

    #[test]
    fn frames_come_out_in_order_and_a_burst_past_the_bound_loses_its_newest() {
        let mut queue = InputQueue::default();
        queue.extend((1..=20).map(frame));
        queue.extend((21..=40).map(frame));
        let seqs: Vec<u32> = std::iter::from_fn(|| queue.pop_front())
            .map(|input| input.seq.0)
            .collect();
        assert_eq!(seqs, (1..=INPUT_QUEUE as u32).collect::<Vec<_>>());
    }
}
