//! The writer task, which alone writes to the shared database and alone owns the spool:
//! a batch the database cannot take goes to the spool, and so does every later one
//! until the spool is flushed, oldest first, so results arrive in the order played.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::ops::backoff::Backoff;
use crate::store::postgres::schema::{self, MigrateError};
use crate::store::postgres::writes::{self, Outcome};
use crate::store::spool::{ResultKey, Spool, Spooled};
use crate::store::writing::{BATCH, Progress, StoreMetrics};
use crate::store::{MatchId, MatchResult};

/// A result waiting to be written, and who waits to hear it was.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) key: ResultKey,
    pub(super) result: MatchResult,
    pub(super) saved: oneshot::Sender<MatchId>,
}

/// Why a batch did not reach the database. Every one sends the batch to the spool.
#[derive(Debug, thiserror::Error)]
pub(super) enum WriteError {
    /// No connection could be had: the database is down, unreachable or refusing.
    #[error("connect: {0}")]
    Connect(#[from] PoolError),
    /// The schema could not be brought up to date.
    #[error("migrate: {0}")]
    Migrate(#[from] MigrateError),
    /// The transaction failed, or its connection did.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// The transaction took longer than the write timeout. It may have committed; its
    /// results' keys make sending them again harmless.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

impl WriteError {
    /// Whether the database answered and said no to something a retry cannot change
    /// (credentials, a database that does not exist, a schema from a newer build, a
    /// certificate this process does not trust),
    /// rather than failing to answer at all.
    pub(super) fn is_misconfiguration(&self) -> bool {
        let postgres = match self {
            WriteError::Migrate(MigrateError::TooNew { .. }) => return true,
            WriteError::Connect(PoolError::Backend(err))
            | WriteError::Migrate(MigrateError::Postgres(err))
            | WriteError::Postgres(err) => err,
            _ => return false,
        };
        if super::tls::is_handshake_failure(postgres) {
            return true;
        }
        postgres.code().is_some_and(|code| {
            // Connection exceptions, insufficient resources, operator intervention
            // (a server starting or shutting down) and system errors pass.
            !["08", "53", "57", "58"]
                .iter()
                .any(|class| code.code().starts_with(class))
        })
    }
}

/// An error with its causes, `outer: inner: innermost`, for log lines: the pool's and
/// the driver's errors say what failed at the top and why (refused, timed out) below.
#[derive(Debug)]
pub(super) struct Chain<'a>(pub(super) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            let text = err.to_string();
            // Some errors repeat their source in their own message.
            if !self.0.to_string().ends_with(&text) {
                write!(f, ": {text}")?;
            }
            cause = err.source();
        }
        Ok(())
    }
}

/// The longest a batch's transaction may take once the store is closing: a database
/// that stopped answering must not hold the process's exit for the whole write timeout,
/// and what it does not take in time goes to the spool instead.
const CLOSING_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the writer paces itself.
#[derive(Clone, Copy, Debug)]
pub(super) struct WriterOptions {
    /// Pauses between tries to flush the spool while the database fails: doubling
    /// from the first to the longest.
    pub(super) retry: Backoff,
    /// The longest one batch's transaction may take before it is given up on and the
    /// batch spooled.
    pub(super) write_timeout: Duration,
}

/// The writer's state: the one connection it writes on, the spool, and who waits to
/// hear about results that went to the spool in this process's life.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) pool: Pool,
    pub(super) spool: Arc<Mutex<Spool>>,
    pub(super) progress: Arc<Progress>,
    pub(super) metrics: StoreMetrics,
    /// Results that went to the spool.
    pub(super) spooled: Counter,
    pub(super) options: WriterOptions,
    /// Whether this process has brought the schema up to date; done on the first
    /// connection, which may come long after start when the database was down then.
    pub(super) migrated: bool,
    /// Word for the rooms of spooled results, sent once each is in the database.
    /// Bounded as the spool is: one entry per record.
    pub(super) waiters: HashMap<ResultKey, oneshot::Sender<MatchId>>,
}

