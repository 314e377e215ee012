//! Starting a real server in-process and talking to it as clients do.

use std::time::Duration;

use client::core::RoomView;
use client::native::{Connection, Hello, NetError};
use server::{Config, Server};
use shared::protocol::{ServerMsg, Snapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Long enough for any message a healthy server sends within a tick or two.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub async fn start_server(tweak: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::for_addr("127.0.0.1:0".parse().expect("a valid address"));
    tweak(&mut config);
    server::start(config).await.expect("server starts")
}

/// A test player: a real connection and the view it keeps, acknowledging every
/// snapshot it applies as a real client does.
#[derive(Debug)]
pub struct Client {
    pub conn: Connection,
    pub view: RoomView,
}

impl std::ops::Deref for Client {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Client {
    pub async fn connect(server: &Server, hello: Hello) -> Result<Client, NetError> {
        Client::connect_url(&server.ws_url(), hello).await
    }

    pub async fn connect_url(url: &str, hello: Hello) -> Result<Client, NetError> {
        let conn = Connection::join(url, hello).await?;
        let mut view = RoomView::default();
        view.apply(&ServerMsg::Welcome(Box::new(conn.welcome.clone())))
            .expect("a welcome always applies");
        Ok(Client { conn, view })
    }

    /// The next message, applied to the view. `Ok(None)` once the server has closed.
    pub async fn recv(&mut self) -> Result<Option<ServerMsg>, NetError> {
        let Some(msg) = self.conn.recv().await? else {
            return Ok(None);
        };
        self.view
            .apply(&msg)
            .expect("every snapshot applies to the view");
        if matches!(msg, ServerMsg::Snapshot(_))
            && let Some(ack) = self.view.ack_message()
        {
            // The server may already have closed; the next receive says so.
            let _ = self.conn.send(&ack).await;
        }
        Ok(Some(msg))
    }

    pub async fn close(self) -> Result<(), NetError> {
        self.conn.close().await
    }
}

pub async fn join(server: &Server, name: &str) -> Client {
    Client::connect(server, Hello::new(name))
        .await
        .expect("join succeeds")
}

pub async fn join_room(server: &Server, name: &str, room: &str) -> Client {
    Client::connect(server, Hello::new(name).in_room(room))
        .await
        .expect("join succeeds")
}

/// Receives until `pick` returns something, failing the test after `PATIENCE`.
pub async fn recv_until<T>(
    client: &mut Client,
    mut pick: impl FnMut(&ServerMsg, &RoomView) -> Option<T>,
) -> T {
    let found = timeout(PATIENCE, async {
        loop {
            match client.recv().await {
                Ok(Some(msg)) => {
                    if let Some(found) = pick(&msg, &client.view) {
                        return found;
                    }
                }
                Ok(None) => panic!(
                    "connection closed while waiting (close frame {:?})",
                    client.conn.close
                ),
                Err(err) => panic!("receive failed while waiting: {err}"),
            }
        }
    })
    .await;
    found.expect("the awaited message should arrive within the patience window")
}

pub async fn next_snapshot(client: &mut Client) -> Snapshot {
    recv_until(client, |msg, view| match msg {
        ServerMsg::Snapshot(_) => view.snapshot.clone(),
        _ => None,
    })
    .await
}

/// Reads until the server closes, returning its close frame and any `Disconnect` reason.
pub async fn expect_closed(client: &mut Client) -> (Option<(u16, String)>, Option<ServerMsg>) {
    let mut goodbye = None;
    let closed = timeout(PATIENCE, async {
        loop {
            match client.conn.recv().await {
                Ok(Some(msg @ ServerMsg::Disconnect { .. })) => goodbye = Some(msg),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server should close the connection");
    (client.conn.close.clone(), goodbye)
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(server: &Server, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("response within patience")
        .expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The real `server` binary as a child process, for measurements that must see the
/// server alone (its memory, its file descriptors). Killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: std::process::Child,
    pub ws_url: String,
}

impl ServerProcess {
    pub fn start(extra_args: &[&str]) -> ServerProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", "127.0.0.1:0"])
            .args(extra_args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first_line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut first_line)
            .expect("read the first line");
        let http = first_line
            .trim()
            .strip_prefix("listening on http://")
            .expect("the first line names the address");
        let ws_url = format!("ws://{http}/ws");
        ServerProcess { child, ws_url }
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
