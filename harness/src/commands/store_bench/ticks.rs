//! Room ticks while the store writes: bots play a release server for one window, then
//! for a second window this process opens the server's own database (SQLite's WAL lets
//! a second process write it) and submits results at a steady rate. Rooms cannot be
//! made to finish that many matches, so the second process stands in for them: the
//! same database file, the same disk and the same cores as the rooms.

use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::procfs::{ClockTicks, cpu_seconds};
use harness::{Histogram, Metrics, ServerProcess};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use server::store::{ResultSink, SqliteStore};
use shared::ProfileId;
use shared::consts::DEFAULT_ROOM_CAPACITY;
use tokio::sync::oneshot;

use super::reads::LatencyMs;
use super::seed::{PLAYERS_PER_MATCH, made_up_match, now_ms, seeded_profile};
use crate::Binaries;
use crate::bots_process::Swarm;
use crate::commands::server_command;

/// Seconds after the last bot joined before the first window opens.
const SETTLE: Duration = Duration::from_secs(3);
/// How often the writer's queue depth is sampled.
const QUEUE_SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How long the results still queued when the writing window closes may take to be
/// written before the run stops waiting.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

/// What the tick measurement runs.
#[derive(Clone, Copy, Debug)]
pub(super) struct TickSetup {
    pub bots: usize,
    pub window: Duration,
    pub writes_per_s: u32,
    /// Seeded players, whose profiles the written results use.
    pub n_players: u64,
}

/// Quantiles of what a tick histogram observed in a window, in milliseconds,
/// interpolated within their bucket as `Histogram::quantile` says; `max` is the upper
/// bound of the highest bucket that holds an observation. NaN if nothing was observed.
#[derive(Debug, Serialize)]
pub(super) struct TickQuantiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl TickQuantiles {
    fn of_window(before: &Histogram, after: &Histogram) -> TickQuantiles {
        let window = after.since(before);
        let ms = |q| window.quantile(q).map_or(f64::NAN, |seconds| seconds * 1e3);
        TickQuantiles {
            p50: ms(0.5),
            p99: ms(0.99),
            max: ms(1.0),
        }
    }
}

/// The rooms' ticks over one window.
#[derive(Debug, Serialize)]
pub(super) struct TickWindow {
    pub seconds: f64,
    pub ticks: f64,
    pub tick_duration_ms: TickQuantiles,
    pub tick_lateness_ms: TickQuantiles,
    /// CPU cores used, user and system.
    pub server_cpu: f64,
    pub harness_cpu: f64,
    /// Matches the bots' own rooms finished and the server saved in the window.
    pub server_results_saved: f64,
}

