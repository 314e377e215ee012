//! The SQLite store against real files in a temporary folder: the behaviour every
//! backend shows, and opening, refusing, failing and retrying as SQLite does them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::*;
use crate::store::behaviour::{
    Fixture, PATIENCE, behaviour_tests, line, result, save, submit, wait_saved, wait_until,
};
use crate::store::{AuditEntry, AuditLog, MatchStore, StoreError};

/// A SQLite store on a folder of the test's own.
impl Fixture for TempDir {
    fn open(&self, metrics: &Metrics) -> Box<dyn MatchStore> {
        Box::new(SqliteStore::open(&self.0, metrics).expect("the store opens"))
    }
}

fn fixture(name: &str) -> Option<TempDir> {
    Some(TempDir::new(name))
}

behaviour_tests!(fixture);

/// A folder of its own under the system's temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "skirmish-store-{what}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn db(&self) -> PathBuf {
        self.0.join(DB_FILE)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options that make failures quick to provoke and retries quick to see.
fn impatient() -> StoreOptions {
    StoreOptions {
        write_busy_timeout: Duration::from_millis(20),
        retry: Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
        ..StoreOptions::default()
    }
}

fn open(dir: &TempDir, metrics: &Metrics) -> SqliteStore {
    SqliteStore::open(&dir.0, metrics).expect("the store opens")
}

/// Another connection holding the database's write lock, as a backup tool or the
/// sqlite3 shell might; the store's writer cannot commit until it is released.
fn hold_write_lock(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("a second connection opens");
    conn.execute_batch("BEGIN EXCLUSIVE")
        .expect("the second connection takes the write lock");
    conn
}

#[test]
fn a_fresh_data_dir_gets_the_file_and_the_schema() {
    let dir = TempDir::new("fresh");
    let nested = dir.0.join("deeper").join("still");
    let store = SqliteStore::open(&nested, &Metrics::new()).expect("the store opens");
    assert_eq!(store.path(), nested.join(DB_FILE));
    let page = store.matches(20, None).expect("matches are readable");
    assert!(page.matches.is_empty() && page.next.is_none());
    drop(store);
    let conn = Connection::open(nested.join(DB_FILE)).expect("the file is a database");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("a schema version");
    assert_eq!(version, schema::known_version(), "every migration applied");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("a journal mode");
    assert_eq!(mode, "wal", "WAL lets readers run beside the writer");
}

#[test]
fn a_file_of_garbage_is_refused_and_left_untouched() {
    for garbage in [
        b"not a database".to_vec(),
        (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    ] {
        let dir = TempDir::new("garbage");
        std::fs::create_dir_all(&dir.0).expect("create the folder");
        std::fs::write(dir.db(), &garbage).expect("write the garbage");
        let err = SqliteStore::open(&dir.0, &Metrics::new()).expect_err("garbage is refused");
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "refused as damaged: {err}"
        );
        assert!(
            err.to_string().contains(&dir.db().display().to_string()),
            "the error names the file: {err}"
        );
        assert_eq!(
            std::fs::read(dir.db()).expect("the file is still there"),
            garbage,
            "the file is never recreated or changed"
        );
    }
}

