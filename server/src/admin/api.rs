//! The admin listener's routes: `/metrics`; the console's login, page and assets; and
//! its JSON API. Every API request is authorized in one place (`Console::authorize`),
//! every input read through `inbound`, and every action carried out by the rooms
//! themselves through their command queues, then written to the audit log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::timeout;
use warp::Filter;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use crate::admin::auth::{COOKIE, SESSION_TTL};
use crate::admin::inbound::{
    Credentials, Invalid, MAX_BODY_BYTES, read_broadcast, read_credentials, read_kick, read_login,
    read_player, read_room,
};
use crate::admin::sampler::{RoomRow, inspect_rooms};
use crate::admin::{AdminState, Console, page, socket};
use crate::net::http::get_or_head;
use crate::net::listener::PeerAddr;
use crate::net::origin::is_same_origin;
use crate::rooms::room::RoomCmd;

/// How long an action waits for its room to carry it out (at its next tick).
const ROOM_PATIENCE: Duration = Duration::from_secs(2);
/// Audit entries one request may read.
const MAX_AUDIT_LIMIT: u32 = 200;

/// What a request says about who sends it, unchecked.
#[derive(Debug)]
pub(crate) struct Facts {
    pub(crate) creds: Credentials,
    pub(crate) origin: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) peer: SocketAddr,
}

fn facts() -> impl Filter<Extract = (Facts,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::ext::get::<PeerAddr>())
        .map(
            |authorization: Option<String>,
             cookie: Option<String>,
             origin: Option<String>,
             host: Option<String>,
             peer: PeerAddr| Facts {
                creds: read_credentials(authorization.as_deref(), cookie.as_deref()),
                origin,
                host,
                peer: peer.0,
            },
        )
}

/// The console is off: no token file.
#[derive(Debug)]
struct ConsoleOff;
impl warp::reject::Reject for ConsoleOff {}

