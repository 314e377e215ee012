//! The one way a harness starts the server: a release binary run as a child process on
//! a free loopback port, stopped with SIGTERM (and killed if it will not go) when
//! dropped, so no error path leaves one running.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::http::{self, HttpError};
use crate::metrics::Metrics;

/// How long a server has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The binary could not be run.
    #[error("start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// Its standard output could not be read.
    #[error("read the server's first line: {0}")]
    ReadFirstLine(std::io::Error),
    /// It exited, or printed something else, before saying where it listens.
    #[error("the server did not say where it listens; its first line was {0:?}")]
    UnexpectedFirstLine(String),
    /// It said where it listens but not where its admin listener does.
    #[error("the server did not say where its admin listener is; its second line was {0:?}")]
    UnexpectedSecondLine(String),
}

#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// The admin listener, which serves `/metrics`.
    admin_addr: SocketAddr,
    /// The server said `https://`: its port speaks TLS only.
    tls: bool,
    data_dir: DataDir,
}

/// The server's data directory (matches, identity key), and who owns it.
#[derive(Debug)]
enum DataDir {
    /// Made for this server alone, and removed after it stops.
    Fresh(PathBuf),
    /// The caller's, with whatever it holds; left as the server leaves it.
    Given(PathBuf),
}

impl DataDir {
    fn fresh() -> DataDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        DataDir::Fresh(std::env::temp_dir().join(format!(
            "skirmish-harness-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )))
    }

    fn path(&self) -> &Path {
        match self {
            DataDir::Fresh(path) | DataDir::Given(path) => path,
        }
    }

    fn remove_if_fresh(&self) {
        if let DataDir::Fresh(path) = self {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

impl ServerProcess {
    /// Runs `command` (the server binary with the caller's flags, environment and
    /// stderr) with `--addr 127.0.0.1:0`, `--admin-addr 127.0.0.1:0` and a fresh
    /// `--data-dir` added, and waits for the first two lines of its stdout, `listening
    /// on http://ADDR` (or `https://` when the flags give it a certificate) and `admin on
    /// http://ADDR`, which name the ports it got. Each run starts with no matches and no
    /// players on record.
    pub fn start(command: Command) -> Result<ServerProcess, LaunchError> {
        ServerProcess::launch(command, DataDir::fresh())
    }

    /// As `start`, but on `data_dir`, with the matches and players it already holds
    /// (for runs that prepare a database first, or open it beside the server). The
    /// folder is left in place when the server stops.
    pub fn start_on_data_dir(
        command: Command,
        data_dir: &Path,
    ) -> Result<ServerProcess, LaunchError> {
        ServerProcess::launch(command, DataDir::Given(data_dir.to_owned()))
    }

    fn launch(mut command: Command, data_dir: DataDir) -> Result<ServerProcess, LaunchError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .args(["--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|source| LaunchError::Spawn { program, source })?;
        let (mut first_line, mut second_line) = (String::new(), String::new());
        let read = match child.stdout.take() {
            Some(stdout) => {
                let mut stdout = BufReader::new(stdout);
                stdout
                    .read_line(&mut first_line)
                    .and_then(|_| stdout.read_line(&mut second_line))
            }
            None => Ok(0),
        };
        let addrs = read.map_err(LaunchError::ReadFirstLine).and_then(|_| {
            let (addr, tls) = parse_first_line(&first_line)?;
            let admin_addr = second_line
                .trim()
                .strip_prefix("admin on http://")
                .and_then(|addr| addr.parse().ok())
                .ok_or_else(|| LaunchError::UnexpectedSecondLine(second_line.clone()))?;
            Ok((addr, tls, admin_addr))
        });
        match addrs {
            Ok((addr, tls, admin_addr)) => Ok(ServerProcess {
                child,
                addr,
                admin_addr,
                tls,
                data_dir,
            }),
            Err(err) => {
                // Not yet a ServerProcess, so its Drop would not run: stop it here.
                let _ = child.kill();
                let _ = child.wait();
                data_dir.remove_if_fresh();
                Err(err)
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener: `/metrics`, and the console when the server has a token.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The WebSocket URL of `path` on this server, e.g. `ws_url("/ws")`: `wss://` when
    /// it speaks TLS.
    pub fn ws_url(&self, path: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The folder the server keeps its matches in.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// `GET path`; the body. Over plain HTTP only: a server that speaks TLS answers none.
    pub fn get(&self, path: &str) -> Result<String, HttpError> {
        if self.tls {
            return Err(HttpError::TlsOnly {
                path: path.to_owned(),
            });
        }
        http::get(self.addr, path)
    }

    /// A scrape of `/metrics`, from the admin listener.
    pub fn metrics(&self) -> Result<Metrics, HttpError> {
        Ok(Metrics::parse(&http::get(self.admin_addr, "/metrics")?))
    }

    /// Sends SIGTERM and waits for the exit; true if the server exited cleanly within
    /// the grace period (false if it had already died, failed, or had to be killed).
    pub fn stop(mut self) -> std::io::Result<bool> {
        Ok(self.stop_child()?.is_some_and(|status| status.success()))
    }

    /// The exit status, or `None` if the server had to be killed.
    fn stop_child(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(Some(status));
        }
        // Through kill(1): the workspace forbids the unsafe a direct signal would need.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(None)
    }
}

/// The address in `listening on http://ADDR` or `listening on https://ADDR`, and
/// whether it was https.
fn parse_first_line(line: &str) -> Result<(SocketAddr, bool), LaunchError> {
    let rest = line.trim().strip_prefix("listening on ");
    let (addr, tls) = match rest.and_then(|rest| rest.strip_prefix("https://")) {
        Some(addr) => (Some(addr), true),
        None => (rest.and_then(|rest| rest.strip_prefix("http://")), false),
    };
    addr.and_then(|addr| addr.parse().ok())
        .map(|addr| (addr, tls))
        .ok_or_else(|| LaunchError::UnexpectedFirstLine(line.to_owned()))
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.stop_child();
        self.data_dir.remove_if_fresh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_never_says_where_it_listens_is_a_launch_error() {
        // `echo` ignores the added `--addr` flag and prints its arguments instead.
        let outcome = ServerProcess::start(Command::new("echo"));
        assert!(
            matches!(outcome, Err(LaunchError::UnexpectedFirstLine(ref line)) if line.contains("--addr")),
            "expected an unexpected-first-line error, got {outcome:?}"
        );
    }

    #[test]
    fn a_given_data_dir_is_passed_on_and_left_in_place() {
        let data_dir =
            std::env::temp_dir().join(format!("skirmish-harness-given-{}", std::process::id()));
        std::fs::create_dir_all(&data_dir).expect("make a data dir");
        let outcome = ServerProcess::start_on_data_dir(Command::new("echo"), &data_dir);
        let named = data_dir.display().to_string();
        assert!(
            matches!(outcome, Err(LaunchError::UnexpectedFirstLine(ref line)) if line.contains(&named)),
            "the server should be given the caller's folder, got {outcome:?}"
        );
        assert!(
            data_dir.is_dir(),
            "a folder the caller gave is the caller's to remove"
        );
        let _ = std::fs::remove_dir_all(&data_dir);
    }

    #[test]
    fn the_first_line_names_the_address_and_whether_it_speaks_tls() {
        let plain = parse_first_line("listening on http://127.0.0.1:8080\n").expect("plain");
        assert_eq!(plain, ("127.0.0.1:8080".parse().expect("addr"), false));
        let tls = parse_first_line("listening on https://127.0.0.1:8443\n").expect("tls");
        assert_eq!(tls, ("127.0.0.1:8443".parse().expect("addr"), true));
        assert!(parse_first_line("listening on ftp://127.0.0.1:21").is_err());
    }

    #[test]
    fn a_missing_binary_is_a_launch_error() {
        let outcome = ServerProcess::start(Command::new("/nonexistent/skirmish-server"));
        assert!(matches!(outcome, Err(LaunchError::Spawn { .. })));
    }
}
