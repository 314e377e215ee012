//! The room directory: which rooms exist and how many seats each has taken. A seat is
//! reserved here before a player joins, so two players can never take the last seat of
//! a room together; the game state itself lives only in each room's loop.
//!
//! `Directory` is the seam where a directory shared by many processes will go; today's
//! `LocalDirectory` keeps it in this process, under one short lock. It also bounds the
//! rooms: how many may exist, and how fast one address may open new ones.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use shared::game::Phase;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::net::ratelimit::TokenBucket;
use crate::ops::metrics::Metrics;
use crate::rooms::room::{RoomCmd, RoomSettings};
use crate::rooms::runner::{RoomKey, RoomRunner};
use crate::rooms::scheduler::{Janitor, Spawner, Waker};

/// Commands a room may have waiting; joins and leaves wait here for the next tick.
const ROOM_CMD_QUEUE: usize = 1024;
/// Addresses whose room-opening budget is remembered; past it, those whose budget is
/// whole again are forgotten.
const CREATORS_KEPT: usize = 4096;

/// Where seats are reserved and rooms are listed.
pub(crate) trait Directory: Send + Sync + fmt::Debug {
    /// Reserves a seat: in the named room (opened if needed), or else in the fullest
    /// open quick-play room with a free seat, or else in a new quick-play room. `from`
    /// is the client's address key (see `net::caps::address_key`).
    fn reserve(self: Arc<Self>, room: Option<&str>, from: IpAddr) -> Result<Seat, SeatRefused>;
    /// Reserves a seat in `room` for a player whose seat the cluster reserved here: the
    /// room is opened if needed (as a quick-play room if `quick_play`), with no
    /// per-address budget, since the process that placed the player counted it.
    fn reserve_redeemed(self: Arc<Self>, room: &str, quick_play: bool)
    -> Result<Seat, SeatRefused>;
    /// Gives a seat back; called when its lease drops.
    fn release(&self, key: RoomKey, room: &str);
    /// How to reach the open room of this name, to take back a seat held in it.
    fn find(&self, room: &str) -> Option<RoomHandle>;
    /// Every open room, by name.
    fn list(&self) -> Vec<RoomInfo>;
    /// Every open room, by name, with the way to reach it (for the console).
    fn handles(&self) -> Vec<(RoomInfo, RoomHandle)>;
    /// Stops seating new players and opening rooms, and tells every room to close once
    /// its match is over. The token `drained` returns is cancelled when the last room
    /// has closed.
    fn drain(&self);
    /// Cancelled once the directory is draining and has no room left.
    fn drained(&self) -> CancellationToken;
    /// Whether `drain` was called.
    fn is_draining(&self) -> bool;
    /// A number that moves whenever `list` would answer differently (a room opened or
    /// closed, a seat taken or freed), for the lobby feed to wait on. Moving it never
    /// waits for whoever watches it.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// One row of `GET /api/rooms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoomInfo {
    pub id: String,
    pub players: u16,
    pub capacity: u16,
    /// Opened by quick play, which may seat anyone in it.
    #[serde(skip)]
    pub quick_play: bool,
    /// Where its match is: a room showing results starts its next match within seconds.
    pub phase: MatchPhase,
    /// The page address of the process that runs the room (in a cluster only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// A room's match phase as the directory lists it: `"playing"` or `"results"` in
/// `/api/rooms` and in the cluster's directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchPhase {
    #[default]
    Playing,
    Results,
}

impl From<Phase> for MatchPhase {
    fn from(phase: Phase) -> MatchPhase {
        match phase {
            Phase::Playing => MatchPhase::Playing,
            Phase::Results => MatchPhase::Results,
        }
    }
}

/// Why no seat was reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SeatRefused {
    /// The room asked for has no free seat.
    #[error("the room is full")]
    RoomFull,
    /// A new room was needed, and the server runs as many as it may (or its room
    /// threads are not keeping up).
    #[error("the server runs as many rooms as it may")]
    RoomLimit,
    /// A new room was needed, and this address opened too many lately.
    #[error("too many new rooms from this address")]
    TooManyNewRooms,
    /// The server is draining: it seats nobody new.
    #[error("the server is draining")]
    Draining,
}

