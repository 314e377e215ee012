//! The PostgreSQL backend of `MatchStore`: one database every server process writes
//! to, so any process's REST API shows the whole game's history, with a spool in the
//! data directory for when the database is down. All of its SQL is in this folder.

mod reads;
mod schema;
mod tls;
mod writer;
mod writes;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use parking_lot::Mutex;
use shared::ProfileId;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::ops::backoff::Backoff;
use crate::store::postgres::reads::ReadError;
use crate::store::postgres::schema::MigrateError;
use crate::store::postgres::writer::{Chain, Job, WriteError, Writer, WriterOptions};
use crate::store::spool::{ResultKey, Spool, SpoolGauges};
use crate::store::writing::{Progress, StoreMetrics};
use crate::store::{
    LeaderboardCursor, LeaderboardPage, MatchId, MatchPage, MatchRecord, MatchResult, MatchStore,
    PlayerRecord, ResultSink, StoreError,
};

/// How the store sizes its queue, its spool and its pools, and paces itself; `Default`
/// is what the server runs, with the spool's bound from `--spool-max-mib`.
#[derive(Clone, Debug)]
pub(crate) struct PostgresOptions {
    /// Results that may wait for the writer in memory; past this, new ones are dropped.
    pub(crate) queue_capacity: usize,
    /// The most bytes the spool file may hold; past this, new results are dropped.
    pub(crate) spool_max_bytes: u64,
    /// Pauses between tries to flush the spool while the database fails.
    pub(crate) retry: Backoff,
    /// How long a connection may take to open, unless the URL says `connect_timeout`.
    pub(crate) connect_timeout: Duration,
    /// The longest one batch's transaction may take before the batch is spooled.
    pub(crate) write_timeout: Duration,
    /// Connections for the REST API's reads.
    pub(crate) n_readers: usize,
    /// How long a read waits for a free connection before it gives up (503).
    pub(crate) reader_wait: Duration,
    /// The longest one read may take.
    pub(crate) read_timeout: Duration,
    /// Authorities trusted for the database's certificate besides the public ones.
    pub(crate) ca_file: Option<PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            queue_capacity: 1024,
            spool_max_bytes: 64 << 20,
            retry: Backoff::new(Duration::from_millis(250), Duration::from_secs(10)),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            n_readers: 4,
            reader_wait: Duration::from_secs(2),
            read_timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }
}