#[test]
fn a_damaged_database_fails_its_check_at_open() {
    let dir = TempDir::new("damaged");
    {
        let store = open(&dir, &Metrics::new());
        for n in 0..50 {
            save(
                &store,
                result(
                    &format!("room{n}"),
                    vec![line(n, 1, 0, 1), line(n + 1000, 0, 1, 2)],
                ),
            );
        }
    }
    // The last connection to close folds the WAL into the file; now scribble over
    // everything after the first page, keeping the header intact.
    let mut bytes = std::fs::read(dir.db()).expect("read the file");
    assert!(bytes.len() > 8192, "the file has pages past the first");
    for (i, byte) in bytes.iter_mut().enumerate().skip(4096) {
        *byte = (i % 251) as u8;
    }
    std::fs::write(dir.db(), &bytes).expect("damage the file");
    let err = SqliteStore::open(&dir.0, &Metrics::new()).expect_err("damage is refused");
    assert!(
        matches!(err, StoreError::Corrupt { .. }),
        "refused as damaged: {err}"
    );
    assert_eq!(std::fs::read(dir.db()).expect("still there"), bytes);
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = TempDir::new("newer");
    drop(open(&dir, &Metrics::new()));
    let newer = schema::known_version() + 1;
    Connection::open(dir.db())
        .and_then(|conn| conn.pragma_update(None, "user_version", newer))
        .expect("raise the schema version");
    let err = SqliteStore::open(&dir.0, &Metrics::new()).expect_err("a newer schema is refused");
    assert!(
        matches!(err, StoreError::TooNew { found, .. } if found == newer),
        "{err}"
    );
    assert!(err.to_string().contains(&dir.db().display().to_string()));
}

#[test]
fn another_programs_database_is_refused() {
    let dir = TempDir::new("foreign");
    std::fs::create_dir_all(&dir.0).expect("create the folder");
    Connection::open(dir.db())
        .and_then(|conn| {
            conn.execute_batch("PRAGMA application_id = 42; CREATE TABLE notes (text TEXT);")
        })
        .expect("make another program's database");
    let err = SqliteStore::open(&dir.0, &Metrics::new()).expect_err("a foreign file is refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn the_writer_retries_after_a_lock_is_released() {
    let dir = TempDir::new("retry");
    let metrics = Metrics::new();
    let store = SqliteStore::open_with(&dir.0, &metrics, impatient()).expect("the store opens");
    let earlier = save(&store, result("before", vec![line(1, 1, 0, 1)]));
    let lock = hold_write_lock(&dir.db());
    let mut on_saved = submit(&store, result("during", vec![line(1, 2, 0, 1)]));
    wait_until("the writer should fail against the lock", || {
        metrics.store_write_failures.get() >= 2
    });
    assert!(
        matches!(
            on_saved.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ),
        "nothing is reported saved while it cannot be written"
    );
    assert_eq!(metrics.store_queue_depth.get(), 1, "the result is kept");
    assert!(
        store
            .match_by_id(earlier)
            .expect("reads go on beside a stuck writer")
            .is_some()
    );
    assert!(
        !store.flush(Duration::from_millis(50)),
        "flush cannot finish while locked"
    );
    lock.execute_batch("COMMIT").expect("release the lock");
    let id = wait_saved(on_saved);
    let record = store
        .match_by_id(id)
        .expect("a read")
        .expect("saved after the retry");
    assert_eq!(record.result.room, "during");
    assert!(store.flush(PATIENCE));
    assert_eq!(metrics.store_results_dropped.get(), 0, "nothing was lost");
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    let dir = TempDir::new("full");
    let metrics = Metrics::new();
    let options = StoreOptions {
        queue_capacity: 1,
        ..impatient()
    };
    let store = SqliteStore::open_with(&dir.0, &metrics, options).expect("the store opens");
    let lock = hold_write_lock(&dir.db());
    let stuck = submit(&store, result("stuck", vec![line(1, 1, 0, 1)]));
    wait_until("the writer should hold the first result", || {
        metrics.store_write_failures.get() >= 1
    });
    let started = Instant::now();
    let queued = submit(&store, result("queued", vec![line(1, 1, 0, 1)]));
    let lost: Vec<_> = (0..5)
        .map(|n| submit(&store, result(&format!("lost{n}"), vec![line(1, 1, 0, 1)])))
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "submitting never waits for the disk: {:?}",
        started.elapsed()
    );
    assert_eq!(metrics.store_results_dropped.get(), 5);
    for mut on_saved in lost {
        assert!(
            matches!(
                on_saved.try_recv(),
                Err(oneshot::error::TryRecvError::Closed)
            ),
            "a dropped result's waiter hears it will never be saved"
        );
    }
    lock.execute_batch("COMMIT").expect("release the lock");
    let (first, second) = (wait_saved(stuck), wait_saved(queued));
    assert!(first < second, "results are written in the order they came");
    assert!(store.flush(PATIENCE));
    assert_eq!(store.matches(100, None).expect("a page").matches.len(), 2);
}