/// A reserved seat in a room: the way to reach the room, and the lease that keeps the
/// seat counted.
#[derive(Debug)]
pub(crate) struct Seat {
    pub(crate) handle: RoomHandle,
    pub(crate) lease: SeatLease,
}

/// One seat counted in the directory; dropping it frees the seat. The connection holds
/// it until the room seats the player, and the room holds it from then until the player
/// leaves for good, so a seat held for a reconnect still counts.
#[derive(Debug)]
pub(crate) struct SeatLease {
    /// `None` only for seats of rooms that tests drive by hand, outside any directory.
    directory: Option<Arc<dyn Directory>>,
    key: RoomKey,
    room: String,
}

impl SeatLease {
    /// A lease no directory counts, for rooms driven by hand in tests.
    #[cfg(test)]
    pub(crate) fn unlisted() -> SeatLease {
        SeatLease {
            directory: None,
            key: 0,
            room: String::new(),
        }
    }
}

/// How a connection reaches its room.
#[derive(Clone, Debug)]
pub(crate) struct RoomHandle {
    commands: mpsc::Sender<RoomCmd>,
    waker: Waker,
}

/// The room is gone.
#[derive(Debug)]
pub(crate) struct RoomGone;

impl RoomHandle {
    /// Sends a command, waiting while the room's queue is full.
    pub(crate) async fn send(&self, cmd: RoomCmd) -> Result<(), RoomGone> {
        self.commands.send(cmd).await.map_err(|_| RoomGone)?;
        self.waker.wake_if_parked();
        Ok(())
    }

    /// Sends a command unless the room's queue is full (or the room is gone); true if
    /// it was queued.
    pub(crate) fn try_send(&self, cmd: RoomCmd) -> bool {
        let queued = self.commands.try_send(cmd).is_ok();
        if queued {
            self.waker.wake_if_parked();
        }
        queued
    }
}

impl Drop for SeatLease {
    fn drop(&mut self) {
        if let Some(directory) = &self.directory {
            directory.release(self.key, &self.room);
        }
    }
}

/// How many rooms may exist, and how fast one address may open them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoomLimits {
    pub(crate) max_rooms: usize,
    /// Rooms one address may open by name per minute, in a burst or spread out.
    pub(crate) new_rooms_per_minute: u32,
}

/// The directory of this process's rooms.
#[derive(Debug)]
pub(crate) struct LocalDirectory {
    rooms: Mutex<Rooms>,
    settings: Arc<RoomSettings>,
    limits: RoomLimits,
    metrics: Arc<Metrics>,
    spawner: Spawner,
    next_key: AtomicU64,
    /// Cancelled once draining and empty.
    drained: CancellationToken,
    /// Moved on every change to the list; see `Directory::changes`.
    changed: watch::Sender<u64>,
    /// Ends every quick-play room's name: empty for a single process, the process's id
    /// in a cluster, where names must not clash across processes.
    room_suffix: String,
}

#[derive(Debug, Default)]
struct Rooms {
    /// Set by `drain`, under the lock, so no room opens after the rooms are told.
    draining: bool,
    by_name: BTreeMap<String, RoomEntry>,
    /// Each address's budget for opening rooms by name.
    creators: HashMap<IpAddr, TokenBucket>,
    next_auto_room: u64,
}

#[derive(Debug)]
struct RoomEntry {
    key: RoomKey,
    handle: RoomHandle,
    seats_taken: u16,
    /// Opened by quick play rather than asked for by name.
    auto: bool,
    phase: MatchPhase,
}

impl LocalDirectory {
    pub(crate) fn new(
        settings: Arc<RoomSettings>,
        limits: RoomLimits,
        metrics: Arc<Metrics>,
        spawner: Spawner,
        room_suffix: String,
    ) -> LocalDirectory {
        LocalDirectory {
            rooms: Mutex::new(Rooms {
                next_auto_room: 1,
                ..Rooms::default()
            }),
            settings,
            limits,
            metrics,
            spawner,
            next_key: AtomicU64::new(1),
            drained: CancellationToken::new(),
            changed: watch::Sender::new(0),
            room_suffix,
        }
    }

