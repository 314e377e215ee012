//! The PostgreSQL store against a real private PostgreSQL: the behaviour every backend
//! shows, two writers on one database, the database stopped under the writer, the spool
//! across restarts and crashes, and a database down or refusing at start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shared::ProfileId;
use test_postgres::Postgres;
use tokio::sync::oneshot;

use super::*;
use crate::store::PlayerResult;
use crate::store::behaviour::{
    Fixture, PATIENCE, behaviour_tests, line, result, save, submit, wait_saved, wait_until,
};
use crate::store::rating::{self, Skill};
use crate::store::spool::{self, SPOOL_DIR};
use crate::store::writing::per_profile;

/// A data directory of its own under the system's temporary folder, removed when
/// dropped: where the spool lives.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "skirmish-pg-{what}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn spool_file(&self) -> PathBuf {
        self.0.join(SPOOL_DIR).join("results.spool")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options that make an outage quick to notice and a recovery quick to see.
fn quick() -> PostgresOptions {
    PostgresOptions {
        retry: Backoff::new(Duration::from_millis(50), Duration::from_millis(200)),
        connect_timeout: Duration::from_secs(3),
        write_timeout: Duration::from_secs(15),
        ..PostgresOptions::default()
    }
}

/// A private PostgreSQL with one database, and a data directory for the spool.
struct Database {
    postgres: Postgres,
    url: String,
    data_dir: TempDir,
}

impl Database {
    /// `None` when this run has no PostgreSQL (a plain `cargo test`).
    fn start(test: &str) -> Option<Database> {
        let bin = test_postgres::bin_dir(test)?;
        let postgres = Postgres::start(&bin).expect("a private PostgreSQL starts");
        let url = postgres.create_database("skirmish").expect("a database");
        Some(Database {
            postgres,
            url,
            data_dir: TempDir::new(test),
        })
    }

    fn open(&self, metrics: &Metrics) -> PostgresStore {
        self.open_with(metrics, quick())
    }

    fn open_with(&self, metrics: &Metrics, options: PostgresOptions) -> PostgresStore {
        PostgresStore::open_with(&self.url, &self.data_dir.0, metrics, options)
            .expect("the store opens")
    }

    /// One number from the database, through psql rather than the store.
    fn count(&self, sql: &str) -> i64 {
        self.postgres
            .psql("skirmish", sql)
            .expect("psql answers")
            .parse()
            .expect("a number")
    }
}

impl Fixture for Database {
    fn open(&self, metrics: &Metrics) -> Box<dyn MatchStore> {
        Box::new(Database::open(self, metrics))
    }
}

behaviour_tests!(Database::start);

/// Whether `on_saved` is still waiting: the match is not reported saved, nor given up.
fn still_waiting(on_saved: &mut oneshot::Receiver<MatchId>) -> bool {
    matches!(
        on_saved.try_recv(),
        Err(oneshot::error::TryRecvError::Empty)
    )
}

/// A match of four of six regulars, different for each `n`, with kills that tell the
/// matches apart in the sums.
fn regulars_match(n: u64) -> MatchResult {
    let seats: Vec<PlayerResult> = (0..4u64)
        .map(|seat| {
            let profile = 0x100 + (n + seat * 2) % 6;
            let kills = ((n * 7 + seat * 3) % 11) as u32;
            line(profile, kills, seat as u32, seat as u32 + 1)
        })
        .collect();
    result(&format!("m{n}"), seats)
}

