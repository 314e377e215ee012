//! A server binary run as a child process on a free loopback port, killed with SIGTERM
//! when dropped so no error path leaves one running, and scraped over plain HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::util::root;

#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the server's first line says.
    pub http_url: String,
}

impl ServerProcess {
    /// Starts `binary --addr 127.0.0.1:0 ARGS..` and waits for the line naming its port.
    /// Its stderr goes to `stderr` (inherited when `None`).
    pub fn start(
        binary: &Path,
        args: &[String],
        stderr: Option<Stdio>,
    ) -> anyhow::Result<ServerProcess> {
        let mut child = Command::new(binary)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(stderr.unwrap_or_else(Stdio::inherit))
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut server = ServerProcess {
            child,
            http_url: String::new(),
        };
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .context("read the server's first line")?;
        server.http_url = first_line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line from the server: {first_line:?}"))?
            .to_owned();
        Ok(server)
    }

    /// The WebSocket URL of `path` on this server.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.http_url.replacen("http://", "ws://", 1))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` over HTTP/1.1; the body.
    pub fn get(&self, path: &str) -> anyhow::Result<String> {
        let addr = self.http_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (_, body) = response
            .split_once("\r\n\r\n")
            .context("an HTTP response")?;
        Ok(body.to_owned())
    }

    /// The value of an unlabelled metric (counter or gauge) from `/metrics`.
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        crate::prom::value(&self.get("/metrics")?, name)
            .with_context(|| format!("metric {name} not found"))
    }

    /// Sends SIGTERM and waits for the exit; true if the server exited cleanly.
    pub fn stop(mut self) -> anyhow::Result<bool> {
        self.terminate();
        Ok(self.child.wait().context("wait for the server")?.success())
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
            let _ = self.child.wait();
        }
    }
}
