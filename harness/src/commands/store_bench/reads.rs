//! Reads under load: many keep-alive connections, each sending its next `GET` as soon
//! as the last is answered, for a bounded time; latency measured per request at the
//! client, so it includes every queue on the way (sockets, runtime, blocking pool, the
//! store's read connections).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::ServerProcess;
use harness::http::Connection;
use harness::procfs::{ClockTicks, cpu_seconds};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The leaderboard's largest page: the walk that collects cursors takes the fewest
/// steps with it.
const WALK_PAGE: u32 = 100;

/// Pause before reconnecting after a connection failed, so a server that refuses
/// connections is not hammered by a loop of failures.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// What one request asked for, reported as one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Endpoint {
    /// `GET /api/leaderboard?limit=20`, the top of the board, as the lobby reads it.
    LeaderboardTop,
    /// `GET /api/leaderboard?limit=20&cursor=..`, a page deep in the board.
    LeaderboardDeep,
    /// `GET /api/players/{profile}`.
    Player,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::LeaderboardTop => "GET /api/leaderboard?limit=20",
            Endpoint::LeaderboardDeep => "GET /api/leaderboard?limit=20&cursor={deep}",
            Endpoint::Player => "GET /api/players/{random seeded profile}",
        }
    }
}

/// Cursors collected by walking the whole leaderboard, and what the walk cost.
#[derive(Debug, Serialize)]
pub(super) struct BoardWalk {
    /// Players on the board, counted page by page.
    pub players: u64,
    pub pages: u64,
    pub seconds: f64,
    /// Mean time for one page of 100, one request at a time, from the top to the end.
    pub ms_per_page: f64,
    /// Cursors kept, and the ranks their pages start at.
    pub cursors_kept: usize,
    pub first_cursor_rank: u64,
    pub last_cursor_rank: u64,
    #[serde(skip)]
    pub cursors: Vec<String>,
}

/// A page of `/api/leaderboard`, as much of it as the walk needs.
#[derive(Debug, Deserialize)]
struct LeaderboardPage {
    players: Vec<serde::de::IgnoredAny>,
    next: Option<String>,
}

/// Walks the leaderboard from the top to its end, `WALK_PAGE` players at a time on one
/// connection, keeping the cursor of every `keep_every`th page: cursors the server made,
/// spread evenly over the whole board.
pub(super) fn walk_the_board(addr: SocketAddr, keep_every: u64) -> anyhow::Result<BoardWalk> {
    let mut connection = Connection::open(addr)?;
    let started = Instant::now();
    let mut cursors = Vec::new();
    let mut cursor_ranks = Vec::new();
    let (mut players, mut pages) = (0u64, 0u64);
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            None => format!("/api/leaderboard?limit={WALK_PAGE}"),
            Some(cursor) => format!("/api/leaderboard?limit={WALK_PAGE}&cursor={cursor}"),
        };
        let response = connection.get(&path)?;
        anyhow::ensure!(
            response.status == 200,
            "GET {path}: {}",
            response.status_line
        );
        let page: LeaderboardPage =
            serde_json::from_str(&response.body).with_context(|| format!("parse GET {path}"))?;
        players += page.players.len() as u64;
        pages += 1;
        match page.next {
            Some(cursor) => {
                if pages % keep_every.max(1) == 0 {
                    cursor_ranks.push(players + 1);
                    cursors.push(cursor.clone());
                }
                next = Some(cursor);
            }
            None => break,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(BoardWalk {
        players,
        pages,
        seconds,
        ms_per_page: seconds * 1e3 / pages.max(1) as f64,
        cursors_kept: cursors.len(),
        first_cursor_rank: cursor_ranks.first().copied().unwrap_or(0),
        last_cursor_rank: cursor_ranks.last().copied().unwrap_or(0),
        cursors,
    })
}

/// One row of the report: what one endpoint's requests saw.
#[derive(Debug, Serialize)]
pub(super) struct EndpointFigures {
    pub endpoint: &'static str,
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers with a status other than 200 (503 when the store's read connections
    /// stayed busy).
    pub non_200: u64,
    /// Requests with no answer at all: a reset, a timeout, a garbled response.
    pub failed: u64,
}

/// One endpoint's requests as a connection saw them.
#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    non_200: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.non_200 += other.non_200;
        self.failed += other.failed;
    }
}

