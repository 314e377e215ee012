//! `cargo xtask load`: how many playing bots one server carries on this machine. Ramps
//! bots in rooms of 16 step by step, holds each step, and stops at the first step that
//! misses the bar (98% snapshot delivery to every bot, tick lateness p99 <= 2 ms). Then
//! measures resident memory per idle connection. Writes JSON and an SVG of the curves.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::prom;
use crate::server_process::ServerProcess;
use crate::util::{build_release_bins, target_dir};

const TICK_HZ: u16 = 60;
const SNAPSHOT_HZ: f64 = 30.0;
const DELIVERY_BAR: f64 = 0.98;
const LATENESS_BAR_S: f64 = 0.002;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Playing bots at each step.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "250,500,1000,1500,2000,3000"
    )]
    steps: Vec<usize>,
    /// Seconds each step is measured, after its bots have joined and settled.
    #[arg(long, default_value_t = 20.0)]
    hold: f64,
    /// Idle connection counts at which to measure memory per connection; 0 for none.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    idle: Vec<usize>,
    /// Snapshot rate of the rooms idle connections sit in (ticking at five times it).
    /// Memory per connection does not depend on it, which the run checks by measuring
    /// the first idle count at the full 30 Hz too; CPU does, and 10,000 connections at
    /// 30 Hz would be 300,000 writes a second on two cores shared with the bots.
    #[arg(long, default_value_t = 2)]
    idle_snapshot_hz: u16,
    /// Playing bots while strace counts the server's socket writes.
    #[arg(long, default_value_t = 500)]
    strace_players: usize,
    /// Seconds strace counts for; 0 skips the count.
    #[arg(long, default_value_t = 5.0)]
    strace_seconds: f64,
    /// Run the server's room threads at normal priority, to compare.
    #[arg(long)]
    no_realtime_rooms: bool,
    /// The server's `--room-threads`; without it, the server's default.
    #[arg(long)]
    room_threads: Option<u16>,
}

#[derive(Debug, Serialize)]
struct Step {
    players: usize,
    /// Lowest and mean of received / expected snapshots over the bots.
    delivery_min: f64,
    delivery_mean: f64,
    tick_duration_ms: Quantiles,
    tick_lateness_ms: Quantiles,
    /// User + system CPU seconds per wall second.
    server_cpu: f64,
    bots_cpu: f64,
    server_rss_mib: f64,
    down_bytes_per_client_per_s: f64,
    up_bytes_per_client_per_s: f64,
    /// Server CPU per snapshot sent to a client, everything included: reading and
    /// validating every client's inputs too.
    server_cpu_us_per_recipient: f64,
    /// CPU of the room threads (simulation, then encoding, framing and writing each
    /// snapshot) per snapshot sent.
    room_threads_cpu: f64,
    room_cpu_us_per_recipient: f64,
    /// Of that: encoding (shared bodies and per-client heads), and the writes into
    /// the sockets (one `writev` each, kernel time included).
    encode_us_per_recipient: f64,
    write_us_per_recipient: f64,
    failed_bots: u64,
    passed: bool,
}

/// Upper bounds of the histogram buckets the quantiles fall in.
#[derive(Debug, Serialize)]
struct Quantiles {
    p50: f64,
    p99: f64,
    max: f64,
}

#[derive(Debug, Serialize)]
struct IdleMemory {
    connections: usize,
    snapshot_hz: u16,
    server_rss_mib: f64,
    kib_per_connection: f64,
}

/// System calls that write to sockets, counted by `strace -c -f` over a short window.
#[derive(Debug, Serialize)]
struct WriteCount {
    players: usize,
    seconds: f64,
    snapshots_sent: f64,
    /// writev, write, sendto and sendmsg calls.
    socket_writes: f64,
    writes_per_snapshot: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    bar: String,
    steps: Vec<Step>,
    idle: Vec<IdleMemory>,
    writes: Option<WriteCount>,
}

/// CPU seconds (user + system) a process or thread has used so far, from its `stat`.
fn cpu_seconds_of(stat_path: &str, clock_ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // The fields after the parenthesised command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    field(14)
        .zip(field(15))
        .map_or(0.0, |(user, system)| (user + system) / clock_ticks)
}

fn cpu_seconds(pid: u32, clock_ticks: f64) -> f64 {
    cpu_seconds_of(&format!("/proc/{pid}/stat"), clock_ticks)
}

