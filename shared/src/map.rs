//! The arena: its size, its walls and its spawn points. Maps are data files in `assets/maps/`;
//! the server loads one and sends it to every client in the welcome.

use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::consts::tuning::PLAYER_RADIUS;

/// An axis-aligned wall. Walls block players and projectiles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wall {
    pub min: Vec2,
    pub max: Vec2,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Map {
    pub name: String,
    /// The arena spans `[0, size.x] x [0, size.y]`; its edges block like walls.
    pub size: Vec2,
    pub walls: Vec<Wall>,
    pub spawns: Vec<Vec2>,
}

/// Why a map file cannot be played on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MapError {
    /// The arena must be at least a few player widths on each side and not absurdly large.
    #[error("arena size {0:?} is out of range")]
    BadSize(Vec2),
    /// A wall is inverted, degenerate, non-finite or outside the arena.
    #[error("wall {0} is degenerate or outside the arena")]
    BadWall(usize),
    /// Players need somewhere to appear.
    #[error("map has no spawn points")]
    NoSpawns,
    /// A spawn point would put a player inside a wall or outside the arena.
    #[error("spawn point {0} is blocked or outside the arena")]
    BadSpawn(usize),
}

impl Wall {
    pub fn contains_circle_center(&self, center: Vec2, radius: f32) -> bool {
        let closest = center.clamp(self.min, self.max);
        closest.distance_squared(center) < radius * radius
    }
}

impl Map {
    /// Checks the invariants the game step relies on.
    pub fn validate(&self) -> Result<(), MapError> {
        let size_ok = self.size.is_finite()
            && self.size.min_element() >= 8.0 * PLAYER_RADIUS
            && self.size.max_element() <= crate::quant::MAX_ARENA_SIDE;
        if !size_ok {
            return Err(MapError::BadSize(self.size));
        }
        for (wall_idx, wall) in self.walls.iter().enumerate() {
            let inside = wall.min.is_finite()
                && wall.max.is_finite()
                && wall.min.cmpge(Vec2::ZERO).all()
                && wall.max.cmple(self.size).all()
                && wall.min.cmplt(wall.max).all();
            if !inside {
                return Err(MapError::BadWall(wall_idx));
            }
        }
        if self.spawns.is_empty() {
            return Err(MapError::NoSpawns);
        }
        for (spawn_idx, &spawn) in self.spawns.iter().enumerate() {
            let in_arena = spawn.is_finite()
                && spawn.cmpge(Vec2::splat(PLAYER_RADIUS)).all()
                && spawn.cmple(self.size - PLAYER_RADIUS).all();
            let blocked = self
                .walls
                .iter()
                .any(|wall| wall.contains_circle_center(spawn, PLAYER_RADIUS));
            if !in_arena || blocked {
                return Err(MapError::BadSpawn(spawn_idx));
            }
        }
        Ok(())
    }

    /// A small open map for tests: a square arena with one wall in the middle.
    pub fn test_arena() -> Map {
        Map {
            name: "test".into(),
            size: Vec2::new(1000.0, 1000.0),
            walls: vec![Wall {
                min: Vec2::new(450.0, 450.0),
                max: Vec2::new(550.0, 550.0),
            }],
            spawns: vec![
                Vec2::new(100.0, 100.0),
                Vec2::new(900.0, 100.0),
                Vec2::new(100.0, 900.0),
                Vec2::new(900.0, 900.0),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_arena_is_valid() {
        assert_eq!(Map::test_arena().validate(), Ok(()));
    }

    #[test]
    fn spawn_inside_wall_is_rejected() {
        let mut map = Map::test_arena();
        map.spawns.push(Vec2::new(500.0, 500.0));
        assert_eq!(map.validate(), Err(MapError::BadSpawn(4)));
    }

    #[test]
    fn inverted_wall_is_rejected() {
        let mut map = Map::test_arena();
        map.walls.push(Wall {
            min: Vec2::new(10.0, 10.0),
            max: Vec2::new(5.0, 20.0),
        });
        assert_eq!(map.validate(), Err(MapError::BadWall(1)));
    }

    #[test]
    fn shipped_arena_map_parses_and_validates() {
        let text = include_str!("../../assets/maps/arena.json");
        let map: Map = serde_json::from_str(text).expect("arena.json should parse as a Map");
        assert_eq!(map.validate(), Ok(()));
        assert!(
            map.size.min_element() >= 2000.0,
            "the arena is a few thousand units a side"
        );
    }
}
