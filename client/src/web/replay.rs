//! The replay viewer (`/replay/{id}`, which the server sends to `/?replay=ID`): the
//! match's file read once through `shared::replay::decode`, drawn by the game's own
//! renderer, with play and pause, seeking by keyframe, speeds and following a player.

use std::cell::RefCell;
use std::rc::Rc;

use crate::core::Roster;
use shared::PlayerId;
use shared::replay::{Replay, decode};
use shared::view::Snapshot;
use wasm_bindgen::{JsCast, closure::Closure};
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{Element, HtmlCanvasElement, HtmlElement, HtmlInputElement, MouseEvent, Response};

use super::dom::{by_id, document, listen, now_secs, show, window};
use super::render::{Renderer, Scene};

/// The speeds offered, in the order of the page's `replay-speed-N` buttons; 1 is real time.
const SPEEDS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];

/// Opens the viewer on match `id` (digits, checked here before any request).
pub fn show_replay(id: String) {
    show(&by_id::<HtmlElement>("replay-page"), true);
    let status: HtmlElement = by_id("replay-status");
    if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        status.set_text_content(Some("This address names no replay."));
        return;
    }
    spawn_local(async move {
        match fetch_bytes(&format!("/api/matches/{id}/replay")).await {
            Ok(bytes) => start(&id, &bytes, &status),
            Err(text) => status.set_text_content(Some(text)),
        }
    });
}

async fn fetch_bytes(path: &str) -> Result<Vec<u8>, &'static str> {
    let response: Response = JsFuture::from(window().fetch_with_str(path))
        .await
        .ok()
        .and_then(|response| response.dyn_into().ok())
        .ok_or("The server cannot be reached; try again soon.")?;
    match response.status() {
        200 => {}
        404 => return Err("The server keeps no replay of this match."),
        _ => return Err("The replay cannot be read right now; try again soon."),
    }
    let buffer = response
        .array_buffer()
        .map_err(|_| "The replay cannot be read right now.")?;
    let buffer = JsFuture::from(buffer)
        .await
        .map_err(|_| "The replay did not arrive whole; try again.")?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

fn start(id: &str, bytes: &[u8], status: &HtmlElement) {
    let replay = match decode(bytes) {
        Ok(replay) if !replay.states.is_empty() => replay,
        Ok(_) | Err(_) => {
            status.set_text_content(Some("This replay is damaged before its first frame."));
            return;
        }
    };
    document().set_title(&format!("Replay of match {id} · Skirmish"));
    match &replay.damage {
        // Plays up to the damage, and says so.
        Some(damage) => status.set_text_content(Some(&format!(
            "This replay is damaged ({damage}); it plays up to there."
        ))),
        None => show(status, false),
    }
    let Ok(renderer) = Renderer::new(by_id::<HtmlCanvasElement>("replay-canvas")) else {
        status.set_text_content(Some("This browser cannot draw the arena."));
        return;
    };
    let seek: HtmlInputElement = by_id("replay-seek");
    seek.set_max(&(replay.states.len() - 1).to_string());
    let viewer = Rc::new(RefCell::new(Viewer {
        dt: shared::consts::tick_dt(replay.header.tick_hz),
        replay,
        renderer,
        roster: (usize::MAX, Roster::default()),
        position: 0.0,
        playing: true,
        speed: 1.0,
        follow: None,
        last_frame: now_secs(),
    }));
    wire_controls(&viewer);
    viewer.borrow_mut().show_speed();
    run_frames(viewer);
}

/// Everything the viewer keeps between frames.
struct Viewer {
    replay: Replay,
    renderer: Renderer,
    /// The roster in force, with the index in `Replay::rosters` it came from.
    roster: (usize, Roster),
    /// Where playback is, in frames (fractions between them are interpolated).
    position: f64,
    playing: bool,
    speed: f64,
    follow: Option<PlayerId>,
    dt: f32,
    last_frame: f64,
}

impl Viewer {
    fn last_idx(&self) -> usize {
        self.replay.states.len() - 1
    }

    fn frame(&mut self, now: f64) {
        let elapsed = (now - self.last_frame).clamp(0.0, 0.25);
        self.last_frame = now;
        if self.playing {
            self.position += elapsed * f64::from(self.replay.header.snapshot_hz) * self.speed;
            if self.position >= self.last_idx() as f64 {
                self.position = self.last_idx() as f64;
                self.set_playing(false);
            }
        }
        let idx = self.position.floor() as usize;
        let fraction = (self.position - idx as f64) as f32;
        let snapshot = self.interpolated(idx, fraction);
        self.refresh_roster(idx);
        if self
            .follow
            .is_some_and(|id| !snapshot.players.iter().any(|p| p.id == id))
        {
            self.follow = None;
            self.show_following();
        }
        let followed = self
            .follow
            .and_then(|id| snapshot.players.iter().find(|p| p.id == id && p.alive));
        let scene = Scene {
            map: &self.replay.header.map,
            me: self.follow.unwrap_or(PlayerId(0)),
            my_pos: followed.map(|p| p.pos),
            my_aim: followed.map_or(0.0, |p| p.aim),
            my_alive: true,
            players: &snapshot.players,
            projectiles: &snapshot.projectiles,
            roster: &self.roster.1,
            effects: &[],
            now,
        };
        self.renderer.draw(&scene);
        self.show_time(idx);
    }

