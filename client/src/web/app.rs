//! The game page: one connection at a time to the room in the address, inputs sampled on
//! the fixed tick and the room drawn every display frame, the HUD and chat, and what
//! happens when the connection ends: a resume into the held seat (or a fresh join) with
//! backoff, or a refusal in plain words. The same page watches a room as a spectator
//! (`?room=ID&spectate=1`): no input, no chat, and a player to follow or the whole arena.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use glam::Vec2;
use shared::PlayerId;
use shared::codec::{decode_server, encode_client};
use shared::consts::PROTOCOL_VERSION;
use shared::game::GameEvent;
use shared::protocol::{ClientMsg, CloseReason, Resume, ServerMsg, Watching, Welcome};
use shared::view::ProjectileState;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{HtmlCanvasElement, HtmlElement, KeyboardEvent, MouseEvent};

use super::chat::Chat;
use super::dom::{by_id, document, listen, mark, now_secs, show, websocket_url, window};
use super::hud::{Hud, Link};
use super::input::{Controls, track};
use super::lobby::{deep_link, remember_token, stored_token};
use super::probe::{self, FrameTimes};
use super::render::{DEATH_BURST_SECS, Effect, Renderer, Scene};
use super::results::ResultsPanel;
use super::resume;
use super::socket::{Socket, SocketEvent};
use crate::backoff::retry_delay;
use crate::core::ApplyError;
use crate::interp::RoomFrame;
use crate::session::Session;

/// Ticks run at most per display frame; after a longer stall the backlog is dropped, not
/// sent as a burst the server would throttle anyway.
const MAX_TICKS_PER_FRAME: u32 = 4;
/// A frame longer than this (a stall, a debugger) counts as this long.
const MAX_FRAME_SECS: f64 = 0.25;
/// How often the net graph's text is refreshed, in seconds.
const NETGRAPH_EVERY_SECS: f64 = 0.25;
/// Snapshots come many times a second: this long without a word from the server means
/// the connection died without telling anyone (a lost network), so the page reconnects
/// rather than wait minutes for the socket to fail.
const SERVER_SILENCE_SECS: f64 = 3.0;

#[derive(Debug)]
enum Phase {
    /// The socket is opening or the hello is out; no welcome yet.
    Joining,
    Playing(Box<Session>),
    /// The connection was lost; another try is scheduled.
    Lost {
        retry_at: f64,
    },
    /// The server refused or removed us; the overlay says why and waits for the player.
    Refused,
}

#[derive(Debug)]
pub struct App {
    name: String,
    room: Option<String>,
    /// This page watches its room without a seat.
    spectate: bool,
    /// The player a spectator follows; `None` shows the whole arena.
    follow: Option<PlayerId>,
    me: Weak<RefCell<App>>,
    phase: Phase,
    /// The session of a lost connection, kept to carry on in the same seat once the
    /// server takes this page back.
    kept: Option<Box<Session>>,
    socket: Option<Socket>,
    /// A socket that ended inside its own callback, dropped on the next frame.
    ended_socket: Option<Socket>,
    /// The reason the server gave just before closing, if it did.
    goodbye: Option<(CloseReason, String)>,
    /// Where a server of the cluster just sent this page (`ServerMsg::Redirect`): the
    /// room's process and the seat reserved there, followed when the socket closes.
    redirect: Option<(String, Option<String>)>,
    /// The game socket of the process that runs this page's room, when that is not the
    /// page's own server; a lost connection tries it first, then the page's own.
    game_url: Option<String>,
    /// The seat reserved for the next hello.
    reservation: Option<String>,
    failed_attempts: u32,
    controls: Rc<RefCell<Controls>>,
    renderer: Renderer,
    hud: Hud,
    results: ResultsPanel,
    chat: Chat,
    effects: Vec<Effect>,
    tick_backlog: f64,
    last_frame: Option<f64>,
    /// The page was hidden and is visible again: show the present, do not replay.
    resumed: bool,
    aim: f32,
    room_frame: RoomFrame,
    my_drawn: Option<Vec2>,
    netgraph_at: f64,
    /// Time since the previous frame, for the frame statistics; `None` after a pause.
    last_interval_ms: Option<f64>,
    frame_times: FrameTimes,
    /// Why the connection was lost, repeated while counting down to the next try.
    lost_reason: String,
    /// When the server was last heard from, on this page's clock.
    heard_at: f64,
    /// When the first snapshot was applied, in milliseconds since the page's navigation
    /// began: how long the page took to show the game.
    first_snapshot_ms: Option<f64>,
}

