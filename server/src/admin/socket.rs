//! The console's WebSocket: once the page is logged in (its cookie, from its own
//! origin) or a tool shows the token, it is pushed the last ten minutes on opening and
//! a sample every second after, with the room it inspects. It keeps the game socket's
//! limits: message size, message and byte rates, pings and the idle timeout. At most
//! `MAX_CONSOLES` are open at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::admin::api::{Facts, text};
use crate::admin::inbound::{ConsoleMsg, read_console_msg};
use crate::admin::sampler::history_json;
use crate::admin::{AdminState, Console, MAX_CONSOLES};
use crate::net::conn::socket_config;
use crate::net::origin::is_same_origin;
use crate::net::ratelimit::TokenBucket;
use crate::net::upgrade::{Handover, Handshake, websocket};

/// A console that takes longer than this to take one sample is not reading.
const SEND_PATIENCE: Duration = Duration::from_secs(5);

/// An open console socket's place among `MAX_CONSOLES`; given back when dropped.
struct Slot {
    console: Arc<Console>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.console.watched.lock().remove(&self.id);
        self.console.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Checks the credentials and the origin and takes a slot before answering 101, so a
/// refused socket costs nothing.
pub(crate) fn upgrade(
    console: Arc<Console>,
    handshake: Handshake,
    facts: &Facts,
    state: &AdminState,
) -> Response {
    // Browsers always send an Origin on a WebSocket handshake, and cannot send an
    // Authorization header: a cookie's socket must come from the console's own page.
    if facts.creds.bearer.is_none()
        && !facts
            .origin
            .as_deref()
            .is_some_and(|origin| is_same_origin(origin, facts.host.as_deref()))
    {
        return text(StatusCode::FORBIDDEN, "origin not allowed");
    }
    if let Err(refused) = console.authorize(facts, false) {
        return refused.into_response();
    }
    if console.open.fetch_add(1, Ordering::Relaxed) >= MAX_CONSOLES {
        console.open.fetch_sub(1, Ordering::Relaxed);
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many consoles open");
    }
    let slot = Slot {
        id: console.next_socket.fetch_add(1, Ordering::Relaxed),
        console,
    };
    let shutdown = state.shutdown.clone();
    handshake.accept(&state.tasks, move |handover| async move {
        if let Err(why) = serve(handover, &slot, shutdown).await {
            tracing::debug!(why, "console socket closed");
        }
    })
}

/// Why a console socket ended, for the log.
type Ended = &'static str;

async fn serve(
    handover: Handover,
    slot: &Slot,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), Ended> {
    let console = &slot.console;
    let limits = console.limits;
    let mut socket = websocket(handover.stream, handover.read_ahead, socket_config()).await;
    let history = history_json(&console.history.lock());
    send(&mut socket, history).await?;
    let mut samples = console.samples.clone();
    samples.mark_changed();
    let mut messages = TokenBucket::new(limits.msg_burst, limits.msg_rate);
    let mut bytes = TokenBucket::new(limits.byte_burst, limits.byte_rate);
    let mut deadline = Instant::now() + limits.idle_timeout;
    let mut pings =
        tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut inspected: Option<String> = None;
    let mut audit_sent = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                return close(&mut socket, CloseCode::Away, "server is shutting down").await;
            }
            changed = samples.changed() => {
                if changed.is_err() {
                    return close(&mut socket, CloseCode::Away, "server is shutting down").await;
                }
                let work = Instant::now();
                let published = Arc::clone(&samples.borrow_and_update());
                let detail = inspected.as_ref().and_then(|room| {
                    published.inspected.iter().find(|(id, _)| id == room).map(|(_, json)| json.as_str())
                });
                let (version, audit) = console.recent_audit_json();
                let audit = if version == audit_sent { "null".to_owned() } else { audit };
                audit_sent = version;
                let frame = format!(
                    r#"{{"type":"sample","seq":{},"data":{},"inspect":{},"audit":{}}}"#,
                    published.seq,
                    if published.common.is_empty() { "null" } else { &published.common },
                    detail.unwrap_or("null"),
                    audit,
                );
                let sent = send(&mut socket, frame).await;
                console.metrics.console_work_seconds.inc_by(work.elapsed().as_secs_f64());
                sent?;
            }
            _ = pings.tick() => {
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    return Err("the ping could not be sent");
                }
            }
            frame = timeout_at(deadline, socket.next()) => {
                let msg = match frame {
                    Err(_) => return close(&mut socket, CloseCode::Policy, "idle").await,
                    Ok(Some(Err(tungstenite::Error::Capacity(_)))) => {
                        return close(&mut socket, CloseCode::Size, "message too big").await;
                    }
                    Ok(None | Some(Err(_))) => return Err("the console went away"),
                    Ok(Some(Ok(msg))) => msg,
                };
                deadline = Instant::now() + limits.idle_timeout;
                let n_bytes = u32::try_from(msg.len()).unwrap_or(u32::MAX);
                if !messages.try_take() || !bytes.try_take_n(n_bytes) {
                    return close(&mut socket, CloseCode::Policy, "more messages or bytes than the rate limit").await;
                }
                match msg {
                    Message::Text(text) => match read_console_msg(text.as_str()) {
                        Ok(ConsoleMsg::Inspect(room)) => {
                            let mut watched = console.watched.lock();
                            match &room {
                                Some(room) => watched.insert(slot.id, room.clone()),
                                None => watched.remove(&slot.id),
                            };
                            inspected = room;
                        }
                        Err(_) => return close(&mut socket, CloseCode::Invalid, "not a console message").await,
                    },
                    Message::Binary(_) => return close(&mut socket, CloseCode::Unsupported, "text frames only").await,
                    Message::Close(_) => return Err("the console closed"),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}

async fn send(
    socket: &mut WebSocketStream<tokio::net::TcpStream>,
    text: String,
) -> Result<(), Ended> {
    match timeout(SEND_PATIENCE, socket.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("the console went away"),
        Err(_) => Err("the console stopped reading"),
    }
}

async fn close(
    socket: &mut WebSocketStream<tokio::net::TcpStream>,
    code: CloseCode,
    reason: &'static str,
) -> Result<(), Ended> {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = timeout(SEND_PATIENCE, socket.close(Some(frame))).await;
    Err(reason)
}
