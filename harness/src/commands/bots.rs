//! `harness bots N`: a release server on a free port (unless `--url` names one), N bots
//! against it, and their JSON report.

use std::process::{Command, Stdio};

use anyhow::Context;
use harness::ServerProcess;

use crate::Binaries;
use crate::commands::server_command;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of bots.
    count: usize,
    /// Seconds the bots play.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Play against this server instead of starting one (e.g. ws://127.0.0.1:8080/ws).
    #[arg(long)]
    url: Option<String>,
    /// Extra flags for the bots (see `bots --help`), after `--`.
    #[arg(last = true)]
    bots_args: Vec<String>,
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    let (_server, url) = match &args.url {
        Some(url) => (None, url.clone()),
        None => {
            let mut command = server_command(&binaries.server);
            command.stderr(Stdio::inherit());
            let server = ServerProcess::start(command)?;
            let url = server.ws_url("/ws");
            (Some(server), url)
        }
    };
    eprintln!(
        "bots: {} bots against {url} for {} s",
        args.count, args.duration
    );
    let status = Command::new(&binaries.bots)
        .args(["--url", &url, "--count", &args.count.to_string()])
        .args(["--duration", &args.duration.to_string()])
        .args(&args.bots_args)
        .status()
        .with_context(|| format!("start {}", binaries.bots.display()))?;
    anyhow::ensure!(status.success(), "the bots exited with {status}");
    Ok(())
}
