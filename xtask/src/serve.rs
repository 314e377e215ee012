//! `cargo xtask serve`: build the browser bundle and the release server, then run the
//! server in the foreground serving the bundle at `/`.

use anyhow::Context;

use crate::build::bundle;
use crate::util::{cargo, exec, root, target_dir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flags passed to the server, after `--` (see `server --help`).
    #[arg(last = true)]
    server_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let web_root = bundle()?;
    exec(cargo().args(["build", "--release", "-p", "server", "--bin", "server"]))?;
    let binary = target_dir().join("release/server");
    let mut server = std::process::Command::new(&binary);
    server
        .current_dir(root())
        .arg("--web-root")
        .arg(&web_root)
        .args(&args.server_args);
    let status = server
        .status()
        .with_context(|| format!("start {}", binary.display()))?;
    anyhow::ensure!(status.success(), "server exited with {status}");
    Ok(())
}
