//! `harness cluster-cost`: what a cluster costs on top of one process. Starts a private
//! redis-server and N release servers (three by default) joined through it, then
//! measures (1) the time from opening a socket to the welcome for a player who asks
//! process A for a room that lives on process B (the redirect and the second connection
//! included), against asking B directly, and (2) while bots, who all ask A, play in
//! rooms spread over every process: the commands Redis executes per second, per 1,000
//! players, and the snapshots the bots receive against those the rooms send them
//! (cluster-wide delivery), with how the players spread over the processes.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use client::native::{Connection, Hello};
use harness::ServerProcess;
use serde::Serialize;
use test_redis::Redis;

use crate::Binaries;
use crate::bots_process::Swarm;
use crate::commands::store_bench::reads::nearest_rank;
use crate::commands::{machine, raise_open_files_limit, server_command};

/// Rooms held open on B that the timed joins take turns at: a room's reservations
/// count against its seats until B's next heartbeat (at most a second) counts their
/// players, so a single room would fill with back-to-back joins that left at once.
const TIMED_ROOMS: usize = 20;
/// Seconds after the bots have joined before the steady window.
const SETTLE_S: f64 = 5.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server processes in the cluster (at least two).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..))]
    processes: u16,
    /// Sequential joins timed each way (through A, and at B directly).
    #[arg(long, default_value_t = 200)]
    joins: usize,
    /// Playing bots for the Redis traffic window, all asking process A.
    #[arg(long, default_value_t = 1000)]
    players: usize,
    /// Seconds of the steady window in which Redis's commands are counted.
    #[arg(long, default_value_t = 30.0)]
    window: f64,
    /// The redis-server program [default: `$SKIRMISH_REDIS_SERVER`, else on the PATH].
    #[arg(long)]
    redis_server: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    processes: usize,
    joins: usize,
    /// Asking A for a room on B: A reserves the seat and redirects, the client
    /// connects to B and is welcomed there.
    join_through_other_process: Latency,
    /// Asking B, which runs the room, directly.
    join_at_owner: Latency,
    players: usize,
    /// Players seated cluster-wide in the steady window, as A's `/api/rooms` counts them.
    players_seated: u64,
    /// Redis commands per second while the bots joined (ramp), and per join.
    redis_ops_per_s_while_joining: f64,
    redis_ops_per_join: f64,
    /// Redis commands per second in the steady window, and per 1,000 players seated.
    redis_ops_per_s_steady: f64,
    redis_ops_per_s_per_1000_players: f64,
    /// Players seated on each process (by its page address), from A's `/api/rooms`.
    players_per_process: BTreeMap<String, u64>,
    /// Lowest and mean over the bots of snapshots received per second against the
    /// rooms' snapshot rate, over the bots' whole run.
    delivery_min: f64,
    delivery_mean: f64,
    /// Bots that could not join, or lost their seat for good.
    bots_failed: usize,
    window_s: f64,
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    raise_open_files_limit()?;
    let redis_bin = args
        .redis_server
        .clone()
        .or_else(|| std::env::var_os(test_redis::BIN_ENV).map(Into::into))
        .unwrap_or_else(|| "/usr/bin/redis-server".into());
    let redis = Redis::start(&redis_bin).context("start a private redis-server")?;
    let secret = binaries.out_dir.join("cluster-cost.identity.key");
    std::fs::write(
        &secret,
        "the cluster-cost run's shared identity key, 32+ bytes",
    )?;
    let start = || {
        let mut command = server_command(&binaries.server);
        command
            .args(["--redis", &redis.url()])
            .arg("--secret-file")
            .arg(&secret)
            .args(["--max-connections", "100000"])
            // The timed rooms are opened by name from one address.
            .args(["--new-rooms-per-minute", "1000"])
            .stderr(Stdio::null());
        ServerProcess::start(command)
    };
    let processes = (0..args.processes)
        .map(|_| start())
        .collect::<Result<Vec<_>, _>>()?;
    let (a, b) = (&processes[0], &processes[1]);
    // All registered, and each has read the others.
    sleep(Duration::from_secs(2));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (through, direct) = runtime.block_on(time_joins(a, b, args.joins))?;
    eprintln!("cluster-cost: joins through A {through:?}, at B {direct:?}");

    let ramp = (args.players as f64 / 100.0).max(2.0);
    let playing = SETTLE_S + args.window + 5.0;
    let url = a.ws_url("/ws");
    let before_ramp = redis.commands_processed()?;
    let ramp_started = Instant::now();
    let swarm = Swarm {
        url: &url,
        count: args.players,
        duration: Duration::from_secs_f64(ramp + playing),
        ramp: Duration::from_secs_f64(ramp),
        room: None,
        seed: 3,
        idle: false,
        ca_cert: None,
    };
    let bots = swarm.spawn(&binaries.bots)?;
    eprintln!(
        "cluster-cost: {} bots joining through A over {ramp:.0} s",
        args.players
    );
    sleep(Duration::from_secs_f64(ramp + 1.0));
    let joining = redis.commands_processed()? - before_ramp;
    let joining_s = ramp_started.elapsed().as_secs_f64();
    sleep(Duration::from_secs_f64(SETTLE_S - 1.0));
    let per_process = players_per_process(a)?;
    let seated: u64 = per_process.values().sum();
    let before = redis.commands_processed()?;
    let started = Instant::now();
    sleep(Duration::from_secs_f64(args.window));
    let steady = (redis.commands_processed()? - before) as f64 / started.elapsed().as_secs_f64();
    let (bots_report, _) = bots.report()?;
    eprintln!(
        "cluster-cost: bots {}",
        serde_json::to_string(&bots_report)?
    );
    let snapshot_hz = f64::from(shared::consts::DEFAULT_SNAPSHOT_HZ);
    let report = Report {
        machine: machine(", Redis, every server and the bots on the same machine"),
        processes: processes.len(),
        joins: args.joins,
        join_through_other_process: through,
        join_at_owner: direct,
        players: args.players,
        players_seated: seated,
        redis_ops_per_s_while_joining: joining as f64 / joining_s,
        redis_ops_per_join: joining as f64 / args.players.max(1) as f64,
        redis_ops_per_s_steady: steady,
        redis_ops_per_s_per_1000_players: steady * 1000.0 / seated.max(1) as f64,
        players_per_process: per_process,
        delivery_min: bots_report.min_snapshots_per_bot_per_s.unwrap_or(0.0) / snapshot_hz,
        delivery_mean: bots_report.snapshots_per_bot_per_s / snapshot_hz,
        bots_failed: bots_report.failed,
        window_s: args.window,
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(binaries.out_dir.join("cluster-cost.json"), &text)?;
    println!("{text}");
    Ok(())
}

