//! Replay files on disk: one writer thread owns every file being written, rooms hand it
//! encoded frames over a bounded queue and never wait for the disk. A recording lives in
//! `<data-dir>/replays/pending/` until the store has saved its match, then it becomes
//! `<data-dir>/replays/<match id>.replay`, which the API serves.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use shared::Tick;
use shared::replay::{KeyframeEntry, ReplayFrame, write_frame};
use tokio::sync::oneshot;

use crate::ops::metrics::Metrics;
use crate::store::MatchId;

/// The replays' folder in the data directory.
pub const REPLAY_DIR: &str = "replays";
/// Where recordings wait for their match to be saved.
const PENDING_DIR: &str = "pending";
/// Messages waiting for the writer, over all rooms: a few seconds of a busy server.
const QUEUE_CAPACITY: usize = 16 * 1024;
/// How often the writer takes what the rooms queued, and looks whether the store has
/// saved a match whose room is gone.
const POLL_PERIOD: Duration = Duration::from_millis(50);
/// How long a stopping writer waits for the store's word on the matches it holds.
const STOP_BUDGET: Duration = Duration::from_secs(3);

/// A recording's number while it is written; unique in this process.
pub(crate) type RecordingKey = u64;

/// The file a saved match's replay is kept in.
pub fn replay_path(data_dir: &Path, id: MatchId) -> PathBuf {
    data_dir.join(REPLAY_DIR).join(format!("{id}.replay"))
}

#[derive(Debug)]
enum ReplayMsg {
    /// Starts a file with these bytes (the magic and the header frame).
    Open {
        key: RecordingKey,
        bytes: Vec<u8>,
    },
    /// Appends a framed payload; a keyframe goes in the index.
    Frame {
        key: RecordingKey,
        bytes: Vec<u8>,
        keyframe: Option<Tick>,
    },
    /// The match is over and handed to the store: the index ends the file.
    Close {
        key: RecordingKey,
    },
    /// The store saved the match under `id`: the file is kept under it.
    Keep {
        key: RecordingKey,
        id: MatchId,
    },
    /// The room goes before the store's word on the match: the writer waits for it.
    AwaitSave {
        key: RecordingKey,
        saved: oneshot::Receiver<MatchId>,
    },
    /// The match will not be saved: the file goes.
    Discard {
        key: RecordingKey,
    },
    Stop,
}

/// What a room holds of the writer: it queues and never waits.
#[derive(Clone, Debug)]
pub(crate) struct ReplaySink {
    queue: SyncSender<ReplayMsg>,
    next_key: Arc<AtomicU64>,
    frames_dropped: Counter,
}

/// The queue was full: what was handed over is handed back.
#[derive(Debug)]
pub(crate) struct Full;

impl ReplaySink {
    pub(crate) fn open(&self, bytes: Vec<u8>) -> Result<RecordingKey, Full> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.try_send(ReplayMsg::Open { key, bytes })
            .map(|()| key)
            .map_err(|_| Full)
    }

    pub(crate) fn frame(
        &self,
        key: RecordingKey,
        bytes: Vec<u8>,
        keyframe: Option<Tick>,
    ) -> Result<(), Full> {
        self.try_send(ReplayMsg::Frame {
            key,
            bytes,
            keyframe,
        })
        .map_err(|_| Full)
    }

    /// Ends a recording whose match was handed to the store.
    pub(crate) fn close(&self, key: RecordingKey) {
        let _ = self.try_send(ReplayMsg::Close { key });
    }

    /// Keeps a closed recording as the replay of match `id`.
    pub(crate) fn keep(&self, key: RecordingKey, id: MatchId) {
        let _ = self.try_send(ReplayMsg::Keep { key, id });
    }

    /// Leaves it to the writer to keep a closed recording once `saved` gives its id.
    pub(crate) fn await_save(&self, key: RecordingKey, saved: oneshot::Receiver<MatchId>) {
        let _ = self.try_send(ReplayMsg::AwaitSave { key, saved });
    }

    pub(crate) fn discard(&self, key: RecordingKey) {
        let _ = self.try_send(ReplayMsg::Discard { key });
    }

    fn try_send(&self, msg: ReplayMsg) -> Result<(), ReplayMsg> {
        match self.queue.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg) | TrySendError::Disconnected(msg)) => {
                self.frames_dropped.inc();
                Err(msg)
            }
        }
    }
}