/// Matches in a PostgreSQL database shared with other processes, with a spool in the
/// data directory for when it is down. Dropping it closes the queue, lets the writer
/// write (or spool) what is queued, and joins the store's thread.
///
/// `flush` returns once every result handed over is durable: committed to the
/// database, or fsync'd to the spool (which the next start on this data directory
/// sends on if this process does not get to).
pub struct PostgresStore {
    /// Who and where, for logs; never the password.
    target: String,
    /// `None` only while the store is being dropped.
    queue: Option<mpsc::Sender<Job>>,
    progress: Arc<Progress>,
    /// The store's own runtime, driven by its thread: the writer, the connections and
    /// every read run there, whoever calls.
    runtime: Handle,
    /// Cancelled when the store is dropped, to end the runtime if the writer has not.
    closed: CancellationToken,
    /// `None` only while the store is being dropped.
    thread: Option<JoinHandle<()>>,
    readers: Pool,
    read_timeout: Duration,
    metrics: StoreMetrics,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("pending", &self.progress.pending())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/name`),
    /// brings its schema up to date, opens the spool in `<data_dir>/spool/` and starts
    /// the writer, which first sends on whatever an earlier run left in the spool.
    ///
    /// A database that answers and refuses (bad credentials, no such database, a schema
    /// from a newer build) is an error: that is a mistake to fix, not an outage to ride
    /// out. A database that does not answer is an outage: the store opens all the
    /// same, finished matches go to the spool, and the schema is brought up to date
    /// when the database is back. Blocks for up to the connect timeout.
    pub fn open(
        url: &str,
        ca_file: Option<&Path>,
        data_dir: &Path,
        spool_max_bytes: u64,
        metrics: &Metrics,
    ) -> Result<PostgresStore, StoreError> {
        let options = PostgresOptions {
            spool_max_bytes,
            ca_file: ca_file.map(Path::to_owned),
            ..PostgresOptions::default()
        };
        PostgresStore::open_with(url, data_dir, metrics, options)
    }

    pub(crate) fn open_with(
        url: &str,
        data_dir: &Path,
        metrics: &Metrics,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|err| StoreError::Backend {
                what: "read the database URL".into(),
                source: Box::new(err),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("skirmish");
        }
        let target = describe(&config);
        let spool = Spool::open(
            data_dir,
            options.spool_max_bytes,
            SpoolGauges {
                depth: metrics.store_spool_depth.clone(),
                bytes: metrics.store_spool_bytes.clone(),
            },
        )?;
        let backend = |what: &str, err: std::io::Error| StoreError::Backend {
            what: what.into(),
            source: Box::new(err),
        };
        // A runtime of the store's own, on a thread of its own: the server's runtime
        // may be gone (or never was, in tools) when the store writes its last results,
        // and a runtime dropped inside another panics.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| backend("start the store's runtime", err))?;
        let handle = runtime.handle().clone();
        let tls = tls::connector(options.ca_file.as_deref())?;
        let writer_pool = pool(
            &config,
            &tls,
            1,
            options.connect_timeout,
            options.reader_wait,
        )?;
        let readers = pool(
            &config,
            &tls,
            options.n_readers.max(1),
            options.connect_timeout,
            options.reader_wait,
        )?;
        let metrics_handles = StoreMetrics::from_metrics(metrics);
        let progress = Arc::new(Progress::default());
        let writer = Writer {
            pool: writer_pool,
            spool: Arc::new(Mutex::new(spool)),
            progress: Arc::clone(&progress),
            metrics: metrics_handles.clone(),
            spooled: metrics.store_results_spooled.clone(),
            options: WriterOptions {
                retry: options.retry,
                write_timeout: options.write_timeout,
            },
            migrated: false,
            waiters: HashMap::new(),
        };
        let (queue, jobs) = mpsc::channel(options.queue_capacity.max(1));
        let closed = CancellationToken::new();
        let (ready, on_ready) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store_postgres".into())
            .spawn({
                let closed = closed.clone();
                let target = target.clone();
                move || runtime.block_on(store_thread(writer, jobs, ready, closed, target))
            })
            .map_err(|err| backend("start the store's thread", err))?;
        match on_ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                let _ = thread.join();
                return Err(err);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(StoreError::Backend {
                    what: format!("open the match store at {target}"),
                    source: "the store's thread ended before it was ready".into(),
                });
            }
        }
        Ok(PostgresStore {
            target,
            queue: Some(queue),
            progress,
            runtime: handle,
            closed,
            thread: Some(thread),
            readers,
            read_timeout: options.read_timeout,
            metrics: metrics_handles,
        })
    }

    /// Runs `read` on a pooled connection, on the store's runtime, within the read
    /// timeout; a failure is the backend's, with `what`.
    fn read<T, F, Fut>(&self, what: &str, read: F) -> Result<T, StoreError>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = Result<T, ReadError>>,
    {
        let readers = &self.readers;
        let timeout = self.read_timeout;
        self.runtime.block_on(async {
            let client = match readers.get().await {
                Ok(client) => client,
                Err(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) => {
                    return Err(StoreError::Busy);
                }
                Err(err) => return Err(self.failed(what, err)),
            };
            match tokio::time::timeout(timeout, read(client)).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(err)) => Err(self.failed(what, err)),
                Err(_) => Err(self.failed(what, format!("no answer within {timeout:?}"))),
            }
        })
    }

    fn failed(
        &self,
        what: &str,
        err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Backend {
            what: format!("{what} from {}", self.target),
            source: err.into(),
        }
    }
}

/// The body of the store's thread: prepares the database (telling `open` how that
/// went), then runs the writer until the store closes.
async fn store_thread(
    mut writer: Writer,
    jobs: mpsc::Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), StoreError>>,
    closed: CancellationToken,
    target: String,
) {
    match writer.prepare().await {
        Ok(()) => tracing::info!(database = %target, "match store open"),
        Err(err) if err.is_misconfiguration() => {
            let _ = ready.send(Err(match err {
                WriteError::Migrate(MigrateError::TooNew { found, known }) => {
                    StoreError::DatabaseTooNew {
                        database: target,
                        found: i64::from(found),
                        known: i64::from(known),
                    }
                }
                err => StoreError::Backend {
                    what: format!("open the match store at {target}"),
                    source: Box::new(err),
                },
            }));
            return;
        }
        Err(err) => tracing::warn!(
            database = %target,
            error = %Chain(&err),
            "the database does not answer; the server starts, and finished matches wait in the spool until it does"
        ),
    }
    let _ = ready.send(Ok(()));
    if let Err(err) = tokio::spawn(writer.run(jobs)).await {
        tracing::error!(error = %err, "the match store's writer failed; finished matches are no longer saved");
        // Reads still run on this runtime until the store is dropped.
        closed.cancelled().await;
    }
}

/// A pool of up to `size` connections to the database.
fn pool(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    size: usize,
    connect_timeout: Duration,
    wait: Duration,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            // A closed connection is noticed without a round trip; one that fails
            // mid-query is noticed there and replaced.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(connect_timeout))
        .recycle_timeout(Some(connect_timeout))
        .build()
        .map_err(|err| StoreError::Backend {
            what: "set up the database connections".into(),
            source: Box::new(err),
        })
}

/// `user@host:port/database`, as logs and errors name the database: never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

impl ResultSink for PostgresStore {
    fn submit(&self, result: MatchResult, saved: oneshot::Sender<MatchId>) {
        let Some(queue) = &self.queue else {
            return;
        };
        self.progress.accept();
        let job = Job {
            key: ResultKey::random(),
            result,
            saved,
        };
        match queue.try_send(job) {
            Ok(()) => {
                self.metrics.queue_depth.inc();
            }
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                self.progress.finish();
                self.metrics.dropped.inc();
                tracing::warn!(
                    room = %job.result.room,
                    queued = self.progress.pending(),
                    "the match store's queue is full or closed; a finished match was not saved"
                );
            }
        }
    }

    fn flush(&self, within: Duration) -> bool {
        self.progress.wait_drained(Instant::now() + within)
    }
}

impl MatchStore for PostgresStore {
    fn matches(&self, limit: u32, before: Option<MatchId>) -> Result<MatchPage, StoreError> {
        self.read("read matches", |mut client| async move {
            reads::matches(&mut client, limit, before).await
        })
    }

    fn match_by_id(&self, id: MatchId) -> Result<Option<MatchRecord>, StoreError> {
        self.read("read a match", |mut client| async move {
            reads::match_by_id(&mut client, id).await
        })
    }

    fn player(&self, profile: ProfileId, recent: u32) -> Result<Option<PlayerRecord>, StoreError> {
        self.read("read a player", |mut client| async move {
            reads::player(&mut client, profile, recent).await
        })
    }

    fn leaderboard(
        &self,
        limit: u32,
        after: Option<LeaderboardCursor>,
    ) -> Result<LeaderboardPage, StoreError> {
        self.read("read the leaderboard", |mut client| async move {
            reads::leaderboard(&mut client, limit, after).await
        })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.progress.stop();
        drop(self.queue.take());
        let left = self.progress.pending();
        if left > 0 {
            tracing::info!(
                left,
                "the match store is closing with results queued; each is written, or spooled if the database fails it"
            );
        }
        self.closed.cancel();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the match store's thread panicked");
        }
    }
}
