//! Spectators over real sockets: they watch a room `--spectator-delay-secs` behind its
//! players, take no seat, are capped per room, and may send nothing but acks and pings.

use std::time::Duration;

use client::core::RoomView;
use client::native::{Socket, Trust, open_socket};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use shared::Tick;
use shared::codec::encode_client;
use shared::consts::PROTOCOL_VERSION;
use shared::protocol::{ClientMsg, CloseReason, ServerMsg};
use tokio::time::{Instant, timeout};
use tungstenite::Message;

use crate::support::*;

/// A watching client: a raw socket and the room as it is shown.
pub(crate) struct Spectator {
    socket: Socket,
    view: RoomView,
    /// The server's close frame, once it came.
    close: Option<(u16, String)>,
    goodbye: Option<CloseReason>,
}

impl Spectator {
    async fn watch(server: &server::Server, room: &str) -> Spectator {
        Spectator::watch_at(&server.ws_url(), room).await
    }

    /// Says hello as a spectator of `room` to the game socket at `url`.
    pub(crate) async fn watch_at(url: &str, room: &str) -> Spectator {
        let mut socket = open_socket(url, &Trust::public())
            .await
            .expect("the game socket opens");
        let hello = ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            name: "watcher".into(),
            room: Some(room.into()),
            token: None,
            resume: None,
            reservation: None,
            spectate: true,
        };
        socket
            .send(Message::binary(encode_client(&hello)))
            .await
            .expect("the hello goes out");
        Spectator {
            socket,
            view: RoomView::default(),
            close: None,
            goodbye: None,
        }
    }

    async fn send(&mut self, msg: &ClientMsg) {
        let _ = self.socket.send(Message::binary(encode_client(msg))).await;
    }

    /// The next message, applied to the view (snapshots acknowledged as a client
    /// does); `None` once the server has closed.
    pub(crate) async fn recv(&mut self) -> Option<ServerMsg> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Binary(bytes)) => {
                    let msg = self
                        .view
                        .apply_bytes(&bytes)
                        .expect("every message applies");
                    if matches!(msg, ServerMsg::Snapshot(_))
                        && let Some(ack) = self.view.ack_message()
                    {
                        self.send(&ack).await;
                    }
                    if let ServerMsg::Disconnect { reason, .. } = &msg {
                        self.goodbye = Some(*reason);
                    }
                    return Some(msg);
                }
                Ok(Message::Close(frame)) => {
                    self.close =
                        frame.map(|frame| (u16::from(frame.code), frame.reason.to_string()));
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    async fn recv_until<T>(
        &mut self,
        mut pick: impl FnMut(&ServerMsg, &RoomView) -> Option<T>,
    ) -> T {
        let found = timeout(PATIENCE, async {
            loop {
                let msg = self.recv().await.expect("the spectator stays connected");
                if let Some(found) = pick(&msg, &self.view) {
                    return found;
                }
            }
        })
        .await;
        found.expect("the awaited message should reach the spectator in time")
    }

    /// Reads until the server closes; the close code and the reason it gave.
    pub(crate) async fn closed(&mut self) -> (Option<u16>, Option<CloseReason>) {
        let ended = timeout(PATIENCE, async { while self.recv().await.is_some() {} }).await;
        assert!(ended.is_ok(), "the server should close the spectator");
        (self.close.as_ref().map(|(code, _)| *code), self.goodbye)
    }
}

