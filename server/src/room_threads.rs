//! The threads the rooms tick on, apart from the network runtime. A tick is short and
//! due at a fixed time, so each thread keeps its own schedule: it sleeps until the
//! earliest room is due (to within the OS timer's slack, not tokio's millisecond
//! wheel) and runs that room's tick. Rooms never queue behind thousands of connection
//! tasks, the OS scheduler puts them first when the cores are full (they ask to be
//! real-time), and a new room is phased so that its snapshot ticks do not coincide
//! with its neighbours'.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::room::RoomRunner;

/// How long a thread without rooms waits before it looks at the shutdown signal again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct RoomThreads {
    threads: Vec<RoomThread>,
}

#[derive(Debug)]
struct RoomThread {
    new_rooms: Sender<RoomRunner>,
    /// Rooms the thread runs (or has been sent).
    rooms: Arc<AtomicUsize>,
}

impl RoomThreads {
    /// Starts `count` room threads, real-time if `realtime`. They run until `shutdown`,
    /// which drops their rooms between two ticks.
    pub fn start(
        count: usize,
        realtime: bool,
        shutdown: &CancellationToken,
    ) -> std::io::Result<RoomThreads> {
        let mut threads = Vec::with_capacity(count);
        for index in 0..count.max(1) {
            let (new_rooms, receiver) = channel();
            let rooms = Arc::new(AtomicUsize::new(0));
            let shutdown = shutdown.clone();
            let count = Arc::clone(&rooms);
            std::thread::Builder::new()
                .name(format!("rooms-{index}"))
                .spawn(move || {
                    if realtime {
                        ask_for_realtime();
                    }
                    run(&receiver, &count, &shutdown);
                })?;
            threads.push(RoomThread { new_rooms, rooms });
        }
        Ok(RoomThreads { threads })
    }

    /// Hands a new room to the thread with the fewest rooms, which phases its ticks.
    pub fn spawn(&self, room: RoomRunner) {
        let Some(thread) = self
            .threads
            .iter()
            .min_by_key(|thread| thread.rooms.load(Ordering::Relaxed))
        else {
            return;
        };
        thread.rooms.fetch_add(1, Ordering::Relaxed);
        // A thread ends only at shutdown, when a room that never starts is no loss.
        let _ = thread.new_rooms.send(room);
    }
}

fn run(new_rooms: &Receiver<RoomRunner>, count: &AtomicUsize, shutdown: &CancellationToken) {
    let mut rooms: Vec<RoomRunner> = Vec::new();
    let add = |rooms: &mut Vec<RoomRunner>, mut room: RoomRunner| {
        room.start_in_gap(rooms.iter().map(RoomRunner::next_snapshot_due));
        rooms.push(room);
    };
    while !shutdown.is_cancelled() {
        // Taken here too, not only while waiting: a thread with always a room due would
        // otherwise never start a new one.
        while let Ok(room) = new_rooms.try_recv() {
            add(&mut rooms, room);
        }
        let now = Instant::now();
        let earliest = rooms
            .iter()
            .enumerate()
            .min_by_key(|(_, room)| room.due())
            .map(|(index, room)| (index, room.due()));
        if let Some((index, due)) = earliest
            && due <= now
        {
            if !rooms[index].tick() {
                rooms.swap_remove(index);
                count.fetch_sub(1, Ordering::Relaxed);
            }
            continue;
        }
        let wait = earliest.map_or(IDLE_WAIT, |(_, due)| (due - now).min(IDLE_WAIT));
        match new_rooms.recv_timeout(wait) {
            Ok(room) => add(&mut rooms, room),
            Err(RecvTimeoutError::Timeout) => {}
            // The lobby is gone: the server is stopping.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Asks for SCHED_FIFO at the lowest real-time priority, so a room thread whose tick is
/// due takes a core at once from any ordinary thread. Under the default policy the
/// kernel lets a running thread finish its slice first (a millisecond or more), which
/// put tick lateness past 2 ms with the cores full. Best effort: it needs CAP_SYS_NICE
/// (or root, or an RLIMIT_RTPRIO); without it rooms run at normal priority.
fn ask_for_realtime() {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    if let Err(err) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, fifo)
    {
        tracing::info!(?err, "room threads run at normal priority");
    }
}
