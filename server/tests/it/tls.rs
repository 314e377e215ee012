//! HTTPS and WSS on the game's port: bots play over wss, a SIGHUP swaps the certificate
//! under live players, garbage and plain HTTP on the TLS port cost the players nothing,
//! bad files stop the start, and the plain-HTTP port redirects.

use std::process::Stdio;
use std::time::Duration;

use client::bots::{BotsConfig, run};
use client::native::Hello;
use shared::consts::DEFAULT_SNAPSHOT_HZ;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_play_over_wss_trusting_a_test_ca() {
    let certs = TestCerts::new();
    let server = start_server(|config| certs.configure(config)).await;
    assert!(
        server.ws_url().starts_with("wss://") && server.http_url().starts_with("https://"),
        "a TLS server names secure URLs: {} {}",
        server.ws_url(),
        server.http_url()
    );
    let report = run(BotsConfig {
        url: server.ws_url(),
        trust: certs.trust(),
        count: 8,
        duration: Duration::from_secs(3),
        room: None,
        name_prefix: "bot".into(),
        seed: 3,
        ramp: Duration::from_millis(300),
        idle: false,
    })
    .await;
    assert_eq!(report.connected, 8, "every bot joins over wss: {report:?}");
    assert_eq!(report.failed, 0, "no bot fails: {report:?}");
    assert_eq!(report.decode_errors, 0);
    assert!(
        report.snapshots_per_bot_per_s > 20.0,
        "bots receive snapshots over wss: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_that_do_not_trust_the_ca_are_refused_by_their_own_check() {
    let certs = TestCerts::new();
    let server = start_server(|config| certs.configure(config)).await;
    let joined = client::native::Connection::join(&server.ws_url(), Hello::new("wary")).await;
    let err = joined.expect_err("a certificate from an unknown CA is not trusted");
    assert!(
        err.to_string().contains("certificate"),
        "the error says why: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_swaps_the_certificate_for_new_connections_while_open_ones_keep_playing() {
    let _turn = serial().await;
    let certs = TestCerts::new();
    let log_path = certs.cert_file.with_file_name("server.log");
    let log = std::fs::File::create(&log_path).expect("a log file");
    let flags = certs.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = ServerProcess::start_logging(&fresh_data_dir(), &flags, Stdio::from(log));
    assert!(
        server.ws_url.starts_with("wss://"),
        "the first line names an https:// address: {}",
        server.ws_url
    );
    let trust = certs.trust();
    let first_serial = serial_of(&certs.leaf.cert_pem);
    assert_eq!(served_serial(server.addr, &trust).await, first_serial);
    let mut before = vec![
        Client::connect_trusting(&server.ws_url, Hello::new("early").in_room("r"), &trust)
            .await
            .expect("join over wss"),
    ];
    still_playing(&mut before).await;

    let second = certs
        .authority
        .issue_localhost(2, TEST_CERT_VALIDITY)
        .expect("a second certificate");
    let second_serial = serial_of(&second.cert_pem);
    assert_ne!(first_serial, second_serial);
    certs.write(&second);
    server.signal("-HUP");
    let deadline = Instant::now() + PATIENCE;
    while served_serial(server.addr, &trust).await != second_serial {
        assert!(
            Instant::now() < deadline,
            "a new connection should see the new certificate after SIGHUP"
        );
        sleep(Duration::from_millis(50)).await;
    }
    still_playing(&mut before).await;
    let mut after =
        Client::connect_trusting(&server.ws_url, Hello::new("late").in_room("r"), &trust)
            .await
            .expect("join after the reload");
    next_snapshot(&mut after).await;

    // A key that is not the certificate's: the reload fails, and the pair before stays.
    let stranger = certs
        .authority
        .issue_localhost(3, TEST_CERT_VALIDITY)
        .expect("a third certificate");
    std::fs::write(&certs.key_file, &stranger.key_pem).expect("write a mismatched key");
    server.signal("-HUP");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let logged = std::fs::read_to_string(&log_path).unwrap_or_default();
        if logged.contains("was not reloaded") {
            assert!(
                logged.contains("does not match"),
                "the error says why: {logged}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a failed reload is logged: {logged}"
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served_serial(server.addr, &trust).await,
        second_serial,
        "after a failed reload the server shows the certificate it had"
    );
    still_playing(&mut before).await;
    still_playing(std::slice::from_mut(&mut after)).await;
}

/// What one misbehaving client on the TLS port sends.
#[derive(Clone, Copy, Debug)]
enum Garbage {
    PlainHttp,
    RandomBytes(u64),
    /// Connects and says nothing.
    Silent,
    /// The start of a TLS record announcing a ClientHello, and nothing more.
    HalfHello,
}

/// Sends `garbage` and waits for the server to close; how long that took.
async fn throw(addr: std::net::SocketAddr, garbage: Garbage) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let bytes: Vec<u8> = match garbage {
        Garbage::PlainHttp => b"GET /api/rooms HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        Garbage::RandomBytes(seed) => {
            // xorshift: noise that differs per connection and repeats per run.
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            (0..2048)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect()
        }
        Garbage::Silent => Vec::new(),
        Garbage::HalfHello => vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc],
    };
    // The server may close before it has read everything: that is the point.
    let _ = stream.write_all(&bytes).await;
    let mut answer = Vec::new();
    let closed = timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "the server closes a connection that sent {garbage:?}"
    );
    assert!(
        !answer.starts_with(b"HTTP/"),
        "nothing is served to {garbage:?} without TLS"
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_plain_http_on_the_tls_port_leave_eight_playing_bots_undisturbed() {
    let certs = TestCerts::new();
    let server = start_server(|config| {
        certs.configure(config);
        config.tls_handshake_timeout_secs = 1.0;
    })
    .await;
    let bots = tokio::spawn(run(BotsConfig {
        url: server.ws_url(),
        trust: certs.trust(),
        count: 8,
        duration: Duration::from_secs(7),
        room: Some("calm".into()),
        name_prefix: "calm".into(),
        seed: 5,
        ramp: Duration::from_millis(300),
        idle: false,
    }));
    sleep(Duration::from_secs(2)).await;

    let addr = server.addr;
    let mut attacks = Vec::new();
    for n in 0..20 {
        attacks.push((
            Garbage::PlainHttp,
            tokio::spawn(throw(addr, Garbage::PlainHttp)),
        ));
        let random = Garbage::RandomBytes(n);
        attacks.push((random, tokio::spawn(throw(addr, random))));
    }
    for _ in 0..5 {
        attacks.push((Garbage::Silent, tokio::spawn(throw(addr, Garbage::Silent))));
        attacks.push((
            Garbage::HalfHello,
            tokio::spawn(throw(addr, Garbage::HalfHello)),
        ));
    }
    for (garbage, attack) in attacks {
        let took = attack.await.expect("the attack ran");
        if matches!(garbage, Garbage::Silent | Garbage::HalfHello) {
            assert!(
                took >= Duration::from_millis(900),
                "{garbage:?} is dropped by the handshake timeout, not before: {took:?}"
            );
        }
    }
    assert!(
        server.metrics().tls_failures("refused") >= 40,
        "plain HTTP and random bytes are refused by the handshake"
    );
    assert!(
        server.metrics().tls_failures("timeout") >= 10,
        "silent and half-sent handshakes time out"
    );

    let report = bots.await.expect("the bots ran");
    assert_eq!(report.failed, 0, "no bot fails: {report:?}");
    assert_eq!(report.disconnects, 0, "no bot is disconnected: {report:?}");
    let least = report
        .min_snapshots_per_bot_per_s
        .expect("every bot played for seconds");
    assert!(
        least >= 0.9 * f64::from(DEFAULT_SNAPSHOT_HZ),
        "every bot kept getting snapshots at the full rate: the slowest got {least:.1}/s"
    );
}

#[test]
fn bad_certificate_or_key_files_stop_the_server_with_an_error_naming_the_file() {
    let certs = TestCerts::new();
    let dir = certs.cert_file.parent().expect("a folder").to_owned();
    let cert = certs.cert_file.display().to_string();
    let key = certs.key_file.display().to_string();

    let missing = dir.join("missing.pem").display().to_string();
    let stderr = refused_start(&["--tls-cert", &missing, "--tls-key", &key]);
    assert!(
        stderr.contains(&missing) && stderr.contains("No such file"),
        "a missing certificate is named: {stderr}"
    );

    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").expect("write garbage");
    let garbage = garbage.display().to_string();
    let stderr = refused_start(&["--tls-cert", &garbage, "--tls-key", &key]);
    assert!(
        stderr.contains(&garbage) && stderr.contains("no certificate"),
        "a file with no certificate is named: {stderr}"
    );
    let stderr = refused_start(&["--tls-cert", &cert, "--tls-key", &garbage]);
    assert!(
        stderr.contains(&garbage) && stderr.contains("no private key"),
        "a file with no key is named: {stderr}"
    );

    let other = certs
        .authority
        .issue_localhost(9, TEST_CERT_VALIDITY)
        .expect("another certificate");
    let other_key = dir.join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).expect("write the other key");
    let other_key = other_key.display().to_string();
    let stderr = refused_start(&["--tls-cert", &cert, "--tls-key", &other_key]);
    assert!(
        stderr.contains("does not match") && stderr.contains(&other_key) && stderr.contains(&cert),
        "a key that is not the certificate's names both files: {stderr}"
    );

    let unreadable = dir.join("a-folder.pem");
    std::fs::create_dir_all(&unreadable).expect("a folder where a file should be");
    let unreadable = unreadable.display().to_string();
    let stderr = refused_start(&["--tls-cert", &cert, "--tls-key", &unreadable]);
    assert!(
        stderr.contains(&unreadable),
        "an unreadable key file is named: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_expiring_within_a_week_is_warned_about_at_start() {
    let _turn = serial().await;
    let certs = TestCerts::new();
    let soon = certs
        .authority
        .issue_localhost(4, Duration::from_secs(2 * 86_400))
        .expect("a certificate for two days");
    certs.write(&soon);
    let log_path = certs.cert_file.with_file_name("expiring.log");
    let log = std::fs::File::create(&log_path).expect("a log file");
    let flags = certs.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = ServerProcess::start_logging(&fresh_data_dir(), &flags, Stdio::from(log));
    // The warning is written before the first stdout line.
    let logged = std::fs::read_to_string(&log_path).expect("read the log");
    assert!(
        logged.contains("WARN") && logged.contains("expires within a week"),
        "the start warns of the expiry: {logged}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_port_answers_301_to_the_same_path_over_https_and_stops_with_the_server() {
    let certs = TestCerts::new();
    let server = start_server(|config| {
        certs.configure(config);
        config.redirect_http = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await;
    let redirect = server.redirect_addr().expect("a redirect listener");
    let mut stream = TcpStream::connect(redirect).await.expect("connect");
    let request = "GET /?room=duel&name=ann HTTP/1.1\r\nHost: play.example.test:8080\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("an answer within patience")
        .expect("read the answer");
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 301"),
        "a permanent redirect: {response}"
    );
    let location = format!(
        "location: https://play.example.test:{}/?room=duel&name=ann",
        server.addr.port()
    );
    assert!(
        response.to_ascii_lowercase().contains(&location),
        "to the same path and query on the HTTPS port: {response}"
    );

    // Silence on the redirect port meets the same header timeout as the game's port.
    let mut silent = TcpStream::connect(redirect).await.expect("connect");
    let mut nothing = Vec::new();
    timeout(PATIENCE * 2, silent.read_to_end(&mut nothing))
        .await
        .expect("a silent client is closed by the header timeout")
        .expect("read");

    drop(server);
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(redirect).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the redirect port closes with the server"
        );
        sleep(Duration::from_millis(20)).await;
    }
}