/// Players in each listed room, from `/api/rooms`.
async fn listed_players(server: &server::Server) -> Vec<(String, u64)> {
    let (status, body) = http_get(server, "/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    let rooms: Value = serde_json::from_str(&body).expect("JSON");
    rooms
        .as_array()
        .expect("a list")
        .iter()
        .map(|room| {
            (
                room["id"].as_str().expect("an id").to_owned(),
                room["players"].as_u64().expect("a count"),
            )
        })
        .collect()
}

/// The tick of the first snapshot after the chat line `text`, and when that line came.
fn after_chat(text: &str) -> impl FnMut(&ServerMsg, &RoomView) -> Option<(Tick, Instant)> {
    let text = text.to_owned();
    let mut heard = None;
    move |msg, view| match msg {
        ServerMsg::Chat { text: said, .. } if *said == text => {
            heard = Some(Instant::now());
            None
        }
        ServerMsg::Snapshot(_) => heard
            .zip(view.snapshot.as_ref())
            .map(|(at, s)| (s.tick, at)),
        _ => None,
    }
}

#[tokio::test]
async fn a_spectator_sees_the_players_a_delay_behind_and_takes_no_seat() {
    let delay = Duration::from_millis(600);
    let server = start_server(|config| config.spectator_delay_secs = delay.as_secs_f64()).await;
    let mut ann = join_room(&server, "ann", "arena").await;
    let bob = join_room(&server, "bob", "arena").await;
    let ids = [ann.welcome.player_id, bob.welcome.player_id];
    snapshot_showing(&mut ann, &ids).await;

    let mut eve = Spectator::watch(&server, "arena").await;
    let watching = eve
        .recv_until(|msg, _| match msg {
            ServerMsg::Watching(watching) => Some(watching.clone()),
            _ => None,
        })
        .await;
    assert_eq!(watching.room, "arena");
    assert_eq!(watching.delay_ms, 600);
    assert_eq!(
        watching
            .roster
            .iter()
            .map(|entry| entry.id)
            .collect::<Vec<_>>(),
        ids,
        "the spectator is told who plays, and is not among them"
    );
    let shown = eve
        .recv_until(|_, view| view.snapshot.clone().filter(|s| s.players.len() == 2))
        .await;
    assert!(shown.players.iter().all(|p| ids.contains(&p.id)));
    assert_eq!(eve.view.me, None, "a spectator has no player of its own");

    // The same chat line, and the snapshot written right after it: the spectator gets
    // both, in the same order, about the delay later.
    ann.send(&ClientMsg::Chat {
        text: "mark".into(),
    })
    .await
    .expect("chat goes out");
    let (player_tick, player_heard) = recv_until(&mut ann, after_chat("mark")).await;
    let (spectator_tick, spectator_heard) = eve.recv_until(after_chat("mark")).await;
    assert_eq!(
        spectator_tick, player_tick,
        "the spectator is shown the snapshot the players got with the line"
    );
    let gap = spectator_heard - player_heard;
    assert!(
        gap >= delay.mul_f64(0.7) && gap <= delay + Duration::from_millis(900),
        "the spectator hears the line about {delay:?} after the players, not {gap:?}"
    );

    assert_eq!(
        listed_players(&server).await,
        vec![("arena".to_owned(), 2)],
        "a spectator is no player in /api/rooms"
    );
    assert_eq!(
        server.metrics().spectators.get(),
        1,
        "spectators are counted"
    );
    let (_, metrics) = http_get_at(server.admin_addr(), "/metrics").await;
    assert!(
        metrics.contains("skirmish_spectators 1"),
        "the gauge is exported:\n{metrics}"
    );
    still_playing(&mut [ann, bob]).await;
}

#[tokio::test]
async fn spectators_past_the_cap_or_sending_input_are_closed_with_their_codes() {
    let server = start_server(|config| {
        config.spectator_delay_secs = 0.2;
        config.max_spectators_per_room = 1;
    })
    .await;
    let mut ann = join_room(&server, "ann", "arena").await;
    next_snapshot(&mut ann).await;

    let mut first = Spectator::watch(&server, "arena").await;
    first.recv_until(|_, view| view.snapshot.clone()).await;
    let mut second = Spectator::watch(&server, "arena").await;
    assert_eq!(
        second.closed().await,
        (Some(4010), Some(CloseReason::SpectatorsFull)),
        "the spectator past the cap is refused with its code"
    );
    let mut nowhere = Spectator::watch(&server, "nowhere").await;
    assert_eq!(
        nowhere.closed().await,
        (Some(4012), Some(CloseReason::NoSuchRoom)),
        "a room that is not open cannot be watched"
    );

    let input = ClientMsg::Input {
        ack: None,
        frames: vec![shared::game::InputFrame {
            seq: shared::Seq(1),
            buttons: shared::game::buttons::UP,
            aim: 0.0,
            view: None,
        }],
    };
    first.send(&input).await;
    assert_eq!(
        first.closed().await,
        (Some(4011), Some(CloseReason::SpectatorOnly)),
        "a spectator that sends input loses its connection"
    );

    // The player noticed nothing, and the freed place takes the next spectator.
    assert_eq!(ann.view.roster.len(), 1);
    still_playing(std::slice::from_mut(&mut ann)).await;
    let mut third = Spectator::watch(&server, "arena").await;
    third.recv_until(|_, view| view.snapshot.clone()).await;
    assert_eq!(listed_players(&server).await, vec![("arena".to_owned(), 1)]);
    assert_eq!(server.metrics().spectators.get(), 1);
}
