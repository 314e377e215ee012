//! Made-up finished matches for the store: the players a fresh database is seeded with,
//! and the results the writer hands it later. Profiles come from a player's index, so
//! the reads can ask for any seeded player without keeping a list of 100,000.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::Rng;
use rand::rngs::SmallRng;
use serde::Serialize;
use server::store::{EndReason, MatchResult, PlayerResult, ResultSink, SqliteStore};
use shared::ProfileId;
use tokio::sync::oneshot;

/// Players in every made-up match, seeded or written.
pub(super) const PLAYERS_PER_MATCH: usize = 10;

/// Results handed to the store and not yet heard saved, at most, while seeding. Below
/// the store's queue (1,024 results), so seeding never loses one to a full queue.
const SEED_IN_FLIGHT: usize = 512;

/// How long seeding waits for the last results before calling them lost.
const SEED_FLUSH_WAIT: Duration = Duration::from_secs(60);

/// 2026-11-01 00:00 UTC: the last seeded match ended then, each earlier one a minute before.
const SEEDED_MATCHES_END_MS: i64 = 1_793_491_200_000;

/// The profile of the `player_idx`th seeded player. SplitMix64's finalizer is a
/// bijection on u64, so distinct indexes are distinct profiles, spread over the whole
/// range as real (random) profiles are, not bunched at the start of the index.
pub(super) fn seeded_profile(player_idx: u64) -> ProfileId {
    let mut z = player_idx.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ProfileId(z ^ (z >> 31))
}

/// Placings from scores in the order given: 1 for the best, equal scores share a
/// placing, and the next placing skips as many as shared (1, 2, 2, 4).
pub(super) fn placings(scores: &[u32]) -> Vec<u32> {
    scores
        .iter()
        .map(|score| {
            let better = scores.iter().filter(|other| *other > score).count();
            u32::try_from(better).unwrap_or(u32::MAX).saturating_add(1)
        })
        .collect()
}

/// A finished match of `profiles` with made-up lines, best placing first as rooms
/// hand results over.
pub(super) fn made_up_match(
    profiles: &[ProfileId],
    ended_at_ms: i64,
    rng: &mut SmallRng,
) -> MatchResult {
    let mut players: Vec<PlayerResult> = profiles
        .iter()
        .map(|&profile| {
            let kills = rng.random_range(0..=20);
            let shots = rng.random_range(20..=200);
            PlayerResult {
                profile,
                name: format!("p{}", &profile.to_hex()[..6]),
                kills,
                deaths: rng.random_range(0..=20),
                shots,
                hits: rng.random_range(0..=shots),
                score: kills,
                placing: 0,
            }
        })
        .collect();
    let scores: Vec<u32> = players.iter().map(|player| player.score).collect();
    for (player, placing) in players.iter_mut().zip(placings(&scores)) {
        player.placing = placing;
    }
    players.sort_by_key(|player| player.placing);
    let reached_the_limit = players.first().is_some_and(|best| best.score >= 20);
    MatchResult {
        room: "store-bench".into(),
        map: "arena".into(),
        started_at_ms: ended_at_ms - 300_000,
        ended_at_ms,
        end_reason: if reached_the_limit {
            EndReason::ScoreLimit
        } else {
            EndReason::TimeLimit
        },
        players,
    }
}

/// The time now, as results carry it.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// How the database was prepared.
#[derive(Debug, Serialize)]
pub(super) struct Seeding {
    pub players: u64,
    pub matches: u64,
    /// False when the data directory already held a database, which was used as found.
    pub seeded_now: bool,
    pub seconds: f64,
    pub matches_per_s: f64,
    pub database_mib: f64,
}

