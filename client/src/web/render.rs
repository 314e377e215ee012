//! Draws the room on the canvas: the arena and its walls, projectiles, players with their
//! names and health, and short-lived hit and death effects, seen by a camera that follows
//! the local player. Everything is drawn in CSS pixels; the backing store matches the
//! display's pixel ratio so lines stay sharp.

use std::f64::consts::TAU;

use glam::Vec2;
use shared::consts::tuning::{MAX_HEALTH, PLAYER_RADIUS, PROJECTILE_RADIUS};
use shared::game::world::aim_direction;
use shared::view::{PlayerState, ProjectileState};
use shared::{Map, PlayerId};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use super::dom::window;
use crate::core::Roster;

/// World units visible across the wider side of the window, at least.
const VIEW_WIDTH: f32 = 1600.0;
/// World units visible across the narrower side, at least.
const VIEW_HEIGHT: f32 = 1000.0;
/// Spacing of the floor grid, in world units.
const GRID: f32 = 100.0;
/// How long a hit flash lasts, in seconds.
pub const HIT_FLASH_SECS: f64 = 0.18;
/// How long a death burst lasts, in seconds.
pub const DEATH_BURST_SECS: f64 = 0.6;

/// Something that happened and is drawn for a moment.
#[derive(Clone, Copy, Debug)]
pub enum Effect {
    Hit { target: PlayerId, at: f64 },
    Death { pos: Vec2, at: f64 },
}

/// Everything one frame draws.
#[derive(Debug)]
pub struct Scene<'a> {
    pub map: &'a Map,
    pub me: PlayerId,
    /// The local player as predicted, with its aim; `None` before the first snapshot.
    pub my_pos: Option<Vec2>,
    pub my_aim: f32,
    pub my_alive: bool,
    /// Everyone as interpolated (the local player's entry is replaced by the prediction).
    pub players: &'a [PlayerState],
    pub projectiles: &'a [ProjectileState],
    pub roster: &'a Roster,
    pub effects: &'a [Effect],
    pub now: f64,
}

#[derive(Debug)]
pub struct Renderer {
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    /// Canvas size in CSS pixels.
    size: Vec2,
    scale: f32,
    /// The world point at the centre of the screen.
    camera: Vec2,
}

/// A stable, distinct colour per player.
fn player_hue(id: PlayerId) -> f32 {
    (f32::from(id.0) * 137.508) % 360.0
}

impl Renderer {
    pub fn new(canvas: HtmlCanvasElement) -> Result<Renderer, JsValue> {
        let ctx = canvas
            .get_context("2d")?
            .ok_or_else(|| JsValue::from_str("no 2d canvas context"))?
            .dyn_into::<CanvasRenderingContext2d>()?;
        Ok(Renderer {
            canvas,
            ctx,
            size: Vec2::ONE,
            scale: 1.0,
            camera: Vec2::ZERO,
        })
    }

    /// Matches the backing store to the canvas's size on screen.
    fn fit(&mut self) {
        let ratio = window().device_pixel_ratio().max(1.0);
        let width = self.canvas.client_width().max(1);
        let height = self.canvas.client_height().max(1);
        let backing = (
            (f64::from(width) * ratio).round() as u32,
            (f64::from(height) * ratio).round() as u32,
        );
        if self.canvas.width() != backing.0 || self.canvas.height() != backing.1 {
            self.canvas.set_width(backing.0);
            self.canvas.set_height(backing.1);
        }
        let _ = self.ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
        self.size = Vec2::new(width as f32, height as f32);
        let (wide, narrow) = (self.size.max_element(), self.size.min_element());
        self.scale = (wide / VIEW_WIDTH).max(narrow / VIEW_HEIGHT);
    }

    /// Where a world point is on screen, in CSS pixels.
    pub fn to_screen(&self, world: Vec2) -> Vec2 {
        (world - self.camera) * self.scale + self.size / 2.0
    }

