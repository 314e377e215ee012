//! How a player's body moves under one input. The server's world step and the client's
//! prediction both call `step_body`, so a prediction replays exactly what the server did.

use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::consts::tuning::{PLAYER_ACCEL, PLAYER_FRICTION, PLAYER_MAX_SPEED, PLAYER_RADIUS};
use crate::game::collide::resolve_circle_walls;
use crate::game::input::buttons;
use crate::map::Map;

/// The part of a player that input moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Body {
    pub pos: Vec2,
    pub vel: Vec2,
}

/// The unit direction the held keys ask for, or zero. Opposite keys cancel.
pub fn input_direction(held: u8) -> Vec2 {
    let axis = |neg: u8, pos: u8| -> f32 {
        (held & pos != 0) as i8 as f32 - (held & neg != 0) as i8 as f32
    };
    let dir = Vec2::new(
        axis(buttons::LEFT, buttons::RIGHT),
        axis(buttons::UP, buttons::DOWN),
    );
    if dir.x != 0.0 && dir.y != 0.0 {
        dir * core::f32::consts::FRAC_1_SQRT_2
    } else {
        dir
    }
}

/// Advances a body by one input of length `dt`: accelerate towards the held direction,
/// apply friction, cap the speed, move, then resolve walls.
pub fn step_body(body: &mut Body, held: u8, dt: f32, map: &Map) {
    body.vel += input_direction(held) * (PLAYER_ACCEL * dt);
    body.vel *= (1.0 - PLAYER_FRICTION * dt).max(0.0);
    let speed_sq = body.vel.length_squared();
    if speed_sq > PLAYER_MAX_SPEED * PLAYER_MAX_SPEED {
        body.vel *= PLAYER_MAX_SPEED / speed_sq.sqrt();
    } else if speed_sq < 1e-2 {
        // Let a released player come to rest instead of creeping forever.
        body.vel = Vec2::ZERO;
    }
    body.pos += body.vel * dt;
    resolve_circle_walls(&mut body.pos, &mut body.vel, PLAYER_RADIUS, map);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f32 = 1.0 / 60.0;

    fn open_body() -> Body {
        Body {
            pos: Vec2::new(200.0, 200.0),
            vel: Vec2::ZERO,
        }
    }

    #[test]
    fn held_key_accelerates_towards_its_direction() {
        let map = Map::test_arena();
        let mut body = open_body();
        step_body(&mut body, buttons::RIGHT, DT, &map);
        assert!(body.vel.x > 0.0 && body.vel.y == 0.0, "vel {:?}", body.vel);
        assert!(body.pos.x > 200.0);
        let mut up = open_body();
        step_body(&mut up, buttons::UP, DT, &map);
        assert!(up.pos.y < 200.0, "UP moves towards -y (screen up)");
    }

    #[test]
    fn speed_is_capped_and_diagonals_are_not_faster() {
        let map = Map {
            walls: vec![],
            ..Map::test_arena()
        };
        let mut straight = open_body();
        let mut diagonal = open_body();
        for _ in 0..30 {
            step_body(&mut straight, buttons::RIGHT, DT, &map);
            step_body(&mut diagonal, buttons::RIGHT | buttons::DOWN, DT, &map);
        }
        assert!(straight.vel.length() <= PLAYER_MAX_SPEED + 1e-3);
        assert!((diagonal.vel.length() - straight.vel.length()).abs() < 1e-2);
    }

    #[test]
    fn friction_brings_a_released_player_to_rest() {
        let map = Map::test_arena();
        let mut body = open_body();
        for _ in 0..20 {
            step_body(&mut body, buttons::RIGHT, DT, &map);
        }
        for _ in 0..120 {
            step_body(&mut body, 0, DT, &map);
        }
        assert_eq!(body.vel, Vec2::ZERO);
    }

    #[test]
    fn a_wall_stops_a_player_at_its_face() {
        let map = Map::test_arena();
        // The test arena's wall spans x in [450, 550] around y = 500.
        let mut body = Body {
            pos: Vec2::new(380.0, 500.0),
            vel: Vec2::ZERO,
        };
        for _ in 0..120 {
            step_body(&mut body, buttons::RIGHT, DT, &map);
        }
        assert_eq!(body.pos.x, 450.0 - PLAYER_RADIUS);
        assert_eq!(body.vel.x, 0.0);
    }

    #[test]
    fn the_same_inputs_give_bit_identical_results() {
        let map = Map::test_arena();
        let run = || {
            let mut body = open_body();
            for i in 0u32..600 {
                let held = (i.wrapping_mul(2_654_435_761) >> 27) as u8 & buttons::ALL;
                step_body(&mut body, held, DT, &map);
            }
            body
        };
        let (a, b) = (run(), run());
        assert_eq!(
            a.pos.to_array().map(f32::to_bits),
            b.pos.to_array().map(f32::to_bits)
        );
        assert_eq!(
            a.vel.to_array().map(f32::to_bits),
            b.vel.to_array().map(f32::to_bits)
        );
    }
}
