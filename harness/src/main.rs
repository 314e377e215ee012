//! `harness`: runs a release server under measured load and reports in JSON. `soak` for
//! endurance (bots, churn, faults, a latency proxy), `load` for capacity, `bench-net`
//! for bandwidth, `bots` for a plain swarm, `flood` for a flood of new rooms,
//! `store-bench` for the match store's reads and writes, `console-cost` for what the
//! operations console costs, `tls-memory` for what TLS adds to an idle connection,
//! `replay-size` for replay bytes per player-minute, `cluster-cost` for what a cluster of
//! processes on Redis costs a join and Redis. `cargo xtask` builds and runs it.

mod bots_process;
mod commands;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The Skirmish load, soak and bandwidth harness.
#[derive(Debug, Parser)]
#[command(name = "harness", args_override_self = true)]
struct Cli {
    #[command(flatten)]
    binaries: BinaryArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the programs under test are and where reports go. The defaults suit a cargo
/// build: the binaries beside this one, the reports in the folder above it (`target`).
#[derive(Debug, clap::Args)]
struct BinaryArgs {
    /// The server binary, a release build [default: `server` beside this program].
    #[arg(long, global = true, help_heading = "Programs and reports")]
    server: Option<PathBuf>,
    /// The bots binary [default: `bots` beside this program].
    #[arg(long, global = true, help_heading = "Programs and reports")]
    bots_binary: Option<PathBuf>,
    /// Folder for reports and logs [default: the folder above this program's].
    #[arg(long, global = true, help_heading = "Programs and reports")]
    out_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Soak the server: bots with churn, faults and a latency proxy; JSON verdict.
    Soak(commands::soak::Args),
    /// The capacity run: playing bots in steps until the delivery or lateness bar
    /// fails, then memory per idle connection.
    Load(commands::load::Args),
    /// The bandwidth benchmark: bytes per client, snapshot sizes, encode time.
    BenchNet(commands::bench_net::Args),
    /// Start a server on a free port (unless given --url) and play N bots against it.
    Bots(commands::bots::Args),
    /// One address floods a default server with new rooms while players elsewhere play.
    Flood(commands::flood::Args),
    /// The match store: REST reads of a 100,000-player database under load, and room
    /// ticks while a second process writes 1,000 results a second into it.
    StoreBench(commands::store_bench::Args),
    /// What the operations console costs a server carrying 1,000 playing bots.
    ConsoleCost(commands::console_cost::Args),
    /// Memory per idle connection over wss:// against ws://, measured in one run.
    TlsMemory(commands::tls_memory::Args),
    /// Replay size per player-minute: bots play one match, its replay is read back.
    ReplaySize(commands::replay_size::Args),
    /// Two processes on a private Redis: join latency through another process, and
    /// Redis commands per second per 1,000 players.
    ClusterCost(commands::cluster_cost::Args),
}

/// The resolved paths every command works with.
#[derive(Debug)]
pub struct Binaries {
    pub server: PathBuf,
    pub bots: PathBuf,
    pub out_dir: PathBuf,
}

impl BinaryArgs {
    fn resolve(self) -> anyhow::Result<Binaries> {
        let this_program = std::env::current_exe().context("find this program's path")?;
        let beside = this_program.parent().unwrap_or(Path::new("."));
        let binaries = Binaries {
            server: self.server.unwrap_or_else(|| beside.join("server")),
            bots: self.bots_binary.unwrap_or_else(|| beside.join("bots")),
            out_dir: self
                .out_dir
                .unwrap_or_else(|| beside.parent().unwrap_or(beside).to_path_buf()),
        };
        std::fs::create_dir_all(&binaries.out_dir)
            .with_context(|| format!("create {}", binaries.out_dir.display()))?;
        Ok(binaries)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let binaries = cli.binaries.resolve()?;
    match cli.command {
        Command::Soak(args) => commands::soak::run(&args, &binaries),
        Command::Load(args) => commands::load::run(&args, &binaries),
        Command::BenchNet(args) => commands::bench_net::run(&args, &binaries),
        Command::Bots(args) => commands::bots::run(&args, &binaries),
        Command::Flood(args) => commands::flood::run(&args, &binaries),
        Command::StoreBench(args) => commands::store_bench::run(&args, &binaries),
        Command::ConsoleCost(args) => commands::console_cost::run(&args, &binaries),
        Command::TlsMemory(args) => commands::tls_memory::run(&args, &binaries),
        Command::ReplaySize(args) => commands::replay_size::run(&args, &binaries),
        Command::ClusterCost(args) => commands::cluster_cost::run(&args, &binaries),
    }
}
