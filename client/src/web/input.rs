//! What the player is doing with keyboard and mouse, or with two virtual sticks on a
//! touch screen, kept current by event listeners and read once per tick. Keys are
//! matched by physical position (`code`), so WASD works on any keyboard layout; the
//! arrow keys move too. On a touch screen a thumb on the left half of the game moves,
//! and one on the right half aims and fires; each stick is centred where its thumb lands.

use std::cell::RefCell;
use std::rc::Rc;

use glam::Vec2;
use shared::game::buttons;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, HtmlElement, KeyboardEvent, MouseEvent, TouchEvent};

use super::dom::{by_id, document, listen, window};
use crate::sticks;

#[derive(Debug, Default)]
pub struct Controls {
    held: u8,
    firing: bool,
    /// Mouse position in CSS pixels from the canvas's top-left corner.
    mouse: (f32, f32),
    /// While the chat box is open, keys type text instead of moving.
    pub typing: bool,
    /// The thumb on the left stick, which moves.
    move_thumb: Option<Thumb>,
    /// The thumb on the right stick, which aims and, pushed, fires.
    aim_thumb: Option<Thumb>,
    /// The last aim came from the stick: the mouse position means nothing, and the aim
    /// stays where the thumb left it.
    aimed_by_touch: bool,
}

/// A thumb on a virtual stick, in CSS pixels: where it landed, and where it is now.
#[derive(Clone, Copy, Debug)]
struct Thumb {
    /// The touch's identifier, which follows one finger from start to end.
    touch: i32,
    origin: (f32, f32),
    at: (f32, f32),
}

impl Thumb {
    fn push(&self) -> (f32, f32) {
        (self.at.0 - self.origin.0, self.at.1 - self.origin.1)
    }
}

impl Controls {
    /// The buttons to send this tick.
    pub fn buttons(&self) -> u8 {
        let stick_moves = self.move_thumb.map_or(0, |thumb| {
            let (dx, dy) = thumb.push();
            sticks::move_buttons(dx, dy)
        });
        let fire = if self.firing || self.stick_aim().is_some() {
            buttons::FIRE
        } else {
            0
        };
        self.held | stick_moves | fire
    }

    /// The aim for this tick, given where the local player is drawn on the canvas: the
    /// aim stick while it is pushed, else towards the mouse. `None` keeps the last aim.
    pub fn aim(&self, me_on_screen: Option<Vec2>) -> Option<f32> {
        if let Some(aim) = self.stick_aim() {
            return Some(aim);
        }
        if self.aimed_by_touch {
            return None;
        }
        let me = me_on_screen?;
        Some((self.mouse.1 - me.y).atan2(self.mouse.0 - me.x))
    }

    fn stick_aim(&self) -> Option<f32> {
        let (dx, dy) = self.aim_thumb?.push();
        sticks::aim(dx, dy)
    }

    /// Lets go of everything, as when the page loses focus and the key-ups would be missed.
    pub fn release_all(&mut self) {
        self.held = 0;
        self.firing = false;
        self.move_thumb = None;
        self.aim_thumb = None;
        show_sticks(self);
    }