impl Writer {
    /// Connects and migrates once, for `open` to judge the database by.
    pub(super) async fn prepare(&mut self) -> Result<(), WriteError> {
        let mut client = self.pool.get().await?;
        schema::migrate(&mut client).await?;
        self.migrated = true;
        Ok(())
    }

    /// Until the store closes the queue (and the queue is empty): takes what waits, up
    /// to `BATCH`, and writes it or spools it; and, while the spool holds results,
    /// flushes it a batch at a time, pausing after failures.
    pub(super) async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut retry = self.options.retry;
        let mut retry_at = Instant::now();
        loop {
            let flush_due =
                !self.spool_is_empty() && Instant::now() >= retry_at && !self.progress.stopping();
            let mut batch = Vec::new();
            if !flush_due {
                let spool_waits = !self.spool_is_empty() && !self.progress.stopping();
                tokio::select! {
                    job = jobs.recv() => match job {
                        Some(job) => batch.push(job),
                        None => break,
                    },
                    () = tokio::time::sleep_until(retry_at), if spool_waits => {}
                }
            }
            while batch.len() < BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() && self.take(batch).await.is_err() {
                retry_at = Instant::now() + retry.next();
            }
            if !self.spool_is_empty() && Instant::now() >= retry_at && !self.progress.stopping() {
                if self.flush_spool_batch().await.is_ok() {
                    retry.reset();
                } else {
                    retry_at = Instant::now() + retry.next();
                }
            }
        }
        let waiting = self.spool.lock().depth();
        if waiting > 0 {
            tracing::warn!(
                records = waiting,
                "the store closes with finished matches in the spool; the next start on this data directory sends them to the database"
            );
        }
    }

    fn spool_is_empty(&self) -> bool {
        self.spool.lock().is_empty()
    }

    /// Writes a batch from the rooms, or spools it: straight to the spool while the
    /// spool holds older results (order is kept), and after the database fails it.
    /// Err if the database failed.
    async fn take(&mut self, batch: Vec<Job>) -> Result<(), ()> {
        let n_taken = batch.len();
        let mut failed = Ok(());
        if self.spool_is_empty() {
            let pending: Vec<(ResultKey, &MatchResult)> =
                batch.iter().map(|job| (job.key, &job.result)).collect();
            match self.write(&pending).await {
                Ok(outcomes) => {
                    for (job, outcome) in batch.into_iter().zip(outcomes) {
                        self.report(job.key, &job.result.room, outcome, Some(job.saved));
                    }
                }
                Err(err) => {
                    self.metrics.write_failures.inc();
                    tracing::warn!(error = %Chain(&err), matches = pending.len(), "the database did not take finished matches; they go to the spool");
                    failed = Err(());
                    self.spool_jobs(batch).await;
                }
            }
        } else {
            self.spool_jobs(batch).await;
        }
        for _ in 0..n_taken {
            self.metrics.queue_depth.dec();
            self.progress.finish();
        }
        failed
    }

    /// Writes `batch` in one transaction on the writer's connection. A connection a
    /// batch failed on is closed rather than reused: after a timeout it may still be
    /// inside the transaction.
    async fn write(
        &mut self,
        batch: &[(ResultKey, &MatchResult)],
    ) -> Result<Vec<Outcome>, WriteError> {
        let mut client = self.pool.get().await?;
        if !self.migrated {
            if let Err(err) = schema::migrate(&mut client).await {
                drop(Object::take(client));
                return Err(err.into());
            }
            self.migrated = true;
        }
        let timeout = if self.progress.stopping() {
            self.options.write_timeout.min(CLOSING_WRITE_TIMEOUT)
        } else {
            self.options.write_timeout
        };
        match tokio::time::timeout(timeout, writes::save_batch(&mut client, batch)).await {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(err)) => {
                drop(Object::take(client));
                Err(err.into())
            }
            Err(_) => {
                drop(Object::take(client));
                Err(WriteError::TimedOut(timeout))
            }
        }
    }

    /// Appends a batch to the spool, fsync'd; what does not fit is dropped, counted
    /// and logged. The rooms hear of the spooled ones once they are in the database.
    async fn spool_jobs(&mut self, batch: Vec<Job>) {
        let (records, savers): (Vec<(ResultKey, MatchResult)>, Vec<oneshot::Sender<MatchId>>) =
            batch
                .into_iter()
                .map(|job| ((job.key, job.result), job.saved))
                .unzip();
        let spool = Arc::clone(&self.spool);
        let appended = tokio::task::spawn_blocking(move || {
            let borrowed: Vec<(ResultKey, &MatchResult)> =
                records.iter().map(|(key, result)| (*key, result)).collect();
            let appended = spool.lock().append(&borrowed);
            (records, appended)
        })
        .await;
        let (records, appended) = match appended {
            Ok(done) => done,
            Err(err) => {
                self.metrics.dropped.inc_by(savers.len() as u64);
                tracing::error!(error = %err, matches = savers.len(), "writing the spool failed; finished matches are lost");
                return;
            }
        };
        let n_spooled = match appended {
            Ok(n) => n,
            Err(err) => {
                tracing::error!(error = %err, matches = records.len(), "could not write finished matches to the spool; they are lost");
                0
            }
        };
        for (index, ((key, result), saved)) in records.iter().zip(savers).enumerate() {
            if index < n_spooled {
                self.spooled.inc();
                self.waiters.insert(*key, saved);
            } else {
                self.metrics.dropped.inc();
                tracing::error!(room = %result.room, "the spool is full; a finished match was not saved");
            }
        }
    }

    /// Sends the oldest spooled results (up to `BATCH`) to the database and, once they
    /// are committed, takes them off the spool. Err if the database failed them.
    async fn flush_spool_batch(&mut self) -> Result<(), ()> {
        let spool = Arc::clone(&self.spool);
        let records: Vec<Spooled> =
            match tokio::task::spawn_blocking(move || spool.lock().peek(BATCH)).await {
                Ok(Ok(records)) => records,
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "could not read the spool");
                    return Err(());
                }
                Err(err) => {
                    tracing::error!(error = %err, "reading the spool failed");
                    return Err(());
                }
            };
        let Some(last) = records.last() else {
            return Ok(());
        };
        let end = last.end;
        let pending: Vec<(ResultKey, &MatchResult)> = records
            .iter()
            .map(|record| (record.key, &record.result))
            .collect();
        let outcomes = match self.write(&pending).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                self.metrics.write_failures.inc();
                tracing::warn!(error = %Chain(&err), waiting = self.spool.lock().depth(), "the database still does not take the spooled matches; will retry");
                return Err(());
            }
        };
        for (record, outcome) in records.iter().zip(outcomes) {
            let saved = self.waiters.remove(&record.key);
            self.report(record.key, &record.result.room, outcome, saved);
        }
        let n_flushed = records.len();
        let spool = Arc::clone(&self.spool);
        let consumed = tokio::task::spawn_blocking(move || {
            let mut spool = spool.lock();
            spool.consume(n_flushed, end).map(|()| spool.depth())
        })
        .await;
        match consumed {
            Ok(Ok(0)) => tracing::info!(
                "the spool is flushed; finished matches go straight to the database again"
            ),
            Ok(Ok(_)) => {}
            // The records stay on disk; a later start sends them again and the
            // database recognises them by their keys.
            Ok(Err(err)) => {
                tracing::error!(error = %err, "could not take saved matches off the spool")
            }
            Err(err) => tracing::error!(error = %err, "taking saved matches off the spool failed"),
        }
        Ok(())
    }

    /// Counts one result's fate and tells its room, if one waits.
    fn report(
        &self,
        key: ResultKey,
        room: &str,
        outcome: Outcome,
        saved: Option<oneshot::Sender<MatchId>>,
    ) {
        match outcome {
            Outcome::Saved(match_id) | Outcome::AlreadySaved(match_id) => {
                self.metrics.saved.inc();
                if let Some(saved) = saved {
                    // Nobody may be waiting to hear; that is fine.
                    let _ = saved.send(match_id);
                }
            }
            Outcome::Refused(err) => {
                self.metrics.dropped.inc();
                tracing::error!(error = %Chain(&err), room, key = ?key, "the database refused a finished match; it is lost");
            }
        }
    }
}
