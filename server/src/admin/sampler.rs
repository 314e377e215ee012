//! The console's sampler: once a second it reads the server's figures (counters and
//! gauges, each room thread's tick histogram, the process's CPU and memory from /proc)
//! into a ten-minute history, and, while a console is open, asks every occupied room
//! how it is doing. It publishes the result for every console socket to push; nothing
//! polls. A room answers at its next tick and is never waited on: one that has not
//! answered within half a second is left out of that second's table.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::admin::Console;
use crate::ops::metrics::{BucketCounts, Metrics};
use crate::rooms::directory::RoomInfo;
use crate::rooms::inspect::RoomReport;
use crate::rooms::room::RoomCmd;

/// How often the console is pushed a sample.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Samples kept for the charts: ten minutes.
pub(crate) const HISTORY: usize = 600;
/// How long a sample waits for the rooms' answers.
const ROOM_PATIENCE: Duration = Duration::from_millis(500);
/// The kernel reports CPU times in USER_HZ, which is 100 on every mainstream Linux
/// build (it is fixed by the ABI, unlike the kernel's own tick rate).
const USER_HZ: f64 = 100.0;

/// The server's figures at one second: one point of every chart.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ServerFigures {
    /// Seconds since the Unix epoch.
    pub(crate) t: f64,
    pub(crate) uptime_s: f64,
    /// CPU time per wall second over the last second, in percent of one core.
    pub(crate) cpu_percent: Option<f64>,
    pub(crate) rss_mib: Option<f64>,
    pub(crate) connections: i64,
    pub(crate) rooms: i64,
    pub(crate) players: i64,
    /// WebSocket payload bytes per second, game sockets.
    pub(crate) bytes_in_per_s: f64,
    pub(crate) bytes_out_per_s: f64,
    pub(crate) threads: Vec<ThreadFigures>,
    pub(crate) disconnects: Vec<ReasonFigures>,
}

/// One room thread's ticks over the last second, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ThreadFigures {
    pub(crate) thread: String,
    pub(crate) ticks_per_s: f64,
    pub(crate) duration_p50_ms: Option<f64>,
    pub(crate) duration_p99_ms: Option<f64>,
    pub(crate) lateness_p50_ms: Option<f64>,
    pub(crate) lateness_p99_ms: Option<f64>,
}

/// Closed game connections of one reason.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReasonFigures {
    pub(crate) reason: &'static str,
    pub(crate) total: u64,
    pub(crate) per_s: f64,
}

/// One line of the rooms table.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RoomRow {
    pub(crate) id: String,
    pub(crate) players: u16,
    pub(crate) capacity: u16,
    /// `playing`, `results`, `empty`, or `busy` for a room that did not answer in time.
    pub(crate) phase: &'static str,
    pub(crate) seconds_left: Option<f64>,
    pub(crate) tick_p99_ms: Option<f64>,
    pub(crate) bytes_per_s: Option<f64>,
}

impl RoomRow {
    pub(crate) fn new(info: &RoomInfo, report: Option<&RoomReport>) -> RoomRow {
        let phase = match report {
            Some(report) => report.phase,
            None if info.players == 0 => "empty",
            None => "busy",
        };
        RoomRow {
            id: info.id.clone(),
            players: info.players,
            capacity: info.capacity,
            phase,
            seconds_left: report.map(|r| r.seconds_left),
            tick_p99_ms: report.and_then(|r| r.tick_p99_ms),
            bytes_per_s: report.map(|r| r.bytes_in_per_s + r.bytes_out_per_s),
        }
    }
}

/// What every console socket pushes for one second.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Counts up with each sample.
    pub(crate) seq: u64,
    /// `{"server": ..., "rooms": [...], "draining": ...}`, serialized once for all.
    pub(crate) common: String,
    /// The reports of the rooms some console inspects, serialized, by room.
    pub(crate) inspected: Vec<(String, String)>,
}

/// What one second's sample leaves for the next: the counters to take differences of.
struct Previous {
    at: Instant,
    cpu_ticks: Option<u64>,
    bytes_in: u64,
    bytes_out: u64,
    threads: Vec<(BucketCounts, BucketCounts)>,
    disconnects: Vec<(&'static str, u64)>,
}

/// Samples until `shutdown`, publishing on `publish`.
pub(crate) async fn sample_loop(
    console: Arc<Console>,
    publish: watch::Sender<Arc<Published>>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut previous = read_previous(&console.metrics);
    let mut seq = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let work = Instant::now();
        let figures = server_figures(&console.metrics, &mut previous, started);
        {
            let mut history = console.history.lock();
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(figures.clone());
        }
        let mut worked = work.elapsed();
        // The rooms are asked only while someone looks.
        let reports = if console.n_open() > 0 {
            inspect_rooms(&console).await
        } else {
            Vec::new()
        };
        let work = Instant::now();
        seq += 1;
        let published = publish_sample(&console, seq, &figures, &reports);
        let _ = publish.send(Arc::new(published));
        worked += work.elapsed();
        console
            .metrics
            .console_work_seconds
            .inc_by(worked.as_secs_f64());
    }
}