#[test]
fn two_processes_writing_at_once_save_every_match_once_and_lose_no_update() {
    let Some(db) =
        Database::start("two_processes_writing_at_once_save_every_match_once_and_lose_no_update")
    else {
        return;
    };
    let per_writer = 150u64;
    // Two stores on one fresh database, opened together: both migrate, once between
    // them, and then both write to the same six players as fast as they can.
    let (a, b) = std::thread::scope(|scope| {
        let open = |name: &'static str| {
            let url = db.url.clone();
            scope.spawn(move || {
                let dir = TempDir::new(name);
                let store = PostgresStore::open_with(&url, &dir.0, &Metrics::new(), quick())
                    .expect("the store opens");
                (store, dir)
            })
        };
        let (a, b) = (open("writer-a"), open("writer-b"));
        (a.join().expect("a opens"), b.join().expect("b opens"))
    });
    let results: Vec<MatchResult> = (0..2 * per_writer).map(regulars_match).collect();
    let ids: Vec<MatchId> = std::thread::scope(|scope| {
        let writers: Vec<_> = [(&a.0, 0), (&b.0, per_writer)]
            .into_iter()
            .map(|(store, start)| {
                let results = &results;
                scope.spawn(move || {
                    let waiting: Vec<_> = (start..start + per_writer)
                        .map(|n| submit(store, results[n as usize].clone()))
                        .collect();
                    waiting.into_iter().map(wait_saved).collect::<Vec<_>>()
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|writer| writer.join().expect("a writer writes"))
            .collect()
    });
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "every match has an id of its own"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM matches"),
        2 * per_writer as i64,
        "every match saved once"
    );
    assert_eq!(
        db.count("SELECT sum(kills) FROM profiles"),
        db.count("SELECT sum(kills) FROM match_players"),
        "lifetime kills add up to the matches' kills"
    );

    // Each player's stats are exactly the sum of their lines: no update was lost.
    let mut expected: HashMap<ProfileId, (u64, u64)> = HashMap::new();
    for result in &results {
        for player in per_profile(&result.players) {
            let entry = expected.entry(player.profile).or_default();
            entry.0 += 1;
            entry.1 += player.kills as u64;
        }
    }
    for (profile, (n_matches, kills)) in &expected {
        let record = a.0.player(*profile, 1).expect("a read").expect("a record");
        assert_eq!(
            (record.stats.matches, record.stats.kills),
            (*n_matches, *kills),
            "{profile:?}: every match counted once"
        );
    }

    // Writers that share a player run one after the other (their locks), so replaying
    // every match in id order must give every player exactly the rating stored.
    let mut skills: HashMap<ProfileId, Skill> = HashMap::new();
    let mut by_id: Vec<(MatchId, &MatchResult)> = ids.iter().copied().zip(&results).collect();
    by_id.sort_by_key(|(id, _)| *id);
    for (_, result) in by_id {
        let totals = per_profile(&result.players);
        let before: Vec<(Skill, u32)> = totals
            .iter()
            .map(|t| {
                let skill = skills.get(&t.profile).copied();
                (skill.unwrap_or_else(Skill::newcomer), t.placing)
            })
            .collect();
        for (t, after) in totals.iter().zip(rating::after_match(&before)) {
            skills.insert(t.profile, after);
        }
    }
    for (profile, skill) in &skills {
        let record = b.0.player(*profile, 1).expect("a read").expect("a record");
        assert_eq!(
            (record.rating.skill, record.rating.uncertainty),
            (skill.mean, skill.deviation),
            "{profile:?}: the stored rating is the replayed one"
        );
    }
}

#[test]
fn a_stopped_database_sends_results_to_the_spool_and_a_restarted_one_gets_each_once() {
    let Some(db) = Database::start(
        "a_stopped_database_sends_results_to_the_spool_and_a_restarted_one_gets_each_once",
    ) else {
        return;
    };
    let metrics = Metrics::new();
    let store = db.open(&metrics);
    let before = save(
        &store,
        result("before", vec![line(1, 3, 0, 1), line(2, 0, 3, 2)]),
    );

    db.postgres.stop().expect("the database stops");
    let mut waiting: Vec<_> = (0..5)
        .map(|n| {
            submit(
                &store,
                result(
                    &format!("during{n}"),
                    vec![line(1, 1, 0, 1), line(2, 0, 1, 2)],
                ),
            )
        })
        .collect();
    wait_until("the results should wait in the spool", || {
        metrics.store_spool_depth.get() == 5 && metrics.store_results_spooled.get() == 5
    });
    assert!(
        metrics.render().contains("skirmish_store_spool_depth 5"),
        "operators see the spool on /metrics"
    );
    assert!(metrics.store_spool_bytes.get() > 0);
    assert!(
        waiting.iter_mut().all(still_waiting),
        "nothing is reported saved before it is in the database"
    );
    assert!(
        store.flush(PATIENCE),
        "a spooled result is durable, so shutdown need not wait for the database"
    );
    assert!(
        store.matches(20, None).is_err(),
        "reads fail while it is down"
    );
    let late = submit(
        &store,
        result("late", vec![line(2, 2, 0, 1), line(1, 0, 2, 2)]),
    );
    wait_until("a result after the first ones queues behind them", || {
        metrics.store_spool_depth.get() == 6
    });
    waiting.push(late);

    db.postgres.restart().expect("the database starts again");
    let ids: Vec<MatchId> = waiting.into_iter().map(wait_saved).collect();
    wait_until("the spool should empty", || {
        metrics.store_spool_depth.get() == 0
    });
    assert_eq!(
        metrics.store_spool_bytes.get() as u64,
        spool::EMPTY_LEN,
        "an empty spool takes no room"
    );
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]) && ids[0] > before,
        "spooled results reach the database in the order they were played: {ids:?}"
    );
    assert_eq!(db.count("SELECT count(*) FROM matches"), 7, "each once");
    let rooms: Vec<String> = store
        .matches(20, None)
        .expect("a page")
        .matches
        .into_iter()
        .map(|record| record.result.room)
        .collect();
    assert_eq!(
        rooms,
        [
            "late", "during4", "during3", "during2", "during1", "during0", "before"
        ]
    );
    let winner = store
        .player(ProfileId(1), 1)
        .expect("a read")
        .expect("a record");
    assert_eq!((winner.stats.matches, winner.stats.kills), (7, 8));
    assert_eq!(metrics.store_results_dropped.get(), 0, "nothing was lost");
    assert_eq!(metrics.store_results_saved.get(), 7);
    assert!(
        metrics.store_write_failures.get() >= 1,
        "the outage is counted"
    );
}

