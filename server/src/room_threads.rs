//! The threads the room loops run on, apart from the network runtime. A tick is short
//! and due at a fixed time: on threads of their own, rooms never queue behind thousands
//! of connection tasks, and the OS scheduler can put them first when the cores are full.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

/// The nice value room threads ask for. A tick that waits for a core is a late tick for
/// every player in the room; a connection task that waits a moment costs one player a
/// little latency.
const ROOM_THREAD_NICE: i32 = -10;

#[derive(Debug)]
pub struct RoomThreads {
    runtimes: Vec<Handle>,
    next: AtomicUsize,
}

impl RoomThreads {
    /// Starts `count` threads, each with a single-threaded runtime for its rooms. They
    /// run until `shutdown`; dropping a runtime stops its rooms between two ticks.
    pub fn start(count: usize, shutdown: &CancellationToken) -> std::io::Result<RoomThreads> {
        let mut runtimes = Vec::with_capacity(count);
        for index in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_time().build()?;
            runtimes.push(runtime.handle().clone());
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("rooms-{index}"))
                .spawn(move || {
                    raise_priority();
                    runtime.block_on(shutdown.cancelled());
                })?;
        }
        Ok(RoomThreads {
            runtimes,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a room loop on the next thread in turn.
    pub fn spawn(&self, room: impl Future<Output = ()> + Send + 'static) {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.runtimes.len();
        self.runtimes[index].spawn(room);
    }
}

/// Best effort: raising priority needs CAP_SYS_NICE (or root). Without it rooms run at
/// the process's priority, and lateness under a saturated machine is the OS's to share.
fn raise_priority() {
    let thread = rustix::thread::gettid();
    if let Err(err) = rustix::process::setpriority_process(Some(thread), ROOM_THREAD_NICE) {
        tracing::info!(%err, "room threads run at normal priority");
    }
}
