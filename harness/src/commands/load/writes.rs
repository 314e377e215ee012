//! Counting the server's socket writes with `strace -c -f` while bots play: each client
//! should get one write per snapshot, the messages queued since the last snapshot riding
//! in the same write. Pongs and pings are the only other writes.

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::{ServerSetup, playing_swarm, start_server};
use crate::Binaries;
use crate::commands::metric;

/// System calls that write to sockets, counted over a short window.
#[derive(Debug, Serialize)]
pub(super) struct WriteCount {
    pub players: usize,
    pub seconds: f64,
    pub snapshots_sent: f64,
    /// writev, write, sendto and sendmsg calls.
    pub socket_writes: f64,
    pub writes_per_snapshot: f64,
}

/// Whether `strace` runs here.
pub(super) fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Counts the server's socket writes under strace while `players` bots play.
pub(super) fn count_writes(
    players: usize,
    seconds: f64,
    setup: ServerSetup,
    binaries: &Binaries,
) -> anyhow::Result<WriteCount> {
    let server = start_server(setup, binaries)?;
    let url = server.ws_url("/ws");
    let swarm = playing_swarm(&url, players, seconds + 6.0);
    let _bots = swarm.spawn(&binaries.bots)?;
    sleep(swarm.ramp + Duration::from_secs(2));
    let summary = binaries.out_dir.join("load/strace.txt");
    let sent = || metric(&server, "skirmish_snapshot_recipients_total");
    let before = sent()?;
    let mut strace = Command::new("strace")
        .args(["-c", "-f", "-p", &server.pid().to_string(), "-o"])
        .arg(&summary)
        .stderr(Stdio::null())
        .spawn()
        .context("run strace (apt-get install strace)")?;
    sleep(Duration::from_secs_f64(seconds));
    // strace prints its summary when interrupted.
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let snapshots_sent = sent()? - before;
    let text = std::fs::read_to_string(&summary).context("read the strace summary")?;
    let socket_writes = socket_writes_in(&text);
    Ok(WriteCount {
        players,
        seconds,
        snapshots_sent,
        socket_writes,
        writes_per_snapshot: socket_writes / snapshots_sent.max(1.0),
    })
}

/// Calls to the socket-writing syscalls in an `strace -c` summary, whose rows are
/// % time, seconds, usecs/call, calls, [errors], syscall.
fn socket_writes_in(summary: &str) -> f64 {
    summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = *fields.last()?;
            matches!(name, "writev" | "write" | "sendto" | "sendmsg")
                .then(|| fields.get(3)?.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_writes_are_summed_from_the_calls_column() {
        let summary = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.300000          10     30000           writev
 30.00    0.150000           5     30000       120 epoll_wait
 10.00    0.050000           5     10000        12 sendto
------ ----------- ----------- --------- --------- ----------------
100.00    0.500000           7     70000       132 total
";
        assert_eq!(
            socket_writes_in(summary),
            40_000.0,
            "writev and sendto count; epoll_wait and the total row do not"
        );
    }
}