/// Opens the game for `name` in `room` (quick play without one).
pub fn start(name: String, room: Option<String>) -> Result<(), JsValue> {
    open(name, room, false)
}

/// Watches `room` without a seat: the spectator's bar replaces the chat button.
pub fn watch(room: String) -> Result<(), JsValue> {
    show(&by_id::<HtmlElement>("spectate-bar"), true);
    if let Some(body) = document().body() {
        let _ = body.class_list().add_1("spectating");
    }
    document().set_title(&format!("Watching {room} · Skirmish"));
    open(SPECTATOR_NAME.to_owned(), Some(room), true)
}

/// What a spectator's hello calls it; the room shows nobody by that name.
const SPECTATOR_NAME: &str = "spectator";

fn open(name: String, room: Option<String>, spectate: bool) -> Result<(), JsValue> {
    mark("skirmish:module-started");
    show(&by_id::<HtmlElement>("game"), true);
    let canvas: HtmlCanvasElement = by_id("canvas");
    let controls = track(&canvas);
    let renderer = Renderer::new(canvas)?;
    let now = now_secs();
    let app = Rc::new_cyclic(|me| {
        RefCell::new(App {
            name,
            room,
            spectate,
            follow: None,
            me: me.clone(),
            phase: Phase::Joining,
            kept: None,
            socket: None,
            ended_socket: None,
            goodbye: None,
            redirect: None,
            game_url: None,
            reservation: None,
            failed_attempts: 0,
            controls,
            renderer,
            hud: Hud::default(),
            results: ResultsPanel::default(),
            chat: Chat::new(now),
            effects: Vec::new(),
            tick_backlog: 0.0,
            last_frame: None,
            resumed: false,
            aim: 0.0,
            room_frame: RoomFrame::default(),
            my_drawn: None,
            netgraph_at: 0.0,
            last_interval_ms: None,
            frame_times: FrameTimes::default(),
            lost_reason: String::new(),
            heard_at: now,
            first_snapshot_ms: None,
        })
    });
    app.borrow_mut().connect();
    listen_to_page(&app);
    probe::install(Rc::downgrade(&app));
    run_frames(app);
    Ok(())
}

/// Keys that are not movement (chat, net graph), the chat and overlay buttons, and tab
/// visibility.
fn listen_to_page(app: &Rc<RefCell<App>>) {
    let weak = Rc::downgrade(app);
    listen(&window(), "keydown", move |event: KeyboardEvent| {
        let Some(app) = weak.upgrade() else { return };
        let Ok(mut app) = app.try_borrow_mut() else {
            return;
        };
        app.key(&event);
    });
    let weak = Rc::downgrade(app);
    listen(
        &by_id::<HtmlElement>("chat-input"),
        "input",
        move |_: web_sys::Event| {
            if let Some(app) = weak.upgrade()
                && let Ok(app) = app.try_borrow()
            {
                app.chat.show_length();
            }
        },
    );
    // Touch screens have no Enter key: a button opens and closes the chat box, and the
    // on-screen keyboard's enter (or the Send button) submits its form.
    let weak = Rc::downgrade(app);
    listen(
        &by_id::<HtmlElement>("chat-open"),
        "click",
        move |_: MouseEvent| {
            if let Some(app) = weak.upgrade()
                && let Ok(mut app) = app.try_borrow_mut()
            {
                if app.chat.is_open() {
                    app.close_chat();
                } else {
                    app.chat_enter();
                }
            }
        },
    );
    let weak = Rc::downgrade(app);
    listen(
        &by_id::<HtmlElement>("chat-form"),
        "submit",
        move |event: web_sys::Event| {
            event.prevent_default();
            if let Some(app) = weak.upgrade()
                && let Ok(mut app) = app.try_borrow_mut()
            {
                app.chat_enter();
            }
        },
    );
    for (button, step) in [("spectate-prev", -1), ("spectate-next", 1)] {
        let weak = Rc::downgrade(app);
        listen(
            &by_id::<HtmlElement>(button),
            "click",
            move |_: MouseEvent| {
                if let Some(app) = weak.upgrade()
                    && let Ok(mut app) = app.try_borrow_mut()
                {
                    app.follow_step(step);
                }
            },
        );
    }
    let weak = Rc::downgrade(app);
    listen(
        &by_id::<HtmlElement>("overlay-retry"),
        "click",
        move |_: MouseEvent| {
            if let Some(app) = weak.upgrade()
                && let Ok(mut app) = app.try_borrow_mut()
            {
                app.connect();
            }
        },
    );
    let weak = Rc::downgrade(app);
    listen(&document(), "visibilitychange", move |_: web_sys::Event| {
        let Some(app) = weak.upgrade() else { return };
        let Ok(mut app) = app.try_borrow_mut() else {
            return;
        };
        if document().hidden() {
            app.controls.borrow_mut().release_all();
        } else {
            app.resumed = true;
        }
    });
}

