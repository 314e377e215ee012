//! `harness load`: how many playing bots one server carries on this machine, and what
//! each costs. Ramps bots in rooms of 16 step by step, holds each step, and stops at the
//! first step that misses the bar (98% snapshot delivery to every bot, tick lateness p99
//! <= 2 ms). Each step reports the server's CPU per player-second (network threads and
//! room threads apart), its system calls per player-second, and input latency. Then
//! measures resident memory per idle connection. Writes JSON and an SVG of the curves.

mod plot;
mod syscalls;
mod writes;

use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use harness::procfs::{self, ClockTicks};
use harness::proxy::{Delay, Proxy};
use harness::{Histogram, ServerProcess};
use serde::Serialize;
use shared::consts::{DEFAULT_ROOM_CAPACITY, DEFAULT_SNAPSHOT_HZ, DEFAULT_TICK_HZ};

use crate::Binaries;
use crate::bots_process::Swarm;
use crate::commands::{machine, metric, server_command};
use writes::WriteCount;

const DELIVERY_BAR: f64 = 0.98;
const LATENESS_BAR_S: f64 = 0.002;
/// Seconds after a step's bots have all joined before its window opens.
const SETTLE_S: f64 = 3.0;
/// How the server's threads are named: tokio's workers (`tokio-rt-worker`, and its
/// blocking pool by the same name) carry the sockets; `rooms-N` (`rooms::scheduler`)
/// run the simulation and write snapshots. The rest (the main thread, the store's
/// writer) count in the server's total only.
const NET_THREADS: &str = "tokio-";
const ROOM_THREADS: &str = "rooms-";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seats per room.
    #[arg(long, default_value_t = DEFAULT_ROOM_CAPACITY)]
    room_capacity: u16,
    /// Simulation ticks per second.
    #[arg(long, default_value_t = DEFAULT_TICK_HZ)]
    tick_hz: u16,
    /// Snapshots per second to each player.
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_HZ)]
    snapshot_hz: u16,
    /// The server's `--input-batch`; without it, the server's default.
    #[arg(long)]
    input_batch: Option<u8>,
    /// Put the latency proxy between the bots and the server, delaying every chunk by
    /// this many milliseconds each way (0 still goes through the proxy).
    #[arg(long)]
    proxy_latency_ms: Option<u64>,
    /// Do not count the server's system calls with perf during each step's window.
    #[arg(long)]
    no_syscalls: bool,
    /// Measure every step, even after one misses the bar.
    #[arg(long)]
    all_steps: bool,
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
    /// Snapshot rate of the rooms idle connections sit in (ticking at twice it).
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
    /// Server CPU per player-second, in milliseconds: all of it, then the network
    /// threads' and the room threads' shares (the rest is the store and the like).
    server_ms_per_player_s: f64,
    net_ms_per_player_s: f64,
    room_ms_per_player_s: f64,
    /// The server's system calls per player-second over the window, counted by
    /// perf; `None` when not counted.
    syscalls: Option<SyscallsPerPlayer>,
    /// From an input leaving a bot to the first snapshot that shows it, over the
    /// bots' whole run, in milliseconds.
    input_latency_ms_p50: f64,
    input_latency_ms_p99: f64,
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

/// System calls per player-second, by kind.
#[derive(Debug, Serialize)]
struct SyscallsPerPlayer {
    total: f64,
    socket_reads: f64,
    socket_writes: f64,
    epoll_waits: f64,
    futex: f64,
}

