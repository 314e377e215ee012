//! `soak`: runs a real server process under a swarm of well-behaved bots (behind a
//! latency and jitter proxy, with join/leave churn) and a stream of faulty clients, then
//! prints a JSON report and exits non-zero if the server missed its done-bar.

mod faults;
mod probe;
mod proxy;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use client::bots::{BotsConfig, Report};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use crate::probe::{Quantiles, open_fds, round, rss_kib, scrape};

/// Soak the Skirmish server: bots, churn, faults and a lossy-looking network.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// The server binary to run (a release build).
    #[arg(long)]
    server: PathBuf,
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
    /// The server's tick rate.
    #[arg(long, default_value_t = 60)]
    tick_hz: u16,
    /// Where to write the JSON report (it is also printed).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// The server's heartbeat for the run: short, so stalled clients are freed within it.
const PING_INTERVAL_S: f64 = 2.0;
const IDLE_TIMEOUT_S: f64 = 5.0;

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
    /// Well-behaved bots that lost their connection or failed to join.
    unexpected_disconnects: usize,
    failed_bots: usize,
    decode_errors: u64,
    bot_errors: Vec<String>,
    disconnects_by_reason: BTreeMap<String, u64>,
    faults: BTreeMap<String, FaultTally>,
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

/// Snapshots received per bot per second, against the server's snapshot rate.
#[derive(Debug, Default, Serialize)]
struct Delivery {
    expected_per_s: f64,
    base_mean_per_s: f64,
    base_min_per_s: f64,
    churn_mean_per_s: f64,
    churn_min_per_s: f64,
    min_ratio: f64,
}

#[derive(Debug, Default, Serialize)]
struct FaultTally {
    runs: usize,
    as_expected: usize,
    unexpected: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the runtime")?;
    let report = runtime.block_on(soak(&args))?;
    let json = serde_json::to_string_pretty(&report)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{json}")?;
    if let Some(path) = &args.report {
        std::fs::write(path, &json).with_context(|| format!("write {}", path.display()))?;
    }
    anyhow::ensure!(report.passed, "soak failed: {:?}", report.failures);
    Ok(())
}

