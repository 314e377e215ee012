//! One lobby feed WebSocket (`/lobby`), served by one task: the whole room list at once,
//! then each listing's changes as `rooms::listing` publishes them. It is held to the game
//! socket's limits: the origin check and a connection slot before the 101, the same
//! frame size, message and byte rates, pings and idle timeout. The client sends nothing
//! but control frames; anything else, or any limit tripped, closes only this socket.

use std::sync::Arc;

use shared::protocol::CloseReason;
use tokio::time::{Instant, MissedTickBehavior, timeout_at};

use crate::AppState;
use crate::net::caps::ConnSlot;
use crate::net::conn::{close_socket, read_error, socket_config};
use crate::net::inbound::Refusal;
use crate::net::ratelimit::TokenBucket;
use crate::net::socket::Socket;
use crate::net::upgrade::Handover;
use crate::net::wire::{Wire, WireError};
use crate::rooms::listing::Listing;

pub(crate) async fn serve_lobby(handover: Handover, app: Arc<AppState>, slot: ConnSlot) {
    let Some((wire, io, read_ahead)) = handover.into_wire(Arc::clone(&app.metrics)) else {
        return;
    };
    app.metrics.lobby_connections.inc();
    let mut socket = Socket::new(io, &read_ahead, socket_config());
    if let Err((reason, detail)) = feed(&mut socket, &wire, &app).await {
        tracing::debug!(?reason, %detail, "closing lobby connection");
        wire.seal();
        close_socket(&mut socket, wire.drive(), reason, &detail).await;
    }
    app.metrics.lobby_connections.dec();
    drop(slot);
}

/// Sends listings until the client leaves or a limit ends the connection. `Ok` means
/// the client closed or vanished.
async fn feed(socket: &mut Socket, wire: &Wire, app: &AppState) -> Result<(), Refusal> {
    let limits = app.limits;
    let mut listings = app.listings.clone();
    let first = Arc::clone(&listings.borrow_and_update());
    let mut sent = send_listing(wire, &first, None)?;
    let mut deadline = Instant::now() + limits.idle_timeout;
    let mut messages = TokenBucket::new(limits.msg_burst, limits.msg_rate);
    let mut bytes = TokenBucket::new(limits.byte_burst, limits.byte_rate);
    let mut pings =
        tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let frame = tokio::select! {
            biased;
            () = app.shutdown.cancelled() => {
                return Err((CloseReason::ServerShutdown, "server is shutting down".into()));
            }
            failed = wire.drive() => return match failed {
                WireError::Broken => Ok(()),
                WireError::Stalled | WireError::Overflow => {
                    Err((CloseReason::TooSlow, "the client stopped reading".into()))
                }
            },
            changed = listings.changed() => {
                if changed.is_err() {
                    return Err((CloseReason::ServerShutdown, "server is shutting down".into()));
                }
                let listing = Arc::clone(&listings.borrow_and_update());
                sent = send_listing(wire, &listing, Some(sent))?;
                continue;
            }
            _ = pings.tick() => {
                // A backlog too far behind is the drive's to end.
                let _ = wire.send_ping(&[]);
                continue;
            }
            frame = timeout_at(deadline, socket.next()) => frame,
        };
        let msg = match frame {
            Err(_) => {
                return Err((
                    CloseReason::Timeout,
                    "no pong within the idle timeout".into(),
                ));
            }
            Ok(None) => return Ok(()),
            Ok(Some(Err(err))) => return read_error(&err).map(|_| ()),
            Ok(Some(Ok(msg))) => msg,
        };
        if msg.is_close() {
            // tungstenite answers it on the next read; nothing may follow the answer.
            wire.seal();
        }
        let n_bytes = msg.len();
        app.metrics.ws_received_messages.inc();
        app.metrics.ws_received_bytes.inc_by(n_bytes as u64);
        deadline = Instant::now() + limits.idle_timeout;
        // Control frames count too: a ping flood costs pongs.
        let n_bytes = u32::try_from(n_bytes).unwrap_or(u32::MAX);
        if !messages.try_take() || !bytes.try_take_n(n_bytes) {
            return Err((
                CloseReason::Flood,
                "more messages or bytes than the rate limit".into(),
            ));
        }
        if msg.is_binary() || msg.is_text() {
            return Err((
                CloseReason::Malformed,
                "the lobby feed takes no messages".into(),
            ));
        }
    }
}

/// Sends `listing` to a connection whose last was listing `sent`: only its changes when
/// it follows that one directly, else the whole list. Returns the listing now sent.
fn send_listing(wire: &Wire, listing: &Listing, sent: Option<u64>) -> Result<u64, Refusal> {
    let follows = sent.is_some_and(|sent| sent.wrapping_add(1) == listing.serial);
    let payload = if follows {
        &listing.changes
    } else {
        &listing.whole
    };
    wire.send_message(payload)
        .map_err(|_| (CloseReason::TooSlow, "the client stopped reading".into()))?;
    Ok(listing.serial)
}
