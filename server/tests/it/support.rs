//! Starting a real server in-process and talking to it as clients do, and checking
//! that what a test opened (sessions, sockets, file descriptors) is given back.

use std::ops::Deref;
use std::time::Duration;

use client::core::RoomView;
use client::native::{Connection, Hello, NetError};
use server::{Config, Server};
use shared::PlayerId;
use shared::protocol::ServerMsg;
use shared::view::Snapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::{Instant, timeout};

/// Long enough for any message a healthy server sends within a tick or two.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Tests run one at a time: they count this process's file descriptors, which any
/// test running beside them would disturb.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Holds the test's turn for as long as the test runs.
pub async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A server running in this process, holding the test's turn.
#[derive(Debug)]
pub struct TestServer {
    server: Server,
    _turn: MutexGuard<'static, ()>,
}

impl Deref for TestServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

/// Runs the server binary with `args` and expects it to refuse to start; its stderr.
pub fn refused_start(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(fresh_data_dir())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the server binary");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "the server refuses to start with {args:?}: {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "a server that did not start says nothing on stdout"
    );
    stderr
}

/// A data directory no other server has used (see `test_scratch::fresh_folder`).
pub fn fresh_data_dir() -> std::path::PathBuf {
    test_scratch::fresh_folder(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("servers"))
}

/// The resume grace window of test servers, unless a test sets its own.
pub const TEST_RESUME_GRACE_SECS: f64 = 1.0;

pub async fn start_server(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let turn = serial().await;
    let mut config = Config::for_addr("127.0.0.1:0".parse().expect("a valid address"));
    config.data_dir = fresh_data_dir();
    // Seats of vanished clients are held this long (20 s by default), so the tests that
    // drop connections see them given up within their patience.
    config.resume_grace_secs = TEST_RESUME_GRACE_SECS;
    tweak(&mut config);
    let server = server::start(config).await.expect("server starts");
    TestServer {
        server,
        _turn: turn,
    }
}

/// This process's open TCP sockets. TCP only: every test's runtime holds epoll,
/// eventfd and signal-pipe descriptors from before it waits for its turn, and those
/// come and go with the tests queued beside this one.
pub fn open_fds() -> usize {
    tcp_sockets().len()
}

/// Each open TCP socket of this process as its `/proc/net/tcp` row (endpoints, state),
/// so a failed check can say which one leaked.
fn tcp_sockets() -> Vec<String> {
    let table = ["/proc/net/tcp", "/proc/net/tcp6"]
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .concat();
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .to_owned();
            table
                .lines()
                .find(|line| line.split_whitespace().nth(9) == Some(inode.as_str()))
                .map(|line| {
                    line.split_whitespace()
                        .skip(1)
                        .take(3)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
        })
        .collect()
}

/// What a test must give back: file descriptors, connections and seated players.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    fds: usize,
    connections: i64,
    players: i64,
}

impl Baseline {
    pub fn take(server: &Server) -> Baseline {
        Baseline {
            fds: open_fds(),
            connections: server.metrics().connections.get(),
            players: server.metrics().players.get(),
        }
    }

    /// Expects `n` fewer connections and seated players than at the baseline: players
    /// the test removed on purpose.
    pub fn forget_players(&mut self, n: i64) {
        self.connections -= n;
        self.players -= n;
    }

