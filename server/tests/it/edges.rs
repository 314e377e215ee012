use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::*;

#[tokio::test]
async fn upgrades_from_foreign_origins_get_403() {
    let server = start_server(|config| {
        config.allow_origins = vec!["https://friend.example".into()];
    })
    .await;
    let mut others = vec![join_room(&server, "ann", "origins").await];
    let baseline = Baseline::take(&server);
    let (status, _, refused) = raw_upgrade(&server, "Origin: https://evil.example\r\n").await;
    assert_eq!(
        status, 403,
        "a page on another site may not open the game socket"
    );
    drop(refused);
    let (status, _, refused) = raw_upgrade(&server, "Origin: null\r\n").await;
    assert_eq!(status, 403, "an opaque origin is foreign");
    drop(refused);
    for allowed in [
        format!("Origin: http://{}\r\n", server.addr),
        "Origin: http://localhost:5173\r\n".to_owned(),
        "Origin: https://friend.example\r\n".to_owned(),
        String::new(),
    ] {
        let (status, _, socket) = raw_upgrade(&server, &allowed).await;
        assert_eq!(status, 101, "{allowed:?} is allowed");
        drop(socket);
    }
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn the_per_ip_cap_answers_429_and_spares_established_players() {
    let server = start_server(|config| config.max_connections_per_ip = 2).await;
    let baseline = Baseline::take(&server);
    let mut players = vec![
        join_room(&server, "ann", "capped").await,
        join_room(&server, "bob", "capped").await,
    ];
    let (status, _, refused) = raw_upgrade(&server, "").await;
    assert_eq!(status, 429);
    drop(refused);
    still_playing(&mut players).await;
    // A freed slot can be taken again.
    let leaver = players.pop().expect("bob");
    leaver.close().await.expect("bob leaves");
    let mut again = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while again.is_empty() {
        match client::native::Connection::join(
            &server.ws_url(),
            client::native::Hello::new("cat").in_room("capped"),
        )
        .await
        {
            Ok(conn) => again.push(conn),
            Err(err) => assert!(
                Instant::now() < deadline,
                "the freed slot stays taken: {err}"
            ),
        }
    }
    still_playing(&mut players).await;
    drop((players, again));
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn the_global_cap_answers_503() {
    let server = start_server(|config| {
        config.max_connections = 2;
        config.max_connections_per_ip = 100;
    })
    .await;
    let baseline = Baseline::take(&server);
    let mut players = vec![
        join_room(&server, "ann", "full").await,
        join_room(&server, "bob", "full").await,
    ];
    let (status, _, refused) = raw_upgrade(&server, "").await;
    assert_eq!(status, 503);
    drop(refused);
    still_playing(&mut players).await;
    drop(players);
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn the_upgrade_negotiates_no_compression() {
    let server = start_server(|_| {}).await;
    let baseline = Baseline::take(&server);
    let (status, head, socket) = raw_upgrade(
        &server,
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    )
    .await;
    assert_eq!(status, 101);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "the 101 must not accept any extension:\n{head}"
    );
    drop(socket);
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_half_sent_request_line_is_closed_after_the_header_timeout() {
    let server = start_server(|config| config.header_timeout_secs = 0.5).await;
    let mut others = vec![join_room(&server, "ann", "slow").await];
    let baseline = Baseline::take(&server);
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /ws HT")
        .await
        .expect("send half a line");
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await;
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "the server should close a slow handshake, still open after {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(400),
        "closed only after the timeout, not at once ({waited:?})"
    );
    drop(slow);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_too() {
    let server = start_server(|config| config.header_timeout_secs = 0.5).await;
    let baseline = Baseline::take(&server);
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, idle.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "a connection that never sends a byte is closed"
    );
    drop(idle);
    baseline.assert_restored(&server).await;
}