#[test]
fn spooled_results_outlive_the_process_and_go_to_the_database_on_the_next_start() {
    let Some(db) = Database::start(
        "spooled_results_outlive_the_process_and_go_to_the_database_on_the_next_start",
    ) else {
        return;
    };
    {
        let metrics = Metrics::new();
        let store = db.open(&metrics);
        db.postgres.stop().expect("the database stops");
        for n in 0..3 {
            store.submit(
                result(&format!("r{n}"), vec![line(5, 1, 0, 1), line(6, 0, 1, 2)]),
                oneshot::channel().0,
            );
        }
        wait_until("the results should be spooled", || {
            metrics.store_spool_depth.get() == 3
        });
    }
    assert!(
        std::fs::metadata(db.data_dir.spool_file())
            .expect("the spool")
            .len()
            > spool::EMPTY_LEN,
        "the spool keeps them after the process"
    );

    db.postgres.restart().expect("the database starts again");
    let metrics = Metrics::new();
    let store = db.open(&metrics);
    wait_until("the next start sends the spool on", || {
        metrics.store_spool_depth.get() == 0
    });
    assert_eq!(store.matches(20, None).expect("a page").matches.len(), 3);
    let player = store
        .player(ProfileId(5), 10)
        .expect("a read")
        .expect("a record");
    assert_eq!(player.stats.matches, 3, "each once");
}