    /// The state `fraction` of the way from frame `idx` to the next: players in both
    /// glide between them, as a live page draws them between snapshots.
    fn interpolated(&self, idx: usize, fraction: f32) -> Snapshot {
        let states = &self.replay.states;
        let mut snapshot = states[idx].to_snapshot(self.dt);
        let Some(next) = states.get(idx + 1) else {
            return snapshot;
        };
        let next = next.to_snapshot(self.dt);
        for player in &mut snapshot.players {
            if let Some(later) = next.players.iter().find(|p| p.id == player.id)
                && player.alive
                && later.alive
            {
                player.pos = player.pos.lerp(later.pos, fraction);
            }
        }
        for projectile in &mut snapshot.projectiles {
            projectile.pos += projectile.vel * fraction * self.frame_secs();
        }
        snapshot
    }

    fn frame_secs(&self) -> f32 {
        1.0 / f32::from(self.replay.header.snapshot_hz.max(1))
    }

    fn refresh_roster(&mut self, idx: usize) {
        let in_force = self
            .replay
            .rosters
            .partition_point(|(from, _)| *from <= idx);
        if in_force != self.roster.0 {
            let names = self.replay.roster_at(idx);
            self.roster = (
                in_force,
                Roster::of(names.iter().map(|entry| (entry.id, entry.name.as_str()))),
            );
        }
    }

    /// Seeks to the keyframe at or before frame `target`: where the file's index says
    /// a whole state starts.
    fn seek(&mut self, target: usize) {
        let target = target.min(self.last_idx());
        self.position = self.replay.keyframe_before(target).unwrap_or(0) as f64;
    }

    fn set_playing(&mut self, playing: bool) {
        self.playing = playing;
        by_id::<HtmlElement>("replay-play").set_text_content(Some(if playing {
            "Pause"
        } else {
            "Play"
        }));
    }

    fn toggle_playing(&mut self) {
        if !self.playing && self.position >= self.last_idx() as f64 {
            self.position = 0.0;
        }
        self.set_playing(!self.playing);
    }

    /// Follows the next player by id after the one followed, then the whole arena.
    fn follow_next(&mut self) {
        let idx = self.position.floor() as usize;
        let ids: Vec<PlayerId> = self.replay.states[idx]
            .players
            .iter()
            .map(|p| p.id)
            .collect();
        self.follow = match self.follow {
            None => ids.first().copied(),
            Some(current) => ids.iter().copied().find(|id| *id > current),
        };
        self.show_following();
    }

    fn show_following(&self) {
        let text = match self.follow {
            Some(id) => format!("following {}", self.roster.1.name(id).unwrap_or("a player")),
            None => "the whole arena".to_owned(),
        };
        by_id::<HtmlElement>("replay-following").set_text_content(Some(&text));
    }

    fn show_speed(&self) {
        for (speed_idx, speed) in SPEEDS.iter().enumerate() {
            let button: Element = by_id(&format!("replay-speed-{speed_idx}"));
            let pressed = *speed == self.speed;
            let _ = button.set_attribute("aria-pressed", &pressed.to_string());
        }
    }

    fn show_time(&self, idx: usize) {
        let seek: HtmlInputElement = by_id("replay-seek");
        seek.set_value(&idx.to_string());
        let secs = |frame: usize| frame as f64 / f64::from(self.replay.header.snapshot_hz.max(1));
        by_id::<HtmlElement>("replay-time").set_text_content(Some(&format!(
            "{} / {}",
            clock(secs(idx)),
            clock(secs(self.last_idx()))
        )));
    }
}

fn clock(secs: f64) -> String {
    let whole = secs.max(0.0) as u64;
    format!("{}:{:02}", whole / 60, whole % 60)
}

fn wire_controls(viewer: &Rc<RefCell<Viewer>>) {
    let play = Rc::clone(viewer);
    listen(
        &by_id::<Element>("replay-play"),
        "click",
        move |_: MouseEvent| play.borrow_mut().toggle_playing(),
    );
    let seeking = Rc::clone(viewer);
    listen(
        &by_id::<Element>("replay-seek"),
        "input",
        move |_: web_sys::Event| {
            let seek: HtmlInputElement = by_id("replay-seek");
            if let Ok(target) = seek.value().parse::<usize>() {
                seeking.borrow_mut().seek(target);
            }
        },
    );
    let following = Rc::clone(viewer);
    listen(
        &by_id::<Element>("replay-follow"),
        "click",
        move |_: MouseEvent| following.borrow_mut().follow_next(),
    );
    for (speed_idx, speed) in SPEEDS.into_iter().enumerate() {
        let speeding = Rc::clone(viewer);
        listen(
            &by_id::<Element>(&format!("replay-speed-{speed_idx}")),
            "click",
            move |_: MouseEvent| {
                let mut viewer = speeding.borrow_mut();
                viewer.speed = speed;
                viewer.show_speed();
            },
        );
    }
}

/// Calls `Viewer::frame` on every animation frame.
fn run_frames(viewer: Rc<RefCell<Viewer>>) {
    // The callback re-registers itself, so it holds a shared slot with itself in it.
    type FrameCallback = Closure<dyn FnMut()>;
    let next: Rc<RefCell<Option<FrameCallback>>> = Rc::new(RefCell::new(None));
    let again = next.clone();
    *next.borrow_mut() = Some(Closure::new(move || {
        if let Ok(mut viewer) = viewer.try_borrow_mut() {
            viewer.frame(now_secs());
        }
        if let Some(callback) = again.borrow().as_ref() {
            let _ = window().request_animation_frame(callback.as_ref().unchecked_ref());
        }
    }));
    if let Some(callback) = next.borrow().as_ref() {
        let _ = window().request_animation_frame(callback.as_ref().unchecked_ref());
    }
}
