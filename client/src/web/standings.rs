//! The lobby's view of old data: the leaderboard's top ten and the newest matches, read
//! when the lobby opens and every ten seconds after, and redrawn only when they changed,
//! so a link never vanishes under the pointer for nothing.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, HtmlElement};

use super::api::{self, FetchError, Leaderboard, MatchList, MatchRecord};
use super::dom::{by_id, window};
use super::history::{
    cell, cell_with, clock_time, heading_row, match_link, player_link, rating, row,
};

/// Leaderboard lines and recent matches the lobby shows.
const ROWS: u32 = 10;
/// Old data changes only when a match ends, minutes apart, so it is read again far less
/// often than the room list; the server answers an unchanged page with a bodiless 304.
const REFRESH_EVERY_MS: i32 = 10_000;

const UNAVAILABLE: &str = "The match history cannot be read right now.";

/// What the lobby shows now, to redraw only what changed.
#[derive(Debug, Default)]
struct Shown {
    leaderboard: Option<Result<Leaderboard, FetchError>>,
    matches: Option<Result<MatchList, FetchError>>,
}

/// Fills the lobby's leaderboard and recent matches, and keeps them fresh while it is open.
pub fn show_standings() {
    let shown = Rc::new(RefCell::new(Shown::default()));
    spawn_local(refresh(Rc::clone(&shown)));
    let refresh_later =
        Closure::<dyn FnMut()>::new(move || spawn_local(refresh(Rc::clone(&shown))));
    let _ = window().set_interval_with_callback_and_timeout_and_arguments_0(
        refresh_later.as_ref().unchecked_ref(),
        REFRESH_EVERY_MS,
    );
    // The lobby refreshes until the page leaves it.
    refresh_later.forget();
}

async fn refresh(shown: Rc<RefCell<Shown>>) {
    let leaderboard = api::leaderboard(ROWS).await;
    if shown.borrow().leaderboard.as_ref() != Some(&leaderboard) {
        draw_leaderboard(&leaderboard);
        shown.borrow_mut().leaderboard = Some(leaderboard);
    }
    let matches = api::recent_matches(ROWS).await;
    if shown.borrow().matches.as_ref() != Some(&matches) {
        draw_matches(&matches);
        shown.borrow_mut().matches = Some(matches);
    }
}

fn draw_leaderboard(leaderboard: &Result<Leaderboard, FetchError>) {
    const COLUMNS: [(&str, &str); 4] =
        [("#", ""), ("player", "text"), ("rating", ""), ("kills", "")];
    let lines = match leaderboard {
        Ok(leaderboard) if leaderboard.players.is_empty() => vec![only_line(
            COLUMNS.len(),
            "Nobody is ranked yet: finish a match to be the first.",
        )],
        Ok(leaderboard) => leaderboard
            .players
            .iter()
            .map(|entry| {
                row(
                    "",
                    [
                        cell("", &entry.rank.to_string()),
                        cell_with("text", &player_link(entry.profile, &entry.name)),
                        cell("", &rating(entry.rating)),
                        cell("", &entry.kills.to_string()),
                    ],
                )
            })
            .collect(),
        // The list always exists, so even a 404 means the server cannot answer.
        Err(_) => vec![only_line(COLUMNS.len(), UNAVAILABLE)],
    };
    fill_table("leaderboard", &COLUMNS, lines);
}

fn draw_matches(matches: &Result<MatchList, FetchError>) {
    const COLUMNS: [(&str, &str); 4] = [
        ("room", "text"),
        ("winner", "text"),
        ("players", ""),
        ("ended", ""),
    ];
    let lines = match matches {
        Ok(list) if list.matches.is_empty() => {
            vec![only_line(COLUMNS.len(), "No matches played yet.")]
        }
        Ok(list) => list
            .matches
            .iter()
            .map(|record| {
                row(
                    "",
                    [
                        cell_with("text", &match_link(record.id, &record.room)),
                        cell("text", &winner(record)),
                        cell("", &record.players.len().to_string()),
                        cell("", &clock_time(record.ended_at)),
                    ],
                )
            })
            .collect(),
        Err(_) => vec![only_line(COLUMNS.len(), UNAVAILABLE)],
    };
    fill_table("recent-matches", &COLUMNS, lines);
}

/// Who won a match: one name, or the names that tied for first.
fn winner(record: &MatchRecord) -> String {
    match record.winners().as_slice() {
        [] => "–".to_owned(),
        [one] => (*one).to_owned(),
        several => format!("{} (tie)", several.join(", ")),
    }
}

fn fill_table(id: &str, columns: &[(&str, &str)], lines: Vec<Element>) {
    let rows = js_sys::Array::new();
    rows.push(&heading_row(columns));
    for line in lines {
        rows.push(&line);
    }
    by_id::<HtmlElement>(id).replace_children_with_node(&rows);
}

/// A row of one cell across the table, for a table with nothing to list.
fn only_line(columns: usize, text: &str) -> Element {
    let only = cell("empty", text);
    let _ = only.set_attribute("colspan", &columns.to_string());
    row("", [only])
}
