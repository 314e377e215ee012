//! Frame timing, and `window.skirmishProbe()`: a snapshot of what the page shows (players
//! and projectiles where they are drawn, frame times, prediction and interpolation
//! counters, when the first snapshot came, whether the touch layout is on, whom a
//! spectator follows) as a plain
//! object, so automated browsers can check the game and measure it without reading pixels.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Weak;

use wasm_bindgen::prelude::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use super::app::App;
use super::dom::{document, window};

/// Frames kept for the statistics: ten seconds at 60 Hz.
const FRAMES_KEPT: usize = 600;

/// Time between frames and time spent in each, in milliseconds.
#[derive(Debug, Default)]
pub struct FrameTimes {
    intervals_ms: VecDeque<f64>,
    work_ms: VecDeque<f64>,
}

impl FrameTimes {
    pub fn record(&mut self, interval_ms: f64, work_ms: f64) {
        for (samples, value) in [
            (&mut self.intervals_ms, interval_ms),
            (&mut self.work_ms, work_ms),
        ] {
            samples.push_back(value);
            if samples.len() > FRAMES_KEPT {
                samples.pop_front();
            }
        }
    }
}

#[wasm_bindgen]
extern "C" {
    /// A `Float64Array`, for its `sort`, which orders by value (js-sys binds no typed
    /// array's sort).
    #[wasm_bindgen(extends = js_sys::Float64Array, js_name = Float64Array)]
    type Numbers;

    #[wasm_bindgen(method)]
    fn sort(this: &Numbers) -> Numbers;
}

/// Mean, 95th percentile and maximum of samples.
fn summary(samples: &VecDeque<f64>) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let samples: Vec<f64> = samples.iter().copied().collect();
    // The browser's numeric sort of a typed array: a sort of our own would be another
    // few KiB of the module, for a figure only tests read.
    let numbers: Numbers = js_sys::Float64Array::from(samples.as_slice()).unchecked_into();
    let sorted = numbers.sort().to_vec();
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    let p95 = sorted[((sorted.len() as f64 * 0.95) as usize).min(sorted.len() - 1)];
    (mean, p95, sorted[sorted.len() - 1])
}

fn set(object: &js_sys::Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a plain object cannot fail.
    let _ = js_sys::Reflect::set(object, &JsValue::from_str(key), &value.into());
}

/// Installs `window.skirmishProbe` for the life of the page.
pub fn install(app: Weak<RefCell<App>>) {
    let probe = Closure::<dyn Fn() -> JsValue>::new(move || {
        let Some(app) = app.upgrade() else {
            return JsValue::NULL;
        };
        let Ok(app) = app.try_borrow() else {
            return JsValue::NULL;
        };
        describe(&app).into()
    });
    let _ = js_sys::Reflect::set(
        &window(),
        &JsValue::from_str("skirmishProbe"),
        probe.as_ref(),
    );
    // The probe stays callable until the page unloads.
    probe.forget();
}

fn describe(app: &App) -> js_sys::Object {
    let out = js_sys::Object::new();
    set(&out, "phase", app.phase_name());
    let frames = app.frame_times();
    let (interval_mean, interval_p95, interval_max) = summary(&frames.intervals_ms);
    let (work_mean, work_p95, work_max) = summary(&frames.work_ms);
    let timing = js_sys::Object::new();
    set(&timing, "frames", frames.intervals_ms.len() as f64);
    set(&timing, "intervalMeanMs", interval_mean);
    set(&timing, "intervalP95Ms", interval_p95);
    set(&timing, "intervalMaxMs", interval_max);
    set(&timing, "workMeanMs", work_mean);
    set(&timing, "workP95Ms", work_p95);
    set(&timing, "workMaxMs", work_max);
    set(&out, "timing", timing);
    if let Some(ms) = app.first_snapshot_ms() {
        set(&out, "firstSnapshotMs", ms);
    }
    let touch = document()
        .body()
        .is_some_and(|body| body.class_list().contains("touch"));
    set(&out, "touch", touch);
    let Some(session) = app.session() else {
        return out;
    };
    set(&out, "me", f64::from(session.me().0));
    set(&out, "spectating", app.is_spectating());
    if let Some(id) = app.following() {
        set(
            &out,
            "following",
            session.view.roster.name(id).unwrap_or_default(),
        );
    }
    set(&out, "room", session.view.room.as_str());
    let players = js_sys::Array::new();
    for (id, pos, alive) in app.drawn_players() {
        let player = js_sys::Object::new();
        set(&player, "id", f64::from(id.0));
        let name = session.view.roster.name(id).unwrap_or_default();
        set(&player, "name", name);
        set(&player, "x", f64::from(pos.x));
        set(&player, "y", f64::from(pos.y));
        set(&player, "alive", alive);
        let score = session
            .view
            .snapshot
            .as_ref()
            .and_then(|s| s.players.iter().find(|p| p.id == id))
            .map_or(0, |p| p.score);
        set(&player, "score", f64::from(score));
        set(&player, "away", session.view.roster.is_away(id));
        players.push(&player);
    }
    set(&out, "players", players);
    let projectiles = js_sys::Array::new();
    for shot in app.drawn_projectiles() {
        let projectile = js_sys::Object::new();
        set(&projectile, "owner", f64::from(shot.owner.0));
        set(&projectile, "x", f64::from(shot.pos.x));
        set(&projectile, "y", f64::from(shot.pos.y));
        projectiles.push(&projectile);
    }
    set(&out, "projectiles", projectiles);
    let stats = session.predictor.stats;
    set(&out, "mispredictions", stats.mispredictions as f64);
    set(&out, "corrections", stats.corrections as f64);
    set(&out, "maxCorrection", f64::from(stats.max_correction));
    set(&out, "underruns", session.interp.underruns as f64);
    set(&out, "interpDelayMs", session.interp.delay() * 1e3);
    set(&out, "snapshots", session.view.snapshots_received as f64);
    let announcements = js_sys::Array::new();
    for text in &session.view.announcements {
        announcements.push(&JsValue::from_str(text));
    }
    set(&out, "announcements", announcements);
    if let Some(rtt) = session.ping.rtt_ms {
        set(&out, "rttMs", rtt);
    }
    out
}
