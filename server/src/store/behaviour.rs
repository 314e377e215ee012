//! The behaviour every backend shows alike, written once and run against each (SQLite
//! and PostgreSQL) by `behaviour_tests!`: a match reads back as it was handed over,
//! history survives reopening, stats and ratings follow the matches, pages add up.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shared::ProfileId;
use tokio::sync::oneshot;

use crate::Metrics;
use crate::store::{EndReason, MatchId, MatchResult, MatchStore, PlayerResult, ResultSink};

/// Longer than any healthy write takes, even on a loaded machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// How a backend's tests open its store: on the same storage every time, so that a
/// reopened store finds what an earlier one saved.
pub(crate) trait Fixture {
    fn open(&self, metrics: &Metrics) -> Box<dyn MatchStore>;
}

/// Writes one `#[test]` per behaviour into a `behaviour` module, each opening its
/// store through `$fixture(name)`, which returns `None` to skip (a backend that needs
/// a program this run does not have).
macro_rules! behaviour_tests {
    ($fixture:path) => {
        mod behaviour {
            use super::*;

            behaviour_tests!(@each $fixture;
                a_submitted_match_reads_back_once_saved_fires,
                reopening_keeps_the_history,
                lifetime_stats_and_ratings_follow_the_matches,
                a_profile_in_two_seats_counts_one_match,
                match_pages_are_complete_and_without_duplicates,
                leaderboard_pages_are_complete_ordered_and_ranked,
            );
        }
    };
    (@each $fixture:path; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                if let Some(fixture) = $fixture(stringify!($name)) {
                    crate::store::behaviour::$name(&fixture);
                }
            }
        )*
    };
}
pub(crate) use behaviour_tests;

pub(crate) fn line(profile: u64, kills: u32, deaths: u32, placing: u32) -> PlayerResult {
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

pub(crate) fn result(room: &str, players: Vec<PlayerResult>) -> MatchResult {
    MatchResult {
        room: room.into(),
        map: "arena".into(),
        started_at_ms: 1_700_000_000_000,
        ended_at_ms: 1_700_000_300_000,
        end_reason: EndReason::ScoreLimit,
        players,
    }
}

/// The id `saved` brings, failing the test after `PATIENCE`.
pub(crate) fn wait_saved(mut saved: oneshot::Receiver<MatchId>) -> MatchId {
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

pub(crate) fn submit(store: &dyn ResultSink, result: MatchResult) -> oneshot::Receiver<MatchId> {
    let (saved, on_saved) = oneshot::channel();
    store.submit(result, saved);
    on_saved
}

pub(crate) fn save(store: &dyn ResultSink, result: MatchResult) -> MatchId {
    wait_saved(submit(store, result))
}

/// Waits until `condition` holds, failing the test with `what` after `PATIENCE`.
pub(crate) fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) fn a_submitted_match_reads_back_once_saved_fires(fixture: &dyn Fixture) {
    let metrics = Metrics::new();
    let store = fixture.open(&metrics);
    let played = result("alpha", vec![line(0xa, 5, 1, 1), line(0xb, 1, 5, 2)]);
    let id = save(&*store, played.clone());
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

pub(crate) fn reopening_keeps_the_history(fixture: &dyn Fixture) {
    let played = result("alpha", vec![line(1, 2, 0, 1), line(2, 0, 2, 2)]);
    let id = {
        let store = fixture.open(&Metrics::new());
        save(&*store, played.clone())
    };
    let store = fixture.open(&Metrics::new());
    let record = store.match_by_id(id).expect("a read").expect("still there");
    assert_eq!(record.result, played);
    let next = save(&*store, result("beta", vec![line(1, 1, 0, 1)]));
    assert!(next > id, "ids keep ascending across restarts");
}

pub(crate) fn lifetime_stats_and_ratings_follow_the_matches(fixture: &dyn Fixture) {
    let store = fixture.open(&Metrics::new());
    let (winner, loser) = (0x1111, 0x2222);
    let first = save(
        &*store,
        result("a", vec![line(winner, 5, 1, 1), line(loser, 1, 5, 2)]),
    );
    let second = save(
        &*store,
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

pub(crate) fn a_profile_in_two_seats_counts_one_match(fixture: &dyn Fixture) {
    let store = fixture.open(&Metrics::new());
    save(
        &*store,
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

pub(crate) fn match_pages_are_complete_and_without_duplicates(fixture: &dyn Fixture) {
    let store = fixture.open(&Metrics::new());
    let mut saved: Vec<MatchId> = (0..23)
        .map(|n| {
            save(
                &*store,
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
        saved.push(save(&*store, result("late", vec![line(999, 1, 0, 1)])));
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

pub(crate) fn leaderboard_pages_are_complete_ordered_and_ranked(fixture: &dyn Fixture) {
    let store = fixture.open(&Metrics::new());
    // Rounds of four, with placings that spread the ratings and leave some ties.
    for round in 0..6u64 {
        for table in 0..4u64 {
            let seats: Vec<PlayerResult> = (0..4u64)
                .map(|seat| {
                    let profile = table * 4 + (seat + round) % 4;
                    line(profile, 4 - seat as u32, seat as u32, seat as u32 / 2 + 1)
                })
                .collect();
            save(&*store, result("t", seats));
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