/// Latency percentiles of a set of requests, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(super) struct LatencyMs {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencyMs {
    /// Exact percentiles of the samples by nearest rank (the smallest sample with at
    /// least that share of samples at or below it); `None` for no samples. Not a
    /// histogram's: every request's time is kept, so nothing needs interpolating.
    pub(super) fn of(samples: &mut [Duration]) -> Option<LatencyMs> {
        samples.sort_unstable();
        let ms = |q: f64| nearest_rank(samples, q).map(|d| d.as_secs_f64() * 1e3);
        Some(LatencyMs {
            p50: ms(0.50)?,
            p99: ms(0.99)?,
            max: ms(1.0)?,
        })
    }
}

/// The `q` quantile of `sorted` by nearest rank: the sample at rank `ceil(q * n)`,
/// counting from 1.
pub(crate) fn nearest_rank(sorted: &[Duration], q: f64) -> Option<Duration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// One stretch of reading: how many connections, for how long, what the server's CPU
/// did meanwhile, and a row per endpoint asked.
#[derive(Debug, Serialize)]
pub(super) struct ReadPhase {
    pub phase: &'static str,
    pub connections: usize,
    pub seconds: f64,
    /// Cores the server used, user and system.
    pub server_cpu: f64,
    pub endpoints: Vec<EndpointFigures>,
}

/// Runs `connections` keep-alive connections for `duration`, each asking for what
/// `next_request` picks, as fast as answers come.
pub(super) fn hammer(
    server: &ServerProcess,
    phase: &'static str,
    connections: usize,
    duration: Duration,
    next_request: &(dyn Fn(&mut SmallRng) -> (Endpoint, String) + Sync),
) -> anyhow::Result<ReadPhase> {
    let addr = server.addr();
    let clock_ticks = ClockTicks::of_this_machine();
    let cpu_before = cpu_seconds(server.pid(), clock_ticks);
    let started = Instant::now();
    let deadline = started + duration;
    let tallies: Vec<BTreeMap<Endpoint, Tally>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|connection_idx| {
                std::thread::Builder::new()
                    .name(format!("reader-{connection_idx}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        let rng = SmallRng::seed_from_u64(connection_idx as u64);
                        one_connection(addr, deadline, rng, next_request)
                    })
            })
            .collect::<Result<_, _>>()
            .context("start the reading threads")?;
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a reading thread panicked"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu = (cpu_seconds(server.pid(), clock_ticks) - cpu_before) / seconds;
    let mut by_endpoint: BTreeMap<Endpoint, Tally> = BTreeMap::new();
    for tally in tallies {
        for (endpoint, counts) in tally {
            by_endpoint.entry(endpoint).or_default().add(counts);
        }
    }
    let endpoints = by_endpoint
        .into_iter()
        .map(|(endpoint, mut tally)| {
            let latency = LatencyMs::of(&mut tally.latencies);
            let requests = tally.latencies.len() as u64 + tally.failed;
            EndpointFigures {
                endpoint: endpoint.label(),
                requests,
                requests_per_s: requests as f64 / seconds,
                p50_ms: latency.map_or(f64::NAN, |l| l.p50),
                p99_ms: latency.map_or(f64::NAN, |l| l.p99),
                max_ms: latency.map_or(f64::NAN, |l| l.max),
                non_200: tally.non_200,
                failed: tally.failed,
            }
        })
        .collect();
    Ok(ReadPhase {
        phase,
        connections,
        seconds,
        server_cpu,
        endpoints,
    })
}

/// One connection's loop: a request, its answer, the next, until `deadline`. A failed
/// request costs the connection; the next request opens another.
fn one_connection(
    addr: SocketAddr,
    deadline: Instant,
    mut rng: SmallRng,
    next_request: &(dyn Fn(&mut SmallRng) -> (Endpoint, String) + Sync),
) -> BTreeMap<Endpoint, Tally> {
    let mut tallies: BTreeMap<Endpoint, Tally> = BTreeMap::new();
    let mut connection: Option<Connection> = None;
    while Instant::now() < deadline {
        let mut open = match connection.take() {
            Some(open) => open,
            None => match Connection::open(addr) {
                Ok(open) => open,
                Err(_) => {
                    std::thread::sleep(RECONNECT_PAUSE);
                    continue;
                }
            },
        };
        let (endpoint, path) = next_request(&mut rng);
        let sent = Instant::now();
        let answer = open.get(&path);
        let took = sent.elapsed();
        let tally = tallies.entry(endpoint).or_default();
        match answer {
            Ok(response) => {
                tally.latencies.push(took);
                if response.status != 200 {
                    tally.non_200 += 1;
                }
                connection = Some(open);
            }
            Err(_) => tally.failed += 1,
        }
    }
    tallies
}

