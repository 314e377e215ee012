//! `harness flood`: one address floods a server running with default flags with hellos
//! that each name a new room, from as many sockets at once as the default per-address
//! cap allows, while players from another address play a room of their own. It reports
//! the rooms the flood opened, what the flood was told, whether the players noticed,
//! and the server's CPU during the flood and once it is over.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use harness::ServerProcess;
use harness::procfs::{ClockTicks, cpu_seconds};
use serde::Serialize;
use shared::codec::{decode_server, encode_client};
use shared::consts::PROTOCOL_VERSION;
use shared::protocol::{ClientMsg, ServerMsg};
use tokio::net::TcpSocket;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::Binaries;
use crate::bots_process::Swarm;

/// The snapshot rate of a server with default flags.
const SNAPSHOT_HZ: f64 = 30.0;
/// The room cap of a server with default flags (`--max-rooms`).
const DEFAULT_MAX_ROOMS: usize = 1000;
/// How long one flood socket waits for the server's answer to its hello.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Players in the room that must notice nothing.
    #[arg(long, default_value_t = 16)]
    players: usize,
    /// Flood sockets open at once, from one address (the default per-address cap is 64).
    #[arg(long, default_value_t = 60)]
    sockets: usize,
    /// Seconds the flood lasts.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Seconds measured after the flood: the rooms it opened expire, and the server
    /// should be near idle but for the players.
    #[arg(long, default_value_t = 15.0)]
    after: f64,
    /// The flood's source address, apart from the players' 127.0.0.1 (any of 127/8).
    #[arg(long, default_value = "127.0.0.2")]
    flood_from: IpAddr,
}

/// What the flood sockets saw, added up.
#[derive(Debug, Default, Serialize)]
struct FloodCounts {
    hellos: u64,
    /// Hellos answered with a welcome: rooms the flood opened.
    welcomed: u64,
    /// Hellos refused, by the reason's label.
    refused: BTreeMap<String, u64>,
    /// Sockets that failed before an answer (a refused upgrade, a reset, a timeout).
    failed: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    flood: FloodCounts,
    hellos_per_s: f64,
    rooms_listed_max: usize,
    rooms_listed_at_end: usize,
    room_cap: usize,
    players_failed: usize,
    players_snapshots_per_s: f64,
    players_min_snapshots_per_s: Option<f64>,
    /// Server CPU in cores: during the flood, then over the last half of the time after it.
    server_cpu_during_flood: f64,
    server_cpu_after_flood: f64,
    pass: bool,
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    // Default flags: the point is what a server as shipped does.
    let mut command = Command::new(&binaries.server);
    command.stderr(Stdio::null());
    let server = ServerProcess::start(command)?;
    let clock_ticks = ClockTicks::of_this_machine();
    let url = server.ws_url("/ws");
    let warm_up = Duration::from_secs(3);
    let flood_for = Duration::from_secs_f64(args.duration);
    let after = Duration::from_secs_f64(args.after);
    let players = Swarm {
        url: &url,
        count: args.players,
        duration: warm_up + flood_for + after,
        ramp: Duration::from_secs(1),
        room: Some("main"),
        seed: 7,
        idle: false,
        ca_cert: None,
    }
    .spawn(&binaries.bots)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("start the flood's runtime")?;
    std::thread::sleep(warm_up);
    eprintln!(
        "flood: {} sockets from {} naming new rooms for {} s",
        args.sockets, args.flood_from, args.duration
    );
    let cpu_before = cpu_seconds(server.pid(), clock_ticks);
    let (flood, rooms_listed_max) =
        runtime.block_on(flood_while_watching(&server, args, flood_for))?;
    let cpu_during = (cpu_seconds(server.pid(), clock_ticks) - cpu_before) / args.duration;

    eprintln!("flood: over; watching for {} s", args.after);
    std::thread::sleep(after / 2);
    let cpu_mid = cpu_seconds(server.pid(), clock_ticks);
    std::thread::sleep(after / 2);
    let cpu_after = (cpu_seconds(server.pid(), clock_ticks) - cpu_mid) / (args.after / 2.0);
    let rooms_listed_at_end = rooms_listed(&server)?;
    let (players, _) = players.report()?;
    let clean_exit = server.stop()?;
    anyhow::ensure!(clean_exit, "the server did not exit cleanly");

