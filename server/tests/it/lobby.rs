//! The lobby feed (`/lobby`) over real sockets: the whole list, then rooms opening,
//! filling and closing as changes; and the game socket's limits, each of which closes
//! only the offending lobby socket.

use std::time::Duration;

use client::native::{Socket, open_socket};
use futures_util::{SinkExt, StreamExt};
use shared::codec::decode_lobby;
use shared::consts::MAX_CLIENT_MSG_BYTES;
use shared::lobby::{LobbyMsg, RoomList};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// A lobby page's side of the feed: the socket, the list it keeps, and the kinds of
/// message that built it.
struct Watcher {
    socket: Socket,
    rooms: RoomList,
    /// `true` for each whole list received, `false` for each set of changes.
    wholes: Vec<bool>,
}

impl Watcher {
    async fn open(server: &server::Server) -> Watcher {
        let socket = open_socket(&server.lobby_url(), &client::native::Trust::public())
            .await
            .expect("the lobby feed opens");
        Watcher {
            socket,
            rooms: RoomList::default(),
            wholes: Vec::new(),
        }
    }

    /// Applies what the feed sends until `ready` holds for the list.
    async fn wait_for(&mut self, what: &str, ready: impl Fn(&RoomList) -> bool) {
        let waited = timeout(PATIENCE, async {
            while self.wholes.is_empty() || !ready(&self.rooms) {
                let frame = self.socket.next().await;
                let Some(Ok(frame)) = frame else {
                    panic!("the feed ended while waiting for {what}: {frame:?}");
                };
                if let Message::Binary(bytes) = frame {
                    let msg = decode_lobby(&bytes).expect("every feed message decodes");
                    self.wholes.push(matches!(msg, LobbyMsg::Rooms(_)));
                    self.rooms.apply(msg);
                }
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the lobby should show {what}; it shows {:?}",
            self.rooms
        );
    }

    fn players_in(&self, room: &str) -> Option<u16> {
        self.rooms
            .rooms()
            .find(|summary| summary.id == room)
            .map(|summary| summary.players)
    }
}

/// Reads until the server closes the socket; its close code and reason.
async fn close_of(socket: &mut Socket) -> (u16, String) {
    let closed = timeout(PATIENCE, async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Close(Some(close))) => {
                    return Some((u16::from(close.code), close.reason.to_string()));
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await;
    closed
        .expect("the server should close the lobby socket")
        .expect("a close frame with a code, not a dropped socket")
}

#[tokio::test]
async fn the_feed_shows_rooms_open_fill_and_close() {
    let server = start_server(|config| {
        config.room_capacity = 3;
        config.room_grace_secs = 0.2;
    })
    .await;
    let mut lobby = Watcher::open(&server).await;
    lobby.wait_for("no rooms", |rooms| rooms.is_empty()).await;

    let mut players = Vec::new();
    for (n, name) in ["ann", "bob", "cat"].into_iter().enumerate() {
        players.push(join_room(&server, name, "feed").await);
        let n = n as u16 + 1;
        lobby
            .wait_for(&format!("{n} players in feed"), |rooms| {
                rooms
                    .rooms()
                    .any(|room| room.id == "feed" && room.players == n && room.capacity == 3)
            })
            .await;
    }
    assert_eq!(lobby.players_in("feed"), Some(3), "the room shows full");

    for player in players {
        player.close().await.expect("a normal closure");
    }
    lobby
        .wait_for("the room closed", |rooms| rooms.is_empty())
        .await;
    assert_eq!(
        lobby.wholes.first(),
        Some(&true),
        "the feed starts with the whole list"
    );
    assert!(
        lobby.wholes[1..].iter().all(|whole| !whole),
        "after it, only changes: {:?}",
        lobby.wholes
    );
}

#[tokio::test]
async fn a_late_watcher_gets_the_whole_list_at_once() {
    let server = start_server(|_| {}).await;
    let _ann = join_room(&server, "ann", "early").await;
    let _bob = join_room(&server, "bob", "later").await;
    let mut first = Watcher::open(&server).await;
    first.wait_for("both rooms", |rooms| rooms.len() == 2).await;
    // Both rooms are published now: a page that opens the feed gets them in one message.
    let mut late = Watcher::open(&server).await;
    late.wait_for("both rooms", |rooms| rooms.len() == 2).await;
    assert_eq!(late.wholes, [true], "one message was enough");
    assert_eq!(late.players_in("early"), Some(1));
}

#[tokio::test]
async fn a_lobby_socket_from_another_site_is_refused() {
    let server = start_server(|_| {}).await;
    let baseline = Baseline::take(&server);
    let local = [127, 0, 0, 1].into();
    let (status, _, refused) =
        raw_upgrade_to(&server, local, "/lobby", "Origin: https://evil.example\r\n").await;
    assert_eq!(status, 403, "a page on another site may not open the feed");
    drop(refused);
    let same_site = format!("Origin: http://{}\r\n", server.addr);
    let (status, _, socket) = raw_upgrade_to(&server, local, "/lobby", &same_site).await;
    assert_eq!(status, 101, "the game's own page may");
    drop(socket);
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn lobby_sockets_count_against_the_connection_caps() {
    let server = start_server(|config| config.max_connections_per_ip = 2).await;
    let local = [127, 0, 0, 1].into();
    let mut first = Watcher::open(&server).await;
    let mut second = Watcher::open(&server).await;
    // Once the list has come, the server counts the socket.
    for watcher in [&mut first, &mut second] {
        watcher.wait_for("the list", |_| true).await;
    }
    assert_eq!(
        server.metrics().lobby_connections.get(),
        2,
        "operators see the open lobby sockets"
    );
    let (status, _, refused) = raw_upgrade_to(&server, local, "/lobby", "").await;
    assert_eq!(
        status, 429,
        "a third lobby from one address is over its cap"
    );
    drop(refused);
    let (status, _, refused) = raw_upgrade_to(&server, local, "/ws", "").await;
    assert_eq!(status, 429, "lobbies and games share the cap");
    drop(refused);
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, _, socket) = raw_upgrade_to(&server, local, "/lobby", "").await;
        if status == 101 {
            break;
        }
        drop(socket);
        assert!(
            Instant::now() < deadline,
            "a closed lobby gives its slot back (still {status})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(second);
}

#[tokio::test]
async fn an_oversize_frame_closes_the_lobby_socket_with_1009() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "big").await];
    let mut bystander = Watcher::open(&server).await;
    let mut rogue = Watcher::open(&server).await;
    let _ = rogue
        .socket
        .send(Message::binary(vec![0u8; MAX_CLIENT_MSG_BYTES * 4]))
        .await;
    let (code, reason) = close_of(&mut rogue.socket).await;
    assert_eq!(code, 1009, "too big: {reason}");
    still_playing(&mut others).await;
    let _bob = join_room(&server, "bob", "big").await;
    bystander
        .wait_for("bob's seat", |rooms| {
            rooms
                .rooms()
                .any(|room| room.id == "big" && room.players == 2)
        })
        .await;
}

#[tokio::test]
async fn a_message_on_the_lobby_socket_is_closed_with_1007() {
    let server = start_server(|_| {}).await;
    let baseline = Baseline::take(&server);
    let mut rogue = Watcher::open(&server).await;
    rogue
        .socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send a frame");
    let (code, reason) = close_of(&mut rogue.socket).await;
    assert_eq!(code, 1007, "the feed takes no messages: {reason}");
    assert!(!reason.is_empty(), "the close frame says why");
    drop(rogue);
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_ping_flood_closes_the_lobby_socket_with_1008() {
    let server = start_server(|config| config.msg_burst = 20).await;
    let mut others = vec![join_room(&server, "ann", "flood").await];
    let baseline = Baseline::take(&server);
    let mut rogue = Watcher::open(&server).await;
    for _ in 0..2_000 {
        if rogue
            .socket
            .send(Message::Ping(Default::default()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = close_of(&mut rogue.socket).await;
    assert_eq!(code, 1008, "flooding: {reason}");
    drop(rogue);
    still_playing(&mut others).await;
    baseline.assert_restored(&server).await;
}

#[tokio::test]
async fn a_silent_lobby_socket_is_closed_after_the_idle_timeout() {
    let server = start_server(|config| {
        config.ping_interval_secs = 0.2;
        config.idle_timeout_secs = 0.6;
    })
    .await;
    let baseline = Baseline::take(&server);
    let mut silent = Watcher::open(&server).await;
    // Not reading, so not answering the server's pings either.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, reason) = close_of(&mut silent.socket).await;
    assert_eq!(code, 1008, "silent past the idle timeout: {reason}");
    drop(silent);
    baseline.assert_restored(&server).await;
}
