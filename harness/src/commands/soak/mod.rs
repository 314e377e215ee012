//! `harness soak`: runs a real server process under a swarm of well-behaved bots (behind
//! a latency and jitter proxy that also cuts their connections, with join/leave churn)
//! and a stream of faulty clients, then prints a JSON report and exits non-zero if the
//! server missed its done-bar.

mod faults;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use client::bots::{BotsConfig, Report as BotsReport};
use harness::proxy::{Cut, Delay, Proxy};
use harness::{Metrics, ServerProcess, procfs};
use serde::Serialize;
use shared::consts::{DEFAULT_SNAPSHOT_HZ, DEFAULT_TICK_HZ};
use tokio::task::{JoinSet, block_in_place};
use tokio::time::{Instant, sleep, sleep_until};

use crate::Binaries;
use crate::commands::server_command;

/// Soak the Skirmish server: bots, churn, faults and a lossy-looking network.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Well-behaved bots that play for the whole run.
    #[arg(long, default_value_t = 200)]
    bots: usize,
    /// Seconds the run lasts.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Seconds between churn waves (bots that join, play briefly and leave).
    #[arg(long, default_value_t = 10.0)]
    churn_every: f64,
    /// Bots per churn wave.
    #[arg(long, default_value_t = 20)]
    churn_size: usize,
    /// Seconds a churn bot plays.
    #[arg(long, default_value_t = 8.0)]
    churn_play: f64,
    /// Seconds between fault waves (one client of each kind of fault per wave).
    #[arg(long, default_value_t = 5.0)]
    fault_every: f64,
    /// One-way latency the proxy adds, in milliseconds.
    #[arg(long, default_value_t = 25)]
    latency_ms: u64,
    /// Random extra one-way delay the proxy adds, up to this many milliseconds.
    #[arg(long, default_value_t = 15)]
    jitter_ms: u64,
    /// Seconds between cuts: the proxy cuts one player's live connection, by turns with
    /// a reset and by going silent, and the player must resume into its seat.
    #[arg(long, default_value_t = 2.0)]
    cut_every: f64,
    /// The server's tick rate.
    #[arg(long, default_value_t = DEFAULT_TICK_HZ)]
    tick_hz: u16,
    /// Where to write the JSON report (it is also printed) [default:
    /// OUT_DIR/soak-report.json]. The server's log goes beside it.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// The server's heartbeat for the run: short, so stalled clients are freed within it.
const PING_INTERVAL_S: f64 = 2.0;
const IDLE_TIMEOUT_S: f64 = 5.0;
/// The server's resume grace window for the run: short, so the seats of faulty clients
/// that never come back are given up before the end.
const RESUME_GRACE_S: f64 = 5.0;
/// Connections younger than this are not cut, so a cut lands on a player in play.
const CUT_MIN_AGE: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize)]
struct SoakReport {
    passed: bool,
    failures: Vec<String>,
    duration_s: f64,
    bots: usize,
    churn_bots: usize,
    proxy: BTreeMap<&'static str, u64>,
    server: ServerFigures,
    tick_duration: Quantiles,
    tick_lateness: Quantiles,
    /// Quarter of the tick period: tick duration p99 must stay under it.
    tick_budget_ms: f64,
    snapshot_delivery: Delivery,
    /// Well-behaved bots that lost their connection after joining.
    unexpected_disconnects: usize,
    /// Well-behaved bots that failed to join or lost their connection.
    failed_bots: usize,
    /// The failed bots by cause (`connect_refused`, `closed_1008_too_slow`, ...).
    bot_failures: BTreeMap<String, u64>,
    decode_errors: u64,
    bot_errors: Vec<String>,
    disconnects_by_reason: BTreeMap<String, u64>,
    faults: BTreeMap<String, FaultTally>,
    cuts: Cuts,
    panics: usize,
    clean_shutdown: bool,
}

#[derive(Debug, Default, Serialize)]
struct ServerFigures {
    rss_kib_start: u64,
    rss_kib_warm: u64,
    rss_kib_end: u64,
    rss_kib_max: u64,
    fds_start: usize,
    fds_peak: usize,
    fds_end: usize,
    connections_end: f64,
    players_end: f64,
}

/// Snapshots received per bot per second of play, against the server's snapshot rate.
/// Means are weighted by time played (total snapshots over total seconds played).
#[derive(Debug, Default, Serialize)]
struct Delivery {
    expected_per_s: f64,
    base_mean_per_s: f64,
    base_min_per_s: f64,
    churn_mean_per_s: f64,
    churn_min_per_s: f64,
    min_ratio: f64,
}

