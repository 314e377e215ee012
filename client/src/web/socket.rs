//! The game WebSocket in the browser: binary frames in and out, and what happened to it
//! delivered as events to one handler.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

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
    /// Opens `url` and calls `handler` with everything that happens to it.
    pub fn open(url: &str, handler: impl FnMut(SocketEvent) + 'static) -> Result<Socket, JsValue> {
        let ws = WebSocket::new(url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let handler = std::rc::Rc::new(std::cell::RefCell::new(handler));
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
