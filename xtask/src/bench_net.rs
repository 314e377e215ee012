//! `cargo xtask bench-net`: the standard bandwidth scenario, with deltas and without.
//! 16 bots play one room with a fixed seed, then 16 idle players sit in another; the
//! figures come from the bots' reports and the server's metrics.

use std::process::{Command, Stdio};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::server_process::ServerProcess;
use crate::util::{build_release_bins, target_dir};

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

fn run_bots(
    server: &ServerProcess,
    args: &Args,
    room: &str,
    duration: f64,
    idle: bool,
) -> anyhow::Result<Value> {
    let mut bots = Command::new(target_dir().join("release/bots"));
    bots.args(["--url", &server.ws_url("/ws"), "--room", room])
        .args([
            "--count",
            &args.bots.to_string(),
            "--duration",
            &duration.to_string(),
        ])
        .args(["--seed", &args.seed.to_string()]);
    if idle {
        bots.arg("--idle");
    }
    let output = bots.output().context("run target/release/bots")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .context("the bots printed no report")?;
    let report: Value =
        serde_json::from_str(last).with_context(|| format!("parse bots report {last}"))?;
    anyhow::ensure!(output.status.success(), "bots failed: {report}");
    Ok(report)
}

fn field(report: &Value, name: &str) -> f64 {
    report[name].as_f64().unwrap_or(f64::NAN)
}

fn measure(mode: &'static str, server_args: &[&str], args: &Args) -> anyhow::Result<Figures> {
    let server_args: Vec<String> = server_args.iter().map(|a| a.to_string()).collect();
    let server = ServerProcess::start(
        &target_dir().join("release/server"),
        &server_args,
        Some(Stdio::null()),
    )?;
    eprintln!(
        "bench-net: {mode}: {} bots playing for {} s",
        args.bots, args.duration
    );
    let encode_before = server.metric("skirmish_snapshot_encode_seconds_total")?;
    let write_before = server.metric("skirmish_snapshot_write_seconds_total")?;
    let recipients_before = server.metric("skirmish_snapshot_recipients_total")?;
    let playing = run_bots(&server, args, "bench", args.duration, false)?;
    let recipients = server.metric("skirmish_snapshot_recipients_total")? - recipients_before;
    let per_recipient_us = |total: f64, before: f64| (total - before) / recipients * 1e6;
    let encode_us = per_recipient_us(
        server.metric("skirmish_snapshot_encode_seconds_total")?,
        encode_before,
    );
    let write_us = per_recipient_us(
        server.metric("skirmish_snapshot_write_seconds_total")?,
        write_before,
    );
    eprintln!(
        "bench-net: {mode}: {} idle players for {} s",
        args.bots, args.idle_duration
    );
    let idle = run_bots(&server, args, "idle", args.idle_duration, true)?;
    Ok(Figures {
        mode,
        down_bytes_per_client_per_s: field(&playing, "down_bytes_per_bot_per_s"),
        up_bytes_per_client_per_s: field(&playing, "up_bytes_per_bot_per_s"),
        snapshot_bytes_mean: field(&playing, "snapshot_bytes_mean"),
        snapshot_bytes_p99: field(&playing, "snapshot_bytes_p99"),
        bits_per_moving_player: field(&playing, "bits_per_moving_player"),
        idle_snapshot_bytes: field(&idle, "snapshot_bytes_p50"),
        encode_us_per_client_per_snapshot: encode_us,
        write_us_per_client_per_snapshot: write_us,
        snapshots_per_client_per_s: field(&playing, "snapshots_per_bot_per_s"),
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    build_release_bins()?;
    let deltas = measure("deltas", &[], &args)?;
    let full = measure("full", &["--no-deltas"], &args)?;
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
    let path = target_dir().join("bench-net.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("write {}", path.display()))?;
    println!("report: {}", path.display());
    Ok(())
}