/// Quantiles of what a histogram observed during the step's window, in milliseconds,
/// interpolated within their bucket as `Histogram::quantile` says; `max` is the upper
/// bound of the highest bucket that holds an observation. NaN if nothing was observed.
#[derive(Debug, Serialize)]
struct Quantiles {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Quantiles {
    fn of_window(before: &Histogram, after: &Histogram) -> Quantiles {
        let window = after.since(before);
        let ms = |q| window.quantile(q).map_or(f64::NAN, |seconds| seconds * 1e3);
        Quantiles {
            p50: ms(0.5),
            p99: ms(0.99),
            max: ms(1.0),
        }
    }
}

#[derive(Debug, Serialize)]
struct IdleMemory {
    connections: usize,
    snapshot_hz: u16,
    server_rss_mib: f64,
    kib_per_connection: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    scenario: String,
    bar: String,
    steps: Vec<Step>,
    idle: Vec<IdleMemory>,
    writes: Option<WriteCount>,
}

/// How the load runs start the server.
#[derive(Clone, Copy, Debug)]
struct ServerSetup {
    room_capacity: u16,
    tick_hz: u16,
    snapshot_hz: u16,
    realtime_rooms: bool,
    room_threads: Option<u16>,
    input_batch: Option<u8>,
}

/// The release server, with room for every bot.
fn start_server(setup: ServerSetup, binaries: &Binaries) -> anyhow::Result<ServerProcess> {
    let mut command = server_command(&binaries.server);
    command
        .args(["--room-capacity", &setup.room_capacity.to_string()])
        .args(["--max-connections", "100000"])
        .args(["--tick-hz", &setup.tick_hz.to_string()])
        .args(["--snapshot-hz", &setup.snapshot_hz.to_string()])
        .stderr(Stdio::null());
    if !setup.realtime_rooms {
        command.arg("--no-realtime-rooms");
    }
    if let Some(threads) = setup.room_threads {
        command.args(["--room-threads", &threads.to_string()]);
    }
    if let Some(batch) = setup.input_batch {
        command.args(["--input-batch", &batch.to_string()]);
    }
    Ok(ServerProcess::start(command)?)
}

/// `players` playing bots, joining over a ramp that grows with their number, each
/// playing until `after_ramp` seconds after the last has joined.
fn playing_swarm(url: &str, players: usize, after_ramp: f64) -> Swarm<'_> {
    let ramp = (players as f64 / 250.0).max(2.0);
    Swarm {
        url,
        count: players,
        duration: Duration::from_secs_f64(ramp + after_ramp),
        ramp: Duration::from_secs_f64(ramp),
        room: None,
        seed: 1,
        idle: false,
        ca_cert: None,
    }
}

/// CPU seconds of the server, of its network and room threads and of the bots, at one
/// moment.
#[derive(Clone, Copy, Debug)]
struct CpuClock {
    server: f64,
    net: f64,
    rooms: f64,
    bots: f64,
}

impl CpuClock {
    fn read(server_pid: u32, bots_pid: u32, clock_ticks: ClockTicks) -> CpuClock {
        CpuClock {
            server: procfs::cpu_seconds(server_pid, clock_ticks),
            net: procfs::threads_cpu_seconds(server_pid, NET_THREADS, clock_ticks),
            rooms: procfs::threads_cpu_seconds(server_pid, ROOM_THREADS, clock_ticks),
            bots: procfs::cpu_seconds(bots_pid, clock_ticks),
        }
    }
}

/// Where the bots connect, and what a step does besides playing.
struct StepPlan<'a> {
    /// The server's game socket, or the proxy's in front of it.
    url: &'a str,
    snapshot_hz: u16,
    hold: f64,
    /// Count system calls during the window.
    count_syscalls: bool,
}

fn run_step(
    server: &ServerProcess,
    players: usize,
    plan: &StepPlan<'_>,
    clock_ticks: ClockTicks,
    binaries: &Binaries,
) -> anyhow::Result<Step> {
    let hold = plan.hold;
    // Every bot plays until a second after the window closes.
    let swarm = playing_swarm(plan.url, players, SETTLE_S + hold + 1.0);
    let bots = swarm.spawn(&binaries.bots)?;
    sleep(swarm.ramp + Duration::from_secs_f64(SETTLE_S));
    let metrics_before = server.metrics()?;
    let cpu_before = CpuClock::read(server.pid(), bots.pid(), clock_ticks);
    let perf_out = binaries.out_dir.join(format!("load/perf-{players}.txt"));
    let counting = plan
        .count_syscalls
        .then(|| syscalls::start(server.pid(), &perf_out))
        .transpose()?;
    let started = Instant::now();
    sleep(Duration::from_secs_f64(hold));
    let calls = counting.map(syscalls::Counting::finish).transpose()?;
    let metrics_after = server.metrics()?;
    let cpu_after = CpuClock::read(server.pid(), bots.pid(), clock_ticks);
    let wall = started.elapsed().as_secs_f64();
    let server_rss_mib = procfs::rss_kib(server.pid()) as f64 / 1024.0;
    let syscalls = calls.map(|calls| {
        let per_player_s = |calls: f64| calls / (wall * players as f64);
        SyscallsPerPlayer {
            total: per_player_s(calls.total),
            socket_reads: per_player_s(calls.socket_reads),
            socket_writes: per_player_s(calls.socket_writes),
            epoll_waits: per_player_s(calls.epoll_waits),
            futex: per_player_s(calls.futex),
        }
    });
    let (report, _status) = bots.report()?;

    let server_cpu = (cpu_after.server - cpu_before.server) / wall;
    let net_threads_cpu = (cpu_after.net - cpu_before.net) / wall;
    let room_threads_cpu = (cpu_after.rooms - cpu_before.rooms) / wall;
    let ms_per_player_s = |cores: f64| cores * 1e3 / players as f64;
    let bots_cpu = (cpu_after.bots - cpu_before.bots) / wall;
    let grew = |name: &str| {
        metrics_after.value(name).unwrap_or(0.0) - metrics_before.value(name).unwrap_or(0.0)
    };
    let recipients = grew("skirmish_snapshot_recipients_total").max(1.0);
    let us_per_recipient = |seconds: f64| seconds / recipients * 1e6;
    let window = |name: &str| {
        Quantiles::of_window(
            &metrics_before.histogram(name),
            &metrics_after.histogram(name),
        )
    };
    let tick_lateness_ms = window("skirmish_tick_lateness_seconds");
    let snapshot_hz = f64::from(plan.snapshot_hz);
    let delivery_min = report.min_snapshots_per_bot_per_s.unwrap_or(0.0) / snapshot_hz;
    let failed_bots = report.failed as u64;
    let passed = failed_bots == 0
        && delivery_min >= DELIVERY_BAR
        && tick_lateness_ms.p99 <= LATENESS_BAR_S * 1e3;
    Ok(Step {
        players,
        delivery_min,
        delivery_mean: report.snapshots_per_bot_per_s / snapshot_hz,
        tick_duration_ms: window("skirmish_tick_duration_seconds"),
        tick_lateness_ms,
        server_cpu,
        server_ms_per_player_s: ms_per_player_s(server_cpu),
        net_ms_per_player_s: ms_per_player_s(net_threads_cpu),
        room_ms_per_player_s: ms_per_player_s(room_threads_cpu),
        syscalls,
        input_latency_ms_p50: report.input_latency_ms_p50,
        input_latency_ms_p99: report.input_latency_ms_p99,
        bots_cpu,
        server_rss_mib,
        down_bytes_per_client_per_s: report.down_bytes_per_bot_per_s,
        up_bytes_per_client_per_s: report.up_bytes_per_bot_per_s,
        server_cpu_us_per_recipient: us_per_recipient(server_cpu * wall),
        room_threads_cpu,
        room_cpu_us_per_recipient: us_per_recipient(room_threads_cpu * wall),
        encode_us_per_recipient: us_per_recipient(grew("skirmish_snapshot_encode_seconds_total")),
        write_us_per_recipient: us_per_recipient(grew("skirmish_snapshot_write_seconds_total")),
        failed_bots,
        passed,
    })
}

