//! What the player is doing with keyboard and mouse, kept current by event listeners and
//! read once per tick. Keys are matched by physical position (`code`), so WASD works on
//! any keyboard layout; the arrow keys move too.

use std::cell::RefCell;
use std::rc::Rc;

use shared::game::buttons;
use web_sys::{HtmlCanvasElement, KeyboardEvent, MouseEvent};

use super::dom::{listen, window};

#[derive(Debug, Default)]
pub struct Controls {
    held: u8,
    firing: bool,
    /// Mouse position in CSS pixels from the canvas's top-left corner.
    pub mouse: (f32, f32),
    /// While the chat box is open, keys type text instead of moving.
    pub typing: bool,
}

impl Controls {
    /// The buttons to send this tick.
    pub fn buttons(&self) -> u8 {
        let fire = if self.firing { buttons::FIRE } else { 0 };
        self.held | fire
    }

    /// Lets go of everything, as when the page loses focus and the key-ups would be missed.
    pub fn release_all(&mut self) {
        self.held = 0;
        self.firing = false;
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

/// Starts tracking the keyboard on the window and the mouse on `canvas`.
pub fn track(canvas: &HtmlCanvasElement) -> Rc<RefCell<Controls>> {
    let controls = Rc::new(RefCell::new(Controls::default()));
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
            controls.borrow_mut().mouse = (event.offset_x() as f32, event.offset_y() as f32);
        });
    }
    {
        let controls = controls.clone();
        listen(canvas, "mousedown", move |event: MouseEvent| {
            if event.button() == 0 {
                let mut controls = controls.borrow_mut();
                controls.firing = true;
                controls.mouse = (event.offset_x() as f32, event.offset_y() as f32);
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
