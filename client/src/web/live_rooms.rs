//! The lobby's open rooms, live: the lobby feed's WebSocket (`/lobby`) sends the whole
//! list, then its changes as rooms open, fill and close. Rows are updated in place, so a
//! Join button never vanishes under the pointer for a change of count. Each row also
//! has a Watch button, which opens the room as a spectator. A lost feed is
//! opened again after a delay that grows with each failure.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use shared::codec::decode_lobby;
use shared::lobby::{RoomList, RoomSummary};
use web_sys::{Element, HtmlElement, MouseEvent};

use super::dom::{after, by_id, element, encode_query_value, listen, navigate, websocket_url};
use super::socket::{Socket, SocketEvent};
use crate::backoff::retry_delay;

/// What a lobby does with a room the player picks.
pub type Join = Rc<dyn Fn(&str)>;

/// Opens the feed and keeps the room list (`#rooms`) current for the life of the page.
pub fn show_rooms(join: Join) {
    let feed = Rc::new_cyclic(|me| {
        RefCell::new(Feed {
            me: me.clone(),
            socket: None,
            ended: None,
            rooms: RoomList::default(),
            rows: Vec::new(),
            failed_attempts: 0,
            join,
        })
    });
    feed.borrow_mut().connect();
    // The feed lives as long as the page: its socket's handler holds only a weak link.
    std::mem::forget(feed);
}

struct Feed {
    me: Weak<RefCell<Feed>>,
    socket: Option<Socket>,
    /// A socket that ended inside its own callback, dropped at the next connect.
    ended: Option<Socket>,
    rooms: RoomList,
    /// The row shown for each listed room, in the list's order.
    rows: Vec<Row>,
    failed_attempts: u32,
    join: Join,
}

impl Feed {
    fn connect(&mut self) {
        self.ended = None;
        let me = self.me.clone();
        let opened = Socket::open(&websocket_url("/lobby"), move |event| {
            if let Some(feed) = me.upgrade()
                && let Ok(mut feed) = feed.try_borrow_mut()
            {
                feed.event(event);
            }
        });
        match opened {
            Ok(socket) => self.socket = Some(socket),
            Err(_) => self.lost(),
        }
    }

    fn event(&mut self, event: SocketEvent) {
        match event {
            SocketEvent::Open => {}
            SocketEvent::Message(bytes) => match decode_lobby(&bytes) {
                Ok(msg) => {
                    self.failed_attempts = 0;
                    self.rooms.apply(msg);
                    self.draw();
                }
                Err(_) => {
                    self.ended = self.socket.take();
                    self.say("The room list cannot be read: reload the page.");
                }
            },
            SocketEvent::Closed { .. } => {
                // This runs inside the socket's own callback, which must outlive the call.
                self.ended = self.socket.take();
                self.lost();
            }
        }
    }

    /// Says so, and opens the feed again later.
    fn lost(&mut self) {
        self.failed_attempts += 1;
        self.rooms = RoomList::default();
        self.rows.clear();
        self.say("The server is not answering; trying again.");
        let delay = retry_delay(self.failed_attempts, js_sys::Math::random());
        let me = self.me.clone();
        after(delay, move || {
            if let Some(feed) = me.upgrade()
                && let Ok(mut feed) = feed.try_borrow_mut()
            {
                feed.connect();
            }
        });
    }

    /// Shows one line instead of the rooms.
    fn say(&self, text: &str) {
        by_id::<HtmlElement>("rooms").replace_children_with_node_1(&element("li", "empty", text));
    }

    fn draw(&mut self) {
        let mut old_rows = std::mem::take(&mut self.rows).into_iter().peekable();
        let items = js_sys::Array::new();
        for room in self.rooms.rooms() {
            // Both are in name order: rows of rooms gone are passed over and dropped.
            while old_rows.next_if(|row| row.id < room.id).is_some() {}
            let mut row = old_rows
                .next_if(|row| row.id == room.id)
                .unwrap_or_else(|| Row::new(&room.id, Rc::clone(&self.join)));
            row.show(room);
            items.push(&row.item);
            self.rows.push(row);
        }
        if items.length() == 0 {
            items.push(&element(
                "li",
                "empty",
                "No open rooms yet: Quick play opens one.",
            ));
        }
        // Rows already shown are moved, not made anew.
        by_id::<HtmlElement>("rooms").replace_children_with_node(&items);
    }
}

/// The page that watches `room` without a seat.
pub fn watch_link(room: &str) -> String {
    format!("/?room={}&spectate=1", encode_query_value(room))
}

/// One room's line: its name, its seats, the button that joins it and the one that
/// watches it (spectators take no seat, so a full room can still be watched).
struct Row {
    id: String,
    item: Element,
    players: Element,
    button: Element,
    /// What the line shows now, to touch the DOM only for a change.
    shown: Option<(u16, u16)>,
}

impl Row {
    fn new(id: &str, join: Join) -> Row {
        let item = element("li", "", "");
        let players = element("span", "room-players", "");
        let button = element("button", "", "Join");
        let _ = button.set_attribute("type", "button");
        let _ = item.append_child(&element("span", "room-id", id));
        let _ = item.append_child(&players);
        let _ = item.append_child(&button);
        let watch = element("button", "room-watch", "Watch");
        let _ = watch.set_attribute("type", "button");
        let _ = item.append_child(&watch);
        let link = watch_link(id);
        listen(&watch, "click", move |_: MouseEvent| navigate(&link));
        let id = id.to_owned();
        let room = id.clone();
        listen(&button, "click", move |_: MouseEvent| join(&room));
        Row {
            id: id.clone(),
            item,
            players,
            button,
            shown: None,
        }
    }

    fn show(&mut self, room: &RoomSummary) {
        let now = (room.players, room.capacity);
        if self.shown == Some(now) {
            return;
        }
        self.players
            .set_text_content(Some(&format!("{}/{} players", room.players, room.capacity)));
        let _ = if room.players >= room.capacity {
            self.button.set_attribute("disabled", "")
        } else {
            self.button.remove_attribute("disabled")
        };
        self.shown = Some(now);
    }
}