/// A timing histogram over the whole run, in milliseconds. p50 and p99 are interpolated
/// within their bucket (see `Histogram::quantile`); the maximum is the server's exact
/// `_max` gauge beside the histogram.
#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Quantiles {
    samples: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Connections the proxy cut, and how the players came back.
#[derive(Debug, Default, Serialize)]
struct Cuts {
    reset: usize,
    silent: usize,
    /// Players back in their held seat, as the bots counted them.
    resumed: u64,
    /// Resumes the server refused (each bot then joined afresh).
    resume_failed: u64,
    /// Seats lost to a cut; the bar is 0.
    seats_lost: u64,
    /// Resumes the server counted.
    server_resumes: f64,
    /// From the last snapshot before a cut to the first after the resume, in
    /// milliseconds: after a reset, and after silence (which the bots notice only after
    /// 2 s without a word).
    gap_after_reset_ms: client::bots::Gap,
    gap_after_silence_ms: client::bots::Gap,
}

#[derive(Debug, Default, Serialize)]
struct FaultTally {
    runs: usize,
    as_expected: usize,
    unexpected: Vec<String>,
}

/// What the clients brought back: the reports of the base swarm and of every churn
/// wave, and how the server handled each fault.
#[derive(Debug)]
struct Swarms {
    base: BotsReport,
    churn: Vec<BotsReport>,
    faults: BTreeMap<String, FaultTally>,
    /// Cuts made: (reset, silent).
    cuts: (usize, usize),
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| binaries.out_dir.join("soak-report.json"));
    let log_path = report_path.with_extension("server.log");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the runtime")?;
    let report = runtime.block_on(soak(args, &binaries.server, &log_path))?;
    let json = serde_json::to_string_pretty(&report)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{json}")?;
    std::fs::write(&report_path, &json)
        .with_context(|| format!("write {}", report_path.display()))?;
    eprintln!(
        "soak: report {}, server log {}",
        report_path.display(),
        log_path.display()
    );
    anyhow::ensure!(report.passed, "soak failed: {:?}", report.failures);
    Ok(())
}

async fn soak(args: &Args, server_binary: &Path, log_path: &Path) -> anyhow::Result<SoakReport> {
    let server = start_server(args, server_binary, log_path)?;
    let delay = Delay {
        latency: Duration::from_millis(args.latency_ms),
        jitter: Duration::from_millis(args.jitter_ms),
    };
    let proxy = Proxy::start(server.addr(), delay)
        .await
        .context("start the proxy")?;
    let pid = server.pid();
    let mut figures = ServerFigures {
        rss_kib_start: procfs::rss_kib(pid),
        fds_start: procfs::open_fds(pid),
        ..ServerFigures::default()
    };
    let swarms = play(args, &server, &proxy, &mut figures).await?;
    let metrics = settle(&server).await?;
    figures.connections_end = metrics.value("skirmish_connections").unwrap_or(f64::NAN);
    figures.players_end = metrics.value("skirmish_players").unwrap_or(f64::NAN);
    figures.fds_end = procfs::open_fds(pid);
    let clean_shutdown = block_in_place(|| server.stop()).context("stop the server")?;
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let panics = log.matches("panicked at").count();
    Ok(judge(
        args,
        figures,
        swarms,
        &metrics,
        panics,
        clean_shutdown,
    ))
}

/// The release server with a short heartbeat, logging warnings and panics to `log_path`.
fn start_server(
    args: &Args,
    server_binary: &Path,
    log_path: &Path,
) -> anyhow::Result<ServerProcess> {
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let mut command = server_command(server_binary);
    command
        .args(["--tick-hz", &args.tick_hz.to_string()])
        .args(["--ping-interval-secs", &PING_INTERVAL_S.to_string()])
        .args(["--idle-timeout-secs", &IDLE_TIMEOUT_S.to_string()])
        .args(["--resume-grace-secs", &RESUME_GRACE_S.to_string()])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::from(log));
    Ok(ServerProcess::start(command)?)
}

/// When each thing happens during the run.
#[derive(Debug)]
struct Schedule {
    start: Instant,
    end: Instant,
    /// The base swarm joins over this long.
    ramp: Duration,
    /// Memory is taken as warm from here on.
    warm_at: Instant,
    /// No fault wave or cut starts after this, so the last stall is freed (and its
    /// held seat given up) before the end.
    fault_stop: Instant,
}