    /// Tells the lobby feed that the list changed. Only a counter moves, under the
    /// watch's own short lock: whoever changed the list (a connection, a room thread
    /// letting a seat go) never waits for the feed.
    fn list_changed(&self) {
        self.changed
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    /// Opens a room, if the limits allow. Quick-play rooms are exempt from the
    /// per-address budget: one opens only when every other is full, so their number is
    /// bounded by the seats that connections fill.
    fn open(
        &self,
        rooms: &mut Rooms,
        room_id: &str,
        auto: bool,
        from: Option<IpAddr>,
    ) -> Result<RoomEntry, SeatRefused> {
        if rooms.by_name.len() >= self.limits.max_rooms {
            return Err(SeatRefused::RoomLimit);
        }
        if let Some(from) = from
            && !auto
        {
            let per_minute = self.limits.new_rooms_per_minute;
            if rooms.creators.len() >= CREATORS_KEPT {
                rooms.creators.retain(|_, budget| !budget.is_full());
            }
            let budget = rooms
                .creators
                .entry(from)
                .or_insert_with(|| TokenBucket::new(per_minute, per_minute as f32 / 60.0));
            if !budget.try_take() {
                return Err(SeatRefused::TooManyNewRooms);
            }
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let (commands, receiver) = mpsc::channel(ROOM_CMD_QUEUE);
        let parked = Arc::new(AtomicBool::new(false));
        let runner = RoomRunner::new(
            key,
            room_id.to_owned(),
            Arc::clone(&self.settings),
            receiver,
            Arc::clone(&parked),
            Arc::clone(&self.metrics),
            Instant::now(),
        );
        let waker = self
            .spawner
            .spawn(runner, parked)
            .map_err(|_| SeatRefused::RoomLimit)?;
        self.metrics.rooms.inc();
        tracing::info!(room = room_id, "room opened");
        Ok(RoomEntry {
            key,
            handle: RoomHandle { commands, waker },
            seats_taken: 0,
            auto,
            phase: MatchPhase::default(),
        })
    }

    fn new_auto_room_id(&self, rooms: &mut Rooms) -> String {
        loop {
            let id = format!("r{}{}", rooms.next_auto_room, self.room_suffix);
            rooms.next_auto_room += 1;
            if !rooms.by_name.contains_key(&id) {
                return id;
            }
        }
    }

    /// Forgets a room's entry if `key` is still the room of that name.
    fn forget(&self, rooms: &mut Rooms, key: RoomKey, room: &str) -> Option<RoomEntry> {
        if rooms
            .by_name
            .get(room)
            .is_some_and(|entry| entry.key == key)
        {
            let entry = rooms.by_name.remove(room)?;
            self.metrics.rooms.dec();
            if rooms.draining && rooms.by_name.is_empty() {
                self.drained.cancel();
            }
            return Some(entry);
        }
        None
    }
}

impl LocalDirectory {
    /// Reserves a seat in the named room (`Some((name, quick_play))`), or by quick play.
    /// `from` is the address whose budget pays for a new named room, if any does.
    fn take_seat(
        self: Arc<Self>,
        room: Option<(&str, bool)>,
        from: Option<IpAddr>,
    ) -> Result<Seat, SeatRefused> {
        let capacity = self.settings.capacity;
        let mut rooms = self.rooms.lock();
        let rooms = &mut *rooms;
        if rooms.draining {
            return Err(SeatRefused::Draining);
        }
        let room_id = match room {
            Some((name, _)) => name.to_owned(),
            None => match rooms
                .by_name
                .iter()
                .filter(|(_, entry)| entry.auto && entry.seats_taken < capacity)
                .max_by_key(|(_, entry)| entry.seats_taken)
            {
                Some((id, _)) => id.clone(),
                None => self.new_auto_room_id(rooms),
            },
        };
        if !rooms.by_name.contains_key(&room_id) {
            let auto = room.is_none_or(|(_, quick_play)| quick_play);
            let entry = self.open(rooms, &room_id, auto, from)?;
            rooms.by_name.insert(room_id.clone(), entry);
        }
        let Some(entry) = rooms.by_name.get_mut(&room_id) else {
            return Err(SeatRefused::RoomLimit);
        };
        if entry.seats_taken >= capacity {
            return Err(SeatRefused::RoomFull);
        }
        entry.seats_taken += 1;
        self.metrics.players.inc();
        self.list_changed();
        let (key, handle) = (entry.key, entry.handle.clone());
        Ok(Seat {
            lease: SeatLease {
                directory: Some(self.clone()),
                key,
                room: room_id,
            },
            handle,
        })
    }
}

impl Directory for LocalDirectory {
    fn reserve(self: Arc<Self>, room: Option<&str>, from: IpAddr) -> Result<Seat, SeatRefused> {
        self.take_seat(room.map(|name| (name, false)), Some(from))
    }

    fn reserve_redeemed(
        self: Arc<Self>,
        room: &str,
        quick_play: bool,
    ) -> Result<Seat, SeatRefused> {
        self.take_seat(Some((room, quick_play)), None)
    }

    fn find(&self, room: &str) -> Option<RoomHandle> {
        let rooms = self.rooms.lock();
        rooms.by_name.get(room).map(|entry| entry.handle.clone())
    }

    fn release(&self, key: RoomKey, room: &str) {
        let mut rooms = self.rooms.lock();
        if let Some(entry) = rooms.by_name.get_mut(room)
            && entry.key == key
        {
            entry.seats_taken = entry.seats_taken.saturating_sub(1);
            self.metrics.players.dec();
            self.list_changed();
        }
    }

    fn handles(&self) -> Vec<(RoomInfo, RoomHandle)> {
        self.rooms_and_handles()
    }

    fn drain(&self) {
        let handles = {
            let mut rooms = self.rooms.lock();
            rooms.draining = true;
            if rooms.by_name.is_empty() {
                self.drained.cancel();
            }
            rooms
                .by_name
                .values()
                .map(|entry| entry.handle.clone())
                .collect::<Vec<_>>()
        };
        // Every room reads the flag at the start of a match and while it is parked.
        self.settings.draining.store(true, Ordering::Relaxed);
        tracing::info!(rooms = handles.len(), "draining: no new players or rooms");
        for handle in handles {
            // Wakes a parked room, to close at once rather than at its next look.
            handle.try_send(RoomCmd::Drain);
        }
    }

    fn drained(&self) -> CancellationToken {
        self.drained.clone()
    }

    fn is_draining(&self) -> bool {
        self.rooms.lock().draining
    }

    fn list(&self) -> Vec<RoomInfo> {
        self.rooms
            .lock()
            .by_name
            .iter()
            .map(|(id, entry)| self.info(id, entry))
            .collect()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl LocalDirectory {
    fn rooms_and_handles(&self) -> Vec<(RoomInfo, RoomHandle)> {
        self.rooms
            .lock()
            .by_name
            .iter()
            .map(|(id, entry)| (self.info(id, entry), entry.handle.clone()))
            .collect()
    }

    fn info(&self, id: &str, entry: &RoomEntry) -> RoomInfo {
        RoomInfo {
            id: id.to_owned(),
            players: entry.seats_taken,
            capacity: self.settings.capacity,
            quick_play: entry.auto,
            phase: entry.phase,
            server: None,
        }
    }
}

impl Janitor for LocalDirectory {
    /// The room's loop ends only when this returns true, so a reserved seat always has
    /// a live loop behind it.
    fn close_if_empty(&self, key: RoomKey, room: &str) -> bool {
        let mut rooms = self.rooms.lock();
        let empty = rooms
            .by_name
            .get(room)
            .is_none_or(|entry| entry.key != key || entry.seats_taken == 0);
        if empty && self.forget(&mut rooms, key, room).is_some() {
            tracing::info!(room, "room closed");
            self.list_changed();
        }
        empty
    }

    fn phase_changed(&self, key: RoomKey, room: &str, phase: Phase) {
        let mut rooms = self.rooms.lock();
        if let Some(entry) = rooms.by_name.get_mut(room).filter(|entry| entry.key == key) {
            entry.phase = phase.into();
            self.list_changed();
        }
    }

    fn crashed(&self, key: RoomKey, room: &str) {
        let mut rooms = self.rooms.lock();
        if let Some(entry) = self.forget(&mut rooms, key, room) {
            // Its seats are freed now; their holders' later releases find no entry.
            self.metrics.players.dec_by(i64::from(entry.seats_taken));
            self.list_changed();
        }
    }
}