pub(crate) fn text(status: StatusCode, text: &str) -> Response {
    let mut response = warp::reply::with_status(format!("{text}\n"), status).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn json_error(status: StatusCode, error: &str) -> Response {
    let mut response =
        warp::reply::with_status(warp::reply::json(&json!({ "error": error })), status)
            .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn bad_request(invalid: Invalid) -> Response {
    json_error(StatusCode::BAD_REQUEST, &invalid.0)
}

/// Why a request was refused: its status and what to tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused(pub(crate) StatusCode, pub(crate) &'static str);

impl Refused {
    pub(crate) fn into_response(self) -> Response {
        json_error(self.0, self.1)
    }
}

impl Console {
    /// Who is asking, if they may: the bearer token, or a console session whose page is
    /// this listener's own (a request that changes something must say its origin). An
    /// `Origin` from any other page is refused whatever the credentials.
    pub(crate) fn authorize(&self, facts: &Facts, changes_state: bool) -> Result<String, Refused> {
        if let Some(origin) = &facts.origin
            && !is_same_origin(origin, facts.host.as_deref())
        {
            return Err(Refused(StatusCode::FORBIDDEN, "origin not allowed"));
        }
        let from = facts.peer.ip();
        if let Some(token) = &facts.creds.bearer {
            return if self.auth.token_matches(token) {
                Ok(format!("api token ({from})"))
            } else {
                tracing::info!(%from, "an admin request with a wrong token was refused");
                Err(Refused(StatusCode::UNAUTHORIZED, "wrong token"))
            };
        }
        let operator = facts
            .creds
            .session
            .as_deref()
            .and_then(|session| self.auth.session(session));
        match operator {
            Some(_) if changes_state && facts.origin.is_none() => Err(Refused(
                StatusCode::FORBIDDEN,
                "a console request must say its origin",
            )),
            Some(name) => Ok(format!("{name} ({from})")),
            None => Err(Refused(
                StatusCode::UNAUTHORIZED,
                "log in at /admin, or send Authorization: Bearer TOKEN",
            )),
        }
    }
}

pub(crate) fn routes(
    state: Arc<AdminState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let metrics = {
        let state = Arc::clone(&state);
        warp::path("metrics")
            .and(warp::path::end())
            .and(get_or_head())
            .map(move || {
                warp::reply::with_header(
                    state.metrics.render(),
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .into_response()
            })
    };
    let console = {
        let state = Arc::clone(&state);
        warp::any().and_then(move || {
            let console = state.console.clone();
            async move { console.ok_or_else(|| warp::reject::custom(ConsoleOff)) }
        })
    };
    let admin = warp::path("admin").and(console);
    let body = warp::body::content_length_limit(MAX_BODY_BYTES as u64).and(warp::body::bytes());

    let page = admin
        .clone()
        .and(warp::path::end())
        .and(get_or_head())
        .and(facts())
        .map(|console: Arc<Console>, facts: Facts| page::console_or_login(&console, &facts));
    let login = admin
        .clone()
        .and(warp::path("login"))
        .and(warp::path::end())
        .and(warp::post())
        .and(facts())
        .and(body)
        .map(login);
    let logout = admin
        .clone()
        .and(warp::path("logout"))
        .and(warp::path::end())
        .and(warp::post())
        .and(facts())
        .map(logout);
    let assets = admin
        .clone()
        .and(warp::path("assets"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(get_or_head())
        .map(|_: Arc<Console>, name: String| page::asset(&name));
    let ws = admin
        .clone()
        .and(warp::path("ws"))
        .and(warp::path::end())
        .and(crate::net::upgrade::handshake())
        .and(facts())
        .map({
            let state = Arc::clone(&state);
            move |console: Arc<Console>, handshake, facts: Facts| {
                socket::upgrade(console, handshake, &facts, &state)
            }
        });

    let api = admin.and(warp::path("api"));
    let rooms = api
        .clone()
        .and(warp::path("rooms"))
        .and(warp::path::end())
        .and(get_or_head())
        .and(facts())
        .then(list_rooms);
    let room = api
        .clone()
        .and(warp::path("rooms"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(get_or_head())
        .and(facts())
        .then(show_room);
    let kick = api
        .clone()
        .and(warp::path("rooms"))
        .and(warp::path::param::<String>())
        .and(warp::path("players"))
        .and(warp::path::param::<String>())
        .and(warp::path("kick"))
        .and(warp::path::end())
        .and(warp::post())
        .and(facts())
        .and(body)
        .then(kick);
    let close = api
        .clone()
        .and(warp::path("rooms"))
        .and(warp::path::param::<String>())
        .and(warp::path("close"))
        .and(warp::path::end())
        .and(warp::post())
        .and(facts())
        .then(close_room);
    let broadcast = api
        .clone()
        .and(warp::path("broadcast"))
        .and(warp::path::end())
        .and(warp::post())
        .and(facts())
        .and(body)
        .map(broadcast);
    let drain = api
        .clone()
        .and(warp::path("drain"))
        .and(warp::path::end())
        .and(warp::post())
        .and(facts())
        .map(drain);
    let audit = api
        .and(warp::path("audit"))
        .and(warp::path::end())
        .and(get_or_head())
        .and(facts())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(audit);

    metrics
        .or(page)
        .unify()
        .or(login)
        .unify()
        .or(logout)
        .unify()
        .or(assets)
        .unify()
        .or(ws)
        .unify()
        .or(rooms)
        .unify()
        .or(room)
        .unify()
        .or(kick)
        .unify()
        .or(close)
        .unify()
        .or(broadcast)
        .unify()
        .or(drain)
        .unify()
        .or(audit)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let response = if rejection.find::<ConsoleOff>().is_some() {
                text(
                    StatusCode::NOT_FOUND,
                    "the operations console is off: start the server with --admin-token-file FILE",
                )
            } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
                text(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large")
            } else if rejection.is_not_found() {
                text(StatusCode::NOT_FOUND, "not found")
            } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            } else {
                text(StatusCode::BAD_REQUEST, "bad request")
            };
            Ok::<_, Infallible>(response)
        })
        .unify()
}

/// The login form: a right token opens a session and sets its cookie; a wrong one
/// shows the form again.
fn login(console: Arc<Console>, facts: Facts, form: Bytes) -> Response {
    if let Some(origin) = &facts.origin
        && !is_same_origin(origin, facts.host.as_deref())
    {
        return text(StatusCode::FORBIDDEN, "origin not allowed");
    }
    if !console.logins.lock().try_take() {
        return page::login(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many tries: wait a minute."),
        );
    }
    let login = match read_login(&form) {
        Ok(login) => login,
        Err(invalid) => return page::login(StatusCode::BAD_REQUEST, Some(&invalid.0)),
    };
    if !console.auth.token_matches(&login.token) {
        tracing::info!(from = %facts.peer.ip(), "a console login with a wrong token was refused");
        return page::login(StatusCode::UNAUTHORIZED, Some("That is not the token."));
    }
    tracing::info!(who = %login.who, from = %facts.peer.ip(), "console login");
    let session = console.auth.open_session(login.who);
    let cookie = format!(
        "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    see_other("/admin", &cookie)
}

fn logout(console: Arc<Console>, facts: Facts) -> Response {
    if let Some(session) = &facts.creds.session {
        console.auth.close_session(session);
    }
    see_other(
        "/admin",
        &format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0"),
    )
}

fn see_other(location: &'static str, cookie: &str) -> Response {
    let mut response =
        warp::reply::with_status(warp::reply(), StatusCode::SEE_OTHER).into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static(location));
    if let Ok(cookie) = HeaderValue::from_str(cookie) {
        headers.insert(SET_COOKIE, cookie);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn ok_json(value: &impl serde::Serialize) -> Response {
    let mut response = warp::reply::json(value).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn list_rooms(console: Arc<Console>, facts: Facts) -> Response {
    if let Err(refused) = console.authorize(&facts, false) {
        return refused.into_response();
    }
    let rows: Vec<RoomRow> = inspect_rooms(&console)
        .await
        .iter()
        .map(|(info, report)| RoomRow::new(info, report.as_ref()))
        .collect();
    ok_json(&rows)
}

async fn show_room(console: Arc<Console>, room: String, facts: Facts) -> Response {
    if let Err(refused) = console.authorize(&facts, false) {
        return refused.into_response();
    }
    let room = match read_room(&room) {
        Ok(room) => room,
        Err(invalid) => return bad_request(invalid),
    };
    let Some(handle) = console.directory.find(&room) else {
        return json_error(StatusCode::NOT_FOUND, "no such room");
    };
    let (reply, answer) = oneshot::channel();
    if !handle.try_send(RoomCmd::Inspect { reply }) {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "the room is busy");
    }
    match timeout(ROOM_PATIENCE, answer).await {
        Ok(Ok(report)) => ok_json(&report),
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "the room did not answer"),
    }
}

async fn kick(
    console: Arc<Console>,
    room: String,
    player: String,
    facts: Facts,
    body: Bytes,
) -> Response {
    let who = match console.authorize(&facts, true) {
        Ok(who) => who,
        Err(refused) => return refused.into_response(),
    };
    let read = read_room(&room).and_then(|room| {
        let player = read_player(&player)?;
        Ok((room, player, read_kick(&body)?))
    });
    let (room, player, reason) = match read {
        Ok(read) => read,
        Err(invalid) => return bad_request(invalid),
    };
    let Some(handle) = console.directory.find(&room) else {
        return json_error(StatusCode::NOT_FOUND, "no such room");
    };
    let (reply, answer) = oneshot::channel();
    let cmd = RoomCmd::Kick {
        id: player,
        reason: reason.clone(),
        reply,
    };
    if !handle.try_send(cmd) {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "the room is busy");
    }
    match timeout(ROOM_PATIENCE, answer).await {
        Ok(Ok(true)) => {
            let target = format!("{room}/{}", player.0);
            console.record(&who, "kick", &target, reason.as_deref().unwrap_or(""));
            ok_json(&json!({ "kicked": true }))
        }
        Ok(Ok(false)) => json_error(StatusCode::NOT_FOUND, "no such player in the room"),
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "the room did not answer"),
    }
}

async fn close_room(console: Arc<Console>, room: String, facts: Facts) -> Response {
    let who = match console.authorize(&facts, true) {
        Ok(who) => who,
        Err(refused) => return refused.into_response(),
    };
    let room = match read_room(&room) {
        Ok(room) => room,
        Err(invalid) => return bad_request(invalid),
    };
    let Some(handle) = console.directory.find(&room) else {
        return json_error(StatusCode::NOT_FOUND, "no such room");
    };
    let (reply, answer) = oneshot::channel();
    if !handle.try_send(RoomCmd::Close { reply }) {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "the room is busy");
    }
    match timeout(ROOM_PATIENCE, answer).await {
        Ok(Ok(n_players)) => {
            console.record(
                &who,
                "close_room",
                &room,
                &format!("{n_players} players let go"),
            );
            ok_json(&json!({ "closed": true, "players": n_players }))
        }
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "the room did not answer"),
    }
}

/// Queues the announcement in every occupied room; each shows it with its next snapshot.
fn broadcast(console: Arc<Console>, facts: Facts, body: Bytes) -> Response {
    let who = match console.authorize(&facts, true) {
        Ok(who) => who,
        Err(refused) => return refused.into_response(),
    };
    let text = match read_broadcast(&body) {
        Ok(text) => text,
        Err(invalid) => return bad_request(invalid),
    };
    let mut n_rooms = 0;
    for (info, handle) in console.directory.handles() {
        if info.players > 0 && handle.try_send(RoomCmd::Announce { text: text.clone() }) {
            n_rooms += 1;
        }
    }
    console.record(&who, "broadcast", "", &text);
    ok_json(&json!({ "rooms": n_rooms }))
}

fn drain(console: Arc<Console>, facts: Facts) -> Response {
    let who = match console.authorize(&facts, true) {
        Ok(who) => who,
        Err(refused) => return refused.into_response(),
    };
    if !console.directory.is_draining() {
        console.directory.drain();
        console.record(
            &who,
            "drain",
            "",
            "no new players; rooms close as their matches end",
        );
    }
    ok_json(&json!({ "draining": true }))
}

async fn audit(console: Arc<Console>, facts: Facts, query: String) -> Response {
    if let Err(refused) = console.authorize(&facts, false) {
        return refused.into_response();
    }
    let limit = form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "limit")
        .map(|(_, value)| value.parse::<u32>());
    let limit = match limit {
        None => 50,
        Some(Ok(limit)) if limit > 0 => limit.min(MAX_AUDIT_LIMIT),
        Some(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "limit must be a positive whole number",
            );
        }
    };
    let store = Arc::clone(&console.audit);
    match tokio::task::spawn_blocking(move || store.recent_audit(limit)).await {
        Ok(Ok(entries)) => ok_json(&json!({ "entries": entries })),
        _ => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit log cannot be read",
        ),
    }
}
