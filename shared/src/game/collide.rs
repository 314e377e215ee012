//! Geometry for walls: pushing circles out of boxes and sweeping points through them.
//! Pure f32 arithmetic (add, mul, sqrt), which IEEE 754 makes identical on every target.

use glam::Vec2;

use crate::map::{Map, Wall};

/// Moves a circle out of every wall it overlaps and back inside the arena, and cancels
/// the velocity that pushed it in. Walls are visited in map order, twice, so corners
/// between two walls settle the same way on every run.
pub fn resolve_circle_walls(pos: &mut Vec2, vel: &mut Vec2, radius: f32, map: &Map) {
    for _pass in 0..2 {
        for wall in &map.walls {
            push_out_of_wall(pos, vel, radius, wall);
        }
    }
    let lo = Vec2::splat(radius);
    let hi = map.size - radius;
    for axis in 0..2 {
        if pos[axis] < lo[axis] {
            pos[axis] = lo[axis];
            vel[axis] = vel[axis].max(0.0);
        } else if pos[axis] > hi[axis] {
            pos[axis] = hi[axis];
            vel[axis] = vel[axis].min(0.0);
        }
    }
}

fn push_out_of_wall(pos: &mut Vec2, vel: &mut Vec2, radius: f32, wall: &Wall) {
    let closest = pos.clamp(wall.min, wall.max);
    let offset = *pos - closest;
    let dist_sq = offset.length_squared();
    if dist_sq >= radius * radius {
        return;
    }
    let normal = if dist_sq > 0.0 {
        let dist = dist_sq.sqrt();
        *pos = closest + offset / dist * radius;
        offset / dist
    } else {
        // The centre is inside the box: leave through the nearest face.
        let to_min = *pos - wall.min;
        let to_max = wall.max - *pos;
        let faces = [to_min.x, to_max.x, to_min.y, to_max.y];
        let mut nearest = 0;
        for face in 1..4 {
            if faces[face] < faces[nearest] {
                nearest = face;
            }
        }
        let (normal, new_pos) = match nearest {
            0 => (Vec2::NEG_X, Vec2::new(wall.min.x - radius, pos.y)),
            1 => (Vec2::X, Vec2::new(wall.max.x + radius, pos.y)),
            2 => (Vec2::NEG_Y, Vec2::new(pos.x, wall.min.y - radius)),
            _ => (Vec2::Y, Vec2::new(pos.x, wall.max.y + radius)),
        };
        *pos = new_pos;
        normal
    };
    let into_wall = vel.dot(normal);
    if into_wall < 0.0 {
        *vel -= normal * into_wall;
    }
}

/// Where along `from + t * delta`, t in [0, 1], a point first enters `wall` grown by
/// `radius` (slab test). `None` if it does not.
pub fn sweep_point_box(from: Vec2, delta: Vec2, wall: &Wall, radius: f32) -> Option<f32> {
    let min = wall.min - radius;
    let max = wall.max + radius;
    let mut t_enter = 0.0f32;
    let mut t_exit = 1.0f32;
    for axis in 0..2 {
        if delta[axis] == 0.0 {
            if from[axis] < min[axis] || from[axis] > max[axis] {
                return None;
            }
        } else {
            let inv = 1.0 / delta[axis];
            let t1 = (min[axis] - from[axis]) * inv;
            let t2 = (max[axis] - from[axis]) * inv;
            t_enter = t_enter.max(t1.min(t2));
            t_exit = t_exit.min(t1.max(t2));
            if t_enter > t_exit {
                return None;
            }
        }
    }
    Some(t_enter)
}

/// Where along `from + t * delta`, t in [0, 1], a point first comes within `radius` of
/// `center`. `None` if it does not.
pub fn sweep_point_circle(from: Vec2, delta: Vec2, center: Vec2, radius: f32) -> Option<f32> {
    let rel = from - center;
    let c = rel.length_squared() - radius * radius;
    if c <= 0.0 {
        return Some(0.0);
    }
    let a = delta.length_squared();
    if a == 0.0 {
        return None;
    }
    let b = rel.dot(delta);
    let disc = b * b - a * c;
    if b >= 0.0 || disc < 0.0 {
        return None;
    }
    let t = (-b - disc.sqrt()) / a;
    (t <= 1.0).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall() -> Wall {
        Wall {
            min: Vec2::new(100.0, 100.0),
            max: Vec2::new(200.0, 200.0),
        }
    }

    #[test]
    fn circle_is_pushed_out_of_wall_face_and_loses_inward_speed() {
        let map = Map {
            walls: vec![wall()],
            ..Map::test_arena()
        };
        let mut pos = Vec2::new(90.0, 150.0);
        let mut vel = Vec2::new(50.0, 10.0);
        resolve_circle_walls(&mut pos, &mut vel, 20.0, &map);
        assert_eq!(pos, Vec2::new(80.0, 150.0));
        assert_eq!(
            vel,
            Vec2::new(0.0, 10.0),
            "only the inward component is cancelled"
        );
    }

    #[test]
    fn circle_is_kept_inside_the_arena() {
        let map = Map::test_arena();
        let mut pos = Vec2::new(-50.0, 2000.0);
        let mut vel = Vec2::new(-5.0, 5.0);
        resolve_circle_walls(&mut pos, &mut vel, 20.0, &map);
        assert_eq!(pos, Vec2::new(20.0, 980.0));
        assert_eq!(vel, Vec2::ZERO);
    }

    #[test]
    fn sweep_hits_the_near_face_of_a_box() {
        let t = sweep_point_box(Vec2::new(0.0, 150.0), Vec2::new(200.0, 0.0), &wall(), 0.0);
        assert_eq!(t, Some(0.5));
        assert_eq!(
            sweep_point_box(Vec2::new(0.0, 0.0), Vec2::new(50.0, 0.0), &wall(), 0.0),
            None
        );
    }

    #[test]
    fn sweep_hits_a_circle_in_its_path_only() {
        let t = sweep_point_circle(
            Vec2::ZERO,
            Vec2::new(100.0, 0.0),
            Vec2::new(60.0, 0.0),
            10.0,
        );
        assert_eq!(t, Some(0.5));
        assert_eq!(
            sweep_point_circle(
                Vec2::ZERO,
                Vec2::new(100.0, 0.0),
                Vec2::new(60.0, 30.0),
                10.0
            ),
            None
        );
        assert_eq!(
            sweep_point_circle(
                Vec2::ZERO,
                Vec2::new(-100.0, 0.0),
                Vec2::new(60.0, 0.0),
                10.0
            ),
            None,
            "moving away never hits"
        );
    }
}
