//! Small helpers over the DOM, so the shell reads as what it does. The page and this
//! module ship together, so an element the page lacks is a build mistake, not a state.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{Document, Element, EventTarget, HtmlElement, Window};

pub fn window() -> Window {
    // Invariant: this module runs only inside the page that loads it.
    web_sys::window().expect("a browser window")
}

pub fn document() -> Document {
    // Invariant: a page's window always has a document.
    window().document().expect("a document")
}

/// The element with `id` from index.html, as the type the page declares it with.
pub fn by_id<T: JsCast>(id: &str) -> T {
    document()
        .get_element_by_id(id)
        .and_then(|element| element.dyn_into::<T>().ok())
        .unwrap_or_else(|| panic!("index.html declares #{id} with the expected element type"))
}

/// Local time in seconds, from the page's monotonic clock.
pub fn now_secs() -> f64 {
    window()
        .performance()
        .map_or(0.0, |performance| performance.now() / 1000.0)
}

/// Marks a moment of the page's start in the browser's user timing (DevTools' timeline,
/// `performance.getEntriesByType('mark')`), so a slow first load can be taken apart.
pub fn mark(name: &str) {
    if let Some(performance) = window().performance() {
        let _ = performance.mark(name);
    }
}

pub fn show(element: &HtmlElement, shown: bool) {
    element.set_hidden(!shown);
}

/// A new element with a class and text.
pub fn element(tag: &str, class: &str, text: &str) -> Element {
    // Invariant: creating a standard tag with a literal name cannot fail.
    let element = document().create_element(tag).expect("a standard tag");
    if !class.is_empty() {
        element.set_class_name(class);
    }
    element.set_text_content(Some(text));
    element
}

/// Calls `handler` for every `event` on `target` for the life of the page.
pub fn listen<E: JsCast + 'static>(
    target: &EventTarget,
    event: &str,
    mut handler: impl FnMut(E) + 'static,
) {
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        if let Ok(event) = event.dyn_into::<E>() {
            handler(event);
        }
    });
    // Adding a listener with a live closure does not fail.
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    // The page keeps the listener until it unloads, so the closure must live as long.
    closure.forget();
}

/// The `key=value` query parameters of the page's address.
pub fn query_param(name: &str) -> Option<String> {
    let search = window().location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
        .filter(|value| !value.is_empty())
}

/// Goes to another address on this site (the lobby, or a room's deep link).
pub fn navigate(path_and_query: &str) {
    let _ = window().location().set_href(path_and_query);
}

/// The address of the WebSocket at `path` on the server that served this page.
pub fn websocket_url(path: &str) -> String {
    let location = window().location();
    let secure = location.protocol().is_ok_and(|p| p == "https:");
    let host = location.host().unwrap_or_default();
    format!("{}://{host}{path}", if secure { "wss" } else { "ws" })
}

/// Calls `callback` once, after `secs` seconds.
pub fn after(secs: f64, callback: impl FnOnce() + 'static) {
    let callback = Closure::once_into_js(callback);
    // Scheduling a live callback does not fail.
    let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(
        callback.unchecked_ref(),
        (secs * 1000.0) as i32,
    );
}

/// Percent-encodes a query value.
pub fn encode_query_value(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}
