//! Counting a running server's system calls with `strace -c -f` over a bounded window.
//! strace slows every call it sees, so a window is counted apart from the one CPU is
//! measured in.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use anyhow::Context;

/// System calls counted in one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SyscallCount {
    pub total: f64,
    /// writev, write, sendto and sendmsg calls.
    pub socket_writes: f64,
    /// read, readv, recvfrom and recvmsg calls.
    pub socket_reads: f64,
    /// epoll_wait and epoll_pwait: the wakeups.
    pub epoll_waits: f64,
}

/// Whether `strace` runs here; the load run says so once and counts nothing without it.
pub(super) fn available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Counts every thread's calls of process `pid` for `seconds`, keeping strace's summary
/// in `summary`.
pub(super) fn count(pid: u32, seconds: f64, summary: &Path) -> anyhow::Result<SyscallCount> {
    let mut strace = Command::new("strace")
        .args(["-c", "-f", "-p", &pid.to_string(), "-o"])
        .arg(summary)
        .stderr(Stdio::null())
        .spawn()
        .context("run strace (apt-get install strace)")?;
    sleep(Duration::from_secs_f64(seconds));
    // strace prints its summary when interrupted.
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let text = std::fs::read_to_string(summary).context("read the strace summary")?;
    Ok(parse_summary(&text))
}

/// An `strace -c` summary, whose rows are % time, seconds, usecs/call, calls,
/// [errors], syscall, and whose last row is the total.
fn parse_summary(summary: &str) -> SyscallCount {
    let calls = |names: &[&str]| -> f64 {
        summary
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let name = *fields.last()?;
                names
                    .contains(&name)
                    .then(|| fields.get(3)?.parse::<f64>().ok())
                    .flatten()
            })
            .sum()
    };
    SyscallCount {
        total: calls(&["total"]),
        socket_writes: calls(&["writev", "write", "sendto", "sendmsg"]),
        socket_reads: calls(&["read", "readv", "recvfrom", "recvmsg"]),
        epoll_waits: calls(&["epoll_wait", "epoll_pwait"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_summed_from_the_calls_column_by_kind() {
        let summary = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 50.00    0.300000          10     30000           writev
 20.00    0.100000           3     30000     15000 recvfrom
 20.00    0.150000           5     30000       120 epoll_wait
 10.00    0.050000           5     10000        12 sendto
------ ----------- ----------- --------- --------- ----------------
100.00    0.600000           6    100000     15132 total
";
        assert_eq!(
            parse_summary(summary),
            SyscallCount {
                total: 100_000.0,
                socket_writes: 40_000.0,
                socket_reads: 30_000.0,
                epoll_waits: 30_000.0,
            },
            "writev and sendto are writes, recvfrom a read; the total row is the total"
        );
    }
}
