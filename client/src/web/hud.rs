//! The HTML heads-up display over the canvas: the scoreboard, the kill feed, the
//! connection indicator with the ping, the net graph, and the overlay that explains a lost
//! or refused connection. It touches the DOM only when what it shows has changed.

use std::collections::VecDeque;

use shared::PlayerId;
use shared::view::Snapshot;
use web_sys::{Element, HtmlElement};

use super::dom::{by_id, element, show};
use crate::core::Roster;

/// Kill feed lines shown at most, and for how long, in seconds.
const KILLFEED_LINES: usize = 5;
const KILLFEED_SECS: f64 = 6.0;

/// Round trips under these many milliseconds are shown as good, then fair; above, poor.
const RTT_GOOD_MS: f64 = 80.0;
const RTT_FAIR_MS: f64 = 160.0;
/// How long an operator's announcement stays in the banner, in seconds.
const ANNOUNCEMENT_SECS: f64 = 15.0;

/// How the connection is doing, for the indicator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Link {
    Connecting,
    /// Lost, and taking the held seat back.
    Reconnecting,
    Up {
        rtt_ms: Option<f64>,
    },
    Down,
}

/// One scoreboard line, as shown.
#[derive(Clone, Debug, PartialEq)]
struct ScoreRow {
    name: String,
    score: u16,
    is_me: bool,
    alive: bool,
    away: bool,
}

#[derive(Debug, Default)]
pub struct Hud {
    /// What the scoreboard shows now, to skip rebuilding it when nothing changed.
    scoreboard_shown: Vec<ScoreRow>,
    status_shown: String,
    killfeed: VecDeque<(f64, Element)>,
    netgraph_open: bool,
    /// When the announcement banner is to be hidden, while it shows.
    announcement_until: Option<f64>,
}

impl Hud {
    pub fn set_room(&mut self, room: &str) {
        by_id::<HtmlElement>("room-title").set_text_content(Some(&format!("Room {room}")));
    }

    /// Every player in the room, best score first; each row names the player, and says
    /// so while their seat is held for a reconnect.
    pub fn scoreboard(&mut self, roster: &Roster, snapshot: Option<&Snapshot>, me: PlayerId) {
        // Each row goes in at its place, after the rows that rank with it: a room holds
        // a few players, and a slice sort would be another few KiB of the module.
        let mut rows: Vec<ScoreRow> = Vec::with_capacity(roster.len());
        for seat in roster.iter() {
            let state = snapshot.and_then(|s| s.players.iter().find(|p| p.id == seat.id));
            let row = ScoreRow {
                name: seat.name.clone(),
                score: state.map_or(0, |p| p.score),
                is_me: seat.id == me,
                alive: state.is_none_or(|p| p.alive),
                away: seat.away,
            };
            let at = rows.partition_point(|shown| {
                (std::cmp::Reverse(shown.score), &shown.name)
                    <= (std::cmp::Reverse(row.score), &row.name)
            });
            rows.insert(at, row);
        }
        if rows == self.scoreboard_shown {
            return;
        }
        let list: HtmlElement = by_id("scoreboard");
        let items = js_sys::Array::new();
        for row in &rows {
            let mut class = String::from("row");
            if row.is_me {
                class.push_str(" me");
            }
            if !row.alive {
                class.push_str(" dead");
            }
            if row.away {
                class.push_str(" away");
            }
            let item = element("li", &class, "");
            let _ = item.append_child(&element("span", "name", &row.name));
            if row.away {
                let _ = item.append_child(&element("span", "status", "reconnecting"));
            }
            let _ = item.append_child(&element("span", "score", &row.score.to_string()));
            items.push(&item);
        }
        list.replace_children_with_node(&items);
        self.scoreboard_shown = rows;
    }

    pub fn kill(&mut self, killer: &str, victim: &str, now: f64) {
        let line = element("li", "", "");
        let _ = line.append_child(&element("span", "killer", killer));
        let _ = line.append_child(&element("span", "", " ✕ "));
        let _ = line.append_child(&element("span", "victim", victim));
        let _ = by_id::<HtmlElement>("killfeed").prepend_with_node_1(&line);
        self.killfeed.push_back((now, line));
        while self.killfeed.len() > KILLFEED_LINES {
            if let Some((_, old)) = self.killfeed.pop_front() {
                old.remove();
            }
        }
    }

    /// Shows an operator's announcement in the banner across the top for a while.
    pub fn announce(&mut self, text: &str, now: f64) {
        let banner: HtmlElement = by_id("announcement");
        banner.set_text_content(Some(text));
        show(&banner, true);
        self.announcement_until = Some(now + ANNOUNCEMENT_SECS);
    }

    /// Removes kill feed lines that have been shown long enough, and an announcement.
    pub fn expire(&mut self, now: f64) {
        if self.announcement_until.is_some_and(|until| now >= until) {
            self.announcement_until = None;
            show(&by_id::<HtmlElement>("announcement"), false);
        }
        while let Some((at, line)) = self.killfeed.front() {
            if now - at < KILLFEED_SECS {
                break;
            }
            line.remove();
            self.killfeed.pop_front();
        }
    }

    pub fn link(&mut self, link: Link) {
        let (class, text) = match link {
            Link::Connecting => ("", "connecting…".to_owned()),
            Link::Reconnecting => ("lost", "reconnecting…".to_owned()),
            Link::Down => ("lost", "disconnected".to_owned()),
            Link::Up { rtt_ms: None } => ("good", "connected".to_owned()),
            Link::Up { rtt_ms: Some(rtt) } => {
                let class = if rtt < RTT_GOOD_MS {
                    "good"
                } else if rtt < RTT_FAIR_MS {
                    "fair"
                } else {
                    "poor"
                };
                (class, format!("ping {rtt:.0} ms"))
            }
        };
        let shown = format!("{class}|{text}");
        if shown == self.status_shown {
            return;
        }
        by_id::<HtmlElement>("conn-dot").set_class_name(class);
        by_id::<HtmlElement>("conn-text").set_text_content(Some(&text));
        self.status_shown = shown;
    }

    pub fn toggle_netgraph(&mut self) {
        self.netgraph_open = !self.netgraph_open;
        show(&by_id::<HtmlElement>("netgraph"), self.netgraph_open);
    }

    pub fn netgraph_open(&self) -> bool {
        self.netgraph_open
    }

    pub fn netgraph(&self, text: &str) {
        by_id::<HtmlElement>("netgraph").set_text_content(Some(text));
    }

    /// Shows the overlay with a title and an explanation; `can_retry` offers to rejoin.
    pub fn overlay(&self, title: &str, text: &str, can_retry: bool) {
        by_id::<HtmlElement>("overlay-title").set_text_content(Some(title));
        by_id::<HtmlElement>("overlay-text").set_text_content(Some(text));
        show(&by_id::<HtmlElement>("overlay-retry"), can_retry);
        show(&by_id::<HtmlElement>("overlay"), true);
    }

    pub fn hide_overlay(&self) {
        show(&by_id::<HtmlElement>("overlay"), false);
    }
}