/// Seeds `data_dir` with `n_players` players, `PLAYERS_PER_MATCH` to a match, each in
/// exactly one match, through the store's own `submit`: one fsync'd transaction per
/// match, as a server saves them. A folder that already holds a database is used as
/// it is (to repeat a run without seeding again).
pub(super) fn seed(data_dir: &Path, n_players: u64, rng: &mut SmallRng) -> anyhow::Result<Seeding> {
    let db_path = data_dir.join(server::store::DB_FILE);
    let n_matches = n_players / PLAYERS_PER_MATCH as u64;
    if db_path.exists() {
        eprintln!(
            "store-bench: using the database already in {}",
            data_dir.display()
        );
        return Ok(Seeding {
            players: n_players,
            matches: n_matches,
            seeded_now: false,
            seconds: 0.0,
            matches_per_s: 0.0,
            database_mib: database_mib(data_dir),
        });
    }
    eprintln!(
        "store-bench: seeding {} with {n_players} players in {n_matches} matches",
        data_dir.display()
    );
    let metrics = server::Metrics::new();
    let store = SqliteStore::open(data_dir, &metrics)
        .with_context(|| format!("open a store in {}", data_dir.display()))?;
    let started = Instant::now();
    let mut unheard: VecDeque<oneshot::Receiver<i64>> = VecDeque::with_capacity(SEED_IN_FLIGHT);
    let first_ended_at = SEEDED_MATCHES_END_MS - 60_000 * i64::try_from(n_matches).unwrap_or(0);
    for match_idx in 0..n_matches {
        if unheard.len() >= SEED_IN_FLIGHT {
            wait_saved(unheard.pop_front())?;
        }
        let first_player = match_idx * PLAYERS_PER_MATCH as u64;
        let profiles: Vec<ProfileId> = (first_player..first_player + PLAYERS_PER_MATCH as u64)
            .map(seeded_profile)
            .collect();
        let ended_at = first_ended_at + 60_000 * i64::try_from(match_idx).unwrap_or(0);
        let (saved, heard) = oneshot::channel();
        store.submit(made_up_match(&profiles, ended_at, rng), saved);
        unheard.push_back(heard);
    }
    while let Some(heard) = unheard.pop_front() {
        wait_saved(Some(heard))?;
    }
    anyhow::ensure!(
        store.flush(SEED_FLUSH_WAIT),
        "the store did not finish writing the seeded matches"
    );
    let seconds = started.elapsed().as_secs_f64();
    // Closing checkpoints the WAL into the database file, so the size below is the file's.
    drop(store);
    Ok(Seeding {
        players: n_players,
        matches: n_matches,
        seeded_now: true,
        seconds,
        matches_per_s: n_matches as f64 / seconds.max(1e-9),
        database_mib: database_mib(data_dir),
    })
}

fn wait_saved(heard: Option<oneshot::Receiver<i64>>) -> anyhow::Result<()> {
    if let Some(heard) = heard {
        heard
            .blocking_recv()
            .context("the store lost a seeded match (its queue was full, or a write failed)")?;
    }
    Ok(())
}

/// The database and its WAL, in MiB.
fn database_mib(data_dir: &Path) -> f64 {
    let file = server::store::DB_FILE;
    [file.to_owned(), format!("{file}-wal")]
        .iter()
        .filter_map(|name| std::fs::metadata(data_dir.join(name)).ok())
        .map(|meta| meta.len() as f64 / (1024.0 * 1024.0))
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn seeded_profiles_are_distinct_and_spread_over_the_range() {
        let profiles: HashSet<u64> = (0..100_000).map(|idx| seeded_profile(idx).0).collect();
        assert_eq!(
            profiles.len(),
            100_000,
            "every index is a profile of its own"
        );
        let top_half = profiles.iter().filter(|p| **p >= 1 << 63).count();
        assert!(
            (45_000..55_000).contains(&top_half),
            "about half the profiles should be in the top half of the range, got {top_half}"
        );
        assert_eq!(
            seeded_profile(7),
            seeded_profile(7),
            "the same index, the same profile"
        );
    }

    #[test]
    fn equal_scores_share_a_placing_and_the_next_skips() {
        assert_eq!(placings(&[3, 9, 3, 1]), [2, 1, 2, 4]);
        assert_eq!(placings(&[5, 5]), [1, 1]);
        assert_eq!(placings(&[]), Vec::<u32>::new());
    }

    #[test]
    fn a_made_up_match_is_ordered_best_first_with_consistent_lines() {
        let mut rng = SmallRng::seed_from_u64(3);
        let profiles: Vec<ProfileId> = (0..10).map(seeded_profile).collect();
        let result = made_up_match(&profiles, 1_000_000, &mut rng);
        assert_eq!(result.players.len(), 10);
        assert!(
            result
                .players
                .windows(2)
                .all(|pair| pair[0].placing <= pair[1].placing),
            "best placing first, as rooms hand results over"
        );
        assert_eq!(result.players[0].placing, 1, "someone wins");
        assert!(
            result.players.iter().all(|p| p.hits <= p.shots),
            "no more hits than shots"
        );
        assert!(result.started_at_ms < result.ended_at_ms);
    }
}