impl Schedule {
    fn of(args: &Args) -> Schedule {
        let start = Instant::now();
        let duration = Duration::from_secs_f64(args.duration);
        let ramp = (duration / 6).min(Duration::from_secs(10));
        Schedule {
            start,
            end: start + duration,
            ramp,
            warm_at: start + ramp + Duration::from_secs(5),
            fault_stop: start
                + duration.saturating_sub(Duration::from_secs_f64(
                    IDLE_TIMEOUT_S + RESUME_GRACE_S + 8.0,
                )),
        }
    }
}

/// The run itself: the base swarm for the whole of it, churn waves and fault waves on
/// their own beats, and the server's memory and descriptors sampled every second.
async fn play(
    args: &Args,
    server: &ServerProcess,
    proxy: &Proxy,
    figures: &mut ServerFigures,
) -> anyhow::Result<Swarms> {
    let schedule = Schedule::of(args);
    let proxied_url = format!("ws://{}/ws", proxy.addr());
    let direct_url = server.ws_url("/ws");
    let base = tokio::spawn(client::bots::run(BotsConfig {
        url: proxied_url.clone(),
        trust: client::native::Trust::public(),
        count: args.bots,
        duration: (schedule.end - schedule.start).saturating_sub(schedule.ramp),
        room: None,
        name_prefix: "bot".into(),
        seed: 1,
        ramp: schedule.ramp,
        idle: false,
    }));
    let mut churn = JoinSet::new();
    let mut faults = JoinSet::new();
    let churn_play = Duration::from_secs_f64(args.churn_play);
    let mut wave_at = schedule.start + schedule.ramp;
    let mut wave = 0u64;
    let mut fault_at = schedule.start + Duration::from_secs(3);
    let mut cut_at = schedule.start + schedule.ramp + CUT_MIN_AGE;
    let mut cuts = (0, 0);
    let mut sample_at = schedule.start;
    while Instant::now() < schedule.end {
        let now = Instant::now();
        if now >= sample_at {
            sample(figures, server.pid(), now, &schedule);
            sample_at += Duration::from_secs(1);
        }
        if now >= wave_at && now + churn_play + Duration::from_secs(2) < schedule.end {
            wave += 1;
            churn.spawn(client::bots::run(BotsConfig {
                url: proxied_url.clone(),
                trust: client::native::Trust::public(),
                count: args.churn_size,
                duration: churn_play,
                room: None,
                name_prefix: format!("c{wave}_"),
                seed: 1000 + wave,
                ramp: Duration::from_secs(1),
                idle: false,
            }));
            wave_at += Duration::from_secs_f64(args.churn_every);
        }
        if now >= fault_at && now < schedule.fault_stop {
            let wave_name = (fault_at - schedule.start).as_secs();
            spawn_fault_wave(&mut faults, &direct_url, wave_name, wave);
            fault_at += Duration::from_secs_f64(args.fault_every);
        }
        if now >= cut_at && now < schedule.fault_stop {
            // By turns, so both kinds are cut about as often.
            let how = if cuts.0 <= cuts.1 {
                Cut::Reset
            } else {
                Cut::Silent
            };
            if proxy.cut_oldest(CUT_MIN_AGE, how) {
                match how {
                    Cut::Reset => cuts.0 += 1,
                    Cut::Silent => cuts.1 += 1,
                }
            }
            cut_at += Duration::from_secs_f64(args.cut_every);
        }
        let next = [sample_at, wave_at, fault_at, cut_at, schedule.end]
            .into_iter()
            .min()
            .unwrap_or(schedule.end);
        sleep_until(next).await;
    }

    let base = base.await.context("the base bots' task")?;
    let mut churn_reports = Vec::new();
    while let Some(report) = churn.join_next().await {
        churn_reports.push(report.context("a churn wave's task")?);
    }
    Ok(Swarms {
        base,
        churn: churn_reports,
        faults: tally_faults(faults).await?,
        cuts,
    })
}

/// One second's look at the server's memory and descriptors.
fn sample(figures: &mut ServerFigures, pid: u32, now: Instant, schedule: &Schedule) {
    let rss = procfs::rss_kib(pid);
    figures.rss_kib_max = figures.rss_kib_max.max(rss);
    figures.fds_peak = figures.fds_peak.max(procfs::open_fds(pid));
    if now >= schedule.warm_at && figures.rss_kib_warm == 0 {
        figures.rss_kib_warm = rss;
    }
    // Still under full load: the first base bots leave at `duration - ramp`.
    if now + schedule.ramp + Duration::from_secs(1) < schedule.end {
        figures.rss_kib_end = rss;
    }
}

