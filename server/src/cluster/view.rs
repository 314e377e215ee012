//! One process's picture of the cluster, read from Redis each heartbeat and merged with
//! its own rooms (which it knows live): the processes and every room. Pure, so the
//! choices placement makes from it (the fullest open room, the least-loaded process)
//! are tested without Redis.

use serde::{Deserialize, Serialize};

use crate::rooms::directory::{MatchPhase, RoomInfo};

/// A process's registry entry, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessEntry {
    /// Where players reach its page; its game socket is at `/ws` below.
    pub(crate) url: String,
    /// Seats taken in its rooms: its load.
    pub(crate) players: u32,
    /// It seats nobody new and opens no rooms.
    pub(crate) draining: bool,
}

/// A room's directory entry, as stored in its owner's rooms hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoomEntry {
    pub(crate) players: u16,
    pub(crate) capacity: u16,
    /// Opened by quick play, so quick play may fill it.
    pub(crate) quick_play: bool,
    #[serde(default)]
    pub(crate) phase: MatchPhase,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Process {
    pub(crate) id: String,
    pub(crate) entry: ProcessEntry,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListedRoom {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) entry: RoomEntry,
}

/// The live processes and the rooms of the others, as Redis last said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClusterView {
    pub(crate) processes: Vec<Process>,
    /// Rooms of every process, this one's included as last published; `merged`
    /// replaces those with the live ones.
    pub(crate) rooms: Vec<ListedRoom>,
}

impl ClusterView {
    /// This view with process `me`'s rooms and load replaced by `local`, its live rooms.
    pub(crate) fn merged(&self, me: &str, local: &[RoomInfo]) -> ClusterView {
        let mut rooms: Vec<ListedRoom> = self
            .rooms
            .iter()
            .filter(|room| room.owner != me)
            .cloned()
            .collect();
        rooms.extend(local.iter().map(|room| ListedRoom {
            id: room.id.clone(),
            owner: me.to_owned(),
            entry: RoomEntry {
                players: room.players,
                capacity: room.capacity,
                quick_play: room.quick_play,
                phase: room.phase,
            },
        }));
        rooms.sort_by(|a, b| a.id.cmp(&b.id));
        let load: u32 = local.iter().map(|room| u32::from(room.players)).sum();
        let mut processes = self.processes.clone();
        if let Some(process) = processes.iter_mut().find(|process| process.id == me) {
            process.entry.players = load;
        }
        ClusterView { processes, rooms }
    }

    pub(crate) fn process(&self, id: &str) -> Option<&Process> {
        self.processes.iter().find(|process| process.id == id)
    }

    /// Quick-play rooms with a free seat on processes that take players, fullest first.
    pub(crate) fn open_rooms_fullest_first(&self) -> Vec<&ListedRoom> {
        let mut open: Vec<&ListedRoom> = self
            .rooms
            .iter()
            .filter(|room| room.entry.quick_play && room.entry.players < room.entry.capacity)
            .filter(|room| {
                self.process(&room.owner)
                    .is_some_and(|owner| !owner.entry.draining)
            })
            .collect();
        open.sort_by(|a, b| {
            b.entry
                .players
                .cmp(&a.entry.players)
                .then_with(|| a.id.cmp(&b.id))
        });
        open
    }

    /// The process with the fewest players among those that take them; `me` wins ties,
    /// so a quiet cluster opens rooms where the player already is.
    pub(crate) fn least_loaded(&self, me: &str) -> Option<&Process> {
        self.processes
            .iter()
            .filter(|process| !process.entry.draining)
            .min_by_key(|process| (process.entry.players, process.id != me, process.id.clone()))
    }

    /// Counts a seat just reserved in `room` (opened on `owner` if new), so the next
    /// choice before the following heartbeat sees it.
    pub(crate) fn count_seat(&mut self, owner: &str, room: &str, capacity: u16) {
        match self.rooms.iter_mut().find(|listed| listed.id == room) {
            Some(listed) => listed.entry.players = listed.entry.players.saturating_add(1),
            None => self.rooms.push(ListedRoom {
                id: room.to_owned(),
                owner: owner.to_owned(),
                entry: RoomEntry {
                    players: 1,
                    capacity,
                    quick_play: true,
                    phase: MatchPhase::Playing,
                },
            }),
        }
        if let Some(process) = self
            .processes
            .iter_mut()
            .find(|process| process.id == owner)
        {
            process.entry.players += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(id: &str, players: u32, draining: bool) -> Process {
        Process {
            id: id.to_owned(),
            entry: ProcessEntry {
                url: format!("http://{id}"),
                players,
                draining,
            },
        }
    }

    fn room(id: &str, owner: &str, players: u16, quick_play: bool) -> ListedRoom {
        ListedRoom {
            id: id.to_owned(),
            owner: owner.to_owned(),
            entry: RoomEntry {
                players,
                capacity: 4,
                quick_play,
                phase: MatchPhase::Playing,
            },
        }
    }

    #[test]
    fn quick_play_prefers_the_fullest_open_room_on_a_process_that_takes_players() {
        let view = ClusterView {
            processes: vec![
                process("a", 0, false),
                process("b", 0, false),
                process("c", 0, true),
            ],
            rooms: vec![
                room("full", "a", 4, true),
                room("two", "a", 2, true),
                room("three", "b", 3, true),
                room("named", "b", 3, false),
                room("draining", "c", 3, true),
                room("orphan", "gone", 3, true),
            ],
        };
        let ids: Vec<&str> = view
            .open_rooms_fullest_first()
            .iter()
            .map(|room| room.id.as_str())
            .collect();
        assert_eq!(ids, ["three", "two"]);
    }

    #[test]
    fn new_rooms_go_to_the_least_loaded_process_and_ties_stay_here() {
        let view = ClusterView {
            processes: vec![
                process("a", 5, false),
                process("b", 2, false),
                process("c", 0, true),
            ],
            rooms: vec![],
        };
        assert_eq!(view.least_loaded("a").map(|p| p.id.as_str()), Some("b"));
        let tied = ClusterView {
            processes: vec![process("a", 2, false), process("b", 2, false)],
            rooms: vec![],
        };
        assert_eq!(tied.least_loaded("b").map(|p| p.id.as_str()), Some("b"));
    }

    #[test]
    fn merging_replaces_this_processs_published_rooms_and_load_with_the_live_ones() {
        let view = ClusterView {
            processes: vec![process("a", 9, false), process("b", 1, false)],
            rooms: vec![room("old", "a", 3, true), room("b1", "b", 1, true)],
        };
        let live = [RoomInfo {
            id: "new".into(),
            players: 2,
            capacity: 4,
            quick_play: true,
            phase: MatchPhase::Playing,
            server: None,
        }];
        let merged = view.merged("a", &live);
        let ids: Vec<&str> = merged.rooms.iter().map(|room| room.id.as_str()).collect();
        assert_eq!(ids, ["b1", "new"]);
        assert_eq!(merged.process("a").map(|p| p.entry.players), Some(2));
    }

    #[test]
    fn a_seat_counted_before_the_next_heartbeat_fills_the_room_and_loads_its_owner() {
        let mut view = ClusterView {
            processes: vec![process("a", 0, false), process("b", 0, false)],
            rooms: vec![],
        };
        view.count_seat("b", "q1", 4);
        view.count_seat("b", "q1", 4);
        assert_eq!(view.rooms[0].entry.players, 2);
        assert_eq!(view.least_loaded("b").map(|p| p.id.as_str()), Some("a"));
    }
}