/// CPU seconds used so far by the server's room threads (named `rooms-N`).
fn room_threads_cpu_seconds(pid: u32, clock_ticks: f64) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("rooms-"))
        })
        .map(|task| cpu_seconds_of(&task.path().join("stat").to_string_lossy(), clock_ticks))
        .sum()
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn spawn_bots(
    server: &ServerProcess,
    count: usize,
    duration: f64,
    ramp: f64,
    idle: bool,
) -> anyhow::Result<Child> {
    let mut bots = Command::new(target_dir().join("release/bots"));
    bots.args([
        "--url",
        &server.ws_url("/ws"),
        "--count",
        &count.to_string(),
    ])
    .args([
        "--duration",
        &duration.to_string(),
        "--ramp",
        &ramp.to_string(),
        "--seed",
        "1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if idle {
        bots.arg("--idle");
    }
    bots.spawn().context("start target/release/bots")
}

fn report_of(bots: Child) -> anyhow::Result<Value> {
    let output = bots.wait_with_output().context("wait for the bots")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .context("the bots printed no report")?;
    serde_json::from_str(last).with_context(|| format!("parse bots report {last}"))
}

fn quantiles(before: &str, after: &str, name: &str) -> Quantiles {
    let (b, a) = (prom::buckets(before, name), prom::buckets(after, name));
    let ms = |q| prom::quantile(&b, &a, q).map_or(f64::NAN, |s| s * 1e3);
    Quantiles {
        p50: ms(0.5),
        p99: ms(0.99),
        max: ms(1.0),
    }
}

fn run_step(
    server: &ServerProcess,
    players: usize,
    hold: f64,
    clock_ticks: f64,
) -> anyhow::Result<Step> {
    let ramp = (players as f64 / 250.0).max(2.0);
    let settle = 3.0;
    let bots = spawn_bots(server, players, settle + hold + 1.0, ramp, false)?;
    let bots_pid = bots.id();
    sleep(Duration::from_secs_f64(ramp + settle));
    let metrics_before = server.get("/metrics")?;
    let (server_cpu_before, bots_cpu_before, rooms_cpu_before) = (
        cpu_seconds(server.pid(), clock_ticks),
        cpu_seconds(bots_pid, clock_ticks),
        room_threads_cpu_seconds(server.pid(), clock_ticks),
    );
    let started = Instant::now();
    sleep(Duration::from_secs_f64(hold));
    let metrics_after = server.get("/metrics")?;
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = (cpu_seconds(server.pid(), clock_ticks) - server_cpu_before) / wall;
    let bots_cpu = (cpu_seconds(bots_pid, clock_ticks) - bots_cpu_before) / wall;
    let room_threads_cpu =
        (room_threads_cpu_seconds(server.pid(), clock_ticks) - rooms_cpu_before) / wall;
    let server_rss_mib = rss_mib(server.pid());
    let report = report_of(bots)?;
    let field = |name: &str| report[name].as_f64().unwrap_or(0.0);
    let grew = |name: &str| {
        prom::value(&metrics_after, name).unwrap_or(0.0)
            - prom::value(&metrics_before, name).unwrap_or(0.0)
    };
    let recipients = grew("skirmish_snapshot_recipients_total").max(1.0);
    let us_per_recipient = |seconds: f64| seconds / recipients * 1e6;
    let tick_lateness_ms = quantiles(
        &metrics_before,
        &metrics_after,
        "skirmish_tick_lateness_seconds",
    );
    let delivery_min = field("min_snapshots_per_bot_per_s") / SNAPSHOT_HZ;
    let failed_bots = report["failed"].as_u64().unwrap_or(u64::MAX);
    let passed = failed_bots == 0
        && delivery_min >= DELIVERY_BAR
        && tick_lateness_ms.p99 <= LATENESS_BAR_S * 1e3;
    Ok(Step {
        players,
        delivery_min,
        delivery_mean: field("snapshots_per_bot_per_s") / SNAPSHOT_HZ,
        tick_duration_ms: quantiles(
            &metrics_before,
            &metrics_after,
            "skirmish_tick_duration_seconds",
        ),
        tick_lateness_ms,
        server_cpu,
        bots_cpu,
        server_rss_mib,
        down_bytes_per_client_per_s: field("down_bytes_per_bot_per_s"),
        up_bytes_per_client_per_s: field("up_bytes_per_bot_per_s"),
        server_cpu_us_per_recipient: us_per_recipient(server_cpu * wall),
        room_threads_cpu,
        room_cpu_us_per_recipient: us_per_recipient(room_threads_cpu * wall),
        encode_us_per_recipient: us_per_recipient(grew("skirmish_snapshot_encode_seconds_total")),
        write_us_per_recipient: us_per_recipient(grew("skirmish_snapshot_write_seconds_total")),
        failed_bots,
        passed,
    })
}

/// How the load runs start the server.
#[derive(Clone, Copy, Debug)]
struct ServerSetup {
    tick_hz: u16,
    snapshot_hz: u16,
    realtime_rooms: bool,
    room_threads: Option<u16>,
}

/// The release server in rooms of 16.
fn start_server(setup: ServerSetup) -> anyhow::Result<ServerProcess> {
    let ServerSetup {
        tick_hz,
        snapshot_hz,
        realtime_rooms,
        room_threads,
    } = setup;
    let room_threads = room_threads.map(|n| n.to_string());
    let (tick_hz, snapshot_hz) = (tick_hz.to_string(), snapshot_hz.to_string());
    // Every bot connects from 127.0.0.1, so the per-address cap must not apply.
    let mut args = vec![
        "--room-capacity",
        "16",
        "--max-connections-per-ip",
        "100000",
        "--max-connections",
        "100000",
        "--tick-hz",
        &tick_hz,
        "--snapshot-hz",
        &snapshot_hz,
    ];
    if !realtime_rooms {
        args.push("--no-realtime-rooms");
    }
    if let Some(threads) = &room_threads {
        args.extend(["--room-threads", threads]);
    }
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    ServerProcess::start(
        &target_dir().join("release/server"),
        &args,
        Some(Stdio::null()),
    )
}

fn measure_idle(connections: usize, setup: ServerSetup) -> anyhow::Result<IdleMemory> {
    let snapshot_hz = setup.snapshot_hz;
    let server = start_server(setup)?;
    sleep(Duration::from_secs(1));
    let baseline_mib = rss_mib(server.pid());
    let ramp = (connections as f64 / 2000.0).max(1.0);
    let mut bots = spawn_bots(&server, connections, ramp + 30.0, ramp, true)?;
    let deadline = Instant::now() + Duration::from_secs_f64(ramp + 25.0);
    while server.metric("skirmish_connections")? < connections as f64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {connections} idle connections came up",
            server.metric("skirmish_connections")?
        );
        sleep(Duration::from_millis(250));
    }
    sleep(Duration::from_secs(2));
    let server_rss_mib = rss_mib(server.pid());
    let _ = bots.kill();
    let _ = bots.wait();
    Ok(IdleMemory {
        connections,
        snapshot_hz,
        server_rss_mib,
        kib_per_connection: (server_rss_mib - baseline_mib) * 1024.0 / connections as f64,
    })
}

