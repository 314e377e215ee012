//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//! `build` makes the browser bundle, `serve` builds and runs the game, `test` runs every
//! check CI runs, `bots` plays a swarm of headless bots against a fresh release server,
//! `bench-net`, `load` and `soak` measure bandwidth, capacity and endurance.

mod bench_net;
mod bots;
mod browser;
mod build;
mod compliance;
mod deny;
mod load;
mod prom;
mod serve;
mod server_process;
mod soak;
mod test;
mod util;

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
    /// Build everything and serve the game (release build) until Ctrl-C.
    Serve(serve::Args),
    /// Run every check: fmt, clippy (native and wasm32), all tests, and the browser tests.
    Test(test::Args),
    /// Start a release server on a free port and play N headless bots against it.
    Bots(bots::Args),
    /// The bandwidth benchmark: bytes per client, snapshot sizes, encode time.
    BenchNet(bench_net::Args),
    /// The capacity run: playing bots in steps until the delivery or lateness bar
    /// fails, then memory per idle connection.
    Load(load::Args),
    /// Run the Autobahn WebSocket cases against the server and check the verdicts.
    Compliance(compliance::Args),
    /// Audit dependencies with cargo-deny against the offline RustSec snapshot.
    Deny(deny::Args),
    /// Soak a release server: bots with churn, faults and a latency proxy; JSON report.
    Soak(soak::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Build(args) => build::run(args),
        Task::Serve(args) => serve::run(args),
        Task::Test(args) => test::run(args),
        Task::Bots(args) => bots::run(args),
        Task::BenchNet(args) => bench_net::run(args),
        Task::Load(args) => load::run(args),
        Task::Compliance(args) => compliance::run(args),
        Task::Deny(args) => deny::run(args),
        Task::Soak(args) => soak::run(args),
    }
}
