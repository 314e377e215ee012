//! `harness console-cost`: what the operations console costs a busy server. Plays
//! playing bots (1,000 by default) against a release server with the console on, then
//! measures the server's CPU in alternating windows: no console open (the sampler keeps
//! only its ten-minute history), then the most consoles the server allows, each
//! inspecting a room and receiving a sample every second. The difference between the
//! two kinds of window is the console's cost; the server's own count of the console's
//! work (`skirmish_console_work_seconds_total`) is reported beside it.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use harness::ServerProcess;
use harness::procfs::{self, ClockTicks};
use serde::Serialize;
use shared::consts::DEFAULT_ROOM_CAPACITY;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::Binaries;
use crate::bots_process::Swarm;
use crate::commands::{machine, raise_open_files_limit, server_command};

/// The token the run's server is given.
const TOKEN: &str = "console-cost-operators-token";
/// Seconds after the bots have joined before the first window.
const SETTLE_S: f64 = 5.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Playing bots, in rooms of 16.
    #[arg(long, default_value_t = 1000)]
    players: usize,
    /// Console sockets open in the windows with consoles (the server allows 4).
    #[arg(long, default_value_t = 4)]
    consoles: usize,
    /// Seconds each window lasts.
    #[arg(long, default_value_t = 15.0)]
    window: f64,
    /// Pairs of windows (without, then with consoles).
    #[arg(long, default_value_t = 4)]
    rounds: usize,
}

