//! Cluster mode (`--redis`): many server processes that players see as one game. Redis
//! holds the process registry, the room directory and seat reservations; each process
//! still owns its rooms alone, and is the final word on their seats. A join that
//! belongs on another process is answered with that process's address and a
//! reservation, which the client presents there.

mod heartbeat;
mod keys;
mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use parking_lot::Mutex;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

pub(crate) use crate::cluster::heartbeat::run as heartbeat;
use crate::cluster::view::ClusterView;
use crate::ops::config::RedisUrl;
use crate::rooms::directory::RoomInfo;

/// How often a process renews its registry entry and publishes its rooms' changes, and
/// reads the others'. Each room is written at most this often, whatever its tick rate.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a process's entry and rooms outlive its last heartbeat: a process killed
/// outright leaves the directory this long after.
const ENTRY_TTL: Duration = Duration::from_secs(5);
/// How long a reserved seat waits for its player to arrive at the owner.
const RESERVATION_TTL: Duration = Duration::from_secs(10);
/// How long one Redis command may take before the join or heartbeat waiting on it
/// gives up (the connection manager reconnects behind it).
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Quick play tries this many rooms elsewhere before it opens one.
const REMOTE_ROOMS_TRIED: usize = 3;

/// Why the cluster could not place a player.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    /// Redis did not answer (or answered with an error).
    #[error("the cluster directory is unreachable: {0}")]
    Redis(#[from] redis::RedisError),
    /// The last heartbeat did not reach Redis.
    #[error("the cluster directory did not answer the last heartbeat")]
    Unreachable,
    /// The room asked for is on another process and has no free seat.
    #[error("the room is full")]
    RoomFull,
}

/// Where a player is to be seated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Here: in this room, or by quick play among this process's rooms.
    Here(Option<String>),
    /// On another process: the client connects to `url` with `reservation`.
    Elsewhere { url: String, reservation: String },
}

/// A reservation redeemed at its owner: the room it is for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Redeemed {
    pub(crate) room: String,
    /// For a quick-play room (which may have to be opened as one).
    pub(crate) quick_play: bool,
}

/// This process's membership in the cluster.
pub(crate) struct Cluster {
    /// This process's id: random, six hex digits.
    id: String,
    /// Where players reach this process's page.
    public_url: String,
    redis: ConnectionManager,
    /// Seats per room, for rooms that are not listed yet.
    capacity: u16,
    /// The cluster as the last heartbeat read it.
    view: Mutex<ClusterView>,
    /// Moved when the other processes' rooms changed, for the lobby feed.
    changed: watch::Sender<u64>,
    /// Whether the last heartbeat reached Redis: quick play, which may not need Redis
    /// to choose, refuses while it did not, as every other join does.
    reachable: AtomicBool,
    /// Set when the process stops: it has left the directory, and the heartbeat must
    /// not write it back.
    withdrawn: AtomicBool,
    /// Reservations redeemed here since the last heartbeat, as (room, token): the next
    /// heartbeat counts their players and drops them from the pending sets together.
    redeemed: Mutex<Vec<(String, String)>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Connects to Redis, or fails with an error that names it. Nothing is written until
/// the heartbeat starts.
pub(crate) async fn connect(url: &RedisUrl) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url.as_str()).with_context(|| format!("--redis {url:?}"))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    let mut redis = tokio::time::timeout(
        REDIS_TIMEOUT * 3,
        client.get_connection_manager_with_config(config),
    )
    .await
    .map_err(|_| anyhow::anyhow!("timed out"))
    .and_then(|connected| Ok(connected?))
    .with_context(|| format!("connect to Redis at {url:?} (--redis)"))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut redis)
        .await
        .with_context(|| format!("ping Redis at {url:?} (--redis)"))?;
    Ok(redis)
}

/// A token nobody can guess: 16 random bytes in hex.
fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    // Without the system's randomness there is no safe token; the process cannot run.
    getrandom::fill(&mut bytes).expect("the system's random source works");
    hex::encode(bytes)
}

