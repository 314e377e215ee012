//! What a bot does each tick: wander, and aim and fire at the nearest living enemy.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shared::PlayerId;
use shared::game::buttons;
use shared::view::Snapshot;

/// Enemies closer than this are fired at.
const FIRE_RANGE: f32 = 800.0;

#[derive(Debug)]
pub struct Brain {
    rng: SmallRng,
    wander: u8,
    ticks_until_turn: u32,
}

impl Brain {
    pub fn new(seed: u64) -> Brain {
        Brain {
            rng: SmallRng::seed_from_u64(seed),
            wander: 0,
            ticks_until_turn: 0,
        }
    }

    /// The buttons and aim for the next input, from the newest snapshot.
    pub fn decide(&mut self, me: PlayerId, snapshot: Option<&Snapshot>) -> (u8, f32) {
        if self.ticks_until_turn == 0 {
            const DIRECTIONS: [u8; 9] = [
                0,
                buttons::UP,
                buttons::DOWN,
                buttons::LEFT,
                buttons::RIGHT,
                buttons::UP | buttons::LEFT,
                buttons::UP | buttons::RIGHT,
                buttons::DOWN | buttons::LEFT,
                buttons::DOWN | buttons::RIGHT,
            ];
            self.wander = DIRECTIONS[self.rng.random_range(0..DIRECTIONS.len())];
            self.ticks_until_turn = self.rng.random_range(30..150);
        }
        self.ticks_until_turn -= 1;

        let Some(snapshot) = snapshot else {
            return (self.wander, 0.0);
        };
        let Some(my_pos) = snapshot.players.iter().find(|p| p.id == me).map(|p| p.pos) else {
            return (self.wander, 0.0);
        };
        let nearest_enemy = snapshot
            .players
            .iter()
            .filter(|p| p.id != me && p.alive)
            .map(|p| (p.pos - my_pos, p.pos.distance_squared(my_pos)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match nearest_enemy {
            Some((offset, dist_sq)) => {
                let aim = offset.y.atan2(offset.x);
                let fire = if dist_sq < FIRE_RANGE * FIRE_RANGE {
                    buttons::FIRE
                } else {
                    0
                };
                (self.wander | fire, aim)
            }
            None => (self.wander, 0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use glam::Vec2;
    use shared::view::PlayerState;

    use super::*;

    fn at(id: u8, x: f32, y: f32, alive: bool) -> PlayerState {
        PlayerState {
            id: PlayerId(id),
            pos: Vec2::new(x, y),
            vel: Vec2::ZERO,
            aim: 0.0,
            health: 100,
            alive,
            score: 0,
        }
    }

    #[test]
    fn bot_aims_and_fires_at_the_nearest_living_enemy() {
        let snapshot = Snapshot {
            players: vec![
                at(1, 0.0, 0.0, true),
                at(2, 0.0, 100.0, true),
                at(3, 50.0, 0.0, false),
                at(4, -500.0, 0.0, true),
            ],
            ..Snapshot::default()
        };
        let mut brain = Brain::new(7);
        let (held, aim) = brain.decide(PlayerId(1), Some(&snapshot));
        assert_ne!(
            held & buttons::FIRE,
            0,
            "an enemy 100 units away is in range"
        );
        assert!(
            (aim - std::f32::consts::FRAC_PI_2).abs() < 1e-5,
            "aims at player 2 (+y), got {aim}"
        );
    }

    #[test]
    fn bot_holds_fire_with_nobody_in_range() {
        let snapshot = Snapshot {
            players: vec![at(1, 0.0, 0.0, true), at(2, 2000.0, 0.0, true)],
            ..Snapshot::default()
        };
        let (held, _) = Brain::new(1).decide(PlayerId(1), Some(&snapshot));
        assert_eq!(held & buttons::FIRE, 0);
    }
}