#[test]
fn closing_the_store_while_the_database_is_down_spools_everything_queued() {
    let Some(db) =
        Database::start("closing_the_store_while_the_database_is_down_spools_everything_queued")
    else {
        return;
    };
    let store = db.open(&Metrics::new());
    save(
        &store,
        result("before", vec![line(1, 1, 0, 1), line(2, 0, 1, 2)]),
    );
    db.postgres.stop().expect("the database stops");
    for n in 0..20 {
        store.submit(
            result(&format!("r{n}"), vec![line(1, 1, 0, 1), line(2, 0, 1, 2)]),
            oneshot::channel().0,
        );
    }
    let closing = std::time::Instant::now();
    drop(store);
    assert!(
        closing.elapsed() < Duration::from_secs(10),
        "closing does not wait out the database: {:?}",
        closing.elapsed()
    );
    let spool = Spool::open(&db.data_dir.0, 1 << 20, SpoolGauges::default()).expect("the spool");
    let rooms: Vec<String> = spool
        .peek(100)
        .expect("the records")
        .into_iter()
        .map(|record| record.result.room)
        .collect();
    let expected: Vec<String> = (0..20).map(|n| format!("r{n}")).collect();
    assert_eq!(
        rooms, expected,
        "every queued result is in the spool, in order"
    );
}

#[test]
fn a_result_sent_again_after_a_crash_is_saved_once() {
    let Some(db) = Database::start("a_result_sent_again_after_a_crash_is_saved_once") else {
        return;
    };
    let results: Vec<(ResultKey, MatchResult)> = (0..3)
        .map(|n| {
            (
                ResultKey::random(),
                result(&format!("r{n}"), vec![line(7, 2, 0, 1), line(8, 0, 2, 2)]),
            )
        })
        .collect();
    {
        // What a process left in its spool when it stopped.
        let mut spool =
            Spool::open(&db.data_dir.0, 1 << 20, SpoolGauges::default()).expect("the spool opens");
        let borrowed: Vec<(ResultKey, &MatchResult)> =
            results.iter().map(|(key, result)| (*key, result)).collect();
        assert_eq!(spool.append(&borrowed).expect("append"), 3);
    }
    let left_behind = std::fs::read(db.data_dir.spool_file()).expect("read the spool");
    let flushed = |metrics: &Metrics| {
        let store = db.open(metrics);
        wait_until("the spool should be sent on", || {
            metrics.store_spool_depth.get() == 0
        });
        store
    };
    let store = flushed(&Metrics::new());
    let first_ids: Vec<MatchId> = store
        .matches(20, None)
        .expect("a page")
        .matches
        .iter()
        .map(|record| record.id)
        .collect();
    let ratings_once = store
        .player(ProfileId(7), 10)
        .expect("a read")
        .expect("a record");
    drop(store);

    // The commit happened, but the process died before the spool was emptied.
    std::fs::write(db.data_dir.spool_file(), &left_behind).expect("put the spool back");
    let metrics = Metrics::new();
    let store = flushed(&metrics);
    assert_eq!(
        db.count("SELECT count(*) FROM matches"),
        3,
        "no match twice"
    );
    let ids: Vec<MatchId> = store
        .matches(20, None)
        .expect("a page")
        .matches
        .iter()
        .map(|record| record.id)
        .collect();
    assert_eq!(ids, first_ids, "the same matches under the same ids");
    let ratings_again = store
        .player(ProfileId(7), 10)
        .expect("a read")
        .expect("a record");
    assert_eq!(
        (ratings_again.stats, ratings_again.rating),
        (ratings_once.stats, ratings_once.rating),
        "stats and ratings are not counted twice"
    );
    assert_eq!(metrics.store_results_dropped.get(), 0);
}

