//! The seat this tab can take back: the resume token of its newest welcome, kept in
//! sessionStorage (one per tab, gone with the tab), so a reload within the server's
//! grace window lands in the same seat with the same score.

use super::dom::window;

const KEY: &str = "skirmish.resume";

fn storage() -> Option<web_sys::Storage> {
    window().session_storage().ok()?
}

/// Keeps the token that takes back this tab's seat in `room`.
pub fn remember(room: &str, token: &str) {
    if let Some(storage) = storage() {
        // Without storage a reload joins afresh, nothing worse.
        let _ = storage.set_item(KEY, &format!("{room}\n{token}"));
    }
}

/// The token kept for a seat in `room`, if this tab holds one.
pub fn stored_for(room: &str) -> Option<String> {
    let kept = storage()?.get_item(KEY).ok()??;
    let (kept_room, token) = kept.split_once('\n')?;
    (kept_room == room).then(|| token.to_owned())
}

/// Forgets the kept token, after the server refused it.
pub fn forget() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(KEY);
    }
}