/// The writer thread, owned by the server, which stops and joins it after the store
/// has flushed (so the last matches' ids have come).
#[derive(Debug)]
pub(crate) struct ReplayWriter {
    queue: SyncSender<ReplayMsg>,
    thread: Option<JoinHandle<()>>,
}

impl ReplayWriter {
    /// Starts the writer over `<data_dir>/replays`, emptying what an earlier process
    /// left pending (its matches' ids never came).
    pub(crate) fn start(
        data_dir: &Path,
        metrics: &Metrics,
    ) -> std::io::Result<(ReplayWriter, ReplaySink)> {
        let dir = data_dir.join(REPLAY_DIR);
        let pending = dir.join(PENDING_DIR);
        if pending.exists() {
            std::fs::remove_dir_all(&pending)?;
        }
        std::fs::create_dir_all(&pending)?;
        let (queue, jobs) = mpsc::sync_channel(QUEUE_CAPACITY);
        let files = Files {
            dir,
            pending,
            open: HashMap::new(),
            closed: HashMap::new(),
            waiting: Vec::new(),
            saved: metrics.replays_saved.clone(),
            failures: metrics.replay_write_failures.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("replay_writer".into())
            .spawn(move || files.write_loop(&jobs))?;
        let sink = ReplaySink {
            queue: queue.clone(),
            next_key: Arc::new(AtomicU64::new(1)),
            frames_dropped: metrics.replay_frames_dropped.clone(),
        };
        Ok((
            ReplayWriter {
                queue,
                thread: Some(thread),
            },
            sink,
        ))
    }

    /// Writes what is queued, waits (3 s at most) for the ids of the matches it holds,
    /// and joins the thread.
    pub(crate) fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // A blocking send: the writer drains its queue, so this waits only for the disk.
        let _ = self.queue.send(ReplayMsg::Stop);
        if thread.join().is_err() {
            tracing::error!("the replay writer panicked");
        }
    }
}

impl Drop for ReplayWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A recording being written.
struct Recording {
    file: BufWriter<File>,
    path: PathBuf,
    /// Bytes written so far: where the next frame starts.
    offset: u64,
    index: Vec<KeyframeEntry>,
}

/// A closed recording whose room went before the store's word on its match.
struct Waiting {
    key: RecordingKey,
    saved: oneshot::Receiver<MatchId>,
}

/// Everything the writer thread owns.
struct Files {
    dir: PathBuf,
    pending: PathBuf,
    open: HashMap<RecordingKey, Recording>,
    /// Closed files, waiting for their match's id.
    closed: HashMap<RecordingKey, PathBuf>,
    waiting: Vec<Waiting>,
    saved: Counter,
    failures: Counter,
}

