//! The game WebSocket in the browser: binary frames in and out, and what happened to it
//! delivered as events to one handler. The page opens the game socket before the module
//! has loaded (index.html), so its handshake overlaps the download; the first `open` of
//! that address takes it over.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use super::dom::window;

/// Where index.html leaves the socket it opened early.
const EARLY_SOCKET: &str = "skirmishSocket";

/// Takes the socket index.html opened, if there is one still opening or open.
fn take_early() -> Option<WebSocket> {
    let key = JsValue::from_str(EARLY_SOCKET);
    let early = js_sys::Reflect::get(&window(), &key).ok()?;
    let _ = js_sys::Reflect::delete_property(&window(), &key);
    let ws: WebSocket = early.dyn_into().ok()?;
    // A socket that already failed has told nobody: open a new one instead.
    (ws.ready_state() <= WebSocket::OPEN).then_some(ws)
}

/// Closes the socket index.html opened, on a page that turned out not to play.
pub fn discard_early() {
    if let Some(ws) = take_early() {
        let _ = ws.close();
    }
}

#[derive(Debug)]
pub enum SocketEvent {
    Open,
    Message(Vec<u8>),
    /// The connection is gone, with the close code and reason if the server sent them.
    Closed {
        code: u16,
        reason: String,
    },
}

/// An open (or opening) socket. Dropping it detaches the handler and closes the socket.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("url", &self.ws.url())
            .finish()
    }
}

impl Socket {
    /// Opens `url`, or takes over the socket the page opened to it early, and calls
    /// `handler` with everything that happens to it.
    pub fn open(url: &str, handler: impl FnMut(SocketEvent) + 'static) -> Result<Socket, JsValue> {
        let ws = match take_early().filter(|early| early.url() == url) {
            Some(early) => early,
            None => WebSocket::new(url)?,
        };
        // Before any message: the server sends none until the hello.
        ws.set_binary_type(BinaryType::Arraybuffer);
        let handler = Rc::new(RefCell::new(handler));
        if ws.ready_state() == WebSocket::OPEN {
            // It opened before anyone listened; say so as soon as the caller, which may
            // be the handler's owner and busy, is done.
            let handler = Rc::downgrade(&handler);
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(handler) = handler.upgrade() {
                    (handler.borrow_mut())(SocketEvent::Open);
                }
            });
        }
        let on_open = {
            let handler = handler.clone();
            Closure::<dyn FnMut()>::new(move || (handler.borrow_mut())(SocketEvent::Open))
        };
        let on_message = {
            let handler = handler.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                // The protocol is binary only; anything else is ignored.
                if let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() {
                    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                    (handler.borrow_mut())(SocketEvent::Message(bytes));
                }
            })
        };
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            (handler.borrow_mut())(SocketEvent::Closed {
                code: event.code(),
                reason: event.reason(),
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends one binary frame; false if the socket is not open.
    pub fn send(&self, bytes: &[u8]) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_u8_array(bytes).is_ok()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