    pub fn draw(&mut self, scene: &Scene) {
        self.fit();
        self.camera = scene.my_pos.unwrap_or(scene.map.size / 2.0);
        let ctx = &self.ctx;
        ctx.set_fill_style_str("#0b0d12");
        ctx.fill_rect(0.0, 0.0, f64::from(self.size.x), f64::from(self.size.y));
        self.draw_floor(scene.map);
        self.draw_walls(scene.map);
        self.draw_projectiles(scene);
        self.draw_effects(scene);
        for player in scene.players {
            if player.id == scene.me {
                if let Some(pos) = scene.my_pos {
                    let mine = PlayerState {
                        pos,
                        aim: scene.my_aim,
                        alive: scene.my_alive,
                        ..*player
                    };
                    self.draw_player(&mine, scene, true);
                }
            } else {
                self.draw_player(player, scene, false);
            }
        }
        let i_was_hit = scene.effects.iter().any(|effect| {
            matches!(*effect, Effect::Hit { target, at }
                if target == scene.me && scene.now - at < HIT_FLASH_SECS)
        });
        if i_was_hit {
            // A red frame around the screen: the player sees being hit even off-centre.
            self.ctx.set_stroke_style_str("#ff6b6b88");
            self.ctx.set_line_width(18.0);
            self.ctx
                .stroke_rect(0.0, 0.0, f64::from(self.size.x), f64::from(self.size.y));
        }
        if scene.my_pos.is_some() && !scene.my_alive {
            self.banner("You were eliminated: respawning…");
        }
    }

    fn draw_floor(&self, map: &Map) {
        let ctx = &self.ctx;
        let top_left = self.to_screen(Vec2::ZERO);
        let extent = map.size * self.scale;
        ctx.set_fill_style_str("#171a21");
        ctx.fill_rect(
            f64::from(top_left.x),
            f64::from(top_left.y),
            f64::from(extent.x),
            f64::from(extent.y),
        );
        // Grid lines only where the screen shows the arena.
        let half_view = self.size / (2.0 * self.scale);
        let lo = (self.camera - half_view).max(Vec2::ZERO);
        let hi = (self.camera + half_view).min(map.size);
        ctx.begin_path();
        let mut x = (lo.x / GRID).ceil() * GRID;
        while x <= hi.x {
            let a = self.to_screen(Vec2::new(x, lo.y));
            let b = self.to_screen(Vec2::new(x, hi.y));
            ctx.move_to(f64::from(a.x), f64::from(a.y));
            ctx.line_to(f64::from(b.x), f64::from(b.y));
            x += GRID;
        }
        let mut y = (lo.y / GRID).ceil() * GRID;
        while y <= hi.y {
            let a = self.to_screen(Vec2::new(lo.x, y));
            let b = self.to_screen(Vec2::new(hi.x, y));
            ctx.move_to(f64::from(a.x), f64::from(a.y));
            ctx.line_to(f64::from(b.x), f64::from(b.y));
            y += GRID;
        }
        ctx.set_stroke_style_str("#222733");
        ctx.set_line_width(1.0);
        ctx.stroke();
        ctx.set_stroke_style_str("#4cc9f055");
        ctx.set_line_width(3.0);
        ctx.stroke_rect(
            f64::from(top_left.x),
            f64::from(top_left.y),
            f64::from(extent.x),
            f64::from(extent.y),
        );
    }

    fn draw_walls(&self, map: &Map) {
        let ctx = &self.ctx;
        ctx.set_fill_style_str("#3a4150");
        ctx.set_stroke_style_str("#5c6679");
        ctx.set_line_width(2.0);
        for wall in &map.walls {
            let a = self.to_screen(wall.min);
            let b = self.to_screen(wall.max);
            if b.x < 0.0 || b.y < 0.0 || a.x > self.size.x || a.y > self.size.y {
                continue;
            }
            let (w, h) = (f64::from(b.x - a.x), f64::from(b.y - a.y));
            ctx.fill_rect(f64::from(a.x), f64::from(a.y), w, h);
            ctx.stroke_rect(f64::from(a.x), f64::from(a.y), w, h);
        }
    }

    fn draw_projectiles(&self, scene: &Scene) {
        let ctx = &self.ctx;
        let radius = f64::from((PROJECTILE_RADIUS * self.scale).max(2.0));
        for projectile in scene.projectiles {
            let at = self.to_screen(projectile.pos);
            let tail = self.to_screen(projectile.pos - projectile.vel * 0.03);
            let colour = if projectile.owner == scene.me {
                "#ffe066"
            } else {
                "#ff922b"
            };
            ctx.set_stroke_style_str(colour);
            ctx.set_line_width(radius);
            ctx.begin_path();
            ctx.move_to(f64::from(tail.x), f64::from(tail.y));
            ctx.line_to(f64::from(at.x), f64::from(at.y));
            ctx.stroke();
            ctx.set_fill_style_str(colour);
            ctx.begin_path();
            let _ = ctx.arc(f64::from(at.x), f64::from(at.y), radius, 0.0, TAU);
            ctx.fill();
        }
    }