/// One faulty client of each kind, straight to the server (not through the proxy).
fn spawn_fault_wave(
    faults: &mut JoinSet<faults::Outcome>,
    url: &str,
    wave_name: u64,
    churn_wave: u64,
) {
    for (kind_idx, fault) in faults::ALL.into_iter().enumerate() {
        let url = url.to_owned();
        let seed = churn_wave * 10 + kind_idx as u64;
        let name = format!("f{wave_name}_{kind_idx}");
        faults.spawn(async move {
            let idle_timeout = Duration::from_secs_f64(IDLE_TIMEOUT_S);
            faults::run(fault, &url, name, seed, idle_timeout).await
        });
    }
}

async fn tally_faults(
    mut faults: JoinSet<faults::Outcome>,
) -> anyhow::Result<BTreeMap<String, FaultTally>> {
    let mut tally: BTreeMap<String, FaultTally> = BTreeMap::new();
    while let Some(outcome) = faults.join_next().await {
        let outcome = outcome.context("a fault's task")?;
        let entry = tally.entry(outcome.fault.label().to_owned()).or_default();
        entry.runs += 1;
        if outcome.as_expected {
            entry.as_expected += 1;
        } else if entry.unexpected.len() < 3 {
            entry.unexpected.push(outcome.detail);
        }
    }
    Ok(tally)
}

/// Everyone has left: waits up to 10 s for the server to count no connections and no
/// seated players, and returns its last scrape.
async fn settle(server: &ServerProcess) -> anyhow::Result<Metrics> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A blocking request to loopback, from a runtime whose bots are all done.
        let metrics = block_in_place(|| server.metrics())?;
        let open = metrics.value("skirmish_connections").unwrap_or(0.0);
        let seated = metrics.value("skirmish_players").unwrap_or(0.0);
        if (open == 0.0 && seated == 0.0) || Instant::now() >= deadline {
            return Ok(metrics);
        }
        sleep(Duration::from_millis(200)).await;
    }
}

/// The report, with every check of the done-bar that failed.
fn judge(
    args: &Args,
    figures: ServerFigures,
    swarms: Swarms,
    metrics: &Metrics,
    panics: usize,
    clean_shutdown: bool,
) -> SoakReport {
    let all_bots: Vec<&BotsReport> = std::iter::once(&swarms.base).chain(&swarms.churn).collect();
    let mut bot_failures: BTreeMap<String, u64> = BTreeMap::new();
    for (cause, count) in all_bots.iter().flat_map(|r| &r.failures) {
        *bot_failures.entry(cause.clone()).or_default() += count;
    }
    let mut bot_errors: Vec<String> = all_bots.iter().flat_map(|r| r.errors.clone()).collect();
    bot_errors.dedup();
    bot_errors.truncate(5);
    let tick_budget_ms = 250.0 / f64::from(args.tick_hz);
    let mut report = SoakReport {
        passed: false,
        failures: Vec::new(),
        duration_s: args.duration,
        bots: args.bots,
        churn_bots: swarms.churn.iter().map(|r| r.bots).sum(),
        proxy: BTreeMap::from([
            ("latency_ms", args.latency_ms),
            ("jitter_ms", args.jitter_ms),
        ]),
        server: figures,
        tick_duration: quantiles_ms(metrics, "skirmish_tick_duration_seconds"),
        tick_lateness: quantiles_ms(metrics, "skirmish_tick_lateness_seconds"),
        tick_budget_ms: round(tick_budget_ms),
        snapshot_delivery: delivery(&swarms.base, &swarms.churn),
        unexpected_disconnects: all_bots.iter().map(|r| r.disconnects).sum(),
        failed_bots: all_bots.iter().map(|r| r.failed).sum(),
        bot_failures,
        decode_errors: all_bots.iter().map(|r| r.decode_errors).sum(),
        bot_errors,
        disconnects_by_reason: metrics
            .by_label("skirmish_disconnects_total", "reason")
            .into_iter()
            .map(|(reason, count)| (reason, count as u64))
            .collect(),
        faults: swarms.faults,
        cuts: Cuts {
            reset: swarms.cuts.0,
            silent: swarms.cuts.1,
            resumed: all_bots.iter().map(|r| r.resumed).sum(),
            resume_failed: all_bots.iter().map(|r| r.resume_failed).sum(),
            seats_lost: all_bots.iter().map(|r| r.seats_lost).sum(),
            server_resumes: metrics.value("skirmish_resumes_total").unwrap_or(0.0),
            gap_after_reset_ms: swarms.base.resume_gap_after_reset_ms,
            gap_after_silence_ms: swarms.base.resume_gap_after_silence_ms,
        },
        panics,
        clean_shutdown,
    };
    report.failures = failed_checks(args, &report, tick_budget_ms);
    report.passed = report.failures.is_empty();
    report
}

