//! The lobby's view of the directory: one task turns the directory's changes into lobby
//! feed messages, encoded once for every lobby connection and at most once per
//! `PUBLISH_EVERY`, and hands the newest to all of them through a watch. The directory
//! only moves a counter for it, so no room and no connection ever waits on the lobby.

use std::sync::Arc;
use std::time::Duration;

use shared::codec::encode_lobby;
use shared::consts::LOBBY_ROOMS_LISTED;
use shared::lobby::{RoomList, RoomSummary};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::rooms::directory::RoomInfo;

/// The least time between two listings. People read the lobby: four updates a second
/// look live, and on a busy server, whose seats change all the time, a lobby page gets
/// at most four small messages a second.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// One state of the room list, encoded for the lobby connections.
#[derive(Debug)]
pub(crate) struct Listing {
    /// Counts listings. A connection whose last message was listing `serial - 1` sends
    /// `changes`; any other (new, or one that missed a listing) sends `whole`.
    pub(crate) serial: u64,
    /// `LobbyMsg::Rooms`: every listed room.
    pub(crate) whole: Vec<u8>,
    /// `LobbyMsg::Changes` from listing `serial - 1`; empty for the first listing.
    pub(crate) changes: Vec<u8>,
}

/// Where lobby connections find the newest listing.
pub(crate) type Listings = watch::Receiver<Arc<Listing>>;

/// The first listing (no rooms), and the channel new ones go out on.
pub(crate) fn channel() -> (watch::Sender<Arc<Listing>>, Listings) {
    watch::channel(Arc::new(Listing {
        serial: 0,
        whole: encode_lobby(&RoomList::default().whole()),
        changes: Vec::new(),
    }))
}

/// Publishes a listing after each change of the rooms `list` returns, until
/// `shutdown`. They change when `changes` moves, or (in a cluster) `elsewhere` does.
pub(crate) async fn publish(
    changes: Changes,
    list: impl Fn() -> Vec<RoomInfo>,
    listings: watch::Sender<Arc<Listing>>,
    shutdown: CancellationToken,
) {
    let list = move || listed(list());
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = publish_changes(changes, list, listings, PUBLISH_EVERY) => {}
    }
}

/// What moves when the listed rooms change: this process's directory, and in a cluster
/// also the other processes' rooms.
#[derive(Debug)]
pub(crate) struct Changes {
    pub(crate) here: watch::Receiver<u64>,
    pub(crate) elsewhere: Option<watch::Receiver<u64>>,
}

impl Changes {
    /// Waits for either to move; false once neither can any more.
    async fn changed(&mut self) -> bool {
        match &mut self.elsewhere {
            Some(elsewhere) => tokio::select! {
                here = self.here.changed() => here.is_ok(),
                elsewhere = elsewhere.changed() => elsewhere.is_ok(),
            },
            None => self.here.changed().await.is_ok(),
        }
    }
}

/// The rooms the lobby lists: the first `LOBBY_ROOMS_LISTED` by name.
fn listed(rooms: Vec<RoomInfo>) -> RoomList {
    RoomList::new(
        rooms
            .into_iter()
            .take(LOBBY_ROOMS_LISTED)
            .map(|room| RoomSummary {
                id: room.id,
                players: room.players,
                capacity: room.capacity,
            }),
    )
}

/// Waits for `changes` to move, publishes what `list` then says if it differs from the
/// last listing, and rests for `every` before looking again. The first change after a
/// quiet spell goes out at once; a flurry of them goes out as one listing per `every`.
async fn publish_changes(
    mut changes: Changes,
    list: impl Fn() -> RoomList,
    listings: watch::Sender<Arc<Listing>>,
    every: Duration,
) {
    let mut shown = RoomList::default();
    let mut serial = 0;
    while changes.changed().await {
        let rooms = list();
        if let Some(changed) = shown.changes_to(&rooms) {
            serial += 1;
            listings.send_replace(Arc::new(Listing {
                serial,
                whole: encode_lobby(&rooms.whole()),
                changes: encode_lobby(&changed),
            }));
            shown = rooms;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;
    use shared::codec::decode_lobby;
    use shared::lobby::LobbyMsg;

    use super::*;

    fn room(id: &str, players: u16) -> RoomSummary {
        RoomSummary {
            id: id.to_owned(),
            players,
            capacity: 4,
        }
    }

    /// A directory stand-in: a list to change, and the counter that says it changed.
    struct Source {
        rooms: Arc<Mutex<Vec<RoomSummary>>>,
        changed: watch::Sender<u64>,
    }

    impl Source {
        fn set(&self, rooms: Vec<RoomSummary>) {
            *self.rooms.lock() = rooms;
            self.changed.send_modify(|version| *version += 1);
        }
    }

    /// A publisher over a `Source`, and where its listings arrive.
    fn start(every: Duration) -> (Source, Listings, tokio::task::JoinHandle<()>) {
        let rooms = Arc::new(Mutex::new(Vec::new()));
        let (changed, changes) = watch::channel(0);
        let (sender, listings) = channel();
        let list = {
            let rooms = Arc::clone(&rooms);
            move || RoomList::new(rooms.lock().clone())
        };
        let changes = Changes {
            here: changes,
            elsewhere: None,
        };
        let task = tokio::spawn(publish_changes(changes, list, sender, every));
        (Source { rooms, changed }, listings, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_after_a_quiet_spell_is_published_at_once() {
        let (source, mut listings, task) = start(Duration::from_secs(1));
        source.set(vec![room("a", 1)]);
        listings.changed().await.expect("a listing");
        let listing = Arc::clone(&listings.borrow_and_update());
        assert_eq!(listing.serial, 1);
        assert_eq!(
            decode_lobby(&listing.changes).expect("changes decode"),
            LobbyMsg::Changes {
                updated: vec![room("a", 1)],
                closed: vec![]
            }
        );
        assert_eq!(
            decode_lobby(&listing.whole).expect("the list decodes"),
            LobbyMsg::Rooms(vec![room("a", 1)])
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_flurry_of_changes_is_one_listing_per_interval() {
        let every = Duration::from_secs(1);
        let (source, mut listings, task) = start(every);
        source.set(vec![room("a", 1)]);
        listings.changed().await.expect("the first listing");
        listings.borrow_and_update();
        let flurry_started = tokio::time::Instant::now();
        for players in 2..=4 {
            source.set(vec![room("a", players)]);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        listings.changed().await.expect("the next listing");
        assert!(
            flurry_started.elapsed() >= every - Duration::from_millis(10),
            "the next listing waits out the interval"
        );
        let listing = Arc::clone(&listings.borrow_and_update());
        assert_eq!(listing.serial, 2, "the flurry is one listing");
        assert_eq!(
            decode_lobby(&listing.whole).expect("the list decodes"),
            LobbyMsg::Rooms(vec![room("a", 4)]),
            "it shows the newest state"
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_that_changes_nothing_is_not_published() {
        let (source, mut listings, task) = start(Duration::from_millis(100));
        source.set(vec![room("a", 1)]);
        listings.changed().await.expect("a listing");
        listings.borrow_and_update();
        source.set(vec![room("a", 1)]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !listings.has_changed().expect("the publisher runs"),
            "the same rooms make no listing"
        );
        task.abort();
    }
}
