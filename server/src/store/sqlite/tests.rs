//! The SQLite store against real files in a temporary folder: opening, refusing,
//! writing through the writer thread, failing and retrying, and reading back in pages.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use shared::ProfileId;
use tokio::sync::oneshot;

use super::*;
use crate::store::{
    AuditEntry, AuditLog, EndReason, MatchResult, MatchStore, PlayerResult, StoreError,
};

/// Longer than any healthy write takes, even on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

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

fn line(profile: u64, kills: u32, deaths: u32, placing: u32) -> PlayerResult {
    PlayerResult {
        profile: ProfileId(profile),
        name: format!("player{profile}"),
        kills,
        deaths,
        shots: kills * 4 + 1,
        hits: kills * 2,
        score: kills,
        placing,
    }
}

fn result(room: &str, players: Vec<PlayerResult>) -> MatchResult {
    MatchResult {
        room: room.into(),
        map: "arena".into(),
        started_at_ms: 1_700_000_000_000,
        ended_at_ms: 1_700_000_300_000,
        end_reason: EndReason::ScoreLimit,
        players,
    }
}

/// Options that make failures quick to provoke and retries quick to see.
fn impatient() -> StoreOptions {
    StoreOptions {
        write_busy_timeout: Duration::from_millis(20),
        retry: Backoff {
            first: Duration::from_millis(10),
            longest: Duration::from_millis(50),
        },
        ..StoreOptions::default()
    }
}

fn open(dir: &TempDir, metrics: &Metrics) -> SqliteStore {
    SqliteStore::open(&dir.0, metrics).expect("the store opens")
}

/// The id `saved` brings, failing the test after `PATIENCE`.
fn wait_saved(mut saved: oneshot::Receiver<MatchId>) -> MatchId {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match saved.try_recv() {
            Ok(id) => return id,
            Err(oneshot::error::TryRecvError::Empty) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(err) => panic!("the match should be saved within the patience window: {err}"),
        }
    }
}

fn submit(store: &SqliteStore, result: MatchResult) -> oneshot::Receiver<MatchId> {
    let (saved, on_saved) = oneshot::channel();
    store.submit(result, saved);
    on_saved
}

fn save(store: &SqliteStore, result: MatchResult) -> MatchId {
    wait_saved(submit(store, result))
}

/// Waits until `condition` holds, failing the test with `what` after `PATIENCE`.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(2));
    }
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
fn a_submitted_match_reads_back_once_saved_fires() {
    let dir = TempDir::new("roundtrip");
    let metrics = Metrics::new();
    let store = open(&dir, &metrics);
    let played = result("alpha", vec![line(0xa, 5, 1, 1), line(0xb, 1, 5, 2)]);
    let id = save(&store, played.clone());
    let record = store
        .match_by_id(id)
        .expect("a match is readable")
        .expect("the saved match exists");
    assert_eq!(record.id, id);
    assert_eq!(
        record.result, played,
        "the match reads back as it was handed over"
    );
    assert_eq!(
        store.matches(20, None).expect("a page").matches,
        vec![record]
    );
    assert_eq!(metrics.store_results_saved.get(), 1);
    assert_eq!(metrics.store_queue_depth.get(), 0, "nothing left queued");
    assert!(store.match_by_id(id + 1).expect("a read").is_none());
}

