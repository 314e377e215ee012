//! `harness bench-net`: the standard bandwidth scenario, with deltas and without.
//! 16 bots play one room with a fixed seed, then 16 idle players sit in another; the
//! figures come from the bots' reports and the server's metrics.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use client::bots::Report as BotsReport;
use harness::ServerProcess;
use serde::Serialize;

use crate::Binaries;
use crate::bots_process::Swarm;
use crate::commands::{metric, server_command};

/// The bots' default: joins spread over a second.
const RAMP: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds the playing scenario runs.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Seconds the idle room is measured.
    #[arg(long, default_value_t = 10.0)]
    idle_duration: f64,
    /// Players in each room.
    #[arg(long, default_value_t = 16)]
    bots: usize,
    /// Seed for the bots' choices, so runs repeat.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// The figures for one encoding mode.
#[derive(Debug, Serialize)]
struct Figures {
    mode: &'static str,
    down_bytes_per_client_per_s: f64,
    up_bytes_per_client_per_s: f64,
    snapshot_bytes_mean: f64,
    snapshot_bytes_p99: f64,
    bits_per_moving_player: f64,
    idle_snapshot_bytes: f64,
    encode_us_per_client_per_snapshot: f64,
    write_us_per_client_per_snapshot: f64,
    snapshots_per_client_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    deltas: Figures,
    full: Figures,
}

/// One room of bots, all of which must play to the end.
fn run_bots(
    server: &ServerProcess,
    args: &Args,
    binaries: &Binaries,
    room: &str,
    duration: f64,
    idle: bool,
) -> anyhow::Result<BotsReport> {
    let url = server.ws_url("/ws");
    let swarm = Swarm {
        url: &url,
        count: args.bots,
        duration: Duration::from_secs_f64(duration),
        ramp: RAMP,
        room: Some(room),
        seed: args.seed,
        idle,
        ca_cert: None,
    };
    let (report, status) = swarm.spawn(&binaries.bots)?.report()?;
    anyhow::ensure!(
        status.success(),
        "{} of {} bots failed: {:?}",
        report.failed,
        report.bots,
        report.failures
    );
    Ok(report)
}

fn measure(
    mode: &'static str,
    server_args: &[&str],
    args: &Args,
    binaries: &Binaries,
) -> anyhow::Result<Figures> {
    let mut command = server_command(&binaries.server);
    command.args(server_args).stderr(Stdio::null());
    let server = ServerProcess::start(command)?;
    eprintln!(
        "bench-net: {mode}: {} bots playing for {} s",
        args.bots, args.duration
    );
    let counter = |name: &str| metric(&server, name);
    let encode_before = counter("skirmish_snapshot_encode_seconds_total")?;
    let write_before = counter("skirmish_snapshot_write_seconds_total")?;
    let recipients_before = counter("skirmish_snapshot_recipients_total")?;
    let playing = run_bots(&server, args, binaries, "bench", args.duration, false)?;
    let recipients = counter("skirmish_snapshot_recipients_total")? - recipients_before;
    let per_recipient_us = |total: f64, before: f64| (total - before) / recipients * 1e6;
    let encode_us = per_recipient_us(
        counter("skirmish_snapshot_encode_seconds_total")?,
        encode_before,
    );
    let write_us = per_recipient_us(
        counter("skirmish_snapshot_write_seconds_total")?,
        write_before,
    );
    eprintln!(
        "bench-net: {mode}: {} idle players for {} s",
        args.bots, args.idle_duration
    );
    let idle = run_bots(&server, args, binaries, "idle", args.idle_duration, true)?;
    Ok(Figures {
        mode,
        down_bytes_per_client_per_s: playing.down_bytes_per_bot_per_s,
        up_bytes_per_client_per_s: playing.up_bytes_per_bot_per_s,
        snapshot_bytes_mean: playing.snapshot_bytes_mean,
        snapshot_bytes_p99: playing.snapshot_bytes_p99,
        bits_per_moving_player: playing.bits_per_moving_player,
        idle_snapshot_bytes: idle.snapshot_bytes_p50,
        encode_us_per_client_per_snapshot: encode_us,
        write_us_per_client_per_snapshot: write_us,
        snapshots_per_client_per_s: playing.snapshots_per_bot_per_s,
    })
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    let deltas = measure("deltas", &[], args, binaries)?;
    let full = measure("full", &["--no-deltas"], args, binaries)?;
    let report = Report {
        scenario: format!(
            "{} bots, one room, {} s, seed {}, 60 Hz ticks, 30 Hz snapshots; then {} idle players for {} s",
            args.bots, args.duration, args.seed, args.bots, args.idle_duration
        ),
        deltas,
        full,
    };
    println!("{}", report.scenario);
    println!("{:<44} {:>12} {:>12}", "figure", "deltas", "full");
    type Row = (&'static str, fn(&Figures) -> f64);
    let rows: [Row; 9] = [
        ("downstream payload B/s per client", |f| {
            f.down_bytes_per_client_per_s
        }),
        ("upstream payload B/s per client", |f| {
            f.up_bytes_per_client_per_s
        }),
        ("snapshot bytes, mean", |f| f.snapshot_bytes_mean),
        ("snapshot bytes, p99", |f| f.snapshot_bytes_p99),
        ("bits per moving player (delta snapshots)", |f| {
            f.bits_per_moving_player
        }),
        ("idle-room snapshot bytes (median)", |f| {
            f.idle_snapshot_bytes
        }),
        ("encode us per client per snapshot", |f| {
            f.encode_us_per_client_per_snapshot
        }),
        ("write us per client per snapshot", |f| {
            f.write_us_per_client_per_snapshot
        }),
        ("snapshots per client per s", |f| {
            f.snapshots_per_client_per_s
        }),
    ];
    for (name, value) in rows {
        println!(
            "{name:<44} {:>12.2} {:>12.2}",
            value(&report.deltas),
            value(&report.full)
        );
    }
    let path = binaries.out_dir.join("bench-net.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("write {}", path.display()))?;
    println!("report: {}", path.display());
    Ok(())
}