    let pass = rooms_listed_max <= DEFAULT_MAX_ROOMS
        && players.failed == 0
        && players
            .min_snapshots_per_bot_per_s
            .is_some_and(|rate| rate >= SNAPSHOT_HZ * 0.98);
    let report = Report {
        scenario: format!(
            "default flags; {} players in one room from 127.0.0.1; {} sockets from {} each naming a new room, {} s",
            args.players, args.sockets, args.flood_from, args.duration
        ),
        hellos_per_s: flood.hellos as f64 / args.duration,
        flood,
        rooms_listed_max,
        rooms_listed_at_end,
        room_cap: DEFAULT_MAX_ROOMS,
        players_failed: players.failed,
        players_snapshots_per_s: players.snapshots_per_bot_per_s,
        players_min_snapshots_per_s: players.min_snapshots_per_bot_per_s,
        server_cpu_during_flood: cpu_during,
        server_cpu_after_flood: cpu_after,
        pass,
    };
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    let path = binaries.out_dir.join("flood.json");
    std::fs::write(&path, &json).with_context(|| format!("write {}", path.display()))?;
    eprintln!("report: {}", path.display());
    anyhow::ensure!(pass, "the flood run missed its bar");
    Ok(())
}

/// Runs the flood for `flood_for`, listing the rooms twice a second meanwhile; returns
/// what the flood saw and the most rooms listed at once.
async fn flood_while_watching(
    server: &ServerProcess,
    args: &Args,
    flood_for: Duration,
) -> anyhow::Result<(FloodCounts, usize)> {
    let deadline = Instant::now() + flood_for;
    let addr = server.addr();
    let sockets: Vec<_> = (0..args.sockets)
        .map(|socket_idx| tokio::spawn(flood_socket(addr, args.flood_from, socket_idx, deadline)))
        .collect();
    let mut rooms_max = 0;
    while Instant::now() < deadline {
        sleep(Duration::from_millis(500)).await;
        let server_addr = addr;
        let listed =
            tokio::task::spawn_blocking(move || harness::http::get(server_addr, "/api/rooms"))
                .await
                .context("list the rooms")??;
        rooms_max = rooms_max.max(room_count(&listed)?);
    }
    let mut total = FloodCounts::default();
    for socket in sockets {
        let counts = socket.await.context("a flood socket's task")?;
        total.hellos += counts.hellos;
        total.welcomed += counts.welcomed;
        for (from, into) in [
            (counts.refused, &mut total.refused),
            (counts.failed, &mut total.failed),
        ] {
            for (label, n) in from {
                *into.entry(label).or_default() += n;
            }
        }
    }
    Ok((total, rooms_max))
}

/// One flood socket, again and again until `deadline`: connect from `from`, say hello
/// naming a room nobody has named, read the answer, drop the connection.
async fn flood_socket(
    addr: SocketAddr,
    from: IpAddr,
    socket_idx: usize,
    deadline: Instant,
) -> FloodCounts {
    let mut counts = FloodCounts::default();
    let mut attempt = 0u64;
    while Instant::now() < deadline {
        attempt += 1;
        let room = format!("flood-{socket_idx}-{attempt}");
        match timeout(ANSWER_WAIT, hello_once(addr, from, room)).await {
            Ok(Ok(Answer::Welcome)) => counts.welcomed += 1,
            Ok(Ok(Answer::Refused(label))) => *counts.refused.entry(label).or_default() += 1,
            Ok(Err(cause)) => *counts.failed.entry(cause).or_default() += 1,
            Err(_) => *counts.failed.entry("no_answer".into()).or_default() += 1,
        }
        counts.hellos += 1;
    }
    counts
}

enum Answer {
    Welcome,
    Refused(String),
}

async fn hello_once(addr: SocketAddr, from: IpAddr, room: String) -> Result<Answer, String> {
    let socket = TcpSocket::new_v4().map_err(|_| "socket".to_owned())?;
    socket
        .bind(SocketAddr::new(from, 0))
        .map_err(|_| "bind_source_address".to_owned())?;
    let stream = socket
        .connect(addr)
        .await
        .map_err(|_| "connect".to_owned())?;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
        .await
        .map_err(|err| match err {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                format!("http_{}", response.status().as_u16())
            }
            _ => "upgrade".to_owned(),
        })?;
    let hello = ClientMsg::Hello {
        protocol: PROTOCOL_VERSION,
        name: "flood".into(),
        room: Some(room),
        token: None,
        resume: None,
        reservation: None,
        spectate: false,
    };
    ws.send(Message::binary(encode_client(&hello)))
        .await
        .map_err(|_| "send_hello".to_owned())?;
    while let Some(msg) = ws.next().await {
        let Ok(Message::Binary(bytes)) = msg else {
            break;
        };
        match decode_server(&bytes) {
            Ok(ServerMsg::Welcome(_)) => return Ok(Answer::Welcome),
            Ok(ServerMsg::Disconnect { reason, .. }) => {
                return Ok(Answer::Refused(reason.label().to_owned()));
            }
            _ => {}
        }
    }
    Err("closed_without_answer".to_owned())
}

fn rooms_listed(server: &ServerProcess) -> anyhow::Result<usize> {
    room_count(&server.get("/api/rooms").context("list the rooms")?)
}

fn room_count(listing: &str) -> anyhow::Result<usize> {
    let rooms: Vec<serde_json::Value> =
        serde_json::from_str(listing).context("parse /api/rooms")?;
    Ok(rooms.len())
}