/// Counts the server's socket writes under `strace -c -f` while `players` bots play.
/// Each client should get one write per snapshot: the messages queued since the last
/// snapshot ride in the same write. Pongs and pings are the only other writes.
fn count_writes(players: usize, seconds: f64, setup: ServerSetup) -> anyhow::Result<WriteCount> {
    let server = start_server(setup)?;
    let ramp = (players as f64 / 250.0).max(2.0);
    let mut bots = spawn_bots(&server, players, ramp + seconds + 6.0, ramp, false)?;
    sleep(Duration::from_secs_f64(ramp + 2.0));
    let summary = target_dir().join("load/strace.txt");
    let sent = || server.metric("skirmish_snapshot_recipients_total");
    let before = sent()?;
    let mut strace = Command::new("strace")
        .args(["-c", "-f", "-p", &server.pid().to_string(), "-o"])
        .arg(&summary)
        .stderr(Stdio::null())
        .spawn()
        .context("run strace (apt-get install strace)")?;
    sleep(Duration::from_secs_f64(seconds));
    // strace prints its summary when interrupted.
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let snapshots_sent = sent()? - before;
    let _ = bots.kill();
    let _ = bots.wait();
    let text = std::fs::read_to_string(&summary).context("read the strace summary")?;
    // Rows: % time, seconds, usecs/call, calls, [errors], syscall.
    let socket_writes: f64 = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = *fields.last()?;
            matches!(name, "writev" | "write" | "sendto" | "sendmsg")
                .then(|| fields.get(3)?.parse::<f64>().ok())
                .flatten()
        })
        .sum();
    Ok(WriteCount {
        players,
        seconds,
        snapshots_sent,
        socket_writes,
        writes_per_snapshot: socket_writes / snapshots_sent.max(1.0),
    })
}