    fn draw_effects(&self, scene: &Scene) {
        let ctx = &self.ctx;
        for effect in scene.effects {
            if let Effect::Death { pos, at } = *effect {
                let age = ((scene.now - at) / DEATH_BURST_SECS).clamp(0.0, 1.0);
                let centre = self.to_screen(pos);
                let radius = f64::from(PLAYER_RADIUS * self.scale) * (1.0 + 2.5 * age);
                ctx.set_global_alpha(1.0 - age);
                ctx.set_stroke_style_str("#ff6b6b");
                ctx.set_line_width(4.0);
                ctx.begin_path();
                let _ = ctx.arc(f64::from(centre.x), f64::from(centre.y), radius, 0.0, TAU);
                ctx.stroke();
                ctx.set_global_alpha(1.0);
            }
        }
    }

    fn draw_player(&self, player: &PlayerState, scene: &Scene, is_me: bool) {
        if !player.alive {
            return;
        }
        let ctx = &self.ctx;
        let centre = self.to_screen(player.pos);
        let (cx, cy) = (f64::from(centre.x), f64::from(centre.y));
        let radius = f64::from(PLAYER_RADIUS * self.scale);
        if cx < -radius * 4.0
            || cy < -radius * 4.0
            || cx > f64::from(self.size.x) + radius * 4.0
            || cy > f64::from(self.size.y) + radius * 4.0
        {
            return;
        }
        let hit = scene.effects.iter().any(|effect| {
            matches!(*effect, Effect::Hit { target, at }
                if target == player.id && scene.now - at < HIT_FLASH_SECS)
        });

        // The barrel shows where the player aims, by the direction the game itself takes
        // (libm's, which the module carries anyway, rather than a second sine and cosine).
        let aim = aim_direction(player.aim);
        ctx.set_stroke_style_str("#ced4da");
        ctx.set_line_width(radius * 0.45);
        ctx.begin_path();
        ctx.move_to(cx, cy);
        ctx.line_to(
            cx + f64::from(aim.x) * radius * 1.5,
            cy + f64::from(aim.y) * radius * 1.5,
        );
        ctx.stroke();

        let fill = if hit {
            "#ffffff".to_owned()
        } else if is_me {
            "#4cc9f0".to_owned()
        } else {
            format!("hsl({:.0}, 70%, 62%)", player_hue(player.id))
        };
        ctx.set_fill_style_str(&fill);
        ctx.begin_path();
        let _ = ctx.arc(cx, cy, radius, 0.0, TAU);
        ctx.fill();
        ctx.set_line_width(if is_me { 3.0 } else { 2.0 });
        ctx.set_stroke_style_str(if is_me { "#ffffff" } else { "#0b0d12" });
        ctx.stroke();

        // Health bar and name above the player.
        let bar_width = radius * 2.2;
        let bar_top = cy - radius - 12.0;
        let health = f64::from(player.health) / f64::from(MAX_HEALTH);
        ctx.set_fill_style_str("#00000099");
        ctx.fill_rect(cx - bar_width / 2.0, bar_top, bar_width, 5.0);
        ctx.set_fill_style_str(if health > 0.5 {
            "#51cf66"
        } else if health > 0.25 {
            "#fcc419"
        } else {
            "#ff6b6b"
        });
        ctx.fill_rect(cx - bar_width / 2.0, bar_top, bar_width * health, 5.0);
        let name = scene.roster.name(player.id).unwrap_or("?");
        ctx.set_font("600 13px system-ui, sans-serif");
        ctx.set_text_align("center");
        ctx.set_fill_style_str(if is_me { "#ffffff" } else { "#dee2e6" });
        let _ = ctx.fill_text(name, cx, bar_top - 5.0);
    }

    fn banner(&self, text: &str) {
        let ctx = &self.ctx;
        ctx.set_font("600 22px system-ui, sans-serif");
        ctx.set_text_align("center");
        ctx.set_fill_style_str("#ff6b6b");
        let _ = ctx.fill_text(
            text,
            f64::from(self.size.x / 2.0),
            f64::from(self.size.y * 0.3),
        );
    }
}
