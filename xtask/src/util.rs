//! Running commands: echo them, fail loudly, and find the workspace.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (the parent of this crate's folder).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where cargo puts build output: `CARGO_TARGET_DIR` if set, else the workspace's `target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// `cargo` as invoked by the user, run from the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command to completion, printing it first; a non-zero exit is an error.
pub fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("start {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("start {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed with {}: {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Makes sure a rustup target is installed (rust-toolchain.toml lists it, but an
/// already-installed toolchain does not always pick up new targets by itself).
pub fn ensure_target(target: &str) -> anyhow::Result<()> {
    let installed = output(
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .current_dir(root()),
    )
    .unwrap_or_default();
    if !installed.lines().any(|line| line.trim() == target) {
        exec(
            Command::new("rustup")
                .args(["target", "add", target])
                .current_dir(root()),
        )?;
    }
    Ok(())
}

/// Runs a step and says how long it took, so slow CI steps are visible.
pub fn timed(step: &str, run: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let result = run();
    eprintln!("{step}: {:.1} s", started.elapsed().as_secs_f64());
    result
}

/// The release binaries every task that runs the server uses: `server`, `bots` and
/// `harness`. One build for all of them, so they share one set of features and no task
/// rebuilds what another built.
pub fn build_release_bins() -> anyhow::Result<()> {
    exec(cargo().args([
        "build",
        "--release",
        "-p",
        "server",
        "-p",
        "client",
        "-p",
        "harness",
        "--bins",
    ]))
}
