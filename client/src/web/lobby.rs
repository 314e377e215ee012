//! The lobby: a nickname (remembered in localStorage), the open rooms refreshed live from
//! `/api/rooms`, and the ways in: quick play, a listed room, or a named one. Each way leads
//! to the room's deep link, so there is one way into a game. Beside them, old data: the
//! leaderboard, the newest matches, and a link to this browser's own stats.

use shared::ProfileId;
use shared::text::{validate_name, validate_room_name};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{Event, HtmlElement, HtmlInputElement, MouseEvent, Response};

use super::dom::{by_id, element, encode_query_value, listen, navigate, show, window};
use super::standings::show_standings;

const NICKNAME_KEY: &str = "skirmish.nickname";
/// The identity token the server issued this browser: stats follow it, not the nickname.
const TOKEN_KEY: &str = "skirmish.token";
/// How often the room list is refreshed while the lobby is open.
const REFRESH_EVERY_MS: i32 = 2000;

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

/// The deep link that joins `room` (or quick play) as `name`.
pub fn deep_link(name: &str, room: Option<&str>) -> String {
    let mut link = format!("/?name={}", encode_query_value(name));
    if let Some(room) = room {
        link.push_str(&format!("&room={}", encode_query_value(room)));
    }
    link
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

    spawn_local(refresh_rooms());
    let refresh = Closure::<dyn FnMut()>::new(|| spawn_local(refresh_rooms()));
    let _ = window().set_interval_with_callback_and_timeout_and_arguments_0(
        refresh.as_ref().unchecked_ref(),
        REFRESH_EVERY_MS,
    );
    // The lobby refreshes until the page leaves it.
    refresh.forget();
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

/// The nickname typed, if the server would accept it; otherwise says why.
fn chosen_nickname() -> Option<String> {
    let input: HtmlInputElement = by_id("nickname");
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

async fn refresh_rooms() {
    let list: HtmlElement = by_id("rooms");
    let rooms = match fetch_rooms().await {
        Ok(rooms) => rooms,
        Err(_) => {
            list.replace_children_with_node_1(&element(
                "li",
                "empty",
                "The server is not answering.",
            ));
            return;
        }
    };
    let rows = js_sys::Array::new();
    for (id, players, capacity) in rooms {
        let row = element("li", "", "");
        row.append_child(&element("span", "room-id", &id)).ok();
        row.append_child(&element(
            "span",
            "room-players",
            &format!("{players}/{capacity} players"),
        ))
        .ok();
        let button = element("button", "", "Join");
        let _ = button.set_attribute("type", "button");
        if players >= capacity {
            let _ = button.set_attribute("disabled", "");
        }
        listen(&button, "click", move |_: MouseEvent| join_room(&id));
        row.append_child(&button).ok();
        rows.push(&row);
    }
    if rows.length() == 0 {
        rows.push(&element(
            "li",
            "empty",
            "No open rooms yet: Quick play opens one.",
        ));
    }
    list.replace_children_with_node(&rows);
}

/// `(id, players, capacity)` of every open room.
async fn fetch_rooms() -> Result<Vec<(String, u32, u32)>, JsValue> {
    let response: Response = JsFuture::from(window().fetch_with_str("/api/rooms"))
        .await?
        .dyn_into()?;
    if !response.ok() {
        return Err(JsValue::from_str("room list unavailable"));
    }
    let json = JsFuture::from(response.json()?).await?;
    let field = |room: &JsValue, key: &str| js_sys::Reflect::get(room, &JsValue::from_str(key));
    let mut rooms = Vec::new();
    for room in js_sys::Array::from(&json).iter() {
        let id = field(&room, "id")?.as_string().unwrap_or_default();
        let players = field(&room, "players")?.as_f64().unwrap_or(0.0) as u32;
        let capacity = field(&room, "capacity")?.as_f64().unwrap_or(0.0) as u32;
        rooms.push((id, players, capacity));
    }
    Ok(rooms)
}