#[test]
fn reopening_keeps_the_history() {
    let dir = TempDir::new("reopen");
    let played = result("alpha", vec![line(1, 2, 0, 1), line(2, 0, 2, 2)]);
    let id = {
        let store = open(&dir, &Metrics::new());
        save(&store, played.clone())
    };
    let store = open(&dir, &Metrics::new());
    let record = store.match_by_id(id).expect("a read").expect("still there");
    assert_eq!(record.result, played);
    let next = save(&store, result("beta", vec![line(1, 1, 0, 1)]));
    assert!(next > id, "ids keep ascending across restarts");
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
fn lifetime_stats_and_ratings_follow_the_matches() {
    let dir = TempDir::new("ratings");
    let store = open(&dir, &Metrics::new());
    let (winner, loser) = (0x1111, 0x2222);
    let first = save(
        &store,
        result("a", vec![line(winner, 5, 1, 1), line(loser, 1, 5, 2)]),
    );
    let second = save(
        &store,
        result("b", vec![line(winner, 3, 2, 1), line(loser, 2, 3, 2)]),
    );
    let champion = store
        .player(ProfileId(winner), 10)
        .expect("a read")
        .expect("the winner has a record");
    assert_eq!(
        (champion.stats.matches, champion.stats.wins),
        (2, 2),
        "two matches, two wins"
    );
    assert_eq!(
        (
            champion.stats.kills,
            champion.stats.deaths,
            champion.stats.score
        ),
        (8, 3, 8)
    );
    assert_eq!(
        (champion.stats.shots, champion.stats.hits),
        (21 + 13, 10 + 6)
    );
    assert!(
        champion.rating.rating > 0.0,
        "a winner's rating rises above a newcomer's 0: {:?}",
        champion.rating
    );
    assert!(champion.rating.skill > 25.0);
    assert_eq!(champion.rank, 1);
    assert_eq!(
        champion
            .recent_matches
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![second, first],
        "recent matches newest first"
    );
    assert_eq!(champion.recent_matches[0].n_players, 2);
    assert_eq!(champion.recent_matches[0].kills, 3);

    let runner_up = store
        .player(ProfileId(loser), 10)
        .expect("a read")
        .expect("the loser has a record");
    assert_eq!((runner_up.stats.matches, runner_up.stats.wins), (2, 0));
    assert!(runner_up.rating.skill < 25.0, "a loser's skill falls");
    assert_eq!(runner_up.rank, 2);
    assert!(
        store
            .player(ProfileId(0x3333), 10)
            .expect("a read")
            .is_none(),
        "nobody who never played has a record"
    );

    let board = store.leaderboard(10, None).expect("a leaderboard");
    let order: Vec<_> = board.entries.iter().map(|e| (e.rank, e.profile)).collect();
    assert_eq!(order, vec![(1, ProfileId(winner)), (2, ProfileId(loser))]);
    assert!(board.next.is_none());
}

#[test]
fn a_profile_in_two_seats_counts_one_match() {
    let dir = TempDir::new("two-seats");
    let store = open(&dir, &Metrics::new());
    save(
        &store,
        result(
            "a",
            vec![line(7, 4, 0, 1), line(8, 1, 1, 2), line(7, 2, 3, 3)],
        ),
    );
    let twice = store
        .player(ProfileId(7), 10)
        .expect("a read")
        .expect("a record");
    assert_eq!(twice.stats.matches, 1);
    assert_eq!(twice.stats.wins, 1, "the better seat's placing counts");
    assert_eq!((twice.stats.kills, twice.stats.deaths), (6, 3));
}

#[test]
fn match_pages_are_complete_and_without_duplicates() {
    let dir = TempDir::new("match-pages");
    let store = open(&dir, &Metrics::new());
    let mut saved: Vec<MatchId> = (0..23)
        .map(|n| {
            save(
                &store,
                result(
                    &format!("r{n}"),
                    vec![line(n, 1, 0, 1), line(100 + n, 0, 1, 2)],
                ),
            )
        })
        .collect();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.matches(5, before).expect("a page");
        assert!(page.matches.len() <= 5);
        for record in &page.matches {
            assert_eq!(record.result.players.len(), 2, "every match has its lines");
            assert_eq!(
                record.result.players[0].profile.0 + 100,
                record.result.players[1].profile.0
            );
        }
        seen.extend(page.matches.iter().map(|m| m.id));
        // New matches arriving while a client pages do not disturb the older pages.
        saved.push(save(&store, result("late", vec![line(999, 1, 0, 1)])));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let late: Vec<MatchId> = saved.split_off(23);
    saved.reverse();
    assert_eq!(
        seen, saved,
        "every match older than the first page, newest first, once"
    );
    assert!(seen.iter().all(|id| !late.contains(id)));
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no duplicates"
    );
    let exact = store
        .matches(23 + late.len() as u32, None)
        .expect("one page of all");
    assert!(
        exact.next.is_none(),
        "a page that holds the rest has no next"
    );
}

#[test]
fn leaderboard_pages_are_complete_ordered_and_ranked() {
    let dir = TempDir::new("board-pages");
    let store = open(&dir, &Metrics::new());
    // Rounds of four, with placings that spread the ratings and leave some ties.
    for round in 0..6u64 {
        for table in 0..4u64 {
            let seats: Vec<PlayerResult> = (0..4u64)
                .map(|seat| {
                    let profile = table * 4 + (seat + round) % 4;
                    line(profile, 4 - seat as u32, seat as u32, seat as u32 / 2 + 1)
                })
                .collect();
            save(&store, result("t", seats));
        }
    }
    let full = store.leaderboard(100, None).expect("the whole board");
    assert_eq!(full.entries.len(), 16);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.leaderboard(3, after).expect("a page");
        paged.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, full.entries, "pages add up to the whole board");
    for pair in paged.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.rating.rating > b.rating.rating
                || (a.rating.rating == b.rating.rating && a.profile < b.profile),
            "rating down, then profile up: {a:?} then {b:?}"
        );
    }
    let ranks: Vec<u64> = paged.iter().map(|e| e.rank).collect();
    assert_eq!(ranks, (1..=16).collect::<Vec<u64>>());
    for entry in &paged {
        let player = store
            .player(entry.profile, 1)
            .expect("a read")
            .expect("a record");
        assert_eq!(
            player.rank, entry.rank,
            "a player's rank is their place on the board"
        );
    }
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
        retry: Backoff {
            first: Duration::from_secs(60),
            longest: Duration::from_secs(60),
        },
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