fn publish_sample(
    console: &Console,
    seq: u64,
    figures: &ServerFigures,
    reports: &[(RoomInfo, Option<RoomReport>)],
) -> Published {
    let rows: Vec<RoomRow> = reports
        .iter()
        .map(|(info, report)| RoomRow::new(info, report.as_ref()))
        .collect();
    let common = serde_json::json!({
        "server": figures,
        "version": env!("CARGO_PKG_VERSION"),
        "draining": console.directory.is_draining(),
        "rooms": rows,
    });
    let watched: BTreeSet<String> = console.watched_rooms();
    let inspected = reports
        .iter()
        .filter_map(|(_, report)| report.as_ref())
        .filter(|report| watched.contains(&report.id))
        .filter_map(|report| Some((report.id.clone(), serde_json::to_string(report).ok()?)))
        .collect();
    Published {
        seq,
        common: common.to_string(),
        inspected,
    }
}

/// Every room, each occupied one with its report if it answered within `ROOM_PATIENCE`.
pub(crate) async fn inspect_rooms(console: &Console) -> Vec<(RoomInfo, Option<RoomReport>)> {
    let deadline = Instant::now() + ROOM_PATIENCE;
    let asked = console
        .directory
        .handles()
        .into_iter()
        .map(|(info, handle)| {
            // An empty room is parked; asking would wake it for nothing.
            let answer = (info.players > 0).then(|| {
                let (reply, answer) = oneshot::channel();
                handle
                    .try_send(RoomCmd::Inspect { reply })
                    .then_some(answer)
            });
            async move {
                let report = match answer.flatten() {
                    Some(answer) => timeout_at(deadline, answer).await.ok().and_then(Result::ok),
                    None => None,
                };
                (info, report)
            }
        });
    join_all(asked).await
}

fn read_previous(metrics: &Metrics) -> Previous {
    Previous {
        at: Instant::now(),
        cpu_ticks: cpu_ticks(),
        bytes_in: metrics.ws_received_bytes.get(),
        bytes_out: metrics.ws_sent_bytes.get(),
        threads: metrics
            .room_thread_timings()
            .iter()
            .map(|timing| (timing.duration.counts(), timing.lateness.counts()))
            .collect(),
        disconnects: metrics.disconnect_counts(),
    }
}

fn server_figures(metrics: &Metrics, previous: &mut Previous, started: Instant) -> ServerFigures {
    let now = read_previous(metrics);
    let wall = now.at.duration_since(previous.at).as_secs_f64().max(1e-3);
    let per_s = |now: u64, before: u64| now.saturating_sub(before) as f64 / wall;
    let ms = |seconds: Option<f64>| seconds.map(|s| s * 1e3);
    let threads = metrics
        .room_thread_timings()
        .iter()
        .zip(&now.threads)
        .enumerate()
        .map(|(idx, (timing, (duration, lateness)))| {
            let (duration_before, lateness_before) =
                previous.threads.get(idx).copied().unwrap_or_default();
            let duration = duration.since(&duration_before);
            let lateness = lateness.since(&lateness_before);
            ThreadFigures {
                thread: timing.thread.clone(),
                ticks_per_s: duration.total() as f64 / wall,
                duration_p50_ms: ms(duration.quantile(0.50)),
                duration_p99_ms: ms(duration.quantile(0.99)),
                lateness_p50_ms: ms(lateness.quantile(0.50)),
                lateness_p99_ms: ms(lateness.quantile(0.99)),
            }
        })
        .collect();
    let disconnects = now
        .disconnects
        .iter()
        .map(|&(reason, total)| {
            let before = previous
                .disconnects
                .iter()
                .find(|(seen, _)| *seen == reason)
                .map_or(0, |(_, count)| *count);
            ReasonFigures {
                reason,
                total,
                per_s: per_s(total, before),
            }
        })
        .collect();
    let cpu_percent = match (now.cpu_ticks, previous.cpu_ticks) {
        (Some(now), Some(before)) => {
            Some(now.saturating_sub(before) as f64 / USER_HZ / wall * 100.0)
        }
        _ => None,
    };
    let figures = ServerFigures {
        t: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64()),
        uptime_s: started.elapsed().as_secs_f64(),
        cpu_percent,
        rss_mib: rss_kib().map(|kib| kib as f64 / 1024.0),
        connections: metrics.connections.get(),
        rooms: metrics.rooms.get(),
        players: metrics.players.get(),
        bytes_in_per_s: per_s(now.bytes_in, previous.bytes_in),
        bytes_out_per_s: per_s(now.bytes_out, previous.bytes_out),
        threads,
        disconnects,
    };
    *previous = now;
    figures
}

/// User and system CPU time of this process so far, in USER_HZ ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses; the fields follow its last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The history as a console page receives it on opening.
pub(crate) fn history_json(history: &VecDeque<ServerFigures>) -> String {
    serde_json::json!({ "type": "history", "points": history }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_resident_memory() {
        assert!(cpu_ticks().is_some(), "/proc/self/stat reads");
        assert!(
            rss_kib().is_some_and(|kib| kib > 0),
            "/proc/self/status reads"
        );
    }
}