    /// Waits until everything is back to the baseline, failing after `PATIENCE`.
    pub async fn assert_restored(&self, server: &Server) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = Baseline::take(server);
            if now.fds <= self.fds
                && now.connections == self.connections
                && now.players == self.players
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sessions and file descriptors should return to {self:?}, still {now:?}: {:?}",
                tcp_sockets()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
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
        Client::connect_trusting(url, hello, &client::native::Trust::public()).await
    }

    /// Connects to `url`, verifying a `wss://` server against `trust`.
    pub async fn connect_trusting(
        url: &str,
        hello: Hello,
        trust: &client::native::Trust,
    ) -> Result<Client, NetError> {
        let conn = Connection::join_trusting(url, hello, trust).await?;
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

    /// Sends an input frame the way a real client does, acknowledging the newest snapshot.
    pub async fn send_input(&mut self, frame: shared::game::InputFrame) -> Result<(), NetError> {
        let msg = self.view.input_message(frame);
        self.conn.send(&msg).await
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

/// The first snapshot that shows every one of `ids`. Snapshots go out as they are made,
/// so one from before the last of them joined may still be on its way.
pub async fn snapshot_showing(client: &mut Client, ids: &[PlayerId]) -> Snapshot {
    recv_until(client, |_, view| {
        view.snapshot
            .clone()
            .filter(|s| ids.iter().all(|id| s.players.iter().any(|p| p.id == *id)))
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

/// A test certificate authority and a certificate it signed for localhost, as PEM files
/// in a folder of their own: what `--tls-cert`, `--tls-key` and the bots' `--ca-cert`
/// are given.
#[derive(Debug)]
pub struct TestCerts {
    pub authority: harness::certs::Authority,
    pub ca_file: std::path::PathBuf,
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    /// The certificate now in the files.
    pub leaf: harness::certs::Leaf,
}

/// How long test certificates are valid unless a test says otherwise.
pub const TEST_CERT_VALIDITY: Duration = Duration::from_secs(30 * 86_400);

impl TestCerts {
    /// A new authority and a certificate with serial number 1.
    pub fn new() -> TestCerts {
        let dir = fresh_data_dir().join("certs");
        std::fs::create_dir_all(&dir).expect("a folder for the certificates");
        let authority =
            harness::certs::Authority::new("Skirmish test CA", TEST_CERT_VALIDITY).expect("a CA");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &authority.cert_pem).expect("write the CA");
        let leaf = authority
            .issue_localhost(1, TEST_CERT_VALIDITY)
            .expect("a certificate");
        let certs = TestCerts {
            authority,
            ca_file,
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            leaf,
        };
        certs.write(&certs.leaf);
        certs
    }

    /// Puts `leaf` and its key in the files, each replaced whole (a rename), as a
    /// certificate tool would.
    pub fn write(&self, leaf: &harness::certs::Leaf) {
        for (path, pem) in [
            (&self.cert_file, &leaf.cert_pem),
            (&self.key_file, &leaf.key_pem),
        ] {
            let part = path.with_extension("part");
            std::fs::write(&part, pem).expect("write a PEM file");
            std::fs::rename(&part, path).expect("replace a PEM file");
        }
    }

    /// The authorities a client of the test server trusts.
    pub fn trust(&self) -> client::native::Trust {
        client::native::Trust::with_ca_file(&self.ca_file).expect("trust the test CA")
    }

    /// The server flags that serve these files.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_file.display().to_string(),
            "--tls-key".into(),
            self.key_file.display().to_string(),
        ]
    }

    /// Points `config` at these files.
    pub fn configure(&self, config: &mut Config) {
        config.tls_cert = Some(self.cert_file.clone());
        config.tls_key = Some(self.key_file.clone());
    }
}

/// A TLS connection to `addr` trusting `trust`, for tests that look at the session
/// itself rather than the game.
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    trust: &client::native::Trust,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(trust.client_config());
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
    connector.connect(name, tcp).await
}

/// The serial number of the certificate the server at `addr` shows a new connection.
pub async fn served_serial(addr: std::net::SocketAddr, trust: &client::native::Trust) -> String {
    let stream = timeout(PATIENCE, tls_connect(addr, trust))
        .await
        .expect("a handshake within patience")
        .expect("a TLS handshake with the server");
    let (_, session) = stream.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server shows a certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).expect("an X.509 certificate");
    cert.tbs_certificate.raw_serial_as_string()
}

/// The serial number of a PEM certificate.
pub fn serial_of(cert_pem: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("a PEM block");
    let cert = pem.parse_x509().expect("an X.509 certificate");
    cert.tbs_certificate.raw_serial_as_string()
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(server: &Server, path: &str) -> (u16, String) {
    http_get_at(server.addr, path).await
}

/// `GET path` from the server at `addr`: the status and the body.
pub async fn http_get_at(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
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

/// An HTTP response read whole off a connection the server closed after it.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// Every byte after the head: for a `HEAD`, nothing should be here.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The value of header `name` (lowercase), if it was sent once or more.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(sent, _)| sent == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `METHOD path` with `extra` header lines on a connection of its own, read to its end.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> RawResponse {
    http_send(addr, method, path, extra, b"").await
}

/// `METHOD path` with `extra` header lines and `body` (its length said), read to its end.
pub async fn http_send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.expect("send request");
    let mut response = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("response within patience")
        .expect("read response");
    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: response[head_end + 4..].to_vec(),
    }
}