/// What the second process's writer did in the writing window.
#[derive(Debug, Serialize)]
pub(super) struct WriterFigures {
    pub target_per_s: u32,
    pub submitted: u64,
    /// Heard saved (the `saved` oneshot fired) before the window closed.
    pub saved_in_window: u64,
    pub saved_per_s: f64,
    /// Lost because the store's queue was full (the oneshot was dropped).
    pub dropped: u64,
    /// Saved after the window closed, from what was still queued.
    pub saved_after_window: u64,
    /// From the window's close until the queue was empty.
    pub drain_seconds: f64,
    /// From `submit` to the `saved` oneshot, over every saved result.
    pub submit_to_saved_ms: Option<LatencyMs>,
    pub queue_depth_max: i64,
    pub queue_depth_mean: f64,
    /// Failed tries (a lock held too long by the server's writer, an I/O error).
    pub write_failures: u64,
    /// Opening the database beside the running server (its integrity check reads it all).
    pub store_open_seconds: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct TickReport {
    pub bots: usize,
    pub room_capacity: u16,
    pub quiet: TickWindow,
    pub writing: TickWindow,
    pub writer: WriterFigures,
    /// Over the bots' whole run, both windows.
    pub bots_snapshots_per_s_mean: f64,
    pub bots_snapshots_per_s_worst: Option<f64>,
    pub bots_failed: usize,
}

/// One submitted result, waiting to hear it was saved.
#[derive(Debug)]
struct Pending {
    submitted_at: Instant,
    heard: oneshot::Receiver<i64>,
}

/// What became of the submitted results.
#[derive(Debug, Default)]
struct Outcomes {
    /// When each saved result was submitted and heard saved, in the order submitted.
    saved: Vec<(Instant, Instant)>,
    dropped: u64,
}

pub(super) fn measure(
    setup: TickSetup,
    data_dir: &Path,
    binaries: &Binaries,
) -> anyhow::Result<TickReport> {
    let mut command = server_command(&binaries.server);
    command
        .args(["--room-capacity", &DEFAULT_ROOM_CAPACITY.to_string()])
        .args(["--max-connections", "100000"])
        .stderr(Stdio::null());
    let server = ServerProcess::start_on_data_dir(command, data_dir)?;

    // Opened before the bots play, so its integrity check is not in either window.
    let store_metrics = server::Metrics::new();
    let opening = Instant::now();
    let store = SqliteStore::open(data_dir, &store_metrics).with_context(|| {
        format!(
            "open the server's database in {} beside it",
            data_dir.display()
        )
    })?;
    let store_open_seconds = opening.elapsed().as_secs_f64();

    let url = server.ws_url("/ws");
    let ramp = Duration::from_secs(2);
    let swarm = Swarm {
        url: &url,
        count: setup.bots,
        duration: ramp + SETTLE + setup.window * 2 + Duration::from_secs(2),
        ramp,
        room: None,
        seed: 1,
        idle: false,
        ca_cert: None,
    };
    let bots = swarm.spawn(&binaries.bots)?;
    sleep(ramp + SETTLE);
    let clock_ticks = ClockTicks::of_this_machine();

    eprintln!(
        "store-bench: {} bots playing, no writes, {:?}",
        setup.bots, setup.window
    );
    let opened = WindowStart::now(&server, clock_ticks)?;
    sleep(setup.window);
    let quiet = opened.close(&server)?;

    eprintln!(
        "store-bench: {} bots playing, {} results/s from a second process, {:?}",
        setup.bots, setup.writes_per_s, setup.window
    );
    let written = write_while_watching(&server, &store, &store_metrics, setup, clock_ticks)?;
    let WritingWindow {
        ticks: writing,
        submitted,
        outcomes,
        queue_depths,
        closed_at,
    } = written;
    let drain_seconds = outcomes.saved.last().map_or(0.0, |(_, heard_at)| {
        heard_at.saturating_duration_since(closed_at).as_secs_f64()
    });
    let write_failures = store_metrics.store_write_failures.get();
    drop(store);

    let (bots_report, _status) = bots.report()?;
    let clean_exit = server.stop()?;
    anyhow::ensure!(clean_exit, "the server did not exit cleanly");

    let opened_at = closed_at - Duration::from_secs_f64(writing.seconds);
    let saved_in_window = outcomes.saved_between(opened_at, closed_at);
    let saved_per_s = saved_in_window as f64 / writing.seconds;
    Ok(TickReport {
        bots: setup.bots,
        room_capacity: DEFAULT_ROOM_CAPACITY,
        quiet,
        writing,
        writer: WriterFigures {
            target_per_s: setup.writes_per_s,
            submitted,
            saved_in_window,
            saved_per_s,
            dropped: outcomes.dropped,
            saved_after_window: outcomes.saved.len() as u64 - saved_in_window,
            drain_seconds,
            submit_to_saved_ms: outcomes.submit_to_saved(),
            queue_depth_max: queue_depths.iter().copied().max().unwrap_or(0),
            queue_depth_mean: queue_depths.iter().sum::<i64>() as f64
                / queue_depths.len().max(1) as f64,
            write_failures,
            store_open_seconds,
        },
        bots_snapshots_per_s_mean: bots_report.snapshots_per_bot_per_s,
        bots_snapshots_per_s_worst: bots_report.min_snapshots_per_bot_per_s,
        bots_failed: bots_report.failed,
    })
}

/// The writing window: the rooms' ticks, and what the writer did meanwhile.
#[derive(Debug)]
struct WritingWindow {
    ticks: TickWindow,
    submitted: u64,
    /// Including results saved after the window, while the queue drained.
    outcomes: Outcomes,
    /// The writer's queue depth, every `QUEUE_SAMPLE_EVERY`.
    queue_depths: Vec<i64>,
    closed_at: Instant,
}

/// Writes steadily into `store` for one window while the rooms tick, then lets what is
/// still queued drain (after the window's figures are taken).
fn write_while_watching(
    server: &ServerProcess,
    store: &SqliteStore,
    store_metrics: &server::Metrics,
    setup: TickSetup,
    clock_ticks: ClockTicks,
) -> anyhow::Result<WritingWindow> {
    std::thread::scope(|scope| {
        let (pending_tx, pending_rx) = mpsc::channel();
        let opened = WindowStart::now(server, clock_ticks)?;
        let until = Instant::now() + setup.window;
        let writer = scope.spawn(move || write_steadily(store, setup, until, pending_tx));
        let listener = scope.spawn(move || listen(pending_rx));
        let mut queue_depths: Vec<i64> = Vec::new();
        while Instant::now() < until {
            queue_depths.push(store_metrics.store_queue_depth.get());
            sleep(QUEUE_SAMPLE_EVERY);
        }
        let ticks = opened.close(server)?;
        let closed_at = Instant::now();
        let submitted = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        let drained = store.flush(DRAIN_WAIT);
        let outcomes = listener
            .join()
            .map_err(|_| anyhow::anyhow!("the listening thread panicked"))?;
        anyhow::ensure!(
            drained,
            "the store's queue did not drain within {DRAIN_WAIT:?}"
        );
        Ok(WritingWindow {
            ticks,
            submitted,
            outcomes,
            queue_depths,
            closed_at,
        })
    })
}

/// A window's opening: a scrape of the server's metrics, and both processes' CPU.
struct WindowStart {
    metrics: Metrics,
    cpu: (f64, f64),
    at: Instant,
    clock_ticks: ClockTicks,
}

impl WindowStart {
    fn now(server: &ServerProcess, clock_ticks: ClockTicks) -> anyhow::Result<WindowStart> {
        Ok(WindowStart {
            metrics: server.metrics()?,
            cpu: cpu_now(server, clock_ticks),
            at: Instant::now(),
            clock_ticks,
        })
    }

