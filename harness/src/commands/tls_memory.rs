//! `harness tls-memory`: what one idle connection costs the server over wss:// and over
//! ws://, measured in the same run: for each count, a fresh release server each way,
//! that many idle bots, and the server's resident memory before and after. Writes JSON.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::ServerProcess;
use harness::certs::Authority;
use harness::procfs;
use serde::Serialize;
use shared::consts::DEFAULT_ROOM_CAPACITY;

use crate::Binaries;
use crate::bots_process::Swarm;
use crate::commands::{machine, raise_open_files_limit, server_command};

/// How long the run's certificates are valid: the run takes minutes.
const CERT_VALIDITY: Duration = Duration::from_secs(86_400);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Idle connections to open each way, one server per count and transport.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    connections: Vec<usize>,
    /// Snapshot rate of the rooms the connections sit in (ticking at twice it). Memory
    /// per connection does not depend on it (`harness load` checks that); CPU does, and
    /// two cores must also carry the bots.
    #[arg(long, default_value_t = 2)]
    snapshot_hz: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Transport {
    Ws,
    Wss,
}

#[derive(Debug, Serialize)]
struct Measurement {
    transport: Transport,
    connections: usize,
    baseline_rss_mib: f64,
    server_rss_mib: f64,
    kib_per_connection: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    snapshot_hz: u16,
    runs: Vec<Measurement>,
}

/// The server's certificate, its key and the CA the bots trust, as files.
#[derive(Debug)]
struct CertFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn write_certs(dir: &Path) -> anyhow::Result<CertFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let authority = Authority::new("Skirmish tls-memory CA", CERT_VALIDITY)?;
    let leaf = authority.issue_localhost(1, CERT_VALIDITY)?;
    let files = CertFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for (path, pem) in [
        (&files.ca, &authority.cert_pem),
        (&files.cert, &leaf.cert_pem),
        (&files.key, &leaf.key_pem),
    ] {
        std::fs::write(path, pem).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(files)
}

fn start_server(
    transport: Transport,
    snapshot_hz: u16,
    certs: &CertFiles,
    binaries: &Binaries,
) -> anyhow::Result<ServerProcess> {
    let mut command = server_command(&binaries.server);
    command
        .args(["--room-capacity", &DEFAULT_ROOM_CAPACITY.to_string()])
        .args(["--max-connections", "100000"])
        .args(["--tick-hz", &(snapshot_hz * 2).to_string()])
        .args(["--snapshot-hz", &snapshot_hz.to_string()])
        .stderr(Stdio::null());
    if transport == Transport::Wss {
        command
            .arg("--tls-cert")
            .arg(&certs.cert)
            .arg("--tls-key")
            .arg(&certs.key);
    }
    Ok(ServerProcess::start(command)?)
}

/// Resident memory of a fresh server, then with `connections` idle bots on it. Whether
/// they are all up is read from the server's open descriptors, which both transports
/// show alike (a TLS server's metrics are not reachable over plain HTTP).
fn measure(
    transport: Transport,
    connections: usize,
    snapshot_hz: u16,
    certs: &CertFiles,
    binaries: &Binaries,
) -> anyhow::Result<Measurement> {
    let server = start_server(transport, snapshot_hz, certs, binaries)?;
    sleep(Duration::from_secs(1));
    let baseline_rss_mib = procfs::rss_kib(server.pid()) as f64 / 1024.0;
    let baseline_fds = procfs::open_fds(server.pid());
    let ramp = (connections as f64 / 1000.0).max(1.0);
    let url = server.ws_url("/ws");
    let swarm = Swarm {
        url: &url,
        count: connections,
        duration: Duration::from_secs_f64(ramp + 30.0),
        ramp: Duration::from_secs_f64(ramp),
        room: None,
        seed: 1,
        idle: true,
        ca_cert: (transport == Transport::Wss).then_some(certs.ca.as_path()),
    };
    // Dropped at the end of this function, which stops the swarm early.
    let _bots = swarm.spawn(&binaries.bots)?;
    let deadline = Instant::now() + Duration::from_secs_f64(ramp + 25.0);
    loop {
        let open = procfs::open_fds(server.pid()).saturating_sub(baseline_fds);
        if open >= connections {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {open} of {connections} idle {transport:?} connections came up"
        );
        sleep(Duration::from_millis(250));
    }
    sleep(Duration::from_secs(2));
    let server_rss_mib = procfs::rss_kib(server.pid()) as f64 / 1024.0;
    Ok(Measurement {
        transport,
        connections,
        baseline_rss_mib,
        server_rss_mib,
        kib_per_connection: (server_rss_mib - baseline_rss_mib) * 1024.0 / connections as f64,
    })
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    // Children inherit the raised limit: thousands of idle sockets need as many descriptors.
    raise_open_files_limit()?;
    let out_dir = binaries.out_dir.join("tls-memory");
    let certs = write_certs(&out_dir)?;
    let mut runs = Vec::new();
    for &connections in &args.connections {
        for transport in [Transport::Ws, Transport::Wss] {
            eprintln!("tls-memory: {connections} idle {transport:?} connections");
            let measured = measure(transport, connections, args.snapshot_hz, &certs, binaries)?;
            eprintln!("tls-memory: {}", serde_json::to_string(&measured)?);
            runs.push(measured);
        }
    }
    for pair in runs.chunks(2) {
        if let [ws, wss] = pair {
            println!(
                "{} idle connections: ws {:.2} KiB, wss {:.2} KiB per connection (TLS adds {:.2} KiB)",
                ws.connections,
                ws.kib_per_connection,
                wss.kib_per_connection,
                wss.kib_per_connection - ws.kib_per_connection
            );
        }
    }
    let report = Report {
        machine: machine(", server and bots on the same machine"),
        snapshot_hz: args.snapshot_hz,
        runs,
    };
    let json_path = binaries.out_dir.join("tls-memory.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    println!("report: {}", json_path.display());
    Ok(())
}
