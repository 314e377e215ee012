//! The WebSocket handshake, done here rather than by `warp::ws` so that the socket is
//! ours once the 101 is sent: the game writes frames into the TCP stream itself (see
//! `wire`), and sizes tungstenite's buffers, which warp does not expose. The default
//! read buffer (128 KiB, zero-filled on the first read) would be nearly all of an idle
//! connection's memory.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use headers::{Connection, HeaderMapExt, SecWebsocketAccept, SecWebsocketKey, Upgrade};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_util::task::TaskTracker;
use tungstenite::protocol::{Role, WebSocketConfig};
use warp::Filter;
use warp::http::header::{HeaderMap, HeaderValue, UPGRADE};
use warp::http::{Request, StatusCode};
use warp::reply::{Reply, Response};

use crate::net::wire::{Wire, WireIo};
use crate::ops::metrics::Metrics;

/// The connection after a 101: the TCP stream, its TLS session if it has one, and any
/// bytes the client sent after its handshake that the HTTP layer had already read
/// (decrypted, on a TLS connection).
#[derive(Debug)]
pub(crate) struct Handover {
    pub stream: TcpStream,
    pub tls: Option<Box<ServerConnection>>,
    pub read_ahead: Bytes,
}

impl Handover {
    /// The connection's sending side, and the socket as the WebSocket layer sees it.
    /// The stream leaves the runtime's poller here (see `wire`); `None` if it could not.
    pub(crate) fn into_wire(self, metrics: Arc<Metrics>) -> Option<(Arc<Wire>, WireIo, Bytes)> {
        let stream = match self.stream.into_std() {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(%err, "an upgraded socket could not leave the poller");
                return None;
            }
        };
        let wire = Arc::new(Wire::new(stream, self.tls, metrics));
        let io = WireIo::new(Arc::clone(&wire));
        Some((wire, io, self.read_ahead))
    }
}

/// Starts the WebSocket protocol on `io` (the handed-over stream, or a wrapper of it).
pub(crate) async fn websocket<S>(
    io: S,
    read_ahead: Bytes,
    config: WebSocketConfig,
) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::from_partially_read(io, read_ahead.to_vec(), Role::Server, Some(config)).await
}

/// A request's claim on its connection after the response: hyper's `OnUpgrade`, moved by
/// the accept loop into an extension that warp's filters can clone.
#[derive(Clone, Debug)]
pub(crate) struct PendingUpgrade(Arc<Mutex<Option<OnUpgrade>>>);

impl PendingUpgrade {
    /// Takes the upgrade hyper attached to `request`, and attaches it in clonable form.
    pub(crate) fn attach<B>(request: &mut Request<B>) {
        let on_upgrade = hyper::upgrade::on(&mut *request);
        request
            .extensions_mut()
            .insert(PendingUpgrade(Arc::new(Mutex::new(Some(on_upgrade)))));
    }
}

/// A valid WebSocket opening handshake, not yet answered.
#[derive(Debug)]
pub(crate) struct Handshake {
    key: SecWebsocketKey,
    upgrade: PendingUpgrade,
}

#[derive(Debug)]
struct NotAWebSocket;
impl warp::reject::Reject for NotAWebSocket {}

/// Matches a GET that asks for a WebSocket (RFC 6455, section 4.2.1): `Connection:
/// upgrade`, `Upgrade: websocket`, version 13 and a key. Anything else is rejected, which
/// the routes answer with 400.
pub(crate) fn handshake() -> impl Filter<Extract = (Handshake,), Error = warp::Rejection> + Clone {
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
    /// Answers 101 and, once hyper hands over the connection, runs `serve` on it in its
    /// own task, one of `tasks`. No extension is negotiated, so permessage-deflate (and its
    /// decompression bombs) never comes into play.
    pub(crate) fn accept<F, Fut>(self, tasks: &TaskTracker, serve: F) -> Response
    where
        F: FnOnce(Handover) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(on_upgrade) = self.upgrade.0.lock().take() else {
            return warp::reply::with_status("no connection to upgrade\n", StatusCode::BAD_REQUEST)
                .into_response();
        };
        tasks.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => return tracing::debug!(%err, "websocket upgrade failed"),
            };
            // The accept loop serves every connection as a `TokioIo` of a TCP stream, or
            // of TLS over one.
            let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    return serve(Handover {
                        stream: parts.io.into_inner(),
                        tls: None,
                        read_ahead: parts.read_buf,
                    })
                    .await;
                }
                Err(upgraded) => upgraded,
            };
            match upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>() {
                Ok(parts) => {
                    let (stream, tls) = parts.io.into_inner().into_inner();
                    serve(Handover {
                        stream,
                        tls: Some(Box::new(tls)),
                        read_ahead: parts.read_buf,
                    })
                    .await;
                }
                Err(_) => tracing::error!("an upgraded connection is not a TCP or TLS stream"),
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
