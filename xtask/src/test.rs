//! `cargo xtask test`: every check CI runs, in order from cheapest to slowest.

use crate::util::{cargo, ensure_target, exec};
use crate::{compliance, deny, soak};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    exec(cargo().args(["fmt", "--all", "--", "--check"]))?;
    exec(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    ensure_target("wasm32-unknown-unknown")?;
    exec(cargo().args([
        "check",
        "-p",
        "shared",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    exec(cargo().args(["test", "--workspace"]))?;
    deny::run(deny::Args::default())?;
    compliance::run(compliance::Args::default())?;
    soak::short()?;
    Ok(())
}