fn measure_idle(
    connections: usize,
    setup: ServerSetup,
    binaries: &Binaries,
) -> anyhow::Result<IdleMemory> {
    let server = start_server(setup, binaries)?;
    sleep(Duration::from_secs(1));
    let baseline_mib = procfs::rss_kib(server.pid()) as f64 / 1024.0;
    let ramp = (connections as f64 / 2000.0).max(1.0);
    let url = server.ws_url("/ws");
    let swarm = Swarm {
        url: &url,
        count: connections,
        duration: Duration::from_secs_f64(ramp + 30.0),
        ramp: Duration::from_secs_f64(ramp),
        room: None,
        seed: 1,
        idle: true,
        ca_cert: None,
    };
    // Dropped at the end of this function, which stops the swarm early.
    let _bots = swarm.spawn(&binaries.bots)?;
    let deadline = Instant::now() + Duration::from_secs_f64(ramp + 25.0);
    loop {
        let open = metric(&server, "skirmish_connections")?;
        if open >= connections as f64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {open} of {connections} idle connections came up"
        );
        sleep(Duration::from_millis(250));
    }
    sleep(Duration::from_secs(2));
    let server_rss_mib = procfs::rss_kib(server.pid()) as f64 / 1024.0;
    Ok(IdleMemory {
        connections,
        snapshot_hz: setup.snapshot_hz,
        server_rss_mib,
        kib_per_connection: (server_rss_mib - baseline_mib) * 1024.0 / connections as f64,
    })
}

/// Playing steps on one server, up to the first that misses the bar.
fn run_steps(
    args: &Args,
    setup: ServerSetup,
    binaries: &Binaries,
    clock_ticks: ClockTicks,
) -> anyhow::Result<Vec<Step>> {
    let server = start_server(setup, binaries)?;
    // The proxy's tasks run on this runtime, which lives as long as the steps.
    let runtime = tokio::runtime::Runtime::new()?;
    let proxy = args
        .proxy_latency_ms
        .map(|latency_ms| {
            let delay = Delay {
                latency: Duration::from_millis(latency_ms),
                jitter: Duration::ZERO,
            };
            runtime.block_on(Proxy::start(server.addr(), delay))
        })
        .transpose()?;
    let url = match &proxy {
        Some(proxy) => format!("ws://{}/ws", proxy.addr()),
        None => server.ws_url("/ws"),
    };
    let count_syscalls = !args.no_syscalls && syscalls::available();
    if !args.no_syscalls && !count_syscalls {
        eprintln!(
            "load: perf cannot count syscall tracepoints here (apt-get install linux-perf, and run as root); system calls are not counted"
        );
    }
    let plan = StepPlan {
        url: &url,
        snapshot_hz: setup.snapshot_hz,
        hold: args.hold,
        count_syscalls,
    };
    let mut steps = Vec::new();
    for &players in &args.steps {
        eprintln!("load: {players} playing bots, holding {} s", args.hold);
        let step = run_step(&server, players, &plan, clock_ticks, binaries)?;
        eprintln!("load: {}", serde_json::to_string(&step)?);
        let passed = step.passed;
        steps.push(step);
        if !passed && !args.all_steps {
            eprintln!("load: {players} missed the bar; stopping");
            break;
        }
        // Let the previous step's rooms close before the next one ramps.
        sleep(Duration::from_secs(12));
    }
    Ok(steps)
}

