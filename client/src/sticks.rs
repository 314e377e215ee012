//! Virtual sticks for touch screens, as plain geometry: how far a thumb has pushed a
//! stick from where it landed becomes the buttons a keyboard would hold, or an aim.
//! Platform-free, so it is tested natively; the browser shell feeds it touches.

use shared::game::buttons;

/// A stick pushed less than this far, in CSS pixels, is at rest: a thumb never lands
/// perfectly still.
pub const DEAD_ZONE_PX: f32 = 12.0;
/// How far a stick's knob travels, in CSS pixels; a thumb further out pushes no harder.
pub const THROW_PX: f32 = 56.0;

/// `sin(22.5°)`: past this share of the push, an axis counts. Eight equal sectors, so a
/// thumb moves the player in the nearest of the eight directions the keys give.
const AXIS_SHARE: f32 = 0.382_683_43;

/// The movement buttons for a stick pushed by `(dx, dy)` (screen axes, y down).
pub fn move_buttons(dx: f32, dy: f32) -> u8 {
    let push = dx.hypot(dy);
    if push < DEAD_ZONE_PX {
        return 0;
    }
    let cut = AXIS_SHARE * push;
    let mut held = 0;
    if dx > cut {
        held |= buttons::RIGHT;
    }
    if dx < -cut {
        held |= buttons::LEFT;
    }
    if dy > cut {
        held |= buttons::DOWN;
    }
    if dy < -cut {
        held |= buttons::UP;
    }
    held
}

/// The aim (radians, as the game measures it) of a stick pushed by `(dx, dy)`, or
/// `None` while it is at rest. The world's axes are the screen's, so no turn is needed.
pub fn aim(dx: f32, dy: f32) -> Option<f32> {
    (dx.hypot(dy) >= DEAD_ZONE_PX).then(|| dy.atan2(dx))
}

/// Where the knob is drawn: the push, held within the stick's throw.
pub fn knob(dx: f32, dy: f32) -> (f32, f32) {
    let push = dx.hypot(dy);
    if push <= THROW_PX {
        (dx, dy)
    } else {
        (dx * THROW_PX / push, dy * THROW_PX / push)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_push_is_no_push() {
        assert_eq!(move_buttons(5.0, -7.0), 0);
        assert_eq!(aim(5.0, -7.0), None);
    }

    #[test]
    fn pushes_map_to_the_nearest_of_eight_directions() {
        assert_eq!(move_buttons(40.0, 0.0), buttons::RIGHT);
        assert_eq!(move_buttons(-40.0, 3.0), buttons::LEFT);
        assert_eq!(move_buttons(0.0, -40.0), buttons::UP);
        assert_eq!(move_buttons(2.0, 40.0), buttons::DOWN);
        assert_eq!(move_buttons(30.0, 30.0), buttons::RIGHT | buttons::DOWN);
        assert_eq!(move_buttons(-30.0, -28.0), buttons::LEFT | buttons::UP);
        // 20° below the horizontal is still straight right; 25° is diagonal.
        let at = |degrees: f32| {
            let radians = degrees.to_radians();
            move_buttons(50.0 * radians.cos(), 50.0 * radians.sin())
        };
        assert_eq!(at(20.0), buttons::RIGHT);
        assert_eq!(at(25.0), buttons::RIGHT | buttons::DOWN);
    }

    #[test]
    fn the_aim_points_where_the_stick_is_pushed() {
        let right = aim(30.0, 0.0).expect("pushed");
        assert!(right.abs() < 1e-6);
        let down = aim(0.0, 30.0).expect("pushed");
        assert!(
            (down - std::f32::consts::FRAC_PI_2).abs() < 1e-6,
            "y grows downwards"
        );
    }

    #[test]
    fn the_knob_stays_within_its_throw() {
        assert_eq!(knob(10.0, 0.0), (10.0, 0.0));
        let (x, y) = knob(300.0, 400.0);
        assert!((x.hypot(y) - THROW_PX).abs() < 1e-3);
        assert!((y / x - 4.0 / 3.0).abs() < 1e-5, "in the same direction");
    }
}
