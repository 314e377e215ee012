//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//! `build` makes the browser bundle, `serve` builds and runs the game (`--tls` for HTTPS
//! with a local CA), `test` runs every check CI runs; `bots`, `bench-net`, `load`, `soak`,
//! `flood`, `store-bench`, `console-cost`, `tls-memory`, `replay-size` and `cluster-cost`
//! build and run the harness, which plays bots against a release server and measures
//! bandwidth, capacity, endurance, the match store, the operations console's cost, the
//! memory TLS costs, the size of replays and a cluster's cost; `lag-compensation` prints
//! the hit rates its test measures.

mod build;
mod compliance;
mod deny;
mod harness;
mod lag_compensation;
mod programs;
mod serve;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Skirmish build automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build the browser bundle (wasm, JS glue, page, styles) and print its size.
    Build(build::Args),
    /// Build everything and serve the game (release build) until Ctrl-C; `--tls` serves
    /// HTTPS with a local CA's certificate for localhost.
    Serve(serve::Args),
    /// Run every check: fmt, clippy (native and wasm32), all tests, and the browser tests.
    Test(test::Args),
    /// Start a release server on a free port and play N headless bots against it
    /// (`harness bots`).
    Bots(harness::Args),
    /// The bandwidth benchmark: bytes per client, snapshot sizes, encode time
    /// (`harness bench-net`).
    BenchNet(harness::Args),
    /// The capacity run: playing bots in steps until the delivery or lateness bar
    /// fails, then memory per idle connection (`harness load`).
    Load(harness::Args),
    /// Run the Autobahn WebSocket cases against the server and check the verdicts.
    Compliance(compliance::Args),
    /// Audit dependencies with cargo-deny against the RustSec snapshot, or a fetched
    /// advisory database when no snapshot is there.
    Deny(deny::Args),
    /// Soak a release server: bots with churn, faults and a latency proxy; JSON report
    /// (`harness soak`).
    Soak(harness::Args),
    /// Flood a release server with default flags with new rooms from one address while
    /// players elsewhere play; JSON report (`harness flood`).
    Flood(harness::Args),
    /// The match store: REST reads of a seeded 100,000-player database with 200 requests
    /// in flight, and room ticks while a second process writes 1,000 results a second
    /// into the same database; JSON report (`harness store-bench`).
    StoreBench(harness::Args),
    /// What the operations console costs: server CPU with and without consoles open
    /// while 1,000 bots play; JSON report (`harness console-cost`).
    ConsoleCost(harness::Args),
    /// Memory per idle connection over wss:// against ws://, in one run; JSON report
    /// (`harness tls-memory`).
    TlsMemory(harness::Args),
    /// Replay bytes per player-minute: bots play one match and its replay is read back;
    /// JSON report (`harness replay-size`).
    ReplaySize(harness::Args),
    /// Two server processes on a private Redis: join latency through another process
    /// (p50, p99) and Redis commands per second per 1,000 players; JSON report
    /// (`harness cluster-cost`).
    ClusterCost(harness::Args),
    /// Hit rates of a shooter a 150 ms round trip away, aiming where it draws a running
    /// target, with lag compensation and without (the server's integration test).
    LagCompensation,
}

/// Errors print as one line, the failed step and its causes joined by colons, whatever
/// RUST_BACKTRACE says: CI's log should end with what went wrong, not a stack.
fn main() -> ExitCode {
    match run(Cli::parse().task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Build(args) => build::run(args),
        Task::Serve(args) => serve::run(args),
        Task::Test(args) => test::run(args),
        Task::Bots(args) => harness::run(harness::Run::Bots, args),
        Task::BenchNet(args) => harness::run(harness::Run::BenchNet, args),
        Task::Load(args) => harness::run(harness::Run::Load, args),
        Task::Compliance(args) => compliance::run(args),
        Task::Deny(args) => deny::run(args),
        Task::Soak(args) => harness::run(harness::Run::Soak, args),
        Task::Flood(args) => harness::run(harness::Run::Flood, args),
        Task::StoreBench(args) => harness::run(harness::Run::StoreBench, args),
        Task::ConsoleCost(args) => harness::run(harness::Run::ConsoleCost, args),
        Task::TlsMemory(args) => harness::run(harness::Run::TlsMemory, args),
        Task::ReplaySize(args) => harness::run(harness::Run::ReplaySize, args),
        Task::ClusterCost(args) => harness::run(harness::Run::ClusterCost, args),
        Task::LagCompensation => lag_compensation::run(),
    }
}
