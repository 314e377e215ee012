//! The harness's runs, one module each. They start the server, scrape it and read
//! `/proc` only through the library's launcher, HTTP client and metrics parser.

pub mod bench_net;
pub mod bots;
pub mod cluster_cost;
pub mod console_cost;
pub mod flood;
pub mod load;
pub mod replay_size;
pub mod soak;
pub mod store_bench;
pub mod tls_memory;

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use harness::ServerProcess;

/// The server binary with the flag every run needs: all bots connect from 127.0.0.1,
/// so the per-address connection cap must not apply.
fn server_command(server_binary: &Path) -> Command {
    let mut command = Command::new(server_binary);
    command.args(["--max-connections-per-ip", "100000"]);
    command
}

/// The current value of an unlabelled metric; an error if the server does not export it.
fn metric(server: &ServerProcess, name: &str) -> anyhow::Result<f64> {
    server
        .metrics()?
        .value(name)
        .with_context(|| format!("the server exports no metric {name}"))
}

/// What a report says of the machine it ran on: its cores, then `what` shared them.
fn machine(what: &str) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores{what}")
}

/// Lets this process open as many files as the system allows it: each bot's socket is
/// one, and a run holds thousands.
fn raise_open_files_limit() -> anyhow::Result<()> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
    Ok(())
}
