//! A player's inputs on their way from the connection's task to the room. The task hands
//! over all the frames of one message under one lock; the room takes what a tick needs
//! under one lock. Neither side waits for the other or wakes it: the room looks at the
//! queue on its own ticks.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{MappedMutexGuard, Mutex, MutexGuard};
use shared::game::InputFrame;

/// Input frames that may wait for the room's next tick. A burst past this (after a
/// network hiccup) loses its newest frames; a sustained flood is the message bucket's.
const INPUT_QUEUE: usize = 32;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<InputFrame>,
    /// The room has let go of the player.
    taker_gone: bool,
}

/// A new queue: the connection's end and the room's.
pub(crate) fn input_queue() -> (InputSender, InputTaker) {
    let queue = Arc::new(Mutex::new(Queue {
        frames: VecDeque::with_capacity(INPUT_QUEUE),
        taker_gone: false,
    }));
    (InputSender(Arc::clone(&queue)), InputTaker(queue))
}

/// The connection's end.
#[derive(Debug)]
pub(crate) struct InputSender(Arc<Mutex<Queue>>);

/// The room has let go of the player (a kick is on its way to the connection).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RoomGone;

impl InputSender {
    /// Queues `frames` in order, as many as there is room for.
    pub(crate) fn send(
        &self,
        frames: impl IntoIterator<Item = InputFrame>,
    ) -> Result<(), RoomGone> {
        let mut queue = self.0.lock();
        if queue.taker_gone {
            return Err(RoomGone);
        }
        let room = INPUT_QUEUE.saturating_sub(queue.frames.len());
        queue.frames.extend(frames.into_iter().take(room));
        Ok(())
    }
}

/// The room's end.
#[derive(Debug)]
pub(crate) struct InputTaker(Arc<Mutex<Queue>>);

impl InputTaker {
    /// The frames waiting, oldest first, held for as long as the guard lives.
    pub(crate) fn waiting(&self) -> MappedMutexGuard<'_, VecDeque<InputFrame>> {
        MutexGuard::map(self.0.lock(), |queue| &mut queue.frames)
    }
}

impl Drop for InputTaker {
    fn drop(&mut self) {
        self.0.lock().taker_gone = true;
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
    fn frames_arrive_in_order_and_a_burst_past_the_bound_loses_its_newest() {
        let (sender, taker) = input_queue();
        sender
            .send((1..=20).map(frame))
            .expect("the room holds the queue");
        sender
            .send((21..=40).map(frame))
            .expect("the room holds the queue");
        let seqs: Vec<u32> = taker.waiting().iter().map(|input| input.seq.0).collect();
        assert_eq!(seqs, (1..=INPUT_QUEUE as u32).collect::<Vec<_>>());
    }

    #[test]
    fn a_room_that_let_go_refuses_more() {
        let (sender, taker) = input_queue();
        sender.send([frame(1)]).expect("the room holds the queue");
        drop(taker);
        assert_eq!(sender.send([frame(2)]), Err(RoomGone));
    }
}
