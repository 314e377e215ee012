//! A private redis-server for tests: one of its own on a free loopback port, with no
//! persistence and its log under the target folder; killed and removed when dropped,
//! and restartable on the same port so tests can take Redis away and bring it back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The environment variable naming the `redis-server` program. `cargo xtask test`
/// installs Redis when it can and sets it; without it (a plain `cargo test`) the tests
/// that need Redis say they skip, and with it a missing program fails them.
pub const BIN_ENV: &str = "SKIRMISH_REDIS_SERVER";

/// How long a fresh redis-server has to answer on its port.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The program `BIN_ENV` names, checked. `None` when it is unset, after telling stderr
/// that `test` is skipped; a panic when it is set but names no file, since then the run
/// meant to test against Redis and must not pass without it.
pub fn server_bin(test: &str) -> Option<PathBuf> {
    let Some(bin) = std::env::var_os(BIN_ENV) else {
        eprintln!(
            "skipping {test}: it needs Redis, and {BIN_ENV} is not set; `cargo xtask test` installs redis-server and runs it"
        );
        return None;
    };
    let bin = PathBuf::from(bin);
    assert!(
        bin.is_file(),
        "{BIN_ENV} is {}, which is no file: install Redis (Debian: apt-get install redis-server)",
        bin.display()
    );
    Some(bin)
}

/// A running private redis-server. Dropping it kills the process and removes its folder.
#[derive(Debug)]
pub struct Redis {
    bin: PathBuf,
    /// Its working folder and log.
    base: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts a redis-server on a free loopback port and waits until it answers.
    pub fn start(bin: &Path) -> anyhow::Result<Redis> {
        let base = new_base()?;
        let mut redis = Redis {
            bin: bin.to_owned(),
            base,
            port: test_scratch::free_port()?,
            child: None,
        };
        redis.restart()?;
        Ok(redis)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (as a crash would: nothing is saved, since nothing is kept).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it answers.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let log = self.base.join("redis.log");
        let child = Command::new(&self.bin)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.base)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.answers() {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("redis-server exited with {status}; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "redis-server did not answer on port {} within {START_TIMEOUT:?}",
            self.port
        )
    }

    /// Commands Redis has executed since it started (`INFO stats`'s
    /// `total_commands_processed`, which counts this query too), for measuring the
    /// traffic its clients make.
    pub fn commands_processed(&self) -> anyhow::Result<u64> {
        use std::io::{BufRead, BufReader, Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))
            .with_context(|| format!("connect to redis-server on port {}", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"INFO stats\r\n")?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let length: usize = header
            .trim()
            .strip_prefix('$')
            .and_then(|length| length.parse().ok())
            .with_context(|| format!("INFO answered {header:?}"))?;
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|line| line.strip_prefix("total_commands_processed:"))
            .and_then(|count| count.trim().parse().ok())
            .context("INFO stats has no total_commands_processed")
    }

    /// Whether it answers PING on its port.
    pub fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A new, empty folder for one instance (see `test_scratch`). Its servers died with any
/// test process that left a folder behind: a redis-server here is always the test
/// process's own child, killed on drop.
fn new_base() -> anyhow::Result<PathBuf> {
    let base = test_scratch::fresh_folder(&test_scratch::roots("redis").remove(0));
    std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_server_answers_stops_restarts_and_is_removed() {
        let Some(bin) = server_bin("a_private_server_answers_stops_restarts_and_is_removed") else {
            return;
        };
        let mut redis = Redis::start(&bin).expect("a private redis-server starts");
        assert!(redis.answers(), "it answers PING");
        let before = redis.commands_processed().expect("INFO stats");
        assert!(
            redis.commands_processed().expect("INFO stats") > before,
            "each query counts as a command"
        );
        assert!(redis.url().ends_with(&format!(":{}/", redis.port())));
        redis.stop();
        assert!(!redis.answers(), "a stopped server does not answer");
        redis.restart().expect("it starts again on the same port");
        assert!(redis.answers(), "it answers again after the restart");
        let base = redis.base.clone();
        drop(redis);
        assert!(!base.exists(), "dropping removes the instance's folder");
    }
}
