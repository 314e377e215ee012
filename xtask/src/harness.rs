//! `cargo xtask soak|load|bench-net|bots|flood|store-bench|console-cost|tls-memory|cluster-cost`:
//! release builds of the server, the bots and the harness, then `harness SUBCOMMAND`
//! with the flags exactly as given (so `cargo xtask load --help` shows the harness's
//! own help). Reports go to `target/`.

use std::process::Command;

use crate::util::{build_release_bins, exec, target_dir};

/// Everything after the task's name, handed to the harness untouched.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Flags for the harness's subcommand; see `cargo xtask <task> --help`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    harness_args: Vec<String>,
}

/// The harness's subcommands that xtask runs.
#[derive(Clone, Copy, Debug)]
pub enum Run {
    Soak,
    Load,
    BenchNet,
    Bots,
    Flood,
    StoreBench,
    ConsoleCost,
    TlsMemory,
    ReplaySize,
    ClusterCost,
}

impl Run {
    fn subcommand(self) -> &'static str {
        match self {
            Run::Soak => "soak",
            Run::Load => "load",
            Run::BenchNet => "bench-net",
            Run::Bots => "bots",
            Run::Flood => "flood",
            Run::StoreBench => "store-bench",
            Run::ConsoleCost => "console-cost",
            Run::TlsMemory => "tls-memory",
            Run::ReplaySize => "replay-size",
            Run::ClusterCost => "cluster-cost",
        }
    }
}

pub fn run(what: Run, args: Args) -> anyhow::Result<()> {
    build_release_bins()?;
    let release = target_dir().join("release");
    exec(
        Command::new(release.join("harness"))
            .arg(what.subcommand())
            .arg("--server")
            .arg(release.join("server"))
            .arg("--bots-binary")
            .arg(release.join("bots"))
            .arg("--out-dir")
            .arg(target_dir())
            .args(&args.harness_args),
    )
}

/// The short soak CI runs: about a minute, 200 bots.
pub fn short_soak() -> anyhow::Result<()> {
    let flags = ["--bots", "200", "--duration", "60"];
    run(
        Run::Soak,
        Args {
            harness_args: flags.map(String::from).to_vec(),
        },
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, Task};

    /// What the harness would be given for `cargo xtask ARGS..`.
    fn passed_on(args: &[&str]) -> Vec<String> {
        let cli = Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
            .unwrap_or_else(|err| panic!("xtask should accept {args:?}: {err}"));
        match cli.task {
            Task::Soak(args)
            | Task::Load(args)
            | Task::BenchNet(args)
            | Task::Bots(args)
            | Task::Flood(args)
            | Task::StoreBench(args)
            | Task::ConsoleCost(args)
            | Task::TlsMemory(args)
            | Task::ReplaySize(args) => args.harness_args,
            other => panic!("{other:?} is not a harness task"),
        }
    }

    #[test]
    fn flags_reach_the_harness_unchanged() {
        assert_eq!(
            passed_on(&["load", "--steps", "50,100", "--hold", "2"]),
            ["--steps", "50,100", "--hold", "2"]
        );
        assert_eq!(passed_on(&["bench-net", "--help"]), ["--help"]);
        assert_eq!(
            passed_on(&["store-bench", "--read-secs", "5"]),
            ["--read-secs", "5"]
        );
    }

    #[test]
    fn soak_flags_after_a_double_dash_still_work() {
        assert_eq!(
            passed_on(&["soak", "--", "--bots", "500", "--duration", "1800"]),
            ["--bots", "500", "--duration", "1800"],
            "the README's `cargo xtask soak -- FLAGS` form should keep working"
        );
    }

    #[test]
    fn bots_keep_their_count_and_their_own_double_dash() {
        assert_eq!(
            passed_on(&["bots", "16", "--duration", "5", "--", "--idle"]),
            ["16", "--duration", "5", "--", "--idle"],
            "flags after `--` are for the bots binary, so the `--` must reach the harness"
        );
    }
}
