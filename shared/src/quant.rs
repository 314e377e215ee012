//! The one quantize and dequantize for each value that goes on the wire in snapshots.
//! Server and clients call these same functions, so they agree on every grid step.

use glam::Vec2;

/// Position grid steps per world unit: 1/8 unit is far below a pixel at any zoom we draw.
pub const POS_STEPS_PER_UNIT: f32 = 8.0;
/// Largest arena side the position grid covers (u16 steps).
pub const MAX_ARENA_SIDE: f32 = u16::MAX as f32 / POS_STEPS_PER_UNIT;
/// Velocity grid steps per unit per second.
pub const VEL_STEPS_PER_UNIT: f32 = 16.0;

pub fn quantize_pos(pos: Vec2) -> [u16; 2] {
    let q = |v: f32| (v * POS_STEPS_PER_UNIT).round().clamp(0.0, u16::MAX as f32) as u16;
    [q(pos.x), q(pos.y)]
}

pub fn dequantize_pos(q: [u16; 2]) -> Vec2 {
    Vec2::new(f32::from(q[0]), f32::from(q[1])) / POS_STEPS_PER_UNIT
}

pub fn quantize_vel(vel: Vec2) -> [i16; 2] {
    let q = |v: f32| {
        (v * VEL_STEPS_PER_UNIT)
            .round()
            .clamp(i16::MIN as f32, i16::MAX as f32) as i16
    };
    [q(vel.x), q(vel.y)]
}

pub fn dequantize_vel(q: [i16; 2]) -> Vec2 {
    Vec2::new(f32::from(q[0]), f32::from(q[1])) / VEL_STEPS_PER_UNIT
}

fn turns(angle: f32) -> f32 {
    (angle / core::f32::consts::TAU).rem_euclid(1.0)
}

/// An aim angle in 256 steps (1.4 degrees): enough to draw where a player looks.
pub fn quantize_aim(angle: f32) -> u8 {
    (turns(angle) * 256.0).round() as u32 as u8
}

pub fn dequantize_aim(q: u8) -> f32 {
    wrap_angle(f32::from(q) / 256.0 * core::f32::consts::TAU)
}

/// A direction in 65536 steps, for projectiles whose path must match the server's.
pub fn quantize_direction(angle: f32) -> u16 {
    (turns(angle) * 65536.0).round() as u32 as u16
}

pub fn dequantize_direction(q: u16) -> f32 {
    wrap_angle(f32::from(q) / 65536.0 * core::f32::consts::TAU)
}

/// Wraps an angle into (-pi, pi].
pub fn wrap_angle(angle: f32) -> f32 {
    let tau = core::f32::consts::TAU;
    let mut wrapped = angle % tau;
    if wrapped > core::f32::consts::PI {
        wrapped -= tau;
    } else if wrapped <= -core::f32::consts::PI {
        wrapped += tau;
    }
    wrapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_within_half_a_step() {
        for pos in [
            Vec2::new(0.0, 0.0),
            Vec2::new(1234.567, 2399.99),
            Vec2::new(0.06, 8000.0),
        ] {
            let back = dequantize_pos(quantize_pos(pos));
            assert!(
                (back - pos).abs().max_element() <= 0.5 / POS_STEPS_PER_UNIT,
                "{pos} -> {back}"
            );
        }
    }

    #[test]
    fn quantized_positions_are_fixed_points() {
        let q = quantize_pos(Vec2::new(100.3, 7.77));
        assert_eq!(quantize_pos(dequantize_pos(q)), q);
    }

    #[test]
    fn angles_wrap_and_round_trip() {
        let pi = core::f32::consts::PI;
        for angle in [0.0, 1.0, -1.0, pi, -pi + 0.01, 3.0 * pi] {
            let back = dequantize_aim(quantize_aim(angle));
            let err = wrap_angle(back - angle).abs();
            assert!(
                err <= core::f32::consts::TAU / 512.0 + 1e-6,
                "{angle} -> {back}"
            );
            let fine = dequantize_direction(quantize_direction(angle));
            assert!(wrap_angle(fine - angle).abs() < 1e-4, "{angle} -> {fine}");
        }
    }

    #[test]
    fn velocities_round_trip_and_saturate() {
        let v = Vec2::new(-300.03, 12.5);
        assert!(
            (dequantize_vel(quantize_vel(v)) - v).abs().max_element() <= 0.5 / VEL_STEPS_PER_UNIT
        );
        assert_eq!(quantize_vel(Vec2::new(1e9, -1e9)), [i16::MAX, i16::MIN]);
    }
}
