//! The threads the rooms tick on, apart from the network runtime. A tick is short and
//! due at a fixed time, so each thread keeps its own schedule: it sleeps until the
//! earliest room is due (to within the OS timer's slack, not tokio's millisecond
//! wheel) and runs every room then due. Rooms never queue behind thousands of
//! connection tasks, and the OS scheduler puts them first when the cores are full
//! (they ask to be real-time).
//!
//! A room that starts or wakes takes a slot on its thread's grid (`RoomRunner::
//! start_in_slot`): its snapshot ticks apart from its neighbours', its other ticks
//! with theirs, so that the thread wakes a few times a tick period rather than once
//! per room. A wake-up costs more than a small room's tick.
//!
//! The scheduler owns its threads and joins them when it stops. A room whose tick
//! panics is contained: its players are let go, the directory forgets it, and the
//! thread and its other rooms go on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shared::game::Phase;
use shared::protocol::CloseReason;
use tokio_util::sync::CancellationToken;

use crate::ops::metrics::{Metrics, ThreadTiming};
use crate::rooms::runner::{RoomKey, RoomRunner, Ticked};

/// How long a thread without rooms waits before it looks at the shutdown signal again.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Messages (new rooms and wake-ups) that may wait for one thread. New rooms past it
/// are refused: the thread is not keeping up.
const THREAD_QUEUE: usize = 256;

/// What the scheduler asks of the directory, which decides which rooms exist.
pub(crate) trait Janitor: Send + Sync {
    /// The room has been empty for its grace period. True if it is to close, which the
    /// directory has then recorded; false if a seat was reserved meanwhile.
    fn close_if_empty(&self, key: RoomKey, room: &str) -> bool;
    /// The room's match moved to `phase` (a match ended, or the next one began).
    fn phase_changed(&self, key: RoomKey, room: &str, phase: Phase);
    /// The room failed and is gone: its seats and directory entry are free.
    fn crashed(&self, key: RoomKey, room: &str);
}

enum ToThread {
    /// Boxed: a room is large, and the queue's slots are as large as its largest message.
    Start(Box<RoomRunner>),
    /// A parked room has a command waiting.
    Wake,
}

/// The room threads, owned: stopping or dropping the scheduler stops and joins them.
#[derive(Debug)]
pub(crate) struct Scheduler {
    handles: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

/// Hands new rooms to the threads; cloned into the directory.
#[derive(Clone, Debug)]
pub(crate) struct Spawner {
    threads: Arc<[ThreadLink]>,
}

#[derive(Debug)]
struct ThreadLink {
    queue: SyncSender<ToThread>,
    /// Rooms the thread runs (or has been sent).
    rooms: Arc<AtomicUsize>,
}

/// Wakes one room's thread when the room is parked and has been sent a command.
#[derive(Clone, Debug)]
pub(crate) struct Waker {
    queue: SyncSender<ToThread>,
    parked: Arc<AtomicBool>,
}

/// Every thread's queue is full: the room threads are not keeping up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Busy;

impl std::fmt::Debug for ToThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToThread::Start(room) => write!(f, "Start({})", room.id()),
            ToThread::Wake => f.write_str("Wake"),
        }
    }
}

/// The threads' queues, made before the threads so that the directory (which the
/// threads report to) can hold the spawner.
#[derive(Debug)]
pub(crate) struct Pending {
    receivers: Vec<(Receiver<ToThread>, Arc<AtomicUsize>)>,
}

/// Makes `count` threads' queues: the spawner now, the threads once `Pending::start`
/// is given their janitor.
pub(crate) fn queues(count: usize) -> (Spawner, Pending) {
    let mut links = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..count.max(1) {
        let (queue, receiver) = sync_channel(THREAD_QUEUE);
        let rooms = Arc::new(AtomicUsize::new(0));
        links.push(ThreadLink {
            queue,
            rooms: Arc::clone(&rooms),
        });
        receivers.push((receiver, rooms));
    }
    (
        Spawner {
            threads: links.into(),
        },
        Pending { receivers },
    )
}

impl Pending {
    /// Starts the threads, real-time if `realtime`.
    pub(crate) fn start(
        self,
        janitor: Arc<dyn Janitor>,
        metrics: Arc<Metrics>,
        realtime: bool,
    ) -> std::io::Result<Scheduler> {
        let stop = CancellationToken::new();
        let mut scheduler = Scheduler {
            handles: Vec::new(),
            stop: stop.clone(),
        };
        for (index, (receiver, count)) in self.receivers.into_iter().enumerate() {
            let thread = RoomThread {
                receiver,
                count,
                janitor: Arc::clone(&janitor),
                timing: metrics.room_thread(index),
                metrics: Arc::clone(&metrics),
                stop: stop.clone(),
                rooms: Vec::new(),
                wake_pending: false,
            };
            // On failure the scheduler drops here, which stops the threads already started.
            let handle = std::thread::Builder::new()
                .name(format!("rooms-{index}"))
                .spawn(move || {
                    if realtime {
                        ask_for_realtime();
                    }
                    thread.run();
                })?;
            scheduler.handles.push(handle);
        }
        Ok(scheduler)
    }
}