    /// Follows the thumbs: a touch that starts on the left half takes the move stick, on
    /// the right half the aim stick, each if free; a lifted finger lets its stick go.
    fn touched(&mut self, kind: &str, event: &TouchEvent) {
        let half_width = window()
            .inner_width()
            .ok()
            .and_then(|width| width.as_f64())
            .unwrap_or(0.0) as f32
            / 2.0;
        let touches = event.changed_touches();
        for idx in 0..touches.length() {
            let Some(touch) = touches.get(idx) else {
                continue;
            };
            let (id, at) = (
                touch.identifier(),
                (touch.client_x() as f32, touch.client_y() as f32),
            );
            let thumb = Thumb {
                touch: id,
                origin: at,
                at,
            };
            let is_this = |slot: &Option<Thumb>| slot.is_some_and(|thumb| thumb.touch == id);
            match kind {
                "touchstart" if at.0 < half_width && self.move_thumb.is_none() => {
                    self.move_thumb = Some(thumb);
                }
                "touchstart" if at.0 >= half_width && self.aim_thumb.is_none() => {
                    self.aim_thumb = Some(thumb);
                    self.aimed_by_touch = true;
                }
                "touchmove" => {
                    for slot in [&mut self.move_thumb, &mut self.aim_thumb] {
                        if let Some(thumb) = slot.as_mut().filter(|thumb| thumb.touch == id) {
                            thumb.at = at;
                        }
                    }
                }
                "touchend" | "touchcancel" => {
                    if is_this(&self.move_thumb) {
                        self.move_thumb = None;
                    }
                    if is_this(&self.aim_thumb) {
                        self.aim_thumb = None;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Lays the page out for touch: the sticks, the chat button, a HUD that leaves the
/// thumbs room. Once on, it stays on for the page.
fn use_touch_layout() {
    if let Some(body) = document().body() {
        let _ = body.class_list().add_1("touch");
    }
}

/// Whether the device's main pointer is a finger, so the sticks show before the first
/// touch. A laptop with a touch screen gets them only once it is touched.
fn touch_first() -> bool {
    window()
        .match_media("(pointer: coarse)")
        .ok()
        .flatten()
        .is_some_and(|query| query.matches())
}

/// Draws each stick where its thumb landed with its knob pushed, or back at rest.
fn show_sticks(controls: &Controls) {
    show_stick("stick-move", controls.move_thumb);
    show_stick("stick-aim", controls.aim_thumb);
}

fn show_stick(id: &str, thumb: Option<Thumb>) {
    let base: HtmlElement = by_id(id);
    let Some(knob) = base
        .first_element_child()
        .and_then(|knob| knob.dyn_into::<HtmlElement>().ok())
    else {
        return;
    };
    let (base_style, knob_style) = (base.style(), knob.style());
    match thumb {
        Some(thumb) => {
            let (dx, dy) = thumb.push();
            let (kx, ky) = sticks::knob(dx, dy);
            let _ = base_style.set_property("left", &format!("{}px", thumb.origin.0));
            let _ = base_style.set_property("top", &format!("{}px", thumb.origin.1));
            let _ = knob_style.set_property("transform", &format!("translate({kx}px, {ky}px)"));
            let _ = base.class_list().add_1("held");
        }
        None => {
            // Back to the resting place the stylesheet gives.
            let _ = base_style.remove_property("left");
            let _ = base_style.remove_property("top");
            let _ = knob_style.remove_property("transform");
            let _ = base.class_list().remove_1("held");
        }
    }
}

fn button_for(event: &KeyboardEvent) -> Option<u8> {
    let code = event.code();
    // Some synthetic or unusual keyboards report no code; their key still says which.
    let code = if code.is_empty() || code == "Unidentified" {
        match event.key().to_ascii_lowercase().as_str() {
            "w" => "KeyW".to_owned(),
            "a" => "KeyA".to_owned(),
            "s" => "KeyS".to_owned(),
            "d" => "KeyD".to_owned(),
            _ => event.key(),
        }
    } else {
        code
    };
    match code.as_str() {
        "KeyW" | "ArrowUp" => Some(buttons::UP),
        "KeyS" | "ArrowDown" => Some(buttons::DOWN),
        "KeyA" | "ArrowLeft" => Some(buttons::LEFT),
        "KeyD" | "ArrowRight" => Some(buttons::RIGHT),
        " " | "Space" => Some(buttons::FIRE),
        _ => None,
    }
}

/// Starts tracking the keyboard on the window, and the mouse and touches on `canvas`.
pub fn track(canvas: &HtmlCanvasElement) -> Rc<RefCell<Controls>> {
    let controls = Rc::new(RefCell::new(Controls::default()));
    if touch_first() {
        use_touch_layout();
    }
    for kind in ["touchstart", "touchmove", "touchend", "touchcancel"] {
        let controls = controls.clone();
        listen(canvas, kind, move |event: TouchEvent| {
            // The page neither scrolls, zooms nor makes mouse events of the touches.
            event.prevent_default();
            if kind == "touchstart" {
                use_touch_layout();
            }
            let mut controls = controls.borrow_mut();
            controls.touched(kind, &event);
            show_sticks(&controls);
        });
    }
    let window = window();
    {
        let controls = controls.clone();
        listen(&window, "keydown", move |event: KeyboardEvent| {
            let mut controls = controls.borrow_mut();
            if controls.typing {
                return;
            }
            if let Some(button) = button_for(&event) {
                controls.held |= button;
                event.prevent_default();
            }
        });
    }
    {
        let controls = controls.clone();
        listen(&window, "keyup", move |event: KeyboardEvent| {
            if let Some(button) = button_for(&event) {
                controls.borrow_mut().held &= !button;
            }
        });
    }
    {
        let controls = controls.clone();
        listen(&window, "blur", move |_: web_sys::FocusEvent| {
            controls.borrow_mut().release_all();
        });
    }
    {
        let controls = controls.clone();
        listen(canvas, "mousemove", move |event: MouseEvent| {
            let mut controls = controls.borrow_mut();
            controls.mouse = (event.offset_x() as f32, event.offset_y() as f32);
            controls.aimed_by_touch = false;
        });
    }
    {
        let controls = controls.clone();
        listen(canvas, "mousedown", move |event: MouseEvent| {
            if event.button() == 0 {
                let mut controls = controls.borrow_mut();
                controls.firing = true;
                controls.mouse = (event.offset_x() as f32, event.offset_y() as f32);
                controls.aimed_by_touch = false;
            }
        });
    }
    {
        let controls = controls.clone();
        listen(&window, "mouseup", move |event: MouseEvent| {
            if event.button() == 0 {
                controls.borrow_mut().firing = false;
            }
        });
    }
    listen(canvas, "contextmenu", |event: MouseEvent| {
        event.prevent_default()
    });
    controls
}