/// Memory per idle connection: the first count at the full snapshot rate too, to
/// show the rate does not change it.
fn run_idle(
    args: &Args,
    playing: ServerSetup,
    binaries: &Binaries,
) -> anyhow::Result<Vec<IdleMemory>> {
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
    let mut idle = Vec::new();
    for (connections, setup) in idle_runs {
        eprintln!(
            "load: {connections} idle connections, {} Hz snapshots",
            setup.snapshot_hz
        );
        idle.push(measure_idle(connections, setup, binaries)?);
    }
    Ok(idle)
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    // Children inherit the raised limit: 10,000 idle sockets need as many descriptors.
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
    eprintln!("load: open files limit {soft} -> {hard}");
    let clock_ticks = ClockTicks::of_this_machine();
    let load_average = procfs::load_average();
    let out_dir = binaries.out_dir.join("load");
    std::fs::create_dir_all(&out_dir)?;

    let playing = ServerSetup {
        room_capacity: args.room_capacity,
        tick_hz: args.tick_hz,
        snapshot_hz: args.snapshot_hz,
        realtime_rooms: !args.no_realtime_rooms,
        room_threads: args.room_threads,
        input_batch: args.input_batch,
    };
    let steps = run_steps(args, playing, binaries, clock_ticks)?;
    let idle = run_idle(args, playing, binaries)?;
    let strace_here = writes::strace_available();
    if args.strace_seconds > 0.0 && !strace_here {
        eprintln!(
            "load: strace is not installed (apt-get install strace); socket writes are not counted"
        );
    }
    let writes = if args.strace_seconds > 0.0 && strace_here {
        eprintln!("load: counting socket writes with strace");
        Some(writes::count_writes(
            args.strace_players,
            args.strace_seconds,
            playing,
            binaries,
        )?)
    } else {
        None
    };
    let report = Report {
        writes,
        machine: machine(&format!(
            ", server and bots on the same machine, load average {load_average} at the start"
        )),
        scenario: format!(
            "rooms of {}, {} Hz ticks, {} Hz snapshots, input batch {}, {}",
            args.room_capacity,
            args.tick_hz,
            args.snapshot_hz,
            args.input_batch
                .map_or("the server's default".to_owned(), |batch| batch.to_string()),
            args.proxy_latency_ms
                .map_or("no proxy".to_owned(), |ms| format!(
                    "through the latency proxy at {ms} ms each way"
                ))
        ),
        bar: "every bot receives >= 98% of expected snapshots and tick lateness p99 <= 2 ms".into(),
        steps,
        idle,
    };
    print_table(&report);
    let json_path = out_dir.join("report.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let svg_path = out_dir.join("report.svg");
    plot::plot(&report, &svg_path)?;
    println!("report: {} and {}", json_path.display(), svg_path.display());
    Ok(())
}

fn print_table(report: &Report) {
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
    println!(
        "{:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "players",
        "srv ms/p-s",
        "net ms/p-s",
        "room ms/p-s",
        "syscall/p-s",
        "reads/p-s",
        "writes/p-s",
        "epoll/p-s",
        "futex/p-s",
        "input p50",
        "input p99"
    );
    for s in &report.steps {
        let calls = |field: fn(&SyscallsPerPlayer) -> f64| {
            s.syscalls
                .as_ref()
                .map_or_else(|| "-".to_owned(), |c| format!("{:.1}", field(c)))
        };
        println!(
            "{:>7} {:>10.3} {:>10.3} {:>10.3} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8.1}ms {:>8.1}ms",
            s.players,
            s.server_ms_per_player_s,
            s.net_ms_per_player_s,
            s.room_ms_per_player_s,
            calls(|c| c.total),
            calls(|c| c.socket_reads),
            calls(|c| c.socket_writes),
            calls(|c| c.epoll_waits),
            calls(|c| c.futex),
            s.input_latency_ms_p50,
            s.input_latency_ms_p99,
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
}
