//! Matches end to end with the real server binary on a data directory of its own: a
//! match reported saved survives kill -9, one still being played is all kill -9 loses,
//! and SIGTERM saves the match in play with the end reason "shutdown".

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use client::native::Hello;
use serde_json::Value;
use shared::protocol::ServerMsg;
use tokio::time::{Instant, timeout};

use crate::support::*;

/// Short matches, so a test sees one end within seconds.
const SHORT_MATCHES: [&str; 4] = ["--match-time-limit-secs", "5", "--match-results-secs", "1"];
/// Long enough for a 5 s match to end and be saved on a busy machine.
const MATCH_PATIENCE: Duration = Duration::from_secs(30);

/// The server binary as a child process on `data_dir`.
struct Binary {
    child: Child,
    addr: SocketAddr,
}

impl Binary {
    fn start(data_dir: &Path) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(SHORT_MATCHES)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .expect("read the first line");
        let addr = first_line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"));
        Binary { child, addr }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    async fn join(&self, name: &str) -> Client {
        Client::connect_url(&self.ws_url(), Hello::new(name).in_room("arena"))
            .await
            .expect("join")
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal}");
    }

    /// Waits for the process to end, failing the test past `within`.
    async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server should have exited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn matches(&self) -> Vec<Value> {
        let (status, body) = http_get_at(self.addr, "/api/matches").await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).expect("JSON");
        page["matches"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until the store's word that a match is saved; its id.
async fn match_saved(client: &mut Client) -> i64 {
    timeout(MATCH_PATIENCE, async {
        loop {
            match client.recv().await {
                Ok(Some(ServerMsg::MatchSaved { match_id })) => return match_id,
                Ok(Some(_)) => {}
                other => panic!("the connection ended before a match was saved: {other:?}"),
            }
        }
    })
    .await
    .expect("a match ends and is saved")
}

fn names(record: &Value) -> Vec<String> {
    let mut names: Vec<String> = record["players"]
        .as_array()
        .expect("players")
        .iter()
        .map(|player| player["name"].as_str().expect("a name").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_saved_match_survives_kill_9_and_kill_9_loses_only_the_match_in_play() {
    let _turn = serial().await;
    let data_dir = fresh_data_dir();
    let first = Binary::start(&data_dir);
    let mut ann = first.join("ann").await;
    let _bob = first.join("bob").await;
    let saved_id = match_saved(&mut ann).await;
    first.signal("-KILL");
    drop(first);

    let second = Binary::start(&data_dir);
    let (status, body) = http_get_at(second.addr, &format!("/api/matches/{saved_id}")).await;
    assert_eq!(
        status, 200,
        "the saved match is there after kill -9: {body}"
    );
    let record: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(names(&record), ["ann", "bob"]);
    assert_eq!(record["end_reason"], "time_limit");

    // A match in play when the process is killed is lost, and nothing else is.
    let _cy = second.join("cy").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.signal("-KILL");
    drop(second);
    let third = Binary::start(&data_dir);
    let matches = third.matches().await;
    assert_eq!(matches.len(), 1, "only the saved match: {matches:?}");
    assert_eq!(matches[0]["id"], saved_id);
}

#[tokio::test]
async fn sigterm_saves_the_match_in_play_as_shutdown() {
    let _turn = serial().await;
    let data_dir = fresh_data_dir();
    let mut first = Binary::start(&data_dir);
    let mut ann = first.join("ann").await;
    let _bob = first.join("bob").await;
    next_snapshot(&mut ann).await;
    first.signal("-TERM");
    let status = first.exited(Duration::from_secs(10)).await;
    assert!(status.success(), "a clean exit: {status}");
    drop(first);

    let second = Binary::start(&data_dir);
    let matches = second.matches().await;
    assert_eq!(matches.len(), 1, "{matches:?}");
    assert_eq!(matches[0]["end_reason"], "shutdown");
    assert_eq!(names(&matches[0]), ["ann", "bob"]);
}
