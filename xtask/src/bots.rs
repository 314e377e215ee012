//! `cargo xtask bots N`: a release server on a free port, N bots against it, the report.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::util::{cargo, exec, root};

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

/// Kills the child server when dropped, so an error path never leaves one running.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// Starts the release server on a free loopback port; returns it and its ws URL.
fn start_server() -> anyhow::Result<(ServerProcess, String)> {
    let mut child = Command::new(root().join("target/release/server"))
        .args(["--addr", "127.0.0.1:0"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .context("start target/release/server")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let server = ServerProcess(child);
    let mut first_line = String::new();
    BufReader::new(stdout)
        .read_line(&mut first_line)
        .context("read the server's first line")?;
    let http = first_line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from the server: {first_line:?}"))?;
    let ws = format!("{}/ws", http.replacen("http://", "ws://", 1));
    Ok((server, ws))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    exec(cargo().args([
        "build",
        "--release",
        "-p",
        "server",
        "-p",
        "client",
        "--bins",
    ]))?;
    let (_server, url) = match args.url {
        Some(url) => (None, url),
        None => {
            let (server, url) = start_server()?;
            (Some(server), url)
        }
    };
    eprintln!(
        "bots: {} bots against {url} for {} s",
        args.count, args.duration
    );
    exec(
        Command::new(root().join("target/release/bots"))
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
