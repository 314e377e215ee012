//! Opening the database file: refusing one that is damaged, foreign or from a newer
//! build (never recreating it), and bringing one this build knows up to date with the
//! migrations in server/migrations/.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::store::StoreError;

/// `PRAGMA application_id` of a Skirmish database ("SKRM"), set by the first migration.
const APPLICATION_ID: i64 = 0x534B_524D;

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Every migration, in order. A database's `user_version` is how many it has had, so a
/// migration, once released, is never edited: a change is a new file.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_matches.sql"),
    include_str!("../../../migrations/0002_audit.sql"),
];

/// The schema version this build writes: the number of migrations it knows.
pub(super) fn known_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Opens (creating it if missing) the database at `path` for writing, checks it and
/// applies the migrations it lacks. Every commit on this connection is fsync'd.
pub(super) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    refuse_foreign_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|err| classify(path, "open", err))?;
    configure_writer(&conn, path, busy_timeout)?;
    check_integrity(&conn, path)?;
    check_owner_and_version(&conn, path)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection on a database `open_writer` has prepared.
pub(super) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|err| classify(path, "open for reading", err))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|err| classify(path, "configure for reading", err))?;
    Ok(conn)
}

/// A file that exists, is not empty, and does not start as SQLite files do is refused
/// before SQLite touches it. (An empty file is what an interrupted first start leaves.)
fn refuse_foreign_file(path: &Path) -> Result<(), StoreError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(StoreError::Backend {
                what: format!("read {}", path.display()),
                source: Box::new(err),
            });
        }
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(|err| StoreError::Backend {
            what: format!("read {}", path.display()),
            source: Box::new(err),
        })?;
    if header.is_empty() || header == SQLITE_HEADER {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: "it does not start with the SQLite header".into(),
        })
    }
}

/// WAL, so readers run beside the writer; `synchronous = FULL`, so a commit is on disk
/// (the WAL fsync'd) before it is reported saved and survives a power cut.
fn configure_writer(
    conn: &Connection,
    path: &Path,
    busy_timeout: Duration,
) -> Result<(), StoreError> {
    let mode = conn
        .busy_timeout(busy_timeout)
        .and_then(|()| {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        })
        .map_err(|err| classify(path, "switch to WAL", err))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend {
            what: format!("switch {} to WAL", path.display()),
            source: format!("the journal mode stayed {mode}").into(),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .and_then(|()| conn.pragma_update(None, "foreign_keys", true))
        .map_err(|err| classify(path, "configure", err))
}

/// `quick_check` reads every page (but skips matching indexes to rows), so a damaged
/// file stops the server at start instead of failing writes later.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut problems = Vec::new();
    conn.pragma_query(None, "quick_check", |row| {
        let line: String = row.get(0)?;
        if line != "ok" {
            problems.push(line);
        }
        Ok(())
    })
    .map_err(|err| classify(path, "check", err))?;
    if problems.is_empty() {
        return Ok(());
    }
    problems.truncate(3);
    Err(StoreError::Corrupt {
        path: path.to_owned(),
        reason: format!("quick_check: {}", problems.join("; ")),
    })
}

fn check_owner_and_version(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let application_id: i64 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|err| classify(path, "read the application id of", err))?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("it belongs to another program (application id {application_id})"),
        });
    }
    let version = user_version(conn, path)?;
    if version < 0 {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("schema version {version}"),
        });
    }
    if version > known_version() {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known: known_version(),
        });
    }
    if version > 0 && application_id != APPLICATION_ID {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: "it has a schema but not Skirmish's application id".into(),
        });
    }
    Ok(())
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|err| classify(path, "read the schema version of", err))
}

/// Applies each migration the database lacks, each in its own transaction together
/// with the version it brings, so a crash leaves it at one version or the next.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version = user_version(conn, path)?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let brings = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if brings <= version {
            continue;
        }
        let applied = conn.transaction().and_then(|tx| {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", brings)?;
            tx.commit()
        });
        applied.map_err(|err| classify(path, &format!("apply migration {brings} to"), err))?;
        tracing::info!(path = %path.display(), version = brings, "database migrated");
    }
    Ok(())
}

/// A failure SQLite reports as a damaged or foreign file is `Corrupt`; any other is the
/// backend's, with what was being done.
fn classify(path: &Path, doing: &str, err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_owned(),
            reason: err.to_string(),
        },
        _ => StoreError::Backend {
            what: format!("{doing} {}", path.display()),
            source: Box::new(err),
        },
    }
}