/// The next leaderboard request: the page after one of `cursors` (chosen at random) for
/// `deep_share` of requests, the top page for the rest.
pub(super) fn leaderboard_request(
    cursors: &[String],
    deep_share: f64,
    rng: &mut SmallRng,
) -> (Endpoint, String) {
    if cursors.is_empty() || !rng.random_bool(deep_share.clamp(0.0, 1.0)) {
        (Endpoint::LeaderboardTop, "/api/leaderboard?limit=20".into())
    } else {
        let cursor = &cursors[rng.random_range(0..cursors.len())];
        (
            Endpoint::LeaderboardDeep,
            format!("/api/leaderboard?limit=20&cursor={cursor}"),
        )
    }
}

/// The next request of the players phase: a seeded player chosen at random.
pub(super) fn player_request(n_players: u64, rng: &mut SmallRng) -> (Endpoint, String) {
    let profile = super::seed::seeded_profile(rng.random_range(0..n_players.max(1)));
    (
        Endpoint::Player,
        format!("/api/players/{}", profile.to_hex()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn percentiles_are_by_nearest_rank_over_every_sample() {
        // 1 to 100 ms, shuffled: p50 is the 50th, p99 the 99th, max the 100th.
        let mut samples = ms(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(
            LatencyMs::of(&mut samples),
            Some(LatencyMs {
                p50: 50.0,
                p99: 99.0,
                max: 100.0
            })
        );
    }

    #[test]
    fn one_slow_request_in_a_hundred_sets_p99_only_above_that_share() {
        let mut fast_then_slow = ms(&[1; 99]);
        fast_then_slow.push(Duration::from_millis(500));
        let latency = LatencyMs::of(&mut fast_then_slow).expect("samples give percentiles");
        assert_eq!(latency.p99, 1.0, "99 of 100 were 1 ms, so p99 is 1 ms");
        assert_eq!(latency.max, 500.0);
        let mut two_slow = ms(&[1; 98]);
        two_slow.extend(ms(&[500, 500]));
        assert_eq!(
            LatencyMs::of(&mut two_slow).map(|l| l.p99),
            Some(500.0),
            "with 2 of 100 slow, p99 is a slow one"
        );
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_none() {
        assert_eq!(
            LatencyMs::of(&mut ms(&[7])),
            Some(LatencyMs {
                p50: 7.0,
                p99: 7.0,
                max: 7.0
            })
        );
        assert_eq!(LatencyMs::of(&mut []), None);
    }

    #[test]
    fn the_leaderboard_phase_mixes_the_top_and_deep_pages() {
        let cursors = vec!["c1".to_owned(), "c2".to_owned()];
        let mut rng = SmallRng::seed_from_u64(1);
        let picks: Vec<_> = (0..200)
            .map(|_| leaderboard_request(&cursors, 0.5, &mut rng))
            .collect();
        let deep = picks
            .iter()
            .filter(|(endpoint, _)| *endpoint == Endpoint::LeaderboardDeep)
            .count();
        assert!(
            (60..140).contains(&deep),
            "about half deep, got {deep} of 200"
        );
        assert!(
            picks
                .iter()
                .filter(|(endpoint, _)| *endpoint == Endpoint::LeaderboardDeep)
                .all(|(_, path)| path.ends_with("&cursor=c1") || path.ends_with("&cursor=c2")),
            "deep pages start at a collected cursor"
        );
        assert_eq!(
            leaderboard_request(&[], 1.0, &mut rng).0,
            Endpoint::LeaderboardTop,
            "with no cursors, only the top"
        );
        assert_eq!(
            leaderboard_request(&cursors, 0.0, &mut rng).0,
            Endpoint::LeaderboardTop
        );
        assert_eq!(
            leaderboard_request(&cursors, 1.0, &mut rng).0,
            Endpoint::LeaderboardDeep
        );
    }
}
