use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared::protocol::{CloseReason, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::*;

/// Waits until the room has `n` players, as the lobby counts them.
async fn wait_for_players(server: &server::Server, n: u16) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let players: u16 = server.rooms().iter().map(|r| r.players).sum();
        if players == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} players, the lobby has {players}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_peer_that_answers_nothing_is_dropped_within_the_idle_timeout() {
    let server = start_server(|config| {
        config.ping_interval_secs = 0.2;
        config.idle_timeout_secs = 0.6;
    })
    .await;
    let mut others = vec![join_room(&server, "ann", "dead").await];
    let baseline = Baseline::take(&server);
    // Joined, then silent and never reading, so no pong either: a half-open peer.
    let silent = raw_join(&server, "ghost", "dead").await;
    let ghost_id = shared::PlayerId(2);
    let started = Instant::now();
    let away = recv_until(&mut others[0], |msg, _| match msg {
        ServerMsg::PlayerAway { id } => Some(*id),
        ServerMsg::PlayerLeft { id } => panic!("player {id:?} left before being held"),
        _ => None,
    })
    .await;
    assert_eq!(away, ghost_id, "the dead peer's seat is held for a resume");
    let left = recv_until(&mut others[0], |msg, _| match msg {
        ServerMsg::PlayerLeft { id } => Some(*id),
        _ => None,
    })
    .await;
    assert_eq!(left, ghost_id, "the dead peer's player is removed");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "freed in about the idle timeout and the grace window, took {:?}",
        started.elapsed()
    );
    drop(silent);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_quiet_player_who_answers_pings_stays() {
    let server = start_server(|config| {
        config.ping_interval_secs = 0.2;
        config.idle_timeout_secs = 0.6;
    })
    .await;
    // Sends no input at all but reads, so its WebSocket layer answers every ping.
    let mut quiet = join_room(&server, "quiet", "calm").await;
    let seen = count_snapshots(&mut quiet, Duration::from_secs(2)).await;
    assert!(seen > 40, "still receiving after 2 s of silence: {seen}");
    assert!(quiet.close.is_none(), "not closed: {:?}", quiet.close);
}

async fn kill_mid_frame(reset: bool) {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "killed").await];
    let baseline = Baseline::take(&server);
    let mut victim = raw_join(&server, "doomed", "killed").await;
    wait_for_players(&server, 2).await;
    // A masked binary frame header announcing 100 bytes, then only 4 of them.
    let half_frame = [0x82, 0x80 | 100, 1, 2, 3, 4, 0xAA, 0xBB, 0xCC, 0xDD];
    let tcp = victim.get_mut();
    tcp.write_all(&half_frame).await.expect("send half a frame");
    tcp.flush().await.expect("flush");
    if reset {
        // SO_LINGER 0: close sends RST instead of FIN.
        socket2::SockRef::from(&*tcp)
            .set_linger(Some(Duration::ZERO))
            .expect("set linger");
    } else {
        tcp.shutdown().await.expect("send FIN");
    }
    drop(victim);
    wait_for_players(&server, 1).await;
    let left = recv_until(&mut others[0], |msg, _| match msg {
        ServerMsg::PlayerLeft { id } => Some(*id),
        _ => None,
    })
    .await;
    assert_eq!(left, shared::PlayerId(2));
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_client_killed_mid_frame_with_rst_is_cleaned_up() {
    kill_mid_frame(true).await;
}

#[tokio::test]
async fn a_client_killed_mid_frame_with_fin_is_cleaned_up() {
    kill_mid_frame(false).await;
}

#[tokio::test]
async fn a_client_close_is_answered_and_flushed() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "bye").await];
    let baseline = Baseline::take(&server);
    let mut leaver = raw_join(&server, "leaver", "bye").await;
    leaver
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "gg".into(),
        })))
        .await
        .expect("send close");
    let mut reply = None;
    let ended = timeout(PATIENCE, async {
        while let Some(frame) = leaver.next().await {
            match frame {
                Ok(Message::Close(frame)) => reply = Some(frame.map(|f| u16::from(f.code))),
                Ok(_) => {}
                Err(err) => panic!("the close handshake should end cleanly: {err}"),
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server ends the stream after the handshake"
    );
    assert_eq!(reply, Some(Some(1000)), "the server echoes the close");
    drop(leaver);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn sigterm_closes_every_client_with_1001_and_the_process_exits() {
    let _turn = serial().await;
    let mut server = ServerProcess::start(&[]);
    let ws = server.ws_url.clone();
    let mut clients = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let hello = client::native::Hello::new(name).in_room("last");
        clients.push(Client::connect_url(&ws, hello).await.expect("join"));
    }
    next_snapshot(&mut clients[0]).await;

    server.signal("-TERM");
    for client in &mut clients {
        let (close, goodbye) = expect_closed(client).await;
        let (code, reason) = close.expect("a close frame, not a dropped socket");
        assert_eq!(code, 1001);
        assert!(!reason.is_empty(), "the close says why");
        assert!(matches!(
            goodbye,
            Some(ServerMsg::Disconnect {
                reason: CloseReason::ServerShutdown,
                ..
            })
        ));
    }
    let status = server.exited(Duration::from_secs(5)).await;
    assert!(status.success(), "a clean exit: {status}");
    let refused = tokio::net::TcpStream::connect(server.addr).await;
    assert!(refused.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let _turn = serial().await;
    let mut config = server::Config::for_addr("127.0.0.1:0".parse().expect("an address"));
    config.data_dir = fresh_data_dir();
    let server = server::start(config).await.expect("the server starts");
    let mut browser = TcpStream::connect(server.addr).await.expect("connect");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    browser
        .write_all(request.as_bytes())
        .await
        .expect("send a keep-alive request");
    let mut response = [0u8; 512];
    let n = browser.read(&mut response).await.expect("read the answer");
    assert!(String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 200"));

    server.shutdown().await;
    let after = timeout(PATIENCE, browser.read(&mut response))
        .await
        .expect("the server closes the idle connection");
    assert_eq!(after.ok(), Some(0), "end of stream, not more data");
}
