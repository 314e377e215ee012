//! Counting a running server's system calls with `perf stat` on the kernel's syscall
//! tracepoints, for as long as a step's window lasts. Counting in the kernel costs the
//! server next to nothing, unlike strace, which stops it at every call: under strace a
//! loaded server makes a different (smaller) number of calls than without.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// What is counted: every system call, then the kinds that carry the network path.
const EVENTS: [&str; 9] = [
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_read",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_pwait",
    "syscalls:sys_enter_futex",
];

/// System calls counted in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct SyscallCount {
    pub total: f64,
    /// read and recvfrom.
    pub socket_reads: f64,
    /// write, writev and sendto.
    pub socket_writes: f64,
    /// epoll_wait and epoll_pwait: how often a thread went to sleep for events.
    pub epoll_waits: f64,
    /// Wakeups between threads.
    pub futex: f64,
}

/// Whether `perf` can count syscall tracepoints here; the load run says so once and
/// counts nothing without it.
pub(super) fn available() -> bool {
    Command::new("perf")
        .args(["stat", "-x,", "-e", EVENTS[0], "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A count under way; `finish` stops it and reads it.
pub(super) struct Counting {
    perf: Child,
    out: PathBuf,
}

/// Starts counting every thread of process `pid`, keeping perf's output in `out`.
pub(super) fn start(pid: u32, out: &Path) -> anyhow::Result<Counting> {
    let perf = Command::new("perf")
        .args([
            "stat",
            "-x,",
            "-e",
            &EVENTS.join(","),
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("run perf (apt-get install linux-perf)")?;
    Ok(Counting {
        perf,
        out: out.to_owned(),
    })
}

impl Counting {
    pub(super) fn finish(mut self) -> anyhow::Result<SyscallCount> {
        // perf prints its counts when interrupted.
        let _ = Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status();
        let _ = self.perf.wait();
        let text = std::fs::read_to_string(&self.out).context("read perf's counts")?;
        Ok(parse_counts(&text))
    }
}

/// `perf stat -x,` lines: count, unit, event, then run time and share; `#` lines are
/// comments, and an event that was not counted has no number.
fn parse_counts(text: &str) -> SyscallCount {
    let count = |events: &[&str]| -> f64 {
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(',');
                let value = fields.next()?.parse::<f64>().ok()?;
                let event = fields.nth(1)?;
                events
                    .iter()
                    .any(|wanted| event == format!("syscalls:sys_enter_{wanted}"))
                    .then_some(value)
            })
            .sum()
    };
    let total = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            let value = fields.next()?.parse::<f64>().ok()?;
            (fields.nth(1)? == EVENTS[0]).then_some(value)
        })
        .sum();
    SyscallCount {
        total,
        socket_reads: count(&["read", "recvfrom"]),
        socket_writes: count(&["write", "writev", "sendto"]),
        epoll_waits: count(&["epoll_wait", "epoll_pwait"]),
        futex: count(&["futex"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_by_event_and_grouped_by_kind() {
        let text = "\
# started on Tue Dec  1 21:03:12 2026

1000,,raw_syscalls:sys_enter,1807491,100.00,,
300,,syscalls:sys_enter_read,1807491,100.00,,
20,,syscalls:sys_enter_recvfrom,1807491,100.00,,
<not counted>,,syscalls:sys_enter_write,0,0.00,,
250,,syscalls:sys_enter_writev,1807491,100.00,,
5,,syscalls:sys_enter_epoll_wait,1807491,100.00,,
100,,syscalls:sys_enter_futex,1807491,100.00,,
";
        assert_eq!(
            parse_counts(text),
            SyscallCount {
                total: 1000.0,
                socket_reads: 320.0,
                socket_writes: 250.0,
                epoll_waits: 5.0,
                futex: 100.0,
            },
            "an uncounted event adds nothing; the raw total is not a kind"
        );
    }
}