impl Scheduler {
    /// Stops every thread between two ticks and waits for them. Their rooms are dropped,
    /// which lets each room's connections go.
    pub(crate) fn stop(&mut self) {
        self.stop.cancel();
        for handle in self.handles.drain(..) {
            if handle.join().is_err() {
                tracing::error!("a room thread ended in a panic");
            }
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Spawner {
    /// Hands a new room to the thread with the fewest rooms, which phases its ticks.
    /// Returns the waker for the room's commands.
    pub(crate) fn spawn(&self, room: RoomRunner, parked: Arc<AtomicBool>) -> Result<Waker, Busy> {
        // `queues` makes at least one thread.
        let Some(thread) = self
            .threads
            .iter()
            .min_by_key(|thread| thread.rooms.load(Ordering::Relaxed))
        else {
            return Err(Busy);
        };
        match thread.queue.try_send(ToThread::Start(Box::new(room))) {
            Ok(()) => {
                thread.rooms.fetch_add(1, Ordering::Relaxed);
                Ok(Waker {
                    queue: thread.queue.clone(),
                    parked,
                })
            }
            // Full, or the thread has stopped (the server is stopping).
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

impl Waker {
    /// Called after a command was queued for the room: wakes its thread if the room is
    /// parked. A full queue needs no wake: the thread is busy with it, and a parked room
    /// looks at its commands at its next parked tick in any case.
    pub(crate) fn wake_if_parked(&self) {
        if self.parked.load(Ordering::SeqCst) {
            let _ = self.queue.try_send(ToThread::Wake);
        }
    }
}

/// One room thread's state.
pub(super) struct RoomThread {
    receiver: Receiver<ToThread>,
    count: Arc<AtomicUsize>,
    janitor: Arc<dyn Janitor>,
    metrics: Arc<Metrics>,
    /// This thread's own tick timing, for the console and `/metrics`.
    timing: ThreadTiming,
    stop: CancellationToken,
    pub(super) rooms: Vec<RoomRunner>,
    /// A wake arrived: look for parked rooms with commands before the next wait.
    wake_pending: bool,
}

impl RoomThread {
    fn run(mut self) {
        self.tick_until_stopped();
        // The server is stopping: each room records its match and lets its players go.
        for room in &mut self.rooms {
            let _ = catch_unwind(AssertUnwindSafe(|| room.close_for_shutdown()));
        }
    }

    fn tick_until_stopped(&mut self) {
        while !self.stop.is_cancelled() {
            // Taken here too, not only while waiting: a thread with always a room due
            // would otherwise never start a new one.
            while let Ok(msg) = self.receiver.try_recv() {
                self.take(msg);
            }
            let now = Instant::now();
            if std::mem::take(&mut self.wake_pending) {
                self.wake_parked(now);
            }
            let earliest = self
                .rooms
                .iter()
                .enumerate()
                .min_by_key(|(_, room)| room.due())
                .map(|(index, room)| (index, room.due()));
            if let Some((index, due)) = earliest
                && due <= now
            {
                self.tick(index, now);
                continue;
            }
            let wait = earliest.map_or(IDLE_WAIT, |(_, due)| (due - now).min(IDLE_WAIT));
            match self.receiver.recv_timeout(wait) {
                Ok(msg) => self.take(msg),
                Err(RecvTimeoutError::Timeout) => {}
                // The directory is gone: the server is stopping.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn take(&mut self, msg: ToThread) {
        match msg {
            ToThread::Start(mut room) => {
                room.start_in_slot(self.playing_snapshot_dues(), Instant::now());
                self.rooms.push(*room);
            }
            ToThread::Wake => self.wake_pending = true,
        }
    }

    fn playing_snapshot_dues(&self) -> impl Iterator<Item = Instant> + '_ {
        self.rooms
            .iter()
            .filter(|room| !room.is_parked())
            .map(RoomRunner::next_snapshot_due)
    }

    fn wake_parked(&mut self, now: Instant) {
        for index in 0..self.rooms.len() {
            if self.rooms[index].wants_waking() {
                let others: Vec<Instant> = self.playing_snapshot_dues().collect();
                self.rooms[index].wake(others.into_iter(), now);
            }
        }
    }

    /// Runs one room's tick, containing a panic to that room.
    pub(super) fn tick(&mut self, index: usize, now: Instant) {
        let room = &mut self.rooms[index];
        let ticked = catch_unwind(AssertUnwindSafe(|| room.tick(now)));
        if let Some(timing) = room.take_timing() {
            self.timing.lateness.observe(timing.lateness.as_secs_f64());
            self.timing.duration.observe(timing.duration.as_secs_f64());
        }
        if let Some(phase) = room.take_phase_change() {
            self.janitor.phase_changed(room.key(), room.id(), phase);
        }
        match ticked {
            Ok(Ticked::Open) => {}
            Ok(Ticked::Expired) => {
                let room = &self.rooms[index];
                if self.janitor.close_if_empty(room.key(), room.id()) {
                    self.remove(index);
                }
            }
            Err(_) => {
                let room = &mut self.rooms[index];
                tracing::error!(room = room.id(), "room failed; its players are let go");
                // Even a room left inconsistent by its panic can tell its players.
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    room.evict_all(CloseReason::RoomCrashed);
                }));
                self.metrics.room_failures.inc();
                let room = &self.rooms[index];
                self.janitor.crashed(room.key(), room.id());
                self.remove(index);
            }
        }
    }

    fn remove(&mut self, index: usize) {
        let room = self.rooms.swap_remove(index);
        self.count.fetch_sub(1, Ordering::Relaxed);
        // A room's drop runs its players' outboxes' drops: contained like its ticks.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(room)));
    }
}

#[cfg(test)]
impl RoomThread {
    /// A room thread's state without the thread, for tests that tick it by hand.
    pub(super) fn by_hand(
        janitor: Arc<dyn Janitor>,
        metrics: Arc<Metrics>,
        rooms: Vec<RoomRunner>,
    ) -> RoomThread {
        let (_queue, receiver) = sync_channel(1);
        RoomThread {
            receiver,
            count: Arc::new(AtomicUsize::new(rooms.len())),
            janitor,
            timing: metrics.room_thread(0),
            metrics,
            stop: CancellationToken::new(),
            rooms,
            wake_pending: false,
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