fn plot(report: &Report, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let root_area = SVGBackend::new(path, (1100, 800)).into_drawing_area();
    root_area.fill(&WHITE)?;
    let panels = root_area.split_evenly((2, 2));
    let players: Vec<f64> = report.steps.iter().map(|s| s.players as f64).collect();
    let max_players = players.iter().copied().fold(1.0, f64::max) * 1.1;
    let series: [(&str, Vec<f64>, f64); 4] = [
        (
            "snapshot delivery, lowest bot (bar 0.98)",
            report.steps.iter().map(|s| s.delivery_min).collect(),
            1.05,
        ),
        (
            "tick lateness p99, ms (bar 2)",
            report
                .steps
                .iter()
                .map(|s| s.tick_lateness_ms.p99)
                .collect(),
            0.0,
        ),
        (
            "server CPU, cores",
            report.steps.iter().map(|s| s.server_cpu).collect(),
            0.0,
        ),
        (
            "server RSS, MiB",
            report.steps.iter().map(|s| s.server_rss_mib).collect(),
            0.0,
        ),
    ];
    for (panel, (title, values, fixed_top)) in panels.iter().zip(series) {
        let finite_max = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let top = if fixed_top > 0.0 {
            fixed_top
        } else {
            (finite_max * 1.2).max(1e-3)
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..max_players, 0.0..top)?;
        chart.configure_mesh().x_desc("playing bots").draw()?;
        let points: Vec<(f64, f64)> = players
            .iter()
            .copied()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .collect();
        chart.draw_series(LineSeries::new(points.clone(), &BLUE))?;
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, BLUE.filled())))?;
    }
    root_area.present()?;
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    build_release_bins()?;
    // Children inherit the raised limit: 10,000 idle sockets need as many descriptors.
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
    eprintln!("load: open files limit {soft} -> {hard}");
    let clock_ticks = clock_ticks();
    let out_dir = target_dir().join("load");
    std::fs::create_dir_all(&out_dir)?;

    let playing = ServerSetup {
        tick_hz: TICK_HZ,
        snapshot_hz: SNAPSHOT_HZ as u16,
        realtime_rooms: !args.no_realtime_rooms,
        room_threads: args.room_threads,
    };
    let mut steps = Vec::new();
    {
        let server = start_server(playing)?;
        for &players in &args.steps {
            eprintln!("load: {players} playing bots, holding {} s", args.hold);
            let step = run_step(&server, players, args.hold, clock_ticks)?;
            eprintln!("load: {}", serde_json::to_string(&step)?);
            let passed = step.passed;
            steps.push(step);
            if !passed {
                eprintln!("load: {players} missed the bar; stopping");
                break;
            }
            // Let the previous step's rooms close before the next one ramps.
            sleep(Duration::from_secs(12));
        }
    }
    let mut idle = Vec::new();
    let idle_counts: Vec<usize> = args.idle.iter().copied().filter(|&n| n > 0).collect();
    let quiet = ServerSetup {
        tick_hz: args.idle_snapshot_hz * 2,
        snapshot_hz: args.idle_snapshot_hz,
        ..playing
    };
    let full_rate_check = idle_counts.first().map(|&n| (n, playing));
    let idle_runs = full_rate_check
        .into_iter()
        .chain(idle_counts.iter().map(|&n| (n, quiet)));
    for (connections, setup) in idle_runs {
        eprintln!(
            "load: {connections} idle connections, {} Hz snapshots",
            setup.snapshot_hz
        );
        idle.push(measure_idle(connections, setup)?);
    }
    let writes = if args.strace_seconds > 0.0 {
        eprintln!("load: counting socket writes with strace");
        Some(count_writes(
            args.strace_players,
            args.strace_seconds,
            playing,
        )?)
    } else {
        None
    };
    let report = Report {
        writes,
        machine: format!(
            "{} cores, server and bots on the same machine",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        bar: "every bot receives >= 98% of expected snapshots and tick lateness p99 <= 2 ms".into(),
        steps,
        idle,
    };
    println!(
        "{:>7} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "players",
        "deliv.min",
        "deliv.avg",
        "late p99",
        "tick p99",
        "srv cpu",
        "room cpu",
        "bots cpu",
        "rss MiB",
        "up B/s",
        "srv us/r",
        "room us/r",
        "enc us/r",
        "write us/r",
        "pass"
    );
    for s in &report.steps {
        println!(
            "{:>7} {:>9.3} {:>9.3} {:>7.2}ms {:>7.2}ms {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>7.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>6}",
            s.players,
            s.delivery_min,
            s.delivery_mean,
            s.tick_lateness_ms.p99,
            s.tick_duration_ms.p99,
            s.server_cpu,
            s.room_threads_cpu,
            s.bots_cpu,
            s.server_rss_mib,
            s.up_bytes_per_client_per_s,
            s.server_cpu_us_per_recipient,
            s.room_cpu_us_per_recipient,
            s.encode_us_per_recipient,
            s.write_us_per_recipient,
            s.passed
        );
    }
    for m in &report.idle {
        println!(
            "idle: {} connections at {} Hz snapshots, server RSS {:.1} MiB, {:.2} KiB per connection",
            m.connections, m.snapshot_hz, m.server_rss_mib, m.kib_per_connection
        );
    }
    if let Some(w) = &report.writes {
        println!(
            "writes: {} players, {:.0} snapshots sent and {:.0} socket writes in {} s under strace: {:.3} writes per snapshot",
            w.players, w.snapshots_sent, w.socket_writes, w.seconds, w.writes_per_snapshot
        );
    }
    let json_path = out_dir.join("report.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let svg_path = out_dir.join("report.svg");
    plot(&report, &svg_path)?;
    println!("report: {} and {}", json_path.display(), svg_path.display());
    Ok(())
}