/// Calls `App::frame` on every animation frame. Browsers stop animation frames in hidden
/// tabs, which is what pauses sending and drawing there.
fn run_frames(app: Rc<RefCell<App>>) {
    // The callback re-registers itself, so it holds a shared slot with itself in it.
    type FrameCallback = Closure<dyn FnMut()>;
    let next: Rc<RefCell<Option<FrameCallback>>> = Rc::new(RefCell::new(None));
    let again = next.clone();
    *next.borrow_mut() = Some(Closure::new(move || {
        let started = now_secs();
        if let Ok(mut app) = app.try_borrow_mut() {
            app.frame(started);
            let work_ms = (now_secs() - started) * 1e3;
            app.record_frame_work(work_ms);
        }
        if let Some(callback) = again.borrow().as_ref() {
            let _ = window().request_animation_frame(callback.as_ref().unchecked_ref());
        }
    }));
    if let Some(callback) = next.borrow().as_ref() {
        let _ = window().request_animation_frame(callback.as_ref().unchecked_ref());
    }
}

/// What a refusal or removal means, for a person. The second part says whether trying
/// again by itself can help.
fn in_plain_words(reason: CloseReason, detail: &str, room: Option<&str>) -> (String, bool) {
    let room = room.unwrap_or("the room");
    match reason {
        CloseReason::RoomFull => (
            format!("Room {room} is full. Pick another room in the lobby, or try again later."),
            false,
        ),
        CloseReason::VersionMismatch { server } => (
            format!(
                "This page is out of date: the server speaks protocol {server}, this page {PROTOCOL_VERSION}. Reload the page."
            ),
            false,
        ),
        CloseReason::BadName => (
            format!("The server did not accept that name: {detail}. Choose another in the lobby."),
            false,
        ),
        CloseReason::Malformed | CloseReason::TooBig => (
            format!("The server could not understand this page ({detail}). Reload the page."),
            false,
        ),
        CloseReason::Flood => (
            "You were removed from the room for sending too much, too fast.".to_owned(),
            false,
        ),
        CloseReason::Timeout => (
            "The server stopped hearing from this page.".to_owned(),
            true,
        ),
        CloseReason::TooSlow => (
            "The connection was too slow to keep up with the game.".to_owned(),
            true,
        ),
        CloseReason::ServerShutdown => ("The server is restarting.".to_owned(), true),
        CloseReason::RoomLimit => (
            "The server is running as many rooms as it can. Join an open room from the lobby, or try again in a minute.".to_owned(),
            false,
        ),
        CloseReason::TooManyNewRooms => (
            "You opened too many new rooms in a short time. Join an open room from the lobby, or wait a minute.".to_owned(),
            false,
        ),
        CloseReason::RoomCrashed => (
            format!("{room} stopped because of an error on the server. Joining again opens it anew."),
            true,
        ),
        CloseReason::ResumeRefused => (
            format!("Your seat could not be taken back ({detail})."),
            true,
        ),
        CloseReason::Replaced => (
            "This seat was taken over by another tab or window. Reload this page to play here again."
                .to_owned(),
            false,
        ),
        CloseReason::Kicked => (
            format!("An operator removed you from {room} ({detail})."),
            false,
        ),
        CloseReason::Moved => (
            "The room is on another server of this game, which could not be reached.".to_owned(),
            true,
        ),
        CloseReason::SpectatorsFull => (
            format!("{room} has as many spectators as it admits. Try again later, or join it to play."),
            false,
        ),
        CloseReason::SpectatorOnly => (
            "A spectator cannot play or chat. Join the room from the lobby to play.".to_owned(),
            false,
        ),
        CloseReason::NoSuchRoom => (
            format!("{room} is not open any more. Pick another room in the lobby."),
            false,
        ),
    }
}