fn delivery(base: &BotsReport, churn: &[BotsReport]) -> Delivery {
    let snapshot_hz = f64::from(DEFAULT_SNAPSHOT_HZ);
    let churn_played_s: f64 = churn.iter().map(|r| r.played_s).sum();
    let churn_snapshots: u64 = churn.iter().map(|r| r.snapshots).sum();
    let churn_mean = if churn_played_s > 0.0 {
        churn_snapshots as f64 / churn_played_s
    } else {
        0.0
    };
    let base_min = base.min_snapshots_per_bot_per_s.unwrap_or(0.0);
    let churn_min = churn
        .iter()
        .filter_map(|r| r.min_snapshots_per_bot_per_s)
        .min_by(f64::total_cmp);
    Delivery {
        expected_per_s: snapshot_hz,
        base_mean_per_s: round(base.snapshots_per_bot_per_s),
        base_min_per_s: round(base_min),
        churn_mean_per_s: round(churn_mean),
        churn_min_per_s: round(churn_min.unwrap_or(0.0)),
        min_ratio: round(churn_min.map_or(base_min, |churn| churn.min(base_min)) / snapshot_hz),
    }
}

/// The done-bar, one line for each check that failed.
fn failed_checks(args: &Args, report: &SoakReport, tick_budget_ms: f64) -> Vec<String> {
    let figures = &report.server;
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };
    check(
        report.panics == 0,
        format!("{} panics in the server log", report.panics),
    );
    check(
        report.unexpected_disconnects == 0 && report.failed_bots == 0,
        format!(
            "{} unexpected disconnects, {} failed bots: {:?}",
            report.unexpected_disconnects, report.failed_bots, report.bot_failures
        ),
    );
    check(
        report.decode_errors == 0,
        format!("{} decode errors", report.decode_errors),
    );
    check(
        report.tick_duration.p99_ms < tick_budget_ms,
        format!(
            "tick p99 {} ms over the {tick_budget_ms:.2} ms budget",
            report.tick_duration.p99_ms
        ),
    );
    // Flat after warm-up: within a fifth plus a little for allocator slack.
    check(
        figures.rss_kib_end <= figures.rss_kib_warm * 6 / 5 + 4096,
        format!(
            "RSS grew from {} KiB (warm) to {} KiB",
            figures.rss_kib_warm, figures.rss_kib_end
        ),
    );
    check(
        figures.connections_end == 0.0 && figures.players_end == 0.0,
        format!(
            "{} connections and {} players left after everyone went",
            figures.connections_end, figures.players_end
        ),
    );
    check(
        figures.fds_end <= figures.fds_start + 2,
        format!(
            "fds {} at the end against {} at the start",
            figures.fds_end, figures.fds_start
        ),
    );
    for (fault, tally) in &report.faults {
        check(
            tally.as_expected == tally.runs,
            format!(
                "{fault}: {} of {} handled as expected",
                tally.as_expected, tally.runs
            ),
        );
    }
    let cuts = &report.cuts;
    check(
        cuts.seats_lost == 0 && cuts.resume_failed == 0,
        format!(
            "{} seats lost and {} resumes refused after {} cuts",
            cuts.seats_lost,
            cuts.resume_failed,
            cuts.reset + cuts.silent
        ),
    );
    check(
        cuts.resumed as usize >= cuts.reset + cuts.silent,
        format!(
            "{} resumes for {} cuts",
            cuts.resumed,
            cuts.reset + cuts.silent
        ),
    );
    check(
        report.clean_shutdown,
        "the server did not exit cleanly on SIGTERM".into(),
    );
    check(
        report.faults.values().map(|t| t.runs).sum::<usize>() > 0 || args.duration < 20.0,
        "no fault ran".into(),
    );
    failures
}

/// A histogram over the whole run: p50 and p99 from its buckets, the maximum from the
/// `_max` gauge the server keeps beside it.
fn quantiles_ms(metrics: &Metrics, histogram: &str) -> Quantiles {
    let buckets = metrics.histogram(histogram);
    let ms = |q| round(buckets.quantile(q).unwrap_or(0.0) * 1e3);
    let max_name = histogram.replacen("_seconds", "_max_seconds", 1);
    Quantiles {
        samples: buckets.count() as u64,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        max_ms: round(metrics.value(&max_name).unwrap_or(0.0) * 1e3),
    }
}

/// Three decimals, so the report reads as figures rather than float noise.
fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
