//! `cargo xtask soak`: release builds of the server and the soak harness, then the
//! harness's run; its JSON report is written to `<target>/soak-report.json`.

use std::process::Command;

use crate::util::{build_release_bins, exec, target_dir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flags for the soak harness (see `soak --help`), after `--`; for example
    /// `-- --bots 500 --duration 1800` for the long run.
    #[arg(last = true)]
    soak_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    build_release_bins()?;
    let release = target_dir().join("release");
    exec(
        Command::new(release.join("soak"))
            .arg("--server")
            .arg(release.join("server"))
            .arg("--report")
            .arg(target_dir().join("soak-report.json"))
            .args(&args.soak_args),
    )
}

/// The short variant CI runs: about a minute, 200 bots.
pub fn short() -> anyhow::Result<()> {
    run(Args {
        soak_args: vec![
            "--bots".into(),
            "200".into(),
            "--duration".into(),
            "60".into(),
        ],
    })
}
