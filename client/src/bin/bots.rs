//! `bots`: headless players for soak and load runs. Prints one JSON report as its last
//! stdout line and exits non-zero if any bot failed, saying on stderr how many and why.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use client::bots::{BotsConfig, run};
use client::native::Trust;

/// Headless Skirmish bots that join over real WebSockets and play.
#[derive(Debug, Parser)]
#[command(name = "bots", version)]
struct Args {
    /// The server's game WebSocket, e.g. ws://127.0.0.1:8080/ws or
    /// wss://play.example.com/ws.
    #[arg(long)]
    url: String,
    /// A certificate authority (PEM) to trust for wss:// besides the public ones, such
    /// as the local one `cargo xtask serve --tls` makes.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Number of bots.
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Seconds each bot plays after joining.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Room to join by name; without it, bots join-or-create like players.
    #[arg(long)]
    room: Option<String>,
    /// Seconds over which the bots' joins are spread.
    #[arg(long, default_value_t = 1.0)]
    ramp: f64,
    /// Seed for the bots' choices, so runs repeat.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Nickname prefix; bot i is named PREFIX + i.
    #[arg(long, default_value = "bot")]
    name_prefix: String,
    /// Join, then send no input: only acknowledge snapshots and ping.
    #[arg(long)]
    idle: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.duration.is_finite() && args.duration >= 0.0,
        "--duration must be a non-negative number"
    );
    anyhow::ensure!(
        args.ramp.is_finite() && args.ramp >= 0.0,
        "--ramp must be a non-negative number"
    );
    let trust = match &args.ca_cert {
        Some(path) => Trust::with_ca_file(path)?,
        None => Trust::public(),
    };
    let report = run(BotsConfig {
        url: args.url,
        trust,
        count: args.count,
        duration: Duration::from_secs_f64(args.duration),
        room: args.room,
        name_prefix: args.name_prefix,
        seed: args.seed,
        ramp: Duration::from_secs_f64(args.ramp),
        idle: args.idle,
    })
    .await;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
    stdout.flush()?;
    if report.failed > 0 {
        eprintln!(
            "bots: {} of {} failed: {:?}",
            report.failed, report.bots, report.failures
        );
        std::process::exit(1);
    }
    Ok(())
}