#[test]
fn a_result_the_database_refuses_is_dropped_and_the_next_is_saved() {
    let dir = TempDir::new("refused");
    let metrics = Metrics::new();
    let store = SqliteStore::open_with(&dir.0, &metrics, impatient()).expect("the store opens");
    // A rule in the database that refuses one room's matches, as a constraint would.
    Connection::open(dir.db())
        .and_then(|conn| {
            conn.execute_batch(
                "CREATE TRIGGER refuse_room BEFORE INSERT ON matches
                 WHEN NEW.room = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
        })
        .expect("add the trigger");
    let refused = submit(&store, result("refused", vec![line(1, 1, 0, 1)]));
    let id = save(&store, result("fine", vec![line(1, 1, 0, 1)]));
    assert!(
        refused.blocking_recv().is_err(),
        "the refused match is never reported saved"
    );
    assert_eq!(metrics.store_results_dropped.get(), 1);
    assert_eq!(
        metrics.store_write_failures.get(),
        0,
        "not retried as a disk failure"
    );
    assert!(store.match_by_id(id).expect("a read").is_some());
}

#[test]
fn closing_the_store_gives_up_on_a_failing_write_instead_of_hanging() {
    let dir = TempDir::new("close");
    let metrics = Metrics::new();
    let options = StoreOptions {
        retry: Backoff::new(Duration::from_secs(60), Duration::from_secs(60)),
        ..impatient()
    };
    let store = SqliteStore::open_with(&dir.0, &metrics, options).expect("the store opens");
    let lock = hold_write_lock(&dir.db());
    let on_saved = submit(&store, result("stuck", vec![line(1, 1, 0, 1)]));
    wait_until("the writer should fail against the lock", || {
        metrics.store_write_failures.get() >= 1
    });
    let started = Instant::now();
    drop(store);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closing wakes the writer from its minute-long pause"
    );
    assert!(on_saved.blocking_recv().is_err());
    assert_eq!(
        metrics.store_results_dropped.get(),
        1,
        "the loss is counted"
    );
    drop(lock);
}

#[test]
fn audit_entries_are_kept_and_read_back_newest_first() {
    let dir = TempDir::new("audit");
    let metrics = Metrics::new();
    let store = open(&dir, &metrics);
    for (n, action) in ["kick", "broadcast"].into_iter().enumerate() {
        let (saved, mut id) = oneshot::channel();
        store.record(
            AuditEntry {
                at_ms: 1_000 + n as i64,
                who: "ops@127.0.0.1".into(),
                action: action.into(),
                target: "alpha/3".into(),
                detail: "spamming".into(),
            },
            saved,
        );
        assert!(store.flush(PATIENCE), "the entry is written");
        assert!(id.try_recv().is_ok(), "its writer says it is saved");
    }
    let recent = store.recent_audit(10).expect("the log reads");
    assert_eq!(
        recent
            .iter()
            .map(|r| r.entry.action.as_str())
            .collect::<Vec<_>>(),
        ["broadcast", "kick"],
        "newest first"
    );
    assert_eq!(recent[1].entry.who, "ops@127.0.0.1");
    assert_eq!(
        metrics.store_results_saved.get(),
        0,
        "an audit entry is not counted as a saved match"
    );
    drop(store);
    let reopened = open(&dir, &metrics);
    assert_eq!(
        reopened.recent_audit(1).expect("the log reads").len(),
        1,
        "the log survives a restart"
    );
}
