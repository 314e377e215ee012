//! A release server started as a child process on a free loopback port, stopped with
//! SIGTERM when dropped, and scraped over plain HTTP for its metrics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::util::root;

#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

impl ServerProcess {
    /// Starts `target/release/server --addr 127.0.0.1:0 EXTRA...` and waits for its
    /// first stdout line, which names the port.
    pub fn start(extra_args: &[&str]) -> anyhow::Result<ServerProcess> {
        let mut child = Command::new(root().join("target/release/server"))
            .args(["--addr", "127.0.0.1:0"])
            .args(extra_args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .spawn()
            .context("start target/release/server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .context("read the server's first line")?;
        let addr = first_line
            .trim()
            .strip_prefix("listening on http://")
            .with_context(|| format!("unexpected first line from the server: {first_line:?}"))?
            .to_owned();
        Ok(ServerProcess { child, addr })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` over HTTP/1.1; the body.
    pub fn get(&self, path: &str) -> anyhow::Result<String> {
        let mut stream =
            TcpStream::connect(&self.addr).with_context(|| format!("connect {}", self.addr))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
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
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