#[test]
fn a_full_spool_drops_and_counts_without_waiting() {
    let Some(db) = Database::start("a_full_spool_drops_and_counts_without_waiting") else {
        return;
    };
    let played = |n: u32| result(&format!("r{n}"), vec![line(1, n, 0, 1), line(2, 0, n, 2)]);
    // Room for two results.
    let options = PostgresOptions {
        spool_max_bytes: spool::EMPTY_LEN + 2 * spool::record_len(&played(0)) + 10,
        ..quick()
    };
    let metrics = Metrics::new();
    let store = db.open_with(&metrics, options);
    db.postgres.stop().expect("the database stops");
    let kept: Vec<_> = (0..2).map(|n| submit(&store, played(n))).collect();
    wait_until("two should be spooled", || {
        metrics.store_spool_depth.get() == 2
    });
    let mut lost = submit(&store, played(2));
    wait_until("the third should be dropped", || {
        metrics.store_results_dropped.get() == 1
    });
    assert!(
        matches!(lost.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
        "a dropped result's waiter hears it will never be saved"
    );
    assert_eq!(metrics.store_results_spooled.get(), 2);
    db.postgres.restart().expect("the database starts again");
    for on_saved in kept {
        wait_saved(on_saved);
    }
    assert_eq!(db.count("SELECT count(*) FROM matches"), 2);
}

#[test]
fn a_database_down_at_start_is_ridden_out_and_migrated_when_it_is_back() {
    let Some(db) =
        Database::start("a_database_down_at_start_is_ridden_out_and_migrated_when_it_is_back")
    else {
        return;
    };
    db.postgres.stop().expect("the database stops");
    let metrics = Metrics::new();
    let store = db.open(&metrics);
    let on_saved = submit(
        &store,
        result("early", vec![line(1, 1, 0, 1), line(2, 0, 1, 2)]),
    );
    wait_until("the result should be spooled", || {
        metrics.store_spool_depth.get() == 1
    });
    db.postgres.restart().expect("the database starts");
    let id = wait_saved(on_saved);
    assert_eq!(
        db.count("SELECT max(version) FROM skirmish_migrations"),
        i64::from(schema::known_version()),
        "the schema was made when the database came"
    );
    let record = store.match_by_id(id).expect("a read").expect("the match");
    assert_eq!(record.result.room, "early");
}

#[test]
fn a_database_that_answers_no_stops_the_store_at_open() {
    let Some(db) = Database::start("a_database_that_answers_no_stops_the_store_at_open") else {
        return;
    };
    let url = db.postgres.url("no_such_database");
    let err = PostgresStore::open_with(&url, &db.data_dir.0, &Metrics::new(), quick())
        .expect_err("a database that does not exist is a mistake to fix");
    let message = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(
        message.contains("no_such_database"),
        "the error names it: {message}"
    );
    assert!(!message.contains("password"), "{message}");

    drop(db.open(&Metrics::new()));
    db.postgres
        .psql(
            "skirmish",
            "INSERT INTO skirmish_migrations (version) VALUES (99)",
        )
        .expect("a newer build's migration");
    let err = PostgresStore::open_with(&db.url, &db.data_dir.0, &Metrics::new(), quick())
        .expect_err("a newer schema is refused");
    assert!(
        matches!(err, StoreError::DatabaseTooNew { found: 99, .. }),
        "{err}"
    );
    let err = PostgresStore::open_with("mysql://nope", &db.data_dir.0, &Metrics::new(), quick())
        .expect_err("not a PostgreSQL URL");
    assert!(err.to_string().contains("URL"), "{err}");
}

#[test]
fn a_result_the_database_refuses_is_dropped_alone() {
    let Some(db) = Database::start("a_result_the_database_refuses_is_dropped_alone") else {
        return;
    };
    let metrics = Metrics::new();
    let store = db.open(&metrics);
    // PostgreSQL's text cannot hold a NUL: the database refuses this one result.
    let mut bad = line(1, 1, 0, 1);
    bad.name = "nul\0name".into();
    let refused = submit(&store, result("refused", vec![bad, line(3, 0, 1, 2)]));
    let fine = save(
        &store,
        result("fine", vec![line(1, 2, 0, 1), line(2, 0, 2, 2)]),
    );
    assert!(
        refused.blocking_recv().is_err(),
        "the refused match is never reported saved"
    );
    assert_eq!(metrics.store_results_dropped.get(), 1);
    assert_eq!(metrics.store_write_failures.get(), 0, "not an outage");
    assert_eq!(metrics.store_spool_depth.get(), 0, "not spooled either");
    assert!(store.match_by_id(fine).expect("a read").is_some());
    assert!(
        store.player(ProfileId(3), 1).expect("a read").is_none(),
        "a player seen only in the refused match has no record"
    );
}
