//! `cargo xtask bots N`: a release server on a free port, N bots against it, the report.

use std::process::Command;

use crate::server_process::ServerProcess;
use crate::util::{build_release_bins, exec, target_dir};

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

pub fn run(args: Args) -> anyhow::Result<()> {
    build_release_bins()?;
    let (_server, url) = match args.url {
        Some(url) => (None, url),
        None => {
            // Every bot comes from 127.0.0.1: lift the per-address cap for the swarm.
            let server = ServerProcess::start(
                &target_dir().join("release/server"),
                &["--max-connections-per-ip".to_owned(), "100000".to_owned()],
                None,
            )?;
            let url = server.ws_url("/ws");
            (Some(server), url)
        }
    };
    eprintln!(
        "bots: {} bots against {url} for {} s",
        args.count, args.duration
    );
    exec(
        Command::new(target_dir().join("release/bots"))
            .args([
                "--url",
                &url,
                "--count",
                &args.count.to_string(),
                "--duration",
                &args.duration.to_string(),
            ])
            .args(&args.bots_args),
    )
}
