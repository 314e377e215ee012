//! The listening socket and the accept loop. We serve warp's filter through our own
//! hyper connection builder so we choose the protocol (HTTP/1.1 only) and the limits
//! (a header-read timeout), and we set TCP_NODELAY where every accepted socket inherits it.
//! On a TLS port each connection's task runs the handshake before HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::Filter;
use warp::reply::Reply;

use crate::net::tls::Handshaker;
use crate::net::upgrade::PendingUpgrade;

const LISTEN_BACKLOG: i32 = 1024;

/// The remote address of the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerAddr(pub SocketAddr);

/// Binds the game's listening socket. TCP_NODELAY is set on the listener because
/// Linux copies it to every accepted socket; with Nagle on, small snapshots would wait
/// behind delayed ACKs for tens of milliseconds.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// How each accepted connection is served.
#[derive(Clone, Debug)]
pub(crate) struct Serving {
    /// Time a client has to send each request's headers (including the first), so a
    /// half-sent request line cannot hold a socket open.
    pub(crate) header_timeout: Duration,
    /// TLS first, when the port serves HTTPS.
    pub(crate) tls: Option<Handshaker>,
}

/// Accepts connections until `shutdown` is cancelled, serving each with `routes` in a
/// task of `tasks`. The loop only accepts: a TLS handshake runs in the connection's own
/// task, so a slow or hostile one never holds up the next accept.
pub(crate) async fn accept_loop<F>(
    listener: TcpListener,
    routes: F,
    serving: Serving,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = warp::service(routes.clone());
        let hyper_service =
            hyper::service::service_fn(move |mut request: warp::http::Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                PendingUpgrade::attach(&mut request);
                let mut service = service.clone();
                async move {
                    Ok::<_, Infallible>(
                        service
                            .call(request)
                            .await
                            .unwrap_or_else(|never| match never {}),
                    )
                }
            });
        let shutdown = shutdown.clone();
        let serving = serving.clone();
        tasks.spawn(async move {
            let served = match &serving.tls {
                None => serve_http(stream, hyper_service, serving.header_timeout, &shutdown).await,
                Some(tls) => {
                    let handshake = tokio::select! {
                        () = shutdown.cancelled() => return,
                        handshake = tls.handshake(stream, peer) => handshake,
                    };
                    let Some(stream) = handshake else { return };
                    serve_http(stream, hyper_service, serving.header_timeout, &shutdown).await
                }
            };
            if let Err(err) = served {
                tracing::debug!(%peer, %err, "http connection ended with an error");
            }
        });
    }
}

/// Serves HTTP/1.1 on `io` (a TCP stream, or TLS over one) until the client is done or
/// the server shuts down.
async fn serve_http<I, S>(
    io: I,
    service: S,
    header_timeout: Duration,
    shutdown: &CancellationToken,
) -> hyper::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    // An idle keep-alive connection (a page that loaded its files) would otherwise
    // hold the server's shutdown until the browser let it go.
    tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_tcp_nodelay() {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(
            accepted.nodelay().expect("read TCP_NODELAY"),
            "accepted socket should inherit TCP_NODELAY"
        );
    }
}
