//! The WebSocket handshake, done here rather than by `warp::ws` so that the socket's
//! buffers are ours to size. warp does not expose tungstenite's read buffer, whose
//! default (128 KiB, zero-filled on the first read) would be nearly all of an idle
//! connection's memory; every game socket, and the echo, is built here.

use std::future::Future;
use std::sync::Arc;

use headers::{Connection, HeaderMapExt, SecWebsocketAccept, SecWebsocketKey, Upgrade};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};
use warp::Filter;
use warp::http::header::{HeaderMap, HeaderValue, UPGRADE};
use warp::http::{Request, StatusCode};
use warp::reply::{Reply, Response};

/// An open WebSocket, after the handshake.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A request's claim on its connection after the response: hyper's `OnUpgrade`, moved by
/// the accept loop into an extension that warp's filters can clone.
#[derive(Clone, Debug)]
pub struct PendingUpgrade(Arc<Mutex<Option<OnUpgrade>>>);

impl PendingUpgrade {
    /// Takes the upgrade hyper attached to `request`, and attaches it in clonable form.
    pub fn attach<B>(request: &mut Request<B>) {
        let on_upgrade = hyper::upgrade::on(&mut *request);
        request
            .extensions_mut()
            .insert(PendingUpgrade(Arc::new(Mutex::new(Some(on_upgrade)))));
    }
}

/// A valid WebSocket opening handshake, not yet answered.
#[derive(Debug)]
pub struct Handshake {
    key: SecWebsocketKey,
    upgrade: PendingUpgrade,
}

#[derive(Debug)]
struct NotAWebSocket;
impl warp::reject::Reject for NotAWebSocket {}

/// Matches a GET that asks for a WebSocket (RFC 6455, section 4.2.1): `Connection:
/// upgrade`, `Upgrade: websocket`, version 13 and a key. Anything else is rejected, which
/// the routes answer with 400.
pub fn handshake() -> impl Filter<Extract = (Handshake,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::header::headers_cloned())
        .and(warp::ext::get::<PendingUpgrade>())
        .and_then(|headers: HeaderMap, upgrade: PendingUpgrade| async move {
            let asks_upgrade = headers
                .typed_get::<Connection>()
                .is_some_and(|connection| connection.contains("upgrade"));
            let to_websocket = headers
                .get(UPGRADE)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
            let version_13 =
                headers.get("sec-websocket-version") == Some(&HeaderValue::from_static("13"));
            match headers.typed_get::<SecWebsocketKey>() {
                Some(key) if asks_upgrade && to_websocket && version_13 => {
                    Ok(Handshake { key, upgrade })
                }
                _ => Err(warp::reject::custom(NotAWebSocket)),
            }
        })
}

impl Handshake {
    /// Answers 101 and, once hyper hands over the connection, runs `serve` on the socket
    /// in its own task. No extension is negotiated, so permessage-deflate (and its
    /// decompression bombs) never comes into play.
    pub fn accept<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(on_upgrade) = self.upgrade.0.lock().take() else {
            return warp::reply::with_status("no connection to upgrade\n", StatusCode::BAD_REQUEST)
                .into_response();
        };
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    serve(socket).await;
                }
                Err(err) => tracing::debug!(%err, "websocket upgrade failed"),
            }
        });
        let mut response = warp::reply::with_status(warp::reply(), StatusCode::SWITCHING_PROTOCOLS)
            .into_response();
        let headers = response.headers_mut();
        headers.typed_insert(Connection::upgrade());
        headers.typed_insert(Upgrade::websocket());
        headers.typed_insert(SecWebsocketAccept::from(self.key));
        response
    }
}