fn forget_old_effects(effects: &mut Vec<Effect>, now: f64) {
    effects.retain(|effect| match *effect {
        Effect::Hit { at, .. } | Effect::Death { at, .. } => now - at < DEATH_BURST_SECS,
    });
}

impl App {
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Joining | Phase::Lost { .. } if self.kept.is_some() => "reconnecting",
            Phase::Joining => "joining",
            Phase::Playing(_) => "playing",
            Phase::Lost { .. } => "lost",
            Phase::Refused => "refused",
        }
    }

    pub fn is_spectating(&self) -> bool {
        self.spectate
    }

    /// The player a spectator follows, if any.
    pub fn following(&self) -> Option<PlayerId> {
        self.follow
    }

    pub fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::Playing(session) => Some(session),
            _ => None,
        }
    }

    pub fn frame_times(&self) -> &FrameTimes {
        &self.frame_times
    }

    pub fn first_snapshot_ms(&self) -> Option<f64> {
        self.first_snapshot_ms
    }

    /// Every projectile where the last frame drew it.
    pub fn drawn_projectiles(&self) -> &[ProjectileState] {
        &self.room_frame.projectiles
    }

    /// Every living or dead player where the last frame drew them (the local one predicted).
    pub fn drawn_players(&self) -> Vec<(PlayerId, Vec2, bool)> {
        let me = self.session().map(Session::me);
        self.room_frame
            .players
            .iter()
            .map(|p| match (Some(p.id) == me, self.my_drawn) {
                (true, Some(pos)) => (p.id, pos, p.alive),
                _ => (p.id, p.pos, p.alive),
            })
            .collect()
    }

    fn record_frame_work(&mut self, work_ms: f64) {
        if let Some(interval) = self.last_interval_ms {
            self.frame_times.record(interval, work_ms);
        }
    }

    fn connect(&mut self) {
        self.socket = None;
        self.goodbye = None;
        self.phase = Phase::Joining;
        self.hud.link(if self.kept.is_some() {
            Link::Reconnecting
        } else {
            Link::Connecting
        });
        let me = self.me.clone();
        let url = self
            .game_url
            .clone()
            .unwrap_or_else(|| websocket_url("/ws"));
        let opened = Socket::open(&url, move |event| {
            if let Some(app) = me.upgrade()
                && let Ok(mut app) = app.try_borrow_mut()
            {
                app.socket_event(event);
            }
        });
        match opened {
            Ok(socket) => self.socket = Some(socket),
            Err(_) => self.lost("The game server could not be reached."),
        }
    }

    fn send(&mut self, msg: &ClientMsg) {
        let now = now_secs();
        let bytes = match &mut self.phase {
            Phase::Playing(session) => session.encode(msg, now),
            _ => encode_client(msg),
        };
        if let Some(socket) = &self.socket {
            socket.send(&bytes);
        }
    }

    fn socket_event(&mut self, event: SocketEvent) {
        match event {
            SocketEvent::Open => {
                mark("skirmish:socket-open");
                let hello = ClientMsg::Hello {
                    protocol: PROTOCOL_VERSION,
                    name: self.name.clone(),
                    room: self.room.clone(),
                    token: stored_token(),
                    resume: self.resume_request(),
                    reservation: self.reservation.take(),
                    spectate: self.spectate,
                };
                self.send(&hello);
            }
            SocketEvent::Message(bytes) => self.message(&bytes),
            SocketEvent::Closed { code, reason } => {
                // This runs inside the socket's own callback, which must outlive the call.
                self.ended_socket = self.socket.take();
                self.closed(code, &reason);
            }
        }
    }

    fn message(&mut self, bytes: &[u8]) {
        let now = now_secs();
        self.heard_at = now;
        let received = match &mut self.phase {
            Phase::Playing(session) => session.receive_bytes(bytes, now),
            _ => decode_server(bytes).map_err(ApplyError::from),
        };
        let msg = match received {
            Ok(msg) => msg,
            Err(err) => {
                self.refused(&format!(
                    "The server sent something this page cannot read ({err}). Reload the page."
                ));
                return;
            }
        };
        if matches!(msg, ServerMsg::Snapshot(_)) && self.first_snapshot_ms.is_none() {
            // The page clock counts from the start of the navigation.
            self.first_snapshot_ms = Some(now * 1e3);
            mark("skirmish:first-snapshot");
        }
        // A hidden tab sends no input, which is what carries acknowledgements; it still
        // acknowledges what it receives, or the server would take it for a dead reader.
        // A spectator never sends input, so it always acknowledges this way.
        if matches!(msg, ServerMsg::Snapshot(_))
            && (document().hidden() || self.spectate)
            && let Phase::Playing(session) = &self.phase
            && let Some(ack) = session.view.ack_message()
        {
            self.send(&ack);
        }
        match msg {
            ServerMsg::Welcome(welcome) => self.welcomed(welcome, now),
            ServerMsg::Watching(watching) => self.watching(*watching),
            ServerMsg::Disconnect { reason, detail } => self.goodbye = Some((reason, detail)),
            ServerMsg::Redirect { url, reservation } => self.redirect = Some((url, reservation)),
            ServerMsg::Chat { name, text, .. } => self.chat.line(&name, &text),
            ServerMsg::Notice { text } => self.chat.notice(&text),
            ServerMsg::Announcement { text } => {
                self.hud.announce(&text, now);
                self.chat.notice(&format!("Announcement: {text}"));
            }
            ServerMsg::PlayerJoined { name, .. } => self.chat.notice(&format!("{name} joined")),
            ServerMsg::Event(_) => self.take_events(now),
            ServerMsg::Snapshot(_)
            | ServerMsg::PlayerAway { .. }
            | ServerMsg::PlayerBack { .. }
            | ServerMsg::PlayerLeft { .. }
            | ServerMsg::Pong { .. }
            | ServerMsg::MatchResults(_)
            | ServerMsg::MatchSaved { .. } => {}
        }
    }

    /// What the hello asks to take back: the seat of the session kept from a lost
    /// connection, or else the one this tab held before a reload.
    fn resume_request(&self) -> Option<Resume> {
        if self.spectate {
            return None;
        }
        match &self.kept {
            Some(session) => Some(Resume {
                token: session.view.resume_token.clone()?,
                newest_tick: session.view.newest_tick(),
            }),
            None => Some(Resume {
                token: resume::stored_for(self.room.as_deref()?)?,
                newest_tick: None,
            }),
        }
    }

    fn welcomed(&mut self, welcome: Box<Welcome>, now: f64) {
        mark("skirmish:welcome");
        self.failed_attempts = 0;
        let resumed = welcome.resumed;
        let session = match self.kept.take() {
            // The same seat: the kept state carries on, and the snapshots it holds are
            // the baselines of the deltas that follow.
            Some(mut session) if resumed && session.me() == welcome.player_id => {
                let _ = session.receive(&ServerMsg::Welcome(welcome), now);
                session
            }
            _ => Box::new(Session::new(*welcome)),
        };
        // Stats follow this identity from now on, whatever the nickname.
        if let Some(token) = &session.view.token {
            remember_token(token);
        }
        if let Some(token) = &session.view.resume_token {
            resume::remember(&session.view.room, token);
        }
        self.hud.hide_overlay();
        self.hud.set_room(&session.view.room);
        let name = session.view.roster.name(session.me()).unwrap_or("?");
        if resumed {
            self.chat
                .notice(&format!("Reconnected: back in your seat as {name}."));
            // Time passed while away: show the present, do not replay the gap.
            self.resumed = true;
        } else {
            self.chat.notice(&format!(
                "You joined room {} as {name}. Share this page's address to play together.",
                session.view.room,
            ));
        }
        // The address becomes the room's deep link, so reloading or sharing it rejoins here.
        if let Ok(history) = window().history() {
            let link = deep_link(&self.name, Some(&session.view.room));
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&link));
        }
        self.room = Some(session.view.room.clone());
        self.tick_backlog = 0.0;
        self.phase = Phase::Playing(session);
    }

    /// A spectator is let in: it sees the room from `delay_ms` ago.
    fn watching(&mut self, watching: Watching) {
        self.failed_attempts = 0;
        let delay_secs = f64::from(watching.delay_ms) / 1e3;
        let session = Box::new(Session::watching(watching));
        self.hud.hide_overlay();
        self.hud.set_room(&session.view.room);
        by_id::<HtmlElement>("spectate-delay")
            .set_text_content(Some(&format!("{delay_secs:.0} s behind")));
        self.chat.notice(&format!(
            "Watching room {}, {delay_secs:.0} s behind the players. ← and → (or the buttons) follow a player.",
            session.view.room,
        ));
        self.room = Some(session.view.room.clone());
        self.phase = Phase::Playing(session);
        self.show_following();
    }

    /// Follows the next (`step` 1) or previous (-1) player by id, passing through the
    /// whole arena between the last and the first.
    fn follow_step(&mut self, step: i32) {
        let Phase::Playing(session) = &self.phase else {
            return;
        };
        if !self.spectate {
            return;
        }
        let ids: Vec<PlayerId> = session.view.roster.iter().map(|seat| seat.id).collect();
        let at = self
            .follow
            .and_then(|id| ids.iter().position(|&other| other == id));
        self.follow = match (at, step > 0) {
            (None, true) => ids.first().copied(),
            (None, false) => ids.last().copied(),
            (Some(idx), true) => ids.get(idx + 1).copied(),
            (Some(idx), false) => idx.checked_sub(1).map(|idx| ids[idx]),
        };
        self.show_following();
    }

    fn show_following(&self) {
        let Phase::Playing(session) = &self.phase else {
            return;
        };
        let text = match self.follow {
            Some(id) => format!(
                "following {}",
                session.view.roster.name(id).unwrap_or("a player")
            ),
            None => "the whole arena".to_owned(),
        };
        by_id::<HtmlElement>("spectate-following").set_text_content(Some(&text));
    }

    fn take_events(&mut self, now: f64) {
        let Phase::Playing(session) = &mut self.phase else {
            return;
        };
        let events = session.view.drain_events();
        let name_of = |id: PlayerId| {
            session
                .view
                .roster
                .name(id)
                .map_or_else(|| "someone".to_owned(), str::to_owned)
        };
        for event in events {
            match event {
                GameEvent::Hit { target, .. } => self.effects.push(Effect::Hit { target, at: now }),
                GameEvent::Killed { victim, by } => {
                    self.hud.kill(&name_of(by), &name_of(victim), now);
                    let pos = session
                        .view
                        .snapshot
                        .as_ref()
                        .and_then(|s| s.players.iter().find(|p| p.id == victim))
                        .map(|p| p.pos);
                    if let Some(pos) = pos {
                        self.effects.push(Effect::Death { pos, at: now });
                    }
                }
                GameEvent::MatchStarted => self.chat.notice("A new match has started."),
                GameEvent::Respawned { .. } | GameEvent::MatchOver { .. } => {}
            }
        }
        // Events keep coming while a hidden tab draws nothing; keep only what may still show.
        forget_old_effects(&mut self.effects, now);
    }

    fn closed(&mut self, code: u16, reason: &str) {
        if matches!(self.phase, Phase::Refused) {
            return;
        }
        // The seat is held for a while: keep what this page knows, to carry on in it.
        // A spectator holds no seat, and starts afresh.
        if let Phase::Playing(session) = std::mem::replace(&mut self.phase, Phase::Joining)
            && !self.spectate
        {
            self.kept = Some(session);
        }
        let said = self.goodbye.take().or_else(|| {
            CloseReason::from_close_code(code).map(|reason_code| (reason_code, reason.to_owned()))
        });
        let redirect = self.redirect.take();
        if let (Some((CloseReason::Moved, _)), Some((url, reservation))) = (&said, redirect) {
            // The room lives on another process of the cluster: go there at once, as
            // part of the same join.
            self.game_url = Some(url);
            self.reservation = reservation;
            self.connect();
            return;
        }
        // A room's process that cannot be reached may be gone: the next try asks the
        // page's own server, which knows where the room (or a new one) is now.
        if self.failed_attempts > 0 {
            self.game_url = None;
        }
        match said {
            Some((CloseReason::ResumeRefused, detail)) => {
                // The seat is gone (or the token is): join afresh at once, and say so.
                self.kept = None;
                resume::forget();
                self.chat.notice(&format!(
                    "Your seat could not be taken back ({detail}). Joining the room afresh."
                ));
                self.connect();
            }
            Some((reason, detail)) => {
                let (text, retry) = in_plain_words(reason, &detail, self.room.as_deref());
                if retry {
                    self.lost(&text);
                } else {
                    self.kept = None;
                    self.refused(&text);
                }
            }
            None => self.lost("The connection to the game server was lost."),
        }
    }

    /// Schedules another try, later after each failure, and says so.
    fn lost(&mut self, why: &str) {
        self.failed_attempts += 1;
        let delay = retry_delay(self.failed_attempts, js_sys::Math::random());
        self.phase = Phase::Lost {
            retry_at: now_secs() + delay,
        };
        self.hud.link(Link::Down);
        self.hud.overlay(self.lost_title(), why, true);
        self.lost_reason = why.to_owned();
    }

    /// The overlay's title while the connection is down: a held seat is being taken
    /// back, or a fresh join is being tried.
    fn lost_title(&self) -> &'static str {
        if self.kept.is_some() {
            "Reconnecting to your seat"
        } else {
            "Connection lost"
        }
    }

    fn refused(&mut self, why: &str) {
        // Possibly inside the socket's own callback: retire it rather than drop it here.
        self.ended_socket = self.socket.take();
        self.phase = Phase::Refused;
        self.hud.link(Link::Down);
        self.hud.overlay("Cannot play here", why, true);
    }

    fn key(&mut self, event: &KeyboardEvent) {
        let playing = matches!(self.phase, Phase::Playing(_)) && !self.spectate;
        match event.key().as_str() {
            "ArrowRight" | "]" if self.spectate => {
                event.prevent_default();
                self.follow_step(1);
            }
            "ArrowLeft" | "[" if self.spectate => {
                event.prevent_default();
                self.follow_step(-1);
            }
            "Enter" if playing => {
                event.prevent_default();
                self.chat_enter();
            }
            "Escape" if self.chat.is_open() => {
                event.prevent_default();
                self.close_chat();
            }
            _ if event.code() == "KeyN" && !self.chat.is_open() => self.hud.toggle_netgraph(),
            _ => {}
        }
    }

    /// What Enter does in a room: opens the chat box, or sends its line (which closes it).
    fn chat_enter(&mut self) {
        // A spectator that said something would be closed for it.
        if !matches!(self.phase, Phase::Playing(_)) || self.spectate {
            return;
        }
        if !self.chat.is_open() {
            self.controls.borrow_mut().release_all();
            self.controls.borrow_mut().typing = true;
            self.chat.open();
            return;
        }
        if let Some(text) = self.chat.take_line(now_secs()) {
            self.send(&ClientMsg::Chat { text });
        }
        self.controls.borrow_mut().typing = self.chat.is_open();
    }

    fn close_chat(&mut self) {
        self.chat.close();
        self.controls.borrow_mut().typing = false;
    }

    fn frame(&mut self, now: f64) {
        self.ended_socket = None;
        let frame_secs = self
            .last_frame
            .map_or(0.0, |last| (now - last).clamp(0.0, MAX_FRAME_SECS));
        self.last_interval_ms = self.last_frame.map(|last| (now - last) * 1e3);
        self.last_frame = Some(now);
        if std::mem::take(&mut self.resumed) {
            self.tick_backlog = 0.0;
            self.last_interval_ms = None;
            if let Phase::Playing(session) = &mut self.phase {
                session.interp.snap_to_newest();
            }
        }
        match self.phase {
            Phase::Lost { retry_at } => {
                if now >= retry_at {
                    self.connect();
                } else {
                    let text = format!(
                        "{} Reconnecting in {:.0} s…",
                        self.lost_reason,
                        (retry_at - now).ceil()
                    );
                    self.hud.overlay(self.lost_title(), &text, true);
                }
            }
            Phase::Playing(_) if now - self.heard_at > SERVER_SILENCE_SECS => {
                // Dropping the socket closes it without a goodbye: the seat stays held.
                self.ended_socket = self.socket.take();
                self.closed(1006, "");
            }
            Phase::Playing(_) => self.play_frame(now, frame_secs),
            Phase::Joining | Phase::Refused => {}
        }
    }

    fn play_frame(&mut self, now: f64, frame_secs: f64) {
        let Phase::Playing(session) = &mut self.phase else {
            return;
        };
        let tick_secs = f64::from(session.tick_secs());
        self.tick_backlog += frame_secs;
        let mut outgoing = Vec::new();
        let mut ticks = 0;
        if self.spectate {
            self.tick_backlog = 0.0;
        }
        while self.tick_backlog >= tick_secs && ticks < MAX_TICKS_PER_FRAME {
            let controls = self.controls.borrow();
            let held = if controls.typing {
                0
            } else {
                controls.buttons()
            };
            let me_on_screen = self.my_drawn.map(|pos| self.renderer.to_screen(pos));
            if let Some(aim) = controls.aim(me_on_screen) {
                self.aim = aim;
            }
            drop(controls);
            if let Some(inputs) = session.input(held, self.aim) {
                outgoing.push(session.encode(&inputs, now));
            }
            self.tick_backlog -= tick_secs;
            ticks += 1;
        }
        if self.tick_backlog >= tick_secs {
            self.tick_backlog %= tick_secs;
        }
        if let Some(ping) = session.ping.due(now) {
            outgoing.push(session.encode(&ping, now));
        }
        if let Some(socket) = &self.socket {
            for bytes in &outgoing {
                socket.send(bytes);
            }
        }

        session.rates.frames.add(1.0, now);
        session.predictor.smooth(frame_secs as f32);
        self.room_frame = session.interp.frame(now, frame_secs).unwrap_or_default();
        let followed = self
            .follow
            .and_then(|id| self.room_frame.players.iter().find(|p| p.id == id));
        let (me, my_pos, my_aim, my_alive) = if self.spectate {
            self.my_drawn = None;
            (
                self.follow.unwrap_or(PlayerId(0)),
                followed.map(|p| p.pos),
                followed.map_or(0.0, |p| p.aim),
                followed.is_none_or(|p| p.alive),
            )
        } else {
            self.my_drawn = session
                .predictor
                .drawn_position((self.tick_backlog / tick_secs) as f32);
            (
                session.me(),
                self.my_drawn,
                self.aim,
                session.predictor.is_alive(),
            )
        };
        forget_old_effects(&mut self.effects, now);
        self.renderer.draw(&Scene {
            map: session.map(),
            me,
            my_pos,
            my_aim,
            my_alive,
            players: &self.room_frame.players,
            projectiles: &self.room_frame.projectiles,
            roster: &session.view.roster,
            effects: &self.effects,
            now,
        });

        self.hud
            .scoreboard(&session.view.roster, session.view.snapshot.as_ref(), me);
        self.results
            .clock(session.view.snapshot.as_ref(), session.view.tick_hz);
        self.results
            .results(session.view.results.as_ref(), session.view.saved_match);
        self.hud.expire(now);
        self.hud.link(Link::Up {
            rtt_ms: session.ping.rtt_ms,
        });
        if self.hud.netgraph_open() && now - self.netgraph_at >= NETGRAPH_EVERY_SECS {
            self.netgraph_at = now;
            let rates = &mut session.rates;
            let stats = session.predictor.stats;
            let text = format!(
                "fps        {:>6.0}\nsnapshots  {:>6.1}/s\ndown       {:>6.1} kbps\nup         {:>6.1} kbps\ninterp     {:>6.0} ms\nunderruns  {:>6}\nmispredict {:>6}\ncorrection {:>6.2} max\nping       {:>6}",
                rates.frames.per_second(now),
                rates.snapshots.per_second(now),
                rates.down_bytes.per_second(now) * 8.0 / 1000.0,
                rates.up_bytes.per_second(now) * 8.0 / 1000.0,
                session.interp.delay() * 1e3,
                session.interp.underruns,
                stats.mispredictions,
                stats.max_correction,
                session
                    .ping
                    .rtt_ms
                    .map_or_else(|| "-".to_owned(), |rtt| format!("{rtt:.0} ms")),
            );
            self.hud.netgraph(&text);
        }
    }
}