/// Whether `text` has the shape of a reservation token this cluster issues. Anything
/// else in a hello is refused before Redis is asked.
pub fn is_reservation_token(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The game socket below a page address: `http(s)://host` becomes `ws(s)://host/ws`.
fn game_socket(public_url: &str) -> String {
    let url = public_url.trim_end_matches('/');
    let url = match url.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{url}"),
    };
    format!("{url}/ws")
}

impl Cluster {
    pub(crate) fn new(redis: ConnectionManager, public_url: String, capacity: u16) -> Cluster {
        Cluster {
            id: random_hex(3),
            public_url: public_url.trim_end_matches('/').to_owned(),
            redis,
            capacity,
            view: Mutex::default(),
            changed: watch::Sender::new(0),
            reachable: AtomicBool::new(true),
            withdrawn: AtomicBool::new(false),
            redeemed: Mutex::default(),
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// What every quick-play room this process opens ends with, so names never clash
    /// across the cluster.
    pub(crate) fn room_suffix(&self) -> String {
        format!("-{}", self.id)
    }

    /// Takes this process out of the registry and the directory now, as it stops, so
    /// no process sends players here any more; `rooms` are the rooms whose claims go.
    pub(crate) async fn withdraw(&self, rooms: &[RoomInfo]) {
        self.withdrawn.store(true, Ordering::Relaxed);
        heartbeat::leave(self, rooms.iter().map(|room| room.id.as_str())).await;
    }

    /// Moves whenever the other processes' rooms change.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Every room in the cluster, with this process's own (`local`) as they are now.
    pub(crate) fn list(&self, local: &[RoomInfo]) -> Vec<RoomInfo> {
        let view = self.view.lock().merged(&self.id, local);
        view.rooms
            .iter()
            .map(|room| RoomInfo {
                id: room.id.clone(),
                players: room.entry.players,
                capacity: room.entry.capacity,
                quick_play: room.entry.quick_play,
                phase: room.entry.phase,
                server: if room.owner == self.id {
                    Some(self.public_url.clone())
                } else {
                    view.process(&room.owner)
                        .map(|owner| owner.entry.url.clone())
                },
            })
            .collect()
    }

    /// Decides where a joining player sits: a named room wherever it lives (claimed for
    /// this process if nobody has it), or by quick play the fullest open room in the
    /// cluster, or else a new room on the least-loaded process.
    pub(crate) async fn place(
        &self,
        room: Option<&str>,
        local: &[RoomInfo],
    ) -> Result<Placement, ClusterError> {
        let mut redis = self.redis.clone();
        if let Some(room) = room {
            let owner: String = keys::CLAIM
                .key(keys::claim(room))
                .arg(&self.id)
                .arg(keys::PROCESS_PREFIX)
                .invoke_async(&mut redis)
                .await?;
            if owner == self.id {
                return Ok(Placement::Here(Some(room.to_owned())));
            }
            let capacity = self.capacity_of(room);
            return self.reserve_on(&owner, room, capacity, false).await;
        }
        if !self.reachable.load(Ordering::Relaxed) {
            return Err(ClusterError::Unreachable);
        }
        let view = self.view.lock().merged(&self.id, local);
        for listed in view
            .open_rooms_fullest_first()
            .into_iter()
            .take(REMOTE_ROOMS_TRIED)
        {
            if listed.owner == self.id {
                return Ok(Placement::Here(None));
            }
            match self
                .reserve_on(&listed.owner, &listed.id, listed.entry.capacity, true)
                .await
            {
                Err(ClusterError::RoomFull) => continue,
                placed => return placed,
            }
        }
        let Some(process) = view.least_loaded(&self.id) else {
            return Ok(Placement::Here(None));
        };
        if process.id == self.id {
            return Ok(Placement::Here(None));
        }
        let owner = process.id.clone();
        let room = format!("q{}-{owner}", random_hex(3));
        let _: String = keys::CLAIM
            .key(keys::claim(&room))
            .arg(&owner)
            .arg(keys::PROCESS_PREFIX)
            .invoke_async(&mut redis)
            .await?;
        self.reserve_on(&owner, &room, self.capacity, true).await
    }

    /// The capacity the directory lists for `room`, or this process's own.
    fn capacity_of(&self, room: &str) -> u16 {
        self.view
            .lock()
            .rooms
            .iter()
            .find(|listed| listed.id == room)
            .map_or(self.capacity, |listed| listed.entry.capacity)
    }

    /// Reserves a seat in `room` on process `owner`, atomically against every other
    /// process reserving there, and says how the client gets to it.
    async fn reserve_on(
        &self,
        owner: &str,
        room: &str,
        capacity: u16,
        quick_play: bool,
    ) -> Result<Placement, ClusterError> {
        let known = self.view.lock().process(owner).map(|p| p.entry.url.clone());
        let url = match known {
            Some(url) => url,
            // Claimed by a process this one has not seen yet (it registered within the
            // last heartbeat): read its entry.
            None => {
                let mut redis = self.redis.clone();
                let entry: Option<String> = redis.get(keys::process(owner)).await?;
                entry
                    .and_then(|json| serde_json::from_str::<view::ProcessEntry>(&json).ok())
                    .map(|entry| entry.url)
                    .ok_or(ClusterError::RoomFull)?
            }
        };
        self.reserve_at(owner, &url, room, capacity, quick_play)
            .await
    }

    async fn reserve_at(
        &self,
        owner: &str,
        url: &str,
        room: &str,
        capacity: u16,
        quick_play: bool,
    ) -> Result<Placement, ClusterError> {
        let token = random_hex(16);
        let held = format!("{}:{room}", if quick_play { 'q' } else { 'n' });
        let mut redis = self.redis.clone();
        let reserved: i64 = keys::RESERVE
            .key(keys::rooms(owner))
            .key(keys::pending(room))
            .key(keys::reservation(&token))
            .arg(room)
            .arg(capacity)
            .arg(RESERVATION_TTL.as_millis() as u64)
            .arg(&token)
            .arg(held)
            .invoke_async(&mut redis)
            .await?;
        if reserved == 0 {
            return Err(ClusterError::RoomFull);
        }
        self.view.lock().count_seat(owner, room, capacity);
        Ok(Placement::Elsewhere {
            url: game_socket(url),
            reservation: token,
        })
    }

    /// Takes a reservation made for this process (once: it is deleted as it is read).
    /// `None`: unknown, used or expired.
    pub(crate) async fn redeem(&self, token: &str) -> Result<Option<Redeemed>, ClusterError> {
        let mut redis = self.redis.clone();
        let held: Option<String> = redis.get_del(keys::reservation(token)).await?;
        let Some(held) = held else {
            return Ok(None);
        };
        let redeemed = match held.split_once(':') {
            Some(("q", room)) => Redeemed {
                room: room.to_owned(),
                quick_play: true,
            },
            Some((_, room)) => Redeemed {
                room: room.to_owned(),
                quick_play: false,
            },
            None => return Ok(None),
        };
        self.redeemed
            .lock()
            .push((redeemed.room.clone(), token.to_owned()));
        Ok(Some(redeemed))
    }

    /// The game socket of the live process, other than this one, that owns `room`.
    pub(crate) async fn owner_socket(&self, room: &str) -> Result<Option<String>, ClusterError> {
        let mut redis = self.redis.clone();
        let owner: Option<String> = redis.get(keys::claim(room)).await?;
        let Some(owner) = owner.filter(|owner| *owner != self.id) else {
            return Ok(None);
        };
        let entry: Option<String> = redis.get(keys::process(&owner)).await?;
        Ok(entry
            .and_then(|json| serde_json::from_str::<view::ProcessEntry>(&json).ok())
            .map(|entry| game_socket(&entry.url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_game_socket_follows_the_page_scheme() {
        assert_eq!(
            game_socket("http://10.0.0.2:8080/"),
            "ws://10.0.0.2:8080/ws"
        );
        assert_eq!(
            game_socket("https://b.play.example.com"),
            "wss://b.play.example.com/ws"
        );
    }

    #[test]
    fn only_32_lowercase_hex_digits_are_a_reservation_token() {
        assert!(is_reservation_token(&random_hex(16)));
        assert!(!is_reservation_token("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_reservation_token("0123456789abcdef"));
        assert!(!is_reservation_token("../../../0123456789abcdef01234567"));
    }
}
