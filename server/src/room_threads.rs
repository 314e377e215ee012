//! The threads the rooms tick on, apart from the network runtime. A tick is short and
//! due at a fixed time, so each thread keeps its own schedule: it sleeps until the
//! earliest room is due (to within the OS timer's slack, not tokio's millisecond
//! wheel) and runs that room's tick. Rooms never queue behind thousands of connection
//! tasks, and the OS scheduler can put them first when the cores are full.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::room::RoomRunner;

/// The nice value room threads ask for. A tick that waits for a core is a late tick for
/// every player in the room; a connection task that waits a moment costs one player a
/// little latency.
const ROOM_THREAD_NICE: i32 = -10;
/// How long a thread without rooms waits before it looks at the shutdown signal again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct RoomThreads {
    threads: Vec<Sender<RoomRunner>>,
    next: AtomicUsize,
}

impl RoomThreads {
    /// Starts `count` room threads. They run until `shutdown`, which drops their rooms
    /// between two ticks.
    pub fn start(count: usize, shutdown: &CancellationToken) -> std::io::Result<RoomThreads> {
        let mut threads = Vec::with_capacity(count);
        for index in 0..count.max(1) {
            let (rooms_tx, rooms_rx) = channel();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("rooms-{index}"))
                .spawn(move || run(&rooms_rx, &shutdown))?;
            threads.push(rooms_tx);
        }
        Ok(RoomThreads {
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands a new room to the next thread in turn; its first tick is due at once.
    pub fn spawn(&self, room: RoomRunner) {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        // A thread ends only at shutdown, when a room that never starts is no loss.
        let _ = self.threads[index].send(room);
    }
}

fn run(new_rooms: &Receiver<RoomRunner>, shutdown: &CancellationToken) {
    raise_priority();
    let mut rooms: Vec<RoomRunner> = Vec::new();
    while !shutdown.is_cancelled() {
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
            }
            continue;
        }
        let wait = earliest.map_or(IDLE_WAIT, |(_, due)| (due - now).min(IDLE_WAIT));
        match new_rooms.recv_timeout(wait) {
            Ok(room) => rooms.push(room),
            Err(RecvTimeoutError::Timeout) => {}
            // The lobby is gone: the server is stopping.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Best effort: raising priority needs CAP_SYS_NICE (or root). Without it rooms run at
/// the process's priority, and lateness on a saturated machine is the OS's to share.
fn raise_priority() {
    let thread = rustix::thread::gettid();
    if let Err(err) = rustix::process::setpriority_process(Some(thread), ROOM_THREAD_NICE) {
        tracing::info!(%err, "room threads run at normal priority");
    }
}
