//! The SQLite backend of `MatchStore`: one file, `<data-dir>/skirmish.db`, in WAL mode.
//! One writer thread owns the write connection and commits each match durably; reads
//! run on a small pool of read-only connections beside it. All the SQL is in here.

mod reads;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use shared::ProfileId;
use tokio::sync::oneshot;

use crate::Metrics;
use crate::ops::backoff::Backoff;
use crate::store::sqlite::writer::Job;
use crate::store::writing::{Progress, StoreMetrics};
use crate::store::{
    AuditEntry, AuditLog, AuditRecord, LeaderboardCursor, LeaderboardPage, MatchId, MatchPage,
    MatchRecord, MatchResult, MatchStore, PlayerRecord, ResultSink, StoreError,
};

/// The database's file name inside the data directory.
pub const DB_FILE: &str = "skirmish.db";

/// How the store sizes its queue and paces itself; `Default` is what the server runs.
#[derive(Clone, Debug)]
pub(crate) struct StoreOptions {
    /// Results that may wait for the writer; past this, new ones are dropped. At a
    /// few hundred bytes each, the default holds minutes of a busy server's matches.
    pub(crate) queue_capacity: usize,
    /// How long the writer waits for a lock someone else holds (a backup, the sqlite3
    /// shell) before it counts a failure and backs off.
    pub(crate) write_busy_timeout: Duration,
    /// Pauses between tries of a result that failed: doubling from the first to the
    /// longest.
    pub(crate) retry: Backoff,
    /// Read-only connections for the REST API.
    pub(crate) n_readers: usize,
    /// How long a read waits for a free connection before it gives up (503).
    pub(crate) reader_wait: Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            queue_capacity: 1024,
            write_busy_timeout: Duration::from_secs(2),
            retry: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            n_readers: 4,
            reader_wait: Duration::from_secs(2),
        }
    }
}

/// Matches in a SQLite file. Dropping it closes the queue, lets the writer finish what
/// is queued (trying each once more at most) and joins it.
pub struct SqliteStore {
    path: PathBuf,
    /// `None` only while the store is being dropped.
    queue: Option<SyncSender<Job>>,
    progress: Arc<Progress>,
    /// `None` only while the store is being dropped.
    writer: Option<JoinHandle<()>>,
    readers: Readers,
    metrics: StoreMetrics,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("pending", &self.progress.pending())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens `<data_dir>/skirmish.db`, creating the folder and the file if missing, and
    /// starts the writer. A file that is damaged, not a database, another program's, or
    /// from a newer build is an error naming it, and is left untouched.
    pub fn open(data_dir: &Path, metrics: &Metrics) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, metrics, StoreOptions::default())
    }

    pub(crate) fn open_with(
        data_dir: &Path,
        metrics: &Metrics,
        options: StoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let write_conn = schema::open_writer(&path, options.write_busy_timeout)?;
        let readers = Readers::open(&path, options.n_readers.max(1), options.reader_wait)?;
        let metrics = StoreMetrics::from_metrics(metrics);
        let progress = Arc::new(Progress::default());
        let (queue, jobs) = mpsc::sync_channel(options.queue_capacity.max(1));
        let writer = std::thread::Builder::new()
            .name("store_writer".into())
            .spawn({
                let progress = Arc::clone(&progress);
                let metrics = metrics.clone();
                move || writer::write_loop(write_conn, jobs, progress, metrics, options.retry)
            })
            .map_err(|err| StoreError::Backend {
                what: "start the store's writer thread".into(),
                source: Box::new(err),
            })?;
        tracing::info!(path = %path.display(), "match store open");
        Ok(SqliteStore {
            path,
            queue: Some(queue),
            progress,
            writer: Some(writer),
            readers,
            metrics,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `read` on a free read connection; a failure is the backend's, with `what`.
    fn read<T>(
        &self,
        what: &str,
        read: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.readers.take()?;
        read(&mut conn).map_err(|err| StoreError::Backend {
            what: format!("{what} from {}", self.path.display()),
            source: Box::new(err),
        })
    }
}

impl ResultSink for SqliteStore {
    fn submit(&self, result: MatchResult, saved: oneshot::Sender<MatchId>) {
        if self.queue.is_none() {
            return;
        }
        self.progress.accept();
        // Counted before it is queued: the writer may take it and count it down at once.
        self.metrics.queue_depth.inc();
        if let Err(job) = self.queue(Job::Match { result, saved }) {
            self.metrics.queue_depth.dec();
            self.metrics.dropped.inc();
            tracing::warn!(
                job = job.describe(),
                queued = self.progress.pending(),
                "the match store's queue is full or closed; a finished match was not saved"
            );
        }
    }

    fn flush(&self, within: Duration) -> bool {
        self.progress.wait_drained(Instant::now() + within)
    }
}

impl SqliteStore {
    /// Hands a job to the writer, counted as pending; a full or closed queue gives it
    /// back uncounted.
    fn queue(&self, job: Job) -> Result<(), Job> {
        let Some(queue) = &self.queue else {
            self.progress.finish();
            return Err(job);
        };
        match queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                self.progress.finish();
                Err(job)
            }
        }
    }
}

