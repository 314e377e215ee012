//! The lobby feed (`/lobby`): the open rooms, sent whole when a lobby page connects and
//! then as changes, and `RoomList`, which both ends keep and which applies them. It is
//! not the game protocol: a lobby socket carries nothing else, and the client sends none.

use serde::{Deserialize, Serialize};

/// One open room as the lobby lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room's name, as its deep link and a hello give it.
    pub id: String,
    /// Seats taken, seats held for reconnecting players included.
    pub players: u16,
    pub capacity: u16,
}

/// Messages from the server on the lobby feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LobbyMsg {
    /// Every listed room, by name: the first message on a feed, and again whenever the
    /// connection missed a change.
    Rooms(Vec<RoomSummary>),
    /// What changed since the previous message.
    Changes {
        /// Rooms opened, or whose seats changed, as they are now.
        updated: Vec<RoomSummary>,
        /// Rooms closed (or no longer listed), by name.
        closed: Vec<String>,
    },
}

/// The listed rooms, by name. The server keeps one to work out what changed; a lobby
/// page keeps one and applies what the feed sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomList {
    /// Sorted by name, one per name. A sorted `Vec` rather than a map: the browser
    /// module carries code for every map type it uses, and this is the lighter.
    rooms: Vec<RoomSummary>,
}

impl RoomList {
    pub fn new(rooms: impl IntoIterator<Item = RoomSummary>) -> RoomList {
        let mut list = RoomList::default();
        for room in rooms {
            list.upsert(room);
        }
        list
    }

    /// Every room, by name.
    pub fn rooms(&self) -> impl Iterator<Item = &RoomSummary> {
        self.rooms.iter()
    }

    /// The room of this name, if it is listed.
    pub fn get(&self, id: &str) -> Option<&RoomSummary> {
        let at = self.find(id).ok()?;
        self.rooms.get(at)
    }

    /// Where the room of this name is, or where it would go.
    fn find(&self, id: &str) -> Result<usize, usize> {
        self.rooms.binary_search_by(|room| room.id.as_str().cmp(id))
    }

    fn upsert(&mut self, room: RoomSummary) {
        match self.find(&room.id) {
            Ok(at) => self.rooms[at] = room,
            Err(at) => self.rooms.insert(at, room),
        }
    }

    fn remove(&mut self, id: &str) {
        if let Ok(at) = self.find(id) {
            self.rooms.remove(at);
        }
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Takes in a message from the feed: a whole list replaces this one, changes amend it.
    pub fn apply(&mut self, msg: LobbyMsg) {
        match msg {
            LobbyMsg::Rooms(rooms) => *self = RoomList::new(rooms),
            LobbyMsg::Changes { updated, closed } => {
                for id in closed {
                    self.remove(&id);
                }
                for room in updated {
                    self.upsert(room);
                }
            }
        }
    }

    /// The whole list, as the message a new feed starts with.
    pub fn whole(&self) -> LobbyMsg {
        LobbyMsg::Rooms(self.rooms.clone())
    }

    /// The changes that turn this list into `newer`; `None` when they are the same.
    pub fn changes_to(&self, newer: &RoomList) -> Option<LobbyMsg> {
        let updated: Vec<RoomSummary> = newer
            .rooms()
            .filter(|room| self.get(&room.id) != Some(*room))
            .cloned()
            .collect();
        let closed: Vec<String> = self
            .rooms()
            .filter(|room| newer.get(&room.id).is_none())
            .map(|room| room.id.clone())
            .collect();
        (!updated.is_empty() || !closed.is_empty()).then_some(LobbyMsg::Changes { updated, closed })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::{decode_lobby, encode_lobby};
    use crate::consts::{LOBBY_ROOMS_LISTED, MAX_LOBBY_MSG_BYTES, ROOM_NAME_MAX_CHARS};

    fn room(id: &str, players: u16) -> RoomSummary {
        RoomSummary {
            id: id.to_owned(),
            players,
            capacity: 16,
        }
    }

    #[test]
    fn changes_name_rooms_opened_filled_and_closed() {
        let before = RoomList::new([room("a", 1), room("b", 2), room("c", 3)]);
        let after = RoomList::new([room("a", 1), room("b", 5), room("d", 1)]);
        assert_eq!(
            before.changes_to(&after),
            Some(LobbyMsg::Changes {
                updated: vec![room("b", 5), room("d", 1)],
                closed: vec!["c".to_owned()],
            })
        );
        assert_eq!(after.changes_to(&after), None, "no change, no message");
    }

    #[test]
    fn a_whole_list_replaces_what_was_known() {
        let mut list = RoomList::new([room("old", 4)]);
        list.apply(LobbyMsg::Rooms(vec![room("new", 1)]));
        assert_eq!(list, RoomList::new([room("new", 1)]));
    }

    #[test]
    fn the_longest_list_fits_the_message_limit() {
        let longest_name = "x".repeat(ROOM_NAME_MAX_CHARS - 6);
        let rooms = (0..LOBBY_ROOMS_LISTED).map(|n| RoomSummary {
            id: format!("{longest_name}{n:06}"),
            players: u16::MAX,
            capacity: u16::MAX,
        });
        let bytes = encode_lobby(&RoomList::new(rooms).whole());
        assert!(
            bytes.len() <= MAX_LOBBY_MSG_BYTES,
            "{} bytes for {LOBBY_ROOMS_LISTED} rooms must fit in {MAX_LOBBY_MSG_BYTES}",
            bytes.len()
        );
        assert!(decode_lobby(&bytes).is_ok());
    }

    fn any_list() -> impl Strategy<Value = RoomList> {
        proptest::collection::btree_map("[a-e]{1,2}", 0u16..4, 0..12).prop_map(|rooms| {
            RoomList::new(rooms.into_iter().map(|(id, players)| RoomSummary {
                id,
                players,
                capacity: 4,
            }))
        })
    }

    proptest! {
        #[test]
        fn changes_applied_to_the_old_list_give_the_new_one(old in any_list(), new in any_list()) {
            let mut applied = old.clone();
            if let Some(changes) = old.changes_to(&new) {
                let changes = decode_lobby(&encode_lobby(&changes)).expect("a message decodes");
                applied.apply(changes);
            }
            prop_assert_eq!(applied, new);
        }
    }
}