    /// The ticks, CPU and saved matches from the opening until now.
    fn close(self, server: &ServerProcess) -> anyhow::Result<TickWindow> {
        let seconds = self.at.elapsed().as_secs_f64();
        let cpu = cpu_now(server, self.clock_ticks);
        let after = server.metrics()?;
        let before = &self.metrics;
        let duration = "skirmish_tick_duration_seconds";
        let lateness = "skirmish_tick_lateness_seconds";
        let saved = "skirmish_store_results_saved_total";
        let grew = |name| after.value(name).unwrap_or(0.0) - before.value(name).unwrap_or(0.0);
        Ok(TickWindow {
            seconds,
            ticks: after
                .histogram(duration)
                .since(&before.histogram(duration))
                .count(),
            tick_duration_ms: TickQuantiles::of_window(
                &before.histogram(duration),
                &after.histogram(duration),
            ),
            tick_lateness_ms: TickQuantiles::of_window(
                &before.histogram(lateness),
                &after.histogram(lateness),
            ),
            server_cpu: (cpu.0 - self.cpu.0) / seconds,
            harness_cpu: (cpu.1 - self.cpu.1) / seconds,
            server_results_saved: grew(saved),
        })
    }
}

/// CPU seconds so far of the server and of this process (the writer's).
fn cpu_now(server: &ServerProcess, clock_ticks: ClockTicks) -> (f64, f64) {
    (
        cpu_seconds(server.pid(), clock_ticks),
        cpu_seconds(std::process::id(), clock_ticks),
    )
}

/// Submits `writes_per_s` results a second until `until`, each at its due time (the
/// k-th at k / rate after the start, so a late one does not push back the rest), and
/// hands each `saved` oneshot to the listener. Returns how many were submitted.
fn write_steadily(
    store: &SqliteStore,
    setup: TickSetup,
    until: Instant,
    pending: mpsc::Sender<Pending>,
) -> u64 {
    let mut rng = SmallRng::seed_from_u64(11);
    let start = Instant::now();
    let interval = Duration::from_secs(1) / setup.writes_per_s.max(1);
    let mut submitted: u64 = 0;
    loop {
        let due = start + interval * u32::try_from(submitted).unwrap_or(u32::MAX);
        if due >= until {
            return submitted;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            sleep(wait);
        }
        let profiles: Vec<ProfileId> = (0..PLAYERS_PER_MATCH)
            .map(|_| seeded_profile(rng.random_range(0..setup.n_players.max(1))))
            .collect();
        let (saved, heard) = oneshot::channel();
        let submitted_at = Instant::now();
        store.submit(made_up_match(&profiles, now_ms(), &mut rng), saved);
        submitted += 1;
        if pending
            .send(Pending {
                submitted_at,
                heard,
            })
            .is_err()
        {
            return submitted;
        }
    }
}

/// Waits on each submitted result's `saved` oneshot in the order submitted (the order
/// the store writes them), noting when each was heard saved or dropped.
fn listen(pending: mpsc::Receiver<Pending>) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for Pending {
        submitted_at,
        heard,
    } in pending
    {
        match heard.blocking_recv() {
            Ok(_) => outcomes.saved.push((submitted_at, Instant::now())),
            Err(_) => outcomes.dropped += 1,
        }
    }
    outcomes
}

impl Outcomes {
    /// Results heard saved from `from` until `until`.
    fn saved_between(&self, from: Instant, until: Instant) -> u64 {
        self.saved
            .iter()
            .filter(|(_, heard_at)| (from..=until).contains(heard_at))
            .count() as u64
    }

    fn submit_to_saved(&self) -> Option<LatencyMs> {
        let mut waits: Vec<Duration> = self
            .saved
            .iter()
            .map(|(submitted_at, heard_at)| heard_at.saturating_duration_since(*submitted_at))
            .collect();
        LatencyMs::of(&mut waits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_results_count_in_the_window_they_were_heard_in() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let outcomes = Outcomes {
            saved: vec![(at(0), at(5)), (at(10), at(900)), (at(990), at(1_500))],
            dropped: 4,
        };
        assert_eq!(
            outcomes.saved_between(at(0), at(1_000)),
            2,
            "one saved after the window closed does not count in it"
        );
        let waits = outcomes
            .submit_to_saved()
            .expect("saved results have waits");
        assert_eq!(
            (waits.p50, waits.max),
            (510.0, 890.0),
            "p50 by nearest rank of 5, 890, 510"
        );
    }
}