/// Polls `check` every 100 ms until it holds or `within` passes; whether it held.
pub async fn eventually<F: AsyncFnMut() -> bool>(within: Duration, mut check: F) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Short matches, so a test sees one end within seconds.
pub const SHORT_MATCHES: [&str; 4] = ["--match-time-limit-secs", "5", "--match-results-secs", "1"];
/// Long enough for a 5 s match to end and be saved on a busy machine.
pub const MATCH_PATIENCE: Duration = Duration::from_secs(40);

/// Reads until the store's word that a match is saved; its id.
pub async fn match_saved(client: &mut Client) -> i64 {
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

/// The players' names in a match record of `/api/matches`, sorted.
pub fn names(record: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = record["players"]
        .as_array()
        .expect("players")
        .iter()
        .map(|player| player["name"].as_str().expect("a name").to_owned())
        .collect();
    names.sort();
    names
}

/// A JSON answer of the server's public API, which must be 200.
pub async fn get_json(server: &ServerProcess, path: &str) -> serde_json::Value {
    let (status, body) = http_get_at(server.addr, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// The value of an unlabelled metric in the server's exposition.
pub async fn metric(server: &ServerProcess, name: &str) -> Option<f64> {
    let (status, body) = http_get_at(server.admin_addr, "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The real `server` binary as a child process, for measurements that must see the
/// server alone (its memory, its file descriptors). Killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// The admin listener, from the second line.
    pub admin_addr: std::net::SocketAddr,
    pub ws_url: String,
}

impl ServerProcess {
    /// The binary on a fresh data directory, with `extra_args`.
    pub fn start(extra_args: &[&str]) -> ServerProcess {
        ServerProcess::start_on(&fresh_data_dir(), extra_args)
    }

    /// The binary on `data_dir`, which may hold an earlier run's matches.
    pub fn start_on(data_dir: &std::path::Path, extra_args: &[&str]) -> ServerProcess {
        ServerProcess::start_logging(data_dir, extra_args, std::process::Stdio::null())
    }

    /// The binary on a fresh data directory with `extra_args`, its log going to `stderr`.
    pub fn start_logging(
        data_dir: &std::path::Path,
        extra_args: &[&str],
        stderr: std::process::Stdio,
    ) -> ServerProcess {
        ServerProcess::start_with_env(data_dir, extra_args, &[], stderr)
    }

    /// The binary with `extra_args` and the environment variables `env`; on a free
    /// port unless `extra_args` give `--addr`.
    pub fn start_with_env(
        data_dir: &std::path::Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
        stderr: std::process::Stdio,
    ) -> ServerProcess {
        use std::io::BufRead;
        let addr: &[&str] = if extra_args.contains(&"--addr") {
            &[]
        } else {
            &["--addr", "127.0.0.1:0"]
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(addr)
            .args(["--admin-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (mut first_line, mut second_line) = (String::new(), String::new());
        let mut stdout = std::io::BufReader::new(stdout);
        stdout
            .read_line(&mut first_line)
            .and_then(|_| stdout.read_line(&mut second_line))
            .expect("read the first two lines");
        let line = first_line.trim();
        let (ws_scheme, addr) = match line.strip_prefix("listening on https://") {
            Some(addr) => ("wss", addr),
            None => (
                "ws",
                line.strip_prefix("listening on http://").unwrap_or(line),
            ),
        };
        let addr: std::net::SocketAddr = addr
            .parse()
            .unwrap_or_else(|_| panic!("the first line names the address: {first_line:?}"));
        let admin_addr = second_line
            .trim()
            .strip_prefix("admin on http://")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("the second line names the admin address: {second_line:?}"));
        ServerProcess {
            child,
            addr,
            admin_addr,
            ws_url: format!("{ws_scheme}://{addr}/ws"),
        }
    }

    /// Sends `signal` (as `kill` takes it: `-TERM`, `-KILL`) to the server.
    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal}");
    }

    /// Waits for the server to exit, failing the test past `within`.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server should exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

/// Each of `conns` still receives fresh snapshots.
pub async fn still_playing(conns: &mut [Client]) {
    for conn in conns {
        let first = next_snapshot(conn).await;
        let later = next_snapshot(conn).await;
        assert!(later.tick.since(first.tick) > 0, "snapshots keep coming");
    }
}

/// Drains `conn` for `window` and returns how many snapshots arrived in it.
pub async fn count_snapshots(conn: &mut Client, window: Duration) -> usize {
    let skipped_before = conn.skipped_snapshots;
    let mut n_snapshots = 0;
    let _ = timeout(window, async {
        loop {
            match conn.recv().await {
                Ok(Some(ServerMsg::Snapshot(_))) => n_snapshots += 1,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("the connection closed while being watched"),
            }
        }
    })
    .await;
    n_snapshots + (conn.skipped_snapshots - skipped_before) as usize
}

/// A TCP connection to `to` from the loopback address `source` (any of 127.0.0.0/8), so
/// one machine can be many clients.
pub async fn connect_from(source: std::net::IpAddr, to: std::net::SocketAddr) -> TcpStream {
    let socket = match source {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .expect("a TCP socket");
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .unwrap_or_else(|err| panic!("bind {source}: {err}"));
    socket
        .connect(to)
        .await
        .unwrap_or_else(|err| panic!("connect {to} from {source}: {err}"))
}

/// A raw WebSocket upgrade request with `extra` header lines (each ending in CRLF).
/// Returns the response status, its head, and the socket (which stays upgraded on 101).
pub async fn raw_upgrade(server: &Server, extra: &str) -> (u16, String, TcpStream) {
    raw_upgrade_from(server, [127, 0, 0, 1].into(), extra).await
}

/// `raw_upgrade` from the loopback address `source`.
pub async fn raw_upgrade_from(
    server: &Server,
    source: std::net::IpAddr,
    extra: &str,
) -> (u16, String, TcpStream) {
    raw_upgrade_to(server, source, "/ws", extra).await
}

/// `raw_upgrade_from` on the WebSocket route at `path` (`/ws`, `/lobby`).
pub async fn raw_upgrade_to(
    server: &Server,
    source: std::net::IpAddr,
    path: &str,
    extra: &str,
) -> (u16, String, TcpStream) {
    let mut stream = connect_from(source, server.addr).await;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        server.addr
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte, so nothing after the head (a first frame) is consumed.
    timeout(PATIENCE, async {
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read response head");
            assert!(n > 0, "the server closed before answering the upgrade");
            head.push(byte[0]);
        }
    })
    .await
    .expect("an answer to the upgrade within patience");
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    (status, head, stream)
}

/// A WebSocket over a TCP stream the test owns, so it can misbehave below the
/// protocol (half frames, resets). Joins `room` and waits for the welcome.
pub async fn raw_join(
    server: &Server,
    name: &str,
    room: &str,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (mut socket, _) = tokio_tungstenite::client_async(server.ws_url(), tcp)
        .await
        .expect("upgrade");
    let hello = shared::codec::encode_client(&shared::protocol::ClientMsg::Hello {
        protocol: shared::consts::PROTOCOL_VERSION,
        name: name.into(),
        room: Some(room.into()),
        token: None,
        resume: None,
        reservation: None,
        spectate: false,
    });
    socket.send(Message::binary(hello)).await.expect("hello");
    timeout(PATIENCE, async {
        while let Some(frame) = socket.next().await {
            if let Ok(Message::Binary(bytes)) = frame
                && matches!(
                    shared::codec::decode_server(&bytes),
                    Ok(ServerMsg::Welcome(_))
                )
            {
                return;
            }
        }
        panic!("closed before the welcome");
    })
    .await
    .expect("a welcome within patience");
    socket
}