#[derive(Debug, Serialize)]
struct Window {
    consoles: usize,
    /// Server CPU seconds per wall second.
    server_cpu: f64,
    /// The console's own work, as the server counts it, per wall second.
    console_work: f64,
    /// Console samples received per second, over all consoles.
    samples_per_s: f64,
    /// Bytes of samples received per second, over all consoles.
    sample_bytes_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    players: usize,
    consoles: usize,
    window_s: f64,
    windows: Vec<Window>,
    /// Mean server CPU (cores) without and with consoles open.
    server_cpu_without: f64,
    server_cpu_with: f64,
    /// The difference, as a share of the server's CPU without consoles, in percent.
    console_cost_percent: f64,
    /// The console's own counted work with consoles open, as a share of the server's
    /// CPU, in percent.
    console_work_percent: f64,
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    raise_open_files_limit()?;
    let clock_ticks = ClockTicks::of_this_machine();
    let token_file = binaries.out_dir.join("console-cost.token");
    std::fs::write(&token_file, TOKEN).context("write the admin token file")?;
    let mut command = server_command(&binaries.server);
    command
        .args(["--room-capacity", &DEFAULT_ROOM_CAPACITY.to_string()])
        .args(["--max-connections", "100000"])
        .arg("--admin-token-file")
        .arg(&token_file)
        .stderr(Stdio::null());
    let server = ServerProcess::start(command)?;
    let url = server.ws_url("/ws");
    let ramp = (args.players as f64 / 250.0).max(2.0);
    let playing = SETTLE_S + 2.0 * args.rounds as f64 * (args.window + 2.0) + 5.0;
    let swarm = Swarm {
        url: &url,
        count: args.players,
        duration: Duration::from_secs_f64(ramp + playing),
        ramp: Duration::from_secs_f64(ramp),
        room: None,
        seed: 1,
        idle: false,
        ca_cert: None,
    };
    let _bots = swarm.spawn(&binaries.bots)?;
    eprintln!(
        "console-cost: {} playing bots joining over {ramp:.0} s",
        args.players
    );
    sleep(Duration::from_secs_f64(ramp + SETTLE_S));
    let rooms = room_ids(&server)?;
    eprintln!("console-cost: {} rooms", rooms.len());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut windows = Vec::new();
    for round in 0..args.rounds {
        for consoles in [0, args.consoles] {
            let window = measure(
                &runtime,
                &server,
                &rooms,
                consoles,
                args.window,
                clock_ticks,
            )?;
            eprintln!(
                "console-cost: round {round}: {}",
                serde_json::to_string(&window)?
            );
            windows.push(window);
        }
    }
    let mean = |consoles: usize, pick: fn(&Window) -> f64| {
        let picked: Vec<f64> = windows
            .iter()
            .filter(|w| w.consoles == consoles)
            .map(pick)
            .collect();
        picked.iter().sum::<f64>() / picked.len().max(1) as f64
    };
    let without = mean(0, |w| w.server_cpu);
    let with = mean(args.consoles, |w| w.server_cpu);
    let report = Report {
        machine: machine(", server and bots on the same machine"),
        players: args.players,
        consoles: args.consoles,
        window_s: args.window,
        console_cost_percent: (with - without) / without.max(1e-9) * 100.0,
        console_work_percent: mean(args.consoles, |w| w.console_work) / with.max(1e-9) * 100.0,
        server_cpu_without: without,
        server_cpu_with: with,
        windows,
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(binaries.out_dir.join("console-cost.json"), &text)?;
    println!("{text}");
    Ok(())
}

/// The rooms the bots play in, from the console's API.
fn room_ids(server: &ServerProcess) -> anyhow::Result<Vec<String>> {
    let body = harness::http::get_with_header(
        server.admin_addr(),
        "/admin/api/rooms",
        ("Authorization", &format!("Bearer {TOKEN}")),
    )?;
    let rooms: Vec<serde_json::Value> = serde_json::from_str(&body).context("the rooms' JSON")?;
    Ok(rooms
        .iter()
        .filter_map(|room| room["id"].as_str().map(str::to_owned))
        .collect())
}

/// One window with `consoles` console sockets open, each inspecting a room.
fn measure(
    runtime: &tokio::runtime::Runtime,
    server: &ServerProcess,
    rooms: &[String],
    consoles: usize,
    seconds: f64,
    clock_ticks: ClockTicks,
) -> anyhow::Result<Window> {
    let received = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let mut sockets = Vec::new();
    for idx in 0..consoles {
        let room = rooms.get(idx % rooms.len().max(1)).cloned();
        let addr = server.admin_addr();
        let received = Arc::clone(&received);
        sockets.push(runtime.spawn(async move { watch(addr, room, received).await }));
    }
    // Let the sockets open and take their history before the window starts.
    sleep(Duration::from_secs(2));
    let work_before = console_work(server)?;
    let cpu_before = procfs::cpu_seconds(server.pid(), clock_ticks);
    let (samples_before, bytes_before) = (
        received.0.load(Ordering::Relaxed),
        received.1.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    sleep(Duration::from_secs_f64(seconds));
    let cpu_after = procfs::cpu_seconds(server.pid(), clock_ticks);
    let wall = started.elapsed().as_secs_f64();
    let work_after = console_work(server)?;
    let samples = received.0.load(Ordering::Relaxed) - samples_before;
    let bytes = received.1.load(Ordering::Relaxed) - bytes_before;
    for socket in sockets {
        socket.abort();
    }
    Ok(Window {
        consoles,
        server_cpu: (cpu_after - cpu_before) / wall,
        console_work: (work_after - work_before) / wall,
        samples_per_s: samples as f64 / wall,
        sample_bytes_per_s: bytes as f64 / wall,
    })
}

fn console_work(server: &ServerProcess) -> anyhow::Result<f64> {
    server
        .metrics()?
        .value("skirmish_console_work_seconds_total")
        .context("the server exports no skirmish_console_work_seconds_total")
}

/// A console: opens the socket with the token, inspects `room`, and counts what it is
/// pushed until aborted.
async fn watch(
    addr: std::net::SocketAddr,
    room: Option<String>,
    received: Arc<(AtomicU64, AtomicU64)>,
) -> anyhow::Result<()> {
    let mut request = format!("ws://{addr}/admin/ws").into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}"))?,
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    if let Some(room) = room {
        let inspect = serde_json::json!({ "inspect": room }).to_string();
        socket.send(Message::text(inspect)).await?;
    }
    while let Some(msg) = socket.next().await {
        if let Message::Text(text) = msg? {
            received.0.fetch_add(1, Ordering::Relaxed);
            received.1.fetch_add(text.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}
