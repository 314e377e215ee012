//! What `/proc` tells about a process from outside: resident memory, open descriptors
//! and CPU time, for the whole process or for its threads of one name. Each reads 0 when
//! the process is gone or `/proc` is not there, so a report shows a gap, not an error.

use std::path::Path;
use std::process::Command;

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// The one-, five- and fifteen-minute load averages as `/proc/loadavg` gives them, to
/// say how busy the machine was; empty if it cannot be read.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Kernel clock ticks per second, the unit of the CPU times in `stat`.
#[derive(Clone, Copy, Debug)]
pub struct ClockTicks(f64);

impl ClockTicks {
    /// Asks `getconf CLK_TCK`; 100, Linux's usual value, if that fails.
    pub fn of_this_machine() -> ClockTicks {
        let ticks = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        ClockTicks(ticks)
    }
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32, clock_ticks: ClockTicks) -> f64 {
    cpu_seconds_in(Path::new(&format!("/proc/{pid}/stat")), clock_ticks)
}

/// CPU seconds used so far by the threads of a process whose name starts with `prefix`
/// (the server names its room threads `rooms-N`).
pub fn threads_cpu_seconds(pid: u32, prefix: &str, clock_ticks: ClockTicks) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .map(|task| cpu_seconds_in(&task.path().join("stat"), clock_ticks))
        .sum()
}

fn cpu_seconds_in(stat_path: &Path, clock_ticks: ClockTicks) -> f64 {
    std::fs::read_to_string(stat_path).map_or(0.0, |stat| cpu_seconds_of_stat(&stat, clock_ticks))
}

/// utime + stime from a `stat` line. The command name in parentheses may hold spaces,
/// so fields are counted from after its closing parenthesis, where field 3 (state)
/// starts; utime and stime are fields 14 and 15.
fn cpu_seconds_of_stat(stat: &str, clock_ticks: ClockTicks) -> f64 {
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    field(14)
        .zip(field(15))
        .map_or(0.0, |(user, system)| (user + system) / clock_ticks.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat = "42 (rooms 1) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100";
        let seconds = cpu_seconds_of_stat(stat, ClockTicks(100.0));
        assert!(
            (seconds - 3.0).abs() < 1e-9,
            "250 user + 50 system ticks at 100 Hz should be 3 s, got {seconds}"
        );
    }

    #[test]
    fn this_process_has_memory_and_descriptors() {
        let pid = std::process::id();
        assert!(rss_kib(pid) > 0, "a running process has resident memory");
        assert!(open_fds(pid) > 0, "a running process has stdin/stdout open");
    }
}
