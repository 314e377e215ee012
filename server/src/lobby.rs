//! The room directory: which rooms exist and how many seats each has taken. Seats are
//! reserved here, under one short lock, so two players can never take the last seat of
//! a room together; the game state itself lives only in each room's loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::room::{self, RoomCmd, RoomSettings};
use crate::room_threads::RoomThreads;

/// Commands a room may have waiting; joins and leaves wait here for the next tick.
const ROOM_CMD_QUEUE: usize = 1024;

#[derive(Debug)]
pub struct Lobby {
    rooms: Mutex<BTreeMap<String, RoomEntry>>,
    settings: Arc<RoomSettings>,
    metrics: Arc<Metrics>,
    next_auto_room: AtomicU64,
    threads: RoomThreads,
}

#[derive(Debug)]
struct RoomEntry {
    commands: mpsc::Sender<RoomCmd>,
    seats_taken: u16,
    /// Created by join-or-create rather than asked for by name.
    auto: bool,
}

/// One row of `GET /api/rooms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoomInfo {
    pub id: String,
    pub players: u16,
    pub capacity: u16,
}

/// A reserved seat in a room. Dropping it frees the seat.
#[derive(Debug)]
pub struct Seat {
    lobby: Arc<Lobby>,
    pub room: String,
    pub commands: mpsc::Sender<RoomCmd>,
}

/// The room asked for has no free seat.
#[derive(Debug, PartialEq, Eq)]
pub struct RoomFull;

impl Lobby {
    pub fn new(settings: RoomSettings, metrics: Arc<Metrics>, threads: RoomThreads) -> Arc<Lobby> {
        Arc::new(Lobby {
            rooms: Mutex::new(BTreeMap::new()),
            settings: Arc::new(settings),
            metrics,
            next_auto_room: AtomicU64::new(1),
            threads,
        })
    }

    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    /// Reserves a seat: in the named room (created if needed), or else in the fullest
    /// open quick-play room with a free seat, or else in a new quick-play room.
    pub fn reserve(self: &Arc<Self>, room: Option<&str>) -> Result<Seat, RoomFull> {
        let capacity = self.settings.capacity;
        let mut rooms = self.rooms.lock();
        let room_id = match room {
            Some(name) => name.to_owned(),
            None => rooms
                .iter()
                .filter(|(_, entry)| entry.auto && entry.seats_taken < capacity)
                .max_by_key(|(_, entry)| entry.seats_taken)
                .map(|(id, _)| id.clone())
                .unwrap_or_else(|| self.new_auto_room_id(&rooms)),
        };
        let entry = rooms
            .entry(room_id.clone())
            .or_insert_with(|| self.spawn_room(&room_id, room.is_none()));
        if entry.seats_taken >= capacity {
            return Err(RoomFull);
        }
        entry.seats_taken += 1;
        self.metrics.players.inc();
        Ok(Seat {
            lobby: Arc::clone(self),
            room: room_id,
            commands: entry.commands.clone(),
        })
    }

    fn new_auto_room_id(&self, rooms: &BTreeMap<String, RoomEntry>) -> String {
        loop {
            let n = self.next_auto_room.fetch_add(1, Ordering::Relaxed);
            let id = format!("r{n}");
            if !rooms.contains_key(&id) {
                return id;
            }
        }
    }

    fn spawn_room(self: &Arc<Self>, room_id: &str, auto: bool) -> RoomEntry {
        let (commands, receiver) = mpsc::channel(ROOM_CMD_QUEUE);
        self.metrics.rooms.inc();
        tracing::info!(room = room_id, "room opened");
        self.threads.spawn(room::RoomRunner::new(
            room_id.to_owned(),
            Arc::clone(&self.settings),
            receiver,
            Arc::clone(self),
            Arc::clone(&self.metrics),
        ));
        RoomEntry {
            commands,
            seats_taken: 0,
            auto,
        }
    }

    fn release(&self, room_id: &str) {
        let mut rooms = self.rooms.lock();
        if let Some(entry) = rooms.get_mut(room_id) {
            entry.seats_taken = entry.seats_taken.saturating_sub(1);
            self.metrics.players.dec();
        }
    }

    /// Called by a room loop that has been empty for its grace period. Removes the room
    /// unless a seat was reserved meanwhile; the loop exits only when this returns true,
    /// so a reserved seat always has a live loop behind it.
    pub fn close_if_empty(&self, room_id: &str) -> bool {
        let mut rooms = self.rooms.lock();
        let empty = rooms
            .get(room_id)
            .is_some_and(|entry| entry.seats_taken == 0);
        if empty {
            rooms.remove(room_id);
            self.metrics.rooms.dec();
            tracing::info!(room = room_id, "room closed");
        }
        empty
    }

    pub fn list(&self) -> Vec<RoomInfo> {
        self.rooms
            .lock()
            .iter()
            .map(|(id, entry)| RoomInfo {
                id: id.clone(),
                players: entry.seats_taken,
                capacity: self.settings.capacity,
            })
            .collect()
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.lobby.release(&self.room);
    }
}
