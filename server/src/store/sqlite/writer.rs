//! The writer thread, which alone holds the database's write connection. Rooms hand it
//! results over a bounded queue; it commits what waits in one fsync'd transaction and
//! keeps retrying one that fails for a reason of the disk's, so the game never waits.

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::ops::backoff::Backoff;
use crate::store::rating::{self, Skill};
use crate::store::writing::{BATCH, Progress, StoreMetrics, per_profile};
use crate::store::{AuditEntry, MatchId, MatchResult};

/// Something waiting to be written, and who waits to hear it was.
#[derive(Debug)]
pub(super) enum Job {
    /// A finished match.
    Match {
        result: MatchResult,
        saved: oneshot::Sender<MatchId>,
    },
    /// An operator's action, for the audit log.
    Audit {
        entry: AuditEntry,
        saved: oneshot::Sender<i64>,
    },
}

impl Job {
    fn is_match(&self) -> bool {
        matches!(self, Job::Match { .. })
    }

    /// What the job is, for the log.
    pub(super) fn describe(&self) -> String {
        match self {
            Job::Match { result, .. } => format!("a finished match of room {}", result.room),
            Job::Audit { entry, .. } => format!("the audit entry of a {}", entry.action),
        }
    }
}

/// The writer thread's body: until the store closes its end of the queue, takes what
/// waits (up to `BATCH`) and writes it in one transaction, each match under a savepoint
/// of its own. A batch that fails because of the disk (full, locked, an I/O error) is
/// kept and tried again after a pause, while new results wait in the bounded queue; a
/// result the database refuses for what it holds is logged and dropped alone.
pub(super) fn write_loop(
    mut conn: Connection,
    jobs: Receiver<Job>,
    progress: Arc<Progress>,
    metrics: StoreMetrics,
    backoff: Backoff,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let taken = batch.len();
        let matches_taken = batch.iter().filter(|job| job.is_match()).count();
        let mut retry = backoff;
        let mut failures: u32 = 0;
        loop {
            match save_batch(&mut conn, &batch) {
                Ok(outcomes) => {
                    for (job, outcome) in batch.drain(..).zip(outcomes) {
                        match (job, outcome) {
                            (Job::Match { saved, .. }, Ok(match_id)) => {
                                metrics.saved.inc();
                                // Nobody may be waiting to hear; that is fine.
                                let _ = saved.send(match_id);
                            }
                            (Job::Audit { saved, .. }, Ok(id)) => {
                                let _ = saved.send(id);
                            }
                            (job, Err(err)) => {
                                if job.is_match() {
                                    metrics.dropped.inc();
                                }
                                tracing::error!(error = %err, job = job.describe(), "the database refused a write; it is lost");
                            }
                        }
                    }
                    if failures > 0 {
                        tracing::info!(failures, "finished matches were saved after failures");
                    }
                    break;
                }
                Err(err) => {
                    failures += 1;
                    metrics.write_failures.inc();
                    roll_back_if_open(&conn);
                    if progress.stopping() {
                        let n_matches = batch.iter().filter(|job| job.is_match()).count();
                        metrics.dropped.inc_by(n_matches as u64);
                        tracing::error!(error = %err, matches = batch.len(), "could not save finished matches while the server stops; they are lost");
                        break;
                    }
                    let pause = retry.next();
                    tracing::warn!(error = %err, failures, retry_in = ?pause, queued = progress.pending(), "could not save finished matches; will retry");
                    progress.pause(pause);
                }
            }
        }
        for _ in 0..matches_taken {
            metrics.queue_depth.dec();
        }
        for _ in 0..taken {
            progress.finish();
        }
    }
}

