//! The lobby: a nickname (remembered in localStorage, or a guest name when none is
//! typed), the open rooms kept live by the lobby feed (`live_rooms`), and the ways in:
//! quick play, a listed room, or a named one. Each way leads to the room's deep link, so
//! there is one way into a game. Beside them, old data: the leaderboard, the newest
//! matches, and a link to this browser's own stats.

use std::rc::Rc;

use shared::ProfileId;
use shared::text::{validate_name, validate_room_name};
use web_sys::{Event, HtmlElement, HtmlInputElement};

use super::dom::{by_id, encode_query_value, listen, navigate, show, window};
use super::live_rooms::show_rooms;
use super::standings::show_standings;

const NICKNAME_KEY: &str = "skirmish.nickname";
/// The identity token the server issued this browser: stats follow it, not the nickname.
const TOKEN_KEY: &str = "skirmish.token";

/// The nickname this browser used last.
pub fn stored_nickname() -> Option<String> {
    let storage = window().local_storage().ok()??;
    storage.get_item(NICKNAME_KEY).ok()?
}

pub fn remember_nickname(name: &str) {
    if let Ok(Some(storage)) = window().local_storage() {
        // A full or disabled storage only costs the convenience.
        let _ = storage.set_item(NICKNAME_KEY, name);
    }
}

/// The identity token this browser was given, if it kept one.
pub fn stored_token() -> Option<String> {
    let storage = window().local_storage().ok()??;
    storage.get_item(TOKEN_KEY).ok()?
}

pub fn remember_token(token: &str) {
    if let Ok(Some(storage)) = window().local_storage() {
        // Without storage the next visit gets a fresh identity, nothing worse.
        let _ = storage.set_item(TOKEN_KEY, token);
    }
}

/// This browser's own profile: the middle of its token, `v1.<profile>.<mac>`. The page
/// cannot check the MAC and need not: a forged token only links to a public page.
pub fn stored_profile() -> Option<ProfileId> {
    profile_in_token(&stored_token()?)
}

fn profile_in_token(token: &str) -> Option<ProfileId> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(profile), Some(_mac), None) => ProfileId::from_hex(profile),
        _ => None,
    }
}

/// The deep link that joins `room` (or quick play) as `name`: `/?room=ID&name=NAME`, as
/// the README writes it, so a page opened by that link keeps its address once in the
/// room, and a reload revalidates the page it has (a 304) instead of fetching another.
pub fn deep_link(name: &str, room: Option<&str>) -> String {
    let name = encode_query_value(name);
    match room {
        Some(room) => format!("/?room={}&name={name}", encode_query_value(room)),
        None => format!("/?name={name}"),
    }
}

pub fn show_lobby(room: Option<String>) {
    show(&by_id::<HtmlElement>("lobby"), true);
    let nickname: HtmlInputElement = by_id("nickname");
    nickname.set_value(&stored_nickname().unwrap_or_default());
    let room_name: HtmlInputElement = by_id("room-name");
    room_name.set_value(room.as_deref().unwrap_or_default());
    // Only a browser that has played has stats to show.
    if let Some(profile) = stored_profile() {
        let my_stats: HtmlElement = by_id("my-stats");
        let _ = my_stats.set_attribute("href", &format!("/?player={}", profile.to_hex()));
        show(&my_stats, true);
    }

    listen(
        &by_id::<HtmlElement>("play-form"),
        "submit",
        |event: Event| {
            event.prevent_default();
            if let Some(name) = chosen_nickname() {
                navigate(&deep_link(&name, None));
            }
        },
    );
    listen(
        &by_id::<HtmlElement>("room-form"),
        "submit",
        |event: Event| {
            event.prevent_default();
            let room: HtmlInputElement = by_id("room-name");
            match validate_room_name(room.value().trim()) {
                Ok(room) => join_room(&room),
                Err(err) => show_error(&format!("Room name {err}.")),
            }
        },
    );

    show_rooms(Rc::new(join_room));
    show_standings();
    if stored_nickname().is_none() {
        let _ = nickname.focus();
    }
}

fn join_room(room: &str) {
    if let Some(name) = chosen_nickname() {
        navigate(&deep_link(&name, Some(room)));
    }
}

/// A name for a player who typed none: "Guest-" and four digits. The server tells
/// players with one name apart (`shared::text::dedup_name`), so a clash costs nothing.
fn guest_name() -> String {
    let digits = (js_sys::Math::random() * 10_000.0) as u32 % 10_000;
    format!("Guest-{digits:04}")
}

/// The nickname typed, or a guest name when the box is empty, if the server would
/// accept it; otherwise says why. Either is remembered, and the box shows it.
fn chosen_nickname() -> Option<String> {
    let input: HtmlInputElement = by_id("nickname");
    if input.value().trim().is_empty() {
        input.set_value(&guest_name());
    }
    match validate_name(&input.value()) {
        Ok(name) => {
            remember_nickname(&name);
            show_error("");
            Some(name)
        }
        Err(err) => {
            show_error(&format!("Nickname {err}."));
            let _ = input.focus();
            None
        }
    }
}

fn show_error(text: &str) {
    by_id::<HtmlElement>("lobby-error").set_text_content(Some(text));
}