async fn soak(args: &Args) -> anyhow::Result<SoakReport> {
    let log_path = args.report.as_ref().map_or_else(
        || PathBuf::from("soak-server.log"),
        |p| p.with_extension("server.log"),
    );
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let mut child = Command::new(&args.server)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--tick-hz",
            &args.tick_hz.to_string(),
        ])
        .args(["--max-connections-per-ip", "100000"])
        .args(["--ping-interval-secs", &PING_INTERVAL_S.to_string()])
        .args(["--idle-timeout-secs", &IDLE_TIMEOUT_S.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {}", args.server.display()))?;
    let pid = child.id();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().context("server stdout")?)
        .read_line(&mut first_line)
        .context("read the server's first line")?;
    let server_addr: SocketAddr = first_line
        .trim()
        .strip_prefix("listening on http://")
        .with_context(|| format!("unexpected first line: {first_line:?}"))?
        .parse()?;
    let direct_url = format!("ws://{server_addr}/ws");
    let delay = proxy::Delay {
        latency: Duration::from_millis(args.latency_ms),
        jitter: Duration::from_millis(args.jitter_ms),
    };
    let proxy_addr = proxy::start(server_addr, delay).await?;
    let proxied_url = format!("ws://{proxy_addr}/ws");
    let mut figures = ServerFigures {
        rss_kib_start: rss_kib(pid),
        fds_start: open_fds(pid),
        ..ServerFigures::default()
    };

    let start = Instant::now();
    let duration = Duration::from_secs_f64(args.duration);
    let ramp = (duration / 6).min(Duration::from_secs(10));
    let warm_at = start + ramp + Duration::from_secs(5);
    let base = tokio::spawn(client::bots::run(BotsConfig {
        url: proxied_url.clone(),
        count: args.bots,
        duration: duration.saturating_sub(ramp),
        room: None,
        name_prefix: "bot".into(),
        seed: 1,
        ramp,
        idle: false,
    }));

    let mut churn = JoinSet::new();
    let churn_play = Duration::from_secs_f64(args.churn_play);
    let mut wave_at = start + ramp;
    let mut wave = 0u64;
    let mut faults = JoinSet::new();
    let mut fault_at = start + Duration::from_secs(3);
    let fault_stop = start + duration.saturating_sub(Duration::from_secs_f64(IDLE_TIMEOUT_S + 8.0));
    let end = start + duration;
    let mut sample_at = start;
    while Instant::now() < end {
        let now = Instant::now();
        if now >= sample_at {
            let rss = rss_kib(pid);
            figures.rss_kib_max = figures.rss_kib_max.max(rss);
            figures.fds_peak = figures.fds_peak.max(open_fds(pid));
            if now >= warm_at && figures.rss_kib_warm == 0 {
                figures.rss_kib_warm = rss;
            }
            // Still under full load: the first base bots leave at `duration - ramp`.
            if now + ramp + Duration::from_secs(1) < end {
                figures.rss_kib_end = rss;
            }
            sample_at += Duration::from_secs(1);
        }
        if now >= wave_at && now + churn_play + Duration::from_secs(2) < end {
            wave += 1;
            churn.spawn(client::bots::run(BotsConfig {
                url: proxied_url.clone(),
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
        if now >= fault_at && now < fault_stop {
            for (kind_idx, fault) in faults::ALL.into_iter().enumerate() {
                let url = direct_url.clone();
                let seed = wave * 10 + kind_idx as u64;
                let name = format!("f{}_{kind_idx}", (fault_at - start).as_secs());
                faults.spawn(async move {
                    faults::run(
                        fault,
                        &url,
                        name,
                        seed,
                        Duration::from_secs_f64(IDLE_TIMEOUT_S),
                    )
                    .await
                });
            }
            fault_at += Duration::from_secs_f64(args.fault_every);
        }
        sleep_until(
            [sample_at, wave_at, fault_at, end]
                .into_iter()
                .min()
                .unwrap_or(end),
        )
        .await;
    }

    let base = base.await.context("the base bots' task")?;
    let mut churn_reports = Vec::new();
    while let Some(report) = churn.join_next().await {
        churn_reports.push(report.context("a churn wave's task")?);
    }
    let mut fault_tally: BTreeMap<String, FaultTally> = BTreeMap::new();
    while let Some(outcome) = faults.join_next().await {
        let outcome = outcome.context("a fault's task")?;
        let key = serde_json::to_value(outcome.fault)?
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let tally = fault_tally.entry(key).or_default();
        tally.runs += 1;
        if outcome.as_expected {
            tally.as_expected += 1;
        } else if tally.unexpected.len() < 3 {
            tally.unexpected.push(outcome.detail);
        }
    }
    // Everyone has left: the server should be back where it started.
    let settle = Instant::now() + Duration::from_secs(10);
    let mut metrics = scrape(server_addr).await?;
    while metrics.get("skirmish_connections") > 0.0 && Instant::now() < settle {
        sleep(Duration::from_millis(200)).await;
        metrics = scrape(server_addr).await?;
    }
    figures.connections_end = metrics.get("skirmish_connections");
    figures.players_end = metrics.get("skirmish_players");
    figures.fds_end = open_fds(pid);

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let stop_deadline = Instant::now() + Duration::from_secs(5);
    let clean_shutdown = loop {
        if let Some(status) = child.try_wait()? {
            break status.success();
        }
        if Instant::now() > stop_deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let panics = log.matches("panicked at").count();

    let snapshot_hz = f64::from(shared::consts::DEFAULT_SNAPSHOT_HZ);
    let churn_mean = mean(churn_reports.iter().map(|r| r.snapshots_per_bot_per_s));
    let churn_min = churn_reports
        .iter()
        .map(|r| r.min_snapshots_per_bot_per_s)
        .fold(f64::INFINITY, f64::min);
    let delivery = Delivery {
        expected_per_s: snapshot_hz,
        base_mean_per_s: round(base.snapshots_per_bot_per_s),
        base_min_per_s: round(base.min_snapshots_per_bot_per_s),
        churn_mean_per_s: round(churn_mean),
        churn_min_per_s: round(if churn_min.is_finite() {
            churn_min
        } else {
            0.0
        }),
        min_ratio: round(base.min_snapshots_per_bot_per_s.min(churn_min) / snapshot_hz),
    };
    let all_bots: Vec<&Report> = std::iter::once(&base).chain(&churn_reports).collect();
    let unexpected_disconnects = all_bots.iter().map(|r| r.disconnects).sum();
    let failed_bots = all_bots
        .iter()
        .map(|r| r.failed + r.bots - r.connected)
        .sum();
    let decode_errors = all_bots.iter().map(|r| r.decode_errors).sum();
    let mut bot_errors: Vec<String> = all_bots.iter().flat_map(|r| r.errors.clone()).collect();
    bot_errors.dedup();
    bot_errors.truncate(5);

    let tick_budget_ms = 250.0 / f64::from(args.tick_hz);
    let tick_duration = metrics.quantiles_ms("skirmish_tick_duration_seconds");
    let tick_lateness = metrics.quantiles_ms("skirmish_tick_lateness_seconds");
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };
    check(panics == 0, format!("{panics} panics in the server log"));
    check(
        unexpected_disconnects == 0 && failed_bots == 0,
        format!("{unexpected_disconnects} unexpected disconnects, {failed_bots} failed bots"),
    );
    check(decode_errors == 0, format!("{decode_errors} decode errors"));
    check(
        tick_duration.p99_ms < tick_budget_ms,
        format!(
            "tick p99 {} ms over the {tick_budget_ms:.2} ms budget",
            tick_duration.p99_ms
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
    for (fault, tally) in &fault_tally {
        check(
            tally.as_expected == tally.runs,
            format!(
                "{fault}: {} of {} handled as expected",
                tally.as_expected, tally.runs
            ),
        );
    }
    check(
        clean_shutdown,
        "the server did not exit cleanly on SIGTERM".into(),
    );
    check(
        fault_tally.values().map(|t| t.runs).sum::<usize>() > 0 || args.duration < 20.0,
        "no fault ran".into(),
    );

    Ok(SoakReport {
        passed: failures.is_empty(),
        failures,
        duration_s: args.duration,
        bots: args.bots,
        churn_bots: churn_reports.iter().map(|r| r.bots).sum(),
        proxy: BTreeMap::from([
            ("latency_ms", args.latency_ms),
            ("jitter_ms", args.jitter_ms),
        ]),
        server: figures,
        tick_duration,
        tick_lateness,
        tick_budget_ms: round(tick_budget_ms),
        snapshot_delivery: delivery,
        unexpected_disconnects,
        failed_bots,
        decode_errors,
        bot_errors,
        disconnects_by_reason: metrics.disconnects(),
        faults: fault_tally,
        panics,
        clean_shutdown,
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(sum, n), v| (sum + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}
