//! The browser shell around the client core: the lobby, the game canvas and its input,
//! the HUD and chat, the WebSocket, and the pages about old matches and players. Only
//! this module knows it runs in a page.

mod api;
mod app;
mod chat;
mod dom;
mod history;
mod hud;
mod input;
mod live_rooms;
mod lobby;
mod probe;
mod render;
mod replay;
mod results;
mod resume;
mod socket;
mod standings;

use shared::text::{validate_name, validate_room_name};
use wasm_bindgen::prelude::*;

/// Runs when the page loads the module: a deep link (`?room=ID&name=NAME`, or `?name=NAME`
/// for quick play) goes straight into the game, `?room=ID&spectate=1` watches a room;
/// `?match=ID` and `?player=PROFILE` show old data, `?replay=ID` plays a match again;
/// anything else opens the lobby.
#[wasm_bindgen(start)]
pub fn start() -> Result<(), JsValue> {
    console_error_panic_hook::set_once();
    if let Some(id) = dom::query_param("replay") {
        socket::discard_early();
        replay::show_replay(id);
        return Ok(());
    }
    if let Some(page) = history::Page::from_address() {
        socket::discard_early();
        history::show_page(page);
        return Ok(());
    }
    let room = dom::query_param("room");
    if dom::query_param("spectate").is_some_and(|flag| flag == "1")
        && let Some(room) = room
            .as_deref()
            .and_then(|room| validate_room_name(room).ok())
    {
        return app::watch(room);
    }
    let name = dom::query_param("name").and_then(|name| validate_name(&name).ok());
    match name {
        Some(name) => {
            lobby::remember_nickname(&name);
            app::start(name, room)
        }
        None => {
            socket::discard_early();
            lobby::show_lobby(room);
            Ok(())
        }
    }
}
