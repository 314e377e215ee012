//! The bots binary as a child process, for the runs that measure the bots' CPU apart
//! from the harness's own: its flags, and its JSON report read back as the client's
//! `Report`.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use client::bots::Report;

/// One swarm: what `bots --help` takes.
#[derive(Clone, Debug)]
pub struct Swarm<'a> {
    pub url: &'a str,
    pub count: usize,
    pub duration: Duration,
    /// Joins spread over this long.
    pub ramp: Duration,
    /// Join this room by name instead of join-or-create.
    pub room: Option<&'a str>,
    pub seed: u64,
    pub idle: bool,
    /// A certificate authority to trust for a `wss://` URL.
    pub ca_cert: Option<&'a Path>,
}

#[derive(Debug)]
pub struct BotsProcess {
    /// Taken by `report`, which waits for it; still here if the run ends early.
    child: Option<Child>,
}

impl Swarm<'_> {
    /// Starts the swarm; its report is read with `BotsProcess::report`.
    pub fn spawn(&self, binary: &Path) -> anyhow::Result<BotsProcess> {
        let mut bots = Command::new(binary);
        bots.args(["--url", self.url, "--count", &self.count.to_string()])
            .args(["--duration", &self.duration.as_secs_f64().to_string()])
            .args(["--ramp", &self.ramp.as_secs_f64().to_string()])
            .args(["--seed", &self.seed.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(room) = self.room {
            bots.args(["--room", room]);
        }
        if self.idle {
            bots.arg("--idle");
        }
        if let Some(ca_cert) = self.ca_cert {
            bots.arg("--ca-cert").arg(ca_cert);
        }
        let child = bots
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        Ok(BotsProcess { child: Some(child) })
    }
}

impl BotsProcess {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for the swarm to finish; its report and exit status (non-zero when a bot
    /// failed, which the report's `failures` then explain).
    pub fn report(mut self) -> anyhow::Result<(Report, ExitStatus)> {
        let child = self
            .child
            .take()
            .context("the bots were already waited for")?;
        let output = child.wait_with_output().context("wait for the bots")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout
            .lines()
            .last()
            .with_context(|| format!("the bots printed no report ({})", output.status))?;
        let report =
            serde_json::from_str(last).with_context(|| format!("parse the bots' report {last}"))?;
        Ok((report, output.status))
    }
}

impl Drop for BotsProcess {
    /// A swarm left behind by an error path would keep loading the next run.
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
