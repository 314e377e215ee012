//! What a client knows of its room, rebuilt from the server's messages alone.

use std::collections::BTreeMap;

use shared::codec::{DecodeError, decode_server};
use shared::protocol::{ClientMsg, GameEvent, InputFrame, ServerMsg, Snapshot, Welcome};
use shared::{Map, PlayerId};

/// A client's view of the room, updated by `apply` with every server message.
#[derive(Debug, Default)]
pub struct RoomView {
    pub me: Option<PlayerId>,
    pub room: String,
    pub map: Option<Map>,
    pub tick_hz: u16,
    pub snapshot_hz: u16,
    /// Names of everyone in the room, by id.
    pub roster: BTreeMap<PlayerId, String>,
    /// The newest snapshot.
    pub snapshot: Option<Snapshot>,
    pub snapshots_received: u64,
    /// Chat lines as (sender name, text), oldest first, the newest `CHAT_LOG` kept.
    pub chat: Vec<(String, String)>,
    pub events: Vec<GameEvent>,
}

const CHAT_LOG: usize = 100;

impl RoomView {
    /// Decodes and applies one binary frame from the server, returning the message.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
        let msg = decode_server(bytes)?;
        self.apply(&msg);
        Ok(msg)
    }

    pub fn apply(&mut self, msg: &ServerMsg) {
        match msg {
            ServerMsg::Welcome(welcome) => self.welcome(welcome),
            ServerMsg::Snapshot(snapshot) => {
                let newer = self
                    .snapshot
                    .as_ref()
                    .is_none_or(|old| snapshot.tick.since(old.tick) > 0);
                if newer {
                    self.snapshot = Some(snapshot.clone());
                }
                self.snapshots_received += 1;
            }
            ServerMsg::PlayerJoined { id, name } => {
                self.roster.insert(*id, name.clone());
            }
            ServerMsg::PlayerLeft { id } => {
                self.roster.remove(id);
                if let Some(snapshot) = &mut self.snapshot {
                    snapshot.players.retain(|p| p.id != *id);
                }
            }
            ServerMsg::Chat { name, text, .. } => {
                self.chat.push((name.clone(), text.clone()));
                if self.chat.len() > CHAT_LOG {
                    self.chat.remove(0);
                }
            }
            ServerMsg::Event(event) => self.events.push(*event),
            ServerMsg::Pong { .. } | ServerMsg::Notice { .. } | ServerMsg::Disconnect { .. } => {}
        }
    }

    fn welcome(&mut self, welcome: &Welcome) {
        self.me = Some(welcome.player_id);
        self.room = welcome.room.clone();
        self.map = Some(welcome.map.clone());
        self.tick_hz = welcome.tick_hz;
        self.snapshot_hz = welcome.snapshot_hz;
        self.roster = welcome
            .roster
            .iter()
            .map(|entry| (entry.id, entry.name.clone()))
            .collect();
    }

    /// The message that sends `frame` to the server. Every client builds its input
    /// messages here, so whatever else an input message must carry is added in one place.
    pub fn input_message(&self, frame: InputFrame) -> ClientMsg {
        ClientMsg::Input(frame)
    }

    /// Takes the game events received since the last call.
    pub fn drain_events(&mut self) -> Vec<GameEvent> {
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use glam::Vec2;
    use shared::codec::encode_server;
    use shared::protocol::{PlayerState, RosterEntry};
    use shared::{Seq, Tick};

    use super::*;

    fn player(id: u16) -> PlayerState {
        PlayerState {
            id: PlayerId(id),
            pos: Vec2::ZERO,
            vel: Vec2::ZERO,
            aim: 0.0,
            health: 100,
            alive: true,
            score: 0,
        }
    }

    #[test]
    fn view_follows_welcome_joins_leaves_and_snapshots() {
        let mut view = RoomView::default();
        let welcome = ServerMsg::Welcome(Box::new(Welcome {
            player_id: PlayerId(1),
            name: "ann".into(),
            room: "r1".into(),
            tick_hz: 60,
            snapshot_hz: 30,
            tick: Tick(0),
            map: Map::test_arena(),
            roster: vec![RosterEntry {
                id: PlayerId(1),
                name: "ann".into(),
            }],
        }));
        view.apply_bytes(&encode_server(&welcome))
            .expect("welcome decodes");
        view.apply(&ServerMsg::PlayerJoined {
            id: PlayerId(2),
            name: "bob".into(),
        });
        view.apply(&ServerMsg::Snapshot(Snapshot {
            tick: Tick(5),
            ack_input: Seq(0),
            players: vec![player(1), player(2)],
            projectiles: vec![],
        }));
        assert_eq!(view.me, Some(PlayerId(1)));
        assert_eq!(view.roster.len(), 2);
        view.apply(&ServerMsg::PlayerLeft { id: PlayerId(2) });
        assert_eq!(view.roster.values().collect::<Vec<_>>(), ["ann"]);
        let players = &view.snapshot.as_ref().expect("a snapshot arrived").players;
        assert_eq!(players.len(), 1, "the leaver is gone from the view at once");
    }

    #[test]
    fn an_older_snapshot_does_not_replace_a_newer_one() {
        let mut view = RoomView::default();
        for tick in [10, 9] {
            view.apply(&ServerMsg::Snapshot(Snapshot {
                tick: Tick(tick),
                ..Snapshot::default()
            }));
        }
        assert_eq!(view.snapshot.map(|s| s.tick), Some(Tick(10)));
        assert_eq!(view.snapshots_received, 2);
    }
}