impl Files {
    /// Takes what the rooms queued once a period rather than as each frame comes: a
    /// writer asleep on the queue cost every room a futex wake per snapshot, and itself
    /// a context switch each.
    fn write_loop(mut self, jobs: &Receiver<ReplayMsg>) {
        'writing: loop {
            loop {
                match jobs.try_recv() {
                    Ok(ReplayMsg::Stop) | Err(TryRecvError::Disconnected) => break 'writing,
                    Ok(msg) => self.handle(msg),
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.keep_saved();
            std::thread::sleep(POLL_PERIOD);
        }
        let deadline = Instant::now() + STOP_BUDGET;
        while !self.waiting.is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL_PERIOD);
            self.keep_saved();
        }
        // Recordings still open belong to matches that never ended; those closed, to
        // matches the store never confirmed. Neither is kept.
        for (_, recording) in self.open.drain() {
            let _ = std::fs::remove_file(&recording.path);
        }
        for (_, path) in self.closed.drain() {
            let _ = std::fs::remove_file(path);
        }
    }

    fn handle(&mut self, msg: ReplayMsg) {
        match msg {
            ReplayMsg::Open { key, bytes } => {
                let path = self.pending.join(format!("{key}.replay"));
                let opened = File::create(&path).and_then(|file| {
                    let mut file = BufWriter::new(file);
                    file.write_all(&bytes)?;
                    Ok(file)
                });
                match opened {
                    Ok(file) => {
                        self.open.insert(
                            key,
                            Recording {
                                file,
                                path,
                                offset: bytes.len() as u64,
                                index: Vec::new(),
                            },
                        );
                    }
                    Err(err) => self.failed(&path, &err),
                }
            }
            ReplayMsg::Frame {
                key,
                bytes,
                keyframe,
            } => {
                let Some(recording) = self.open.get_mut(&key) else {
                    return;
                };
                if let Some(tick) = keyframe {
                    recording.index.push(KeyframeEntry {
                        tick,
                        offset: recording.offset,
                    });
                }
                recording.offset += bytes.len() as u64;
                if let Err(err) = recording.file.write_all(&bytes) {
                    let path = recording.path.clone();
                    self.open.remove(&key);
                    self.failed(&path, &err);
                }
            }
            ReplayMsg::Close { key } => {
                let Some(recording) = self.open.remove(&key) else {
                    return;
                };
                let path = recording.path.clone();
                match finish(recording) {
                    Ok(()) => {
                        self.closed.insert(key, path);
                    }
                    Err(err) => self.failed(&path, &err),
                }
            }
            ReplayMsg::Keep { key, id } => self.keep(key, id),
            ReplayMsg::AwaitSave { key, saved } => self.waiting.push(Waiting { key, saved }),
            ReplayMsg::Discard { key } => {
                if let Some(recording) = self.open.remove(&key) {
                    let _ = std::fs::remove_file(&recording.path);
                }
                if let Some(path) = self.closed.remove(&key) {
                    let _ = std::fs::remove_file(path);
                }
            }
            ReplayMsg::Stop => {}
        }
    }

    /// Keeps each recording whose match the store has saved since, of those whose
    /// room went first.
    fn keep_saved(&mut self) {
        let mut idx = 0;
        while idx < self.waiting.len() {
            match self.waiting[idx].saved.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => idx += 1,
                Err(oneshot::error::TryRecvError::Closed) => {
                    let waiting = self.waiting.swap_remove(idx);
                    self.handle(ReplayMsg::Discard { key: waiting.key });
                }
                Ok(id) => {
                    let waiting = self.waiting.swap_remove(idx);
                    self.keep(waiting.key, id);
                }
            }
        }
    }

    fn keep(&mut self, key: RecordingKey, id: MatchId) {
        let Some(path) = self.closed.remove(&key) else {
            return;
        };
        match std::fs::rename(&path, self.dir.join(format!("{id}.replay"))) {
            Ok(()) => {
                self.saved.inc();
            }
            Err(err) => self.failed(&path, &err),
        }
    }

    fn failed(&self, path: &Path, err: &std::io::Error) {
        self.failures.inc();
        tracing::warn!(path = %path.display(), error = %err, "replay not kept");
        let _ = std::fs::remove_file(path);
    }
}

/// Ends a file with its index and makes it durable.
fn finish(mut recording: Recording) -> std::io::Result<()> {
    let mut index = Vec::new();
    write_frame(&ReplayFrame::Index(recording.index), &mut index);
    recording.file.write_all(&index)?;
    let file = recording
        .file
        .into_inner()
        .map_err(|err| err.into_error())?;
    file.sync_data()
}