/// Writes `batch` in one transaction, committed (and so fsync'd) once. Each match is
/// written under a savepoint: one the database refuses for what it holds is rolled back
/// alone and reported in its place; any other error fails the whole batch.
fn save_batch(
    conn: &mut Connection,
    batch: &[Job],
) -> rusqlite::Result<Vec<Result<MatchId, rusqlite::Error>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = tx.savepoint()?;
        let written = match job {
            Job::Match { result, .. } => write_match(&savepoint, result),
            Job::Audit { entry, .. } => write_audit(&savepoint, entry),
        };
        match written {
            Ok(match_id) => {
                savepoint.commit()?;
                outcomes.push(Ok(match_id));
            }
            // Dropping the savepoint rolls its writes back.
            Err(err) if is_about_the_result(&err) => outcomes.push(Err(err)),
            Err(err) => return Err(err),
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Failures that trying again cannot fix, because they are about the result itself.
fn is_about_the_result(err: &rusqlite::Error) -> bool {
    match err.sqlite_error_code() {
        Some(code) => matches!(
            code,
            ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch
        ),
        // Not from SQLite: a value that could not be converted for it.
        None => true,
    }
}

/// A transaction that failed to commit or roll back may still be open on the
/// connection, and the next `BEGIN` would fail on it forever.
fn roll_back_if_open(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(err) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %err, "could not roll back a failed write");
    }
}

/// Appends an operator's action to the audit log, inside the caller's transaction.
fn write_audit(tx: &Connection, entry: &AuditEntry) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO audit_log (at_ms, who, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        entry.at_ms,
        entry.who,
        entry.action,
        entry.target,
        entry.detail
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Writes a match inside the caller's transaction: the match, its lines, each player's
/// lifetime stats and their new ratings. Nothing of it is visible until all of it is.
fn write_match(tx: &Connection, result: &MatchResult) -> rusqlite::Result<MatchId> {
    tx.prepare_cached(
        "INSERT INTO matches (room, map, started_at_ms, ended_at_ms, end_reason)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        result.room,
        result.map,
        result.started_at_ms,
        result.ended_at_ms,
        result.end_reason.as_str(),
    ])?;
    let match_id = tx.last_insert_rowid();
    let mut insert_line = tx.prepare_cached(
        "INSERT INTO match_players
             (match_id, line, profile, name, kills, deaths, shots, hits, score, placing)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (line, player) in result.players.iter().enumerate() {
        insert_line.execute(params![
            match_id,
            i64::try_from(line).unwrap_or(i64::MAX),
            player.profile.to_hex(),
            player.name,
            player.kills,
            player.deaths,
            player.shots,
            player.hits,
            player.score,
            player.placing,
        ])?;
    }
    drop(insert_line);

    let totals = per_profile(&result.players);
    let newcomer = Skill::newcomer();
    let mut add_stats = tx.prepare_cached(
        "INSERT INTO profiles
             (profile, name, matches, wins, kills, deaths, shots, hits, score,
              skill, uncertainty, rating)
         VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (profile) DO UPDATE SET
             name = excluded.name,
             matches = matches + 1,
             wins = wins + excluded.wins,
             kills = kills + excluded.kills,
             deaths = deaths + excluded.deaths,
             shots = shots + excluded.shots,
             hits = hits + excluded.hits,
             score = score + excluded.score
         RETURNING skill, uncertainty",
    )?;
    let mut skills_before = Vec::with_capacity(totals.len());
    for player in &totals {
        // The skill before this match comes back from the upsert itself: a newcomer's
        // default, or what the profile had.
        let skill = add_stats.query_row(
            params![
                player.profile.to_hex(),
                player.name,
                i64::from(player.placing == 1),
                player.kills,
                player.deaths,
                player.shots,
                player.hits,
                player.score,
                newcomer.mean,
                newcomer.deviation,
                newcomer.conservative(),
            ],
            |row| {
                Ok(Skill {
                    mean: row.get(0)?,
                    deviation: row.get(1)?,
                })
            },
        )?;
        skills_before.push((skill, player.placing));
    }
    drop(add_stats);

    let skills_after = rating::after_match(&skills_before);
    let mut set_skill = tx.prepare_cached(
        "UPDATE profiles SET skill = ?2, uncertainty = ?3, rating = ?4 WHERE profile = ?1",
    )?;
    for (player, skill) in totals.iter().zip(&skills_after) {
        set_skill.execute(params![
            player.profile.to_hex(),
            skill.mean,
            skill.deviation,
            skill.conservative(),
        ])?;
    }
    drop(set_skill);
    Ok(match_id)
}