impl AuditLog for SqliteStore {
    fn record(&self, entry: AuditEntry, saved: oneshot::Sender<i64>) {
        self.progress.accept();
        if let Err(job) = self.queue(Job::Audit { entry, saved }) {
            tracing::warn!(
                job = job.describe(),
                "the store's queue is full or closed; an audit entry was not saved"
            );
        }
    }

    fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.read("read the audit log", |conn| {
            reads::recent_audit(conn, limit)
        })
    }
}

impl MatchStore for SqliteStore {
    fn matches(&self, limit: u32, before: Option<MatchId>) -> Result<MatchPage, StoreError> {
        self.read("read matches", |conn| reads::matches(conn, limit, before))
    }

    fn match_by_id(&self, id: MatchId) -> Result<Option<MatchRecord>, StoreError> {
        self.read("read a match", |conn| reads::match_by_id(conn, id))
    }

    fn player(&self, profile: ProfileId, recent: u32) -> Result<Option<PlayerRecord>, StoreError> {
        self.read("read a player", |conn| reads::player(conn, profile, recent))
    }

    fn leaderboard(
        &self,
        limit: u32,
        after: Option<LeaderboardCursor>,
    ) -> Result<LeaderboardPage, StoreError> {
        self.read("read the leaderboard", |conn| {
            reads::leaderboard(conn, limit, after)
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.progress.stop();
        drop(self.queue.take());
        let left = self.progress.pending();
        if left > 0 {
            tracing::warn!(
                left,
                "the match store is closing with results still queued; each gets one more try"
            );
        }
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the match store's writer thread panicked");
        }
    }
}

/// The read-only connections, lent one request at a time.
#[derive(Debug)]
struct Readers {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
    wait: Duration,
}

impl Readers {
    fn open(path: &Path, n_readers: usize, wait: Duration) -> Result<Readers, StoreError> {
        let conns = (0..n_readers)
            .map(|_| schema::open_reader(path, wait))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Readers {
            idle: Mutex::new(conns),
            returned: Condvar::new(),
            wait,
        })
    }

    /// A free connection, waiting up to `wait` for one.
    fn take(&self) -> Result<Lent<'_>, StoreError> {
        let deadline = Instant::now() + self.wait;
        let mut idle = self.idle.lock();
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(Lent {
                    readers: self,
                    conn: Some(conn),
                });
            }
            if self.returned.wait_until(&mut idle, deadline).timed_out() && idle.is_empty() {
                return Err(StoreError::Busy);
            }
        }
    }
}

/// A connection on loan; it goes back to the pool when dropped, even after a panic.
struct Lent<'pool> {
    readers: &'pool Readers,
    /// `Some` until dropped.
    conn: Option<Connection>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Invariant: `conn` is `Some` until `drop`.
        self.conn
            .as_ref()
            .expect("a lent connection is held until dropped")
    }
}

impl std::ops::DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        // Invariant: `conn` is `Some` until `drop`.
        self.conn
            .as_mut()
            .expect("a lent connection is held until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.idle.lock().push(conn);
            self.readers.returned.notify_one();
        }
    }
}