/// Times `joins` joins of rooms held open on B: asked of A (redirected), then of B.
async fn time_joins(
    a: &ServerProcess,
    b: &ServerProcess,
    joins: usize,
) -> anyhow::Result<(Latency, Latency)> {
    let mut holders = Vec::new();
    for room in 0..TIMED_ROOMS {
        let hello = Hello::new("holder").in_room(format!("far{room}"));
        holders.push(
            Connection::join(&b.ws_url("/ws"), hello)
                .await
                .context("open the rooms on B")?,
        );
    }
    // A sees B's rooms once B has published them and A has read them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut results = Vec::new();
    for entry in [a.ws_url("/ws"), b.ws_url("/ws")] {
        let mut times = Vec::with_capacity(joins);
        for idx in 0..joins {
            let started = Instant::now();
            let hello = Hello::new(format!("j{idx}")).in_room(format!("far{}", idx % TIMED_ROOMS));
            let joined = Connection::join(&entry, hello)
                .await
                .with_context(|| format!("join {idx} through {entry}"))?;
            times.push(started.elapsed());
            anyhow::ensure!(
                joined.url == b.ws_url("/ws"),
                "join {idx} through {entry} ended on {}, not on B",
                joined.url
            );
            joined.close().await?;
        }
        times.sort();
        let ms = |q: f64| nearest_rank(&times, q).map_or(f64::NAN, |t| t.as_secs_f64() * 1e3);
        results.push(Latency {
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: ms(1.0),
        });
    }
    for holder in holders {
        holder.close().await?;
    }
    let direct = results.pop().context("two latencies")?;
    let through = results.pop().context("two latencies")?;
    Ok((through, direct))
}

/// Players seated on each process of the cluster, from A's `/api/rooms`.
fn players_per_process(a: &ServerProcess) -> anyhow::Result<BTreeMap<String, u64>> {
    let rooms: Vec<serde_json::Value> =
        serde_json::from_str(&a.get("/api/rooms")?).context("the rooms' JSON")?;
    let mut seated = BTreeMap::new();
    for room in rooms {
        let server = room["server"].as_str().unwrap_or("?").to_owned();
        *seated.entry(server).or_default() += room["players"].as_u64().unwrap_or(0);
    }
    Ok(seated)
}
