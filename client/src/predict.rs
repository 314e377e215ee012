//! Prediction of the local player: each input moves it at once with the shared step, and
//! each snapshot re-bases it on the server's state and replays the inputs the server has
//! not applied yet. Small corrections are smoothed on screen; the logic never lags.

use std::collections::VecDeque;

use glam::Vec2;
use shared::game::InputFrame;
use shared::game::movement::{Body, step_body};
use shared::view::PlayerState;
use shared::{Map, Seq};

/// A prediction further than this from the server's state after the same input counts as a
/// misprediction. Above any rounding the wire may apply to positions, far below what a
/// player can see (a player is 40 units wide).
pub const MISPREDICTION_DISTANCE: f32 = 0.5;

/// A correction longer than this is drawn as a jump: gliding across the arena would show the
/// player passing through walls.
const SNAP_DISTANCE: f32 = 64.0;

/// Time constant of the smoothing of a correction, in seconds: after three frames at 60 Hz
/// most of it is gone.
const SMOOTHING_SECS: f32 = 0.05;

/// Inputs kept for replay at most; a server that acknowledges nothing for this long
/// (4 s at 60 Hz) has stopped applying them, and replaying more would only cost time.
const MAX_PENDING: usize = 256;

/// How well prediction agrees with the server.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PredictionStats {
    /// Snapshots that re-based the prediction.
    pub reconciliations: u64,
    /// Snapshots whose state differed from what was predicted for the same input.
    pub mispredictions: u64,
    /// Re-basings that moved the predicted player at all.
    pub corrections: u64,
    /// The longest such move, in world units.
    pub max_correction: f32,
    /// The sum of their lengths, for a mean.
    pub total_correction: f64,
}

/// An input sent but not yet acknowledged, and where it left the predicted body.
#[derive(Clone, Copy, Debug)]
struct Pending {
    input: InputFrame,
    after: Body,
}

#[derive(Debug, Default)]
pub struct Predictor {
    /// Where the local player is after every input sent; `None` until a snapshot shows it.
    body: Option<Body>,
    /// Where it was one input earlier, so frames between ticks can be drawn in between.
    previous_pos: Vec2,
    /// The predicted body after the last acknowledged input, to check the next snapshot.
    acked_body: Option<Body>,
    acked: Seq,
    alive: bool,
    pending: VecDeque<Pending>,
    /// Added to the drawn position so a correction glides instead of jumping; decays to zero.
    visual_offset: Vec2,
    pub stats: PredictionStats,
}

impl Predictor {
    /// Predicts one input. Called once per tick, in sequence order, for every input sent.
    pub fn apply_input(&mut self, input: InputFrame, dt: f32, map: &Map) {
        let mut body = self.body.unwrap_or_default();
        self.previous_pos = body.pos;
        // The server ignores a dead player's inputs, and so does the prediction.
        if self.alive {
            step_body(&mut body, input.buttons, dt, map);
        }
        if self.body.is_some() {
            self.body = Some(body);
        }
        self.pending.push_back(Pending { input, after: body });
        if self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
        }
    }

    /// Re-bases the prediction on a snapshot: the server's state for this player after its
    /// input `ack`, then the inputs after `ack` replayed on top.
    pub fn reconcile(&mut self, server: &PlayerState, ack: Seq, dt: f32, map: &Map) {
        let known = self.body.is_some();
        if known && self.acked.is_after(ack) {
            return;
        }
        let mut predicted_at_ack = self.acked_body.filter(|_| self.acked == ack);
        while let Some(front) = self.pending.front() {
            if front.input.seq.is_after(ack) {
                break;
            }
            predicted_at_ack = Some(front.after);
            self.pending.pop_front();
        }
        // Dying and respawning move a player without input; that is news, not an error.
        let life_changed = self.alive != server.alive;
        self.stats.reconciliations += 1;
        let agreed =
            predicted_at_ack.filter(|p| p.pos.distance(server.pos) <= MISPREDICTION_DISTANCE);
        if known && !life_changed {
            if let Some(predicted) = agreed {
                // The server agrees, up to the grid snapshots are rounded to: keep the
                // prediction's full precision rather than re-base on a rounded state.
                self.acked = ack;
                self.acked_body = Some(predicted);
                return;
            }
            if predicted_at_ack.is_some() {
                self.stats.mispredictions += 1;
            }
        }

        let server_body = Body {
            pos: server.pos,
            vel: server.vel,
        };
        self.alive = server.alive;
        self.acked = ack;
        self.acked_body = Some(server_body);
        let mut body = server_body;
        let mut previous = body.pos;
        for pending in &mut self.pending {
            previous = body.pos;
            if self.alive {
                step_body(&mut body, pending.input.buttons, dt, map);
            }
            pending.after = body;
        }

        match self.body {
            Some(old) if !life_changed => {
                let correction = old.pos - body.pos;
                let moved = correction.length();
                if moved > 0.0 {
                    self.stats.corrections += 1;
                    self.stats.max_correction = self.stats.max_correction.max(moved);
                    self.stats.total_correction += f64::from(moved);
                }
                self.visual_offset += correction;
                if self.visual_offset.length() > SNAP_DISTANCE {
                    self.visual_offset = Vec2::ZERO;
                    self.previous_pos = previous;
                } else {
                    // Shift the last tick's position with the current one, so that with the
                    // offset added the drawn player stays exactly where it was.
                    self.previous_pos -= correction;
                }
            }
            _ => {
                self.visual_offset = Vec2::ZERO;
                self.previous_pos = previous;
            }
        }
        self.body = Some(body);
    }

    /// Lets the on-screen correction fade by one rendered frame of `frame_secs`.
    pub fn smooth(&mut self, frame_secs: f32) {
        self.visual_offset *= (-frame_secs / SMOOTHING_SECS).exp();
        if self.visual_offset.length_squared() < 1e-4 {
            self.visual_offset = Vec2::ZERO;
        }
    }

    /// The predicted position after every input sent, or `None` before the first snapshot.
    pub fn position(&self) -> Option<Vec2> {
        self.body.map(|body| body.pos)
    }

    /// Where to draw the player `alpha` (0 to 1) of the way from the last tick to the
    /// next, with the fading correction added.
    pub fn drawn_position(&self, alpha: f32) -> Option<Vec2> {
        let body = self.body?;
        Some(self.previous_pos.lerp(body.pos, alpha.clamp(0.0, 1.0)) + self.visual_offset)
    }

    pub fn is_alive(&self) -> bool {
        self.alive
    }

    /// Inputs sent that the server has not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use shared::PlayerId;
    use shared::game::buttons;

    use super::*;

    const DT: f32 = 1.0 / 60.0;

    fn input(seq: u32, held: u8) -> InputFrame {
        InputFrame {
            seq: Seq(seq),
            buttons: held,
            aim: 0.0,
            view: None,
        }
    }

    fn state(body: Body, alive: bool) -> PlayerState {
        PlayerState {
            id: PlayerId(1),
            pos: body.pos,
            vel: body.vel,
            aim: 0.0,
            health: 100,
            alive,
            score: 0,
        }
    }

    /// A predictor placed at (200, 200) by a first snapshot acknowledging nothing.
    fn placed() -> (Predictor, Map, Body) {
        let map = Map::test_arena();
        let start = Body {
            pos: Vec2::new(200.0, 200.0),
            vel: Vec2::ZERO,
        };
        let mut predictor = Predictor::default();
        predictor.reconcile(&state(start, true), Seq(0), DT, &map);
        (predictor, map, start)
    }

    #[test]
    fn an_input_moves_the_player_at_once() {
        let (mut predictor, map, start) = placed();
        predictor.apply_input(input(1, buttons::RIGHT), DT, &map);
        let pos = predictor.position().expect("placed");
        assert!(pos.x > start.pos.x, "moved right before any answer: {pos}");
    }

    #[test]
    fn a_server_that_agrees_changes_nothing() {
        let (mut predictor, map, start) = placed();
        let mut server = start;
        for seq in 1..=10 {
            predictor.apply_input(input(seq, buttons::RIGHT | buttons::DOWN), DT, &map);
        }
        for _ in 1..=4 {
            step_body(&mut server, buttons::RIGHT | buttons::DOWN, DT, &map);
        }
        let before = predictor.position();
        predictor.reconcile(&state(server, true), Seq(4), DT, &map);
        assert_eq!(
            predictor.position(),
            before,
            "replaying 6 inputs lands on the same spot"
        );
        assert_eq!(predictor.unacked(), 6);
        assert_eq!(predictor.stats.mispredictions, 0);
        assert_eq!(predictor.stats.corrections, 0);
    }

    #[test]
    fn a_disagreement_is_counted_and_glides_instead_of_jumping() {
        let (mut predictor, map, start) = placed();
        for seq in 1..=3 {
            predictor.apply_input(input(seq, buttons::RIGHT), DT, &map);
        }
        let drawn_before = predictor.drawn_position(1.0).expect("placed");
        let pushed = Body {
            pos: start.pos + Vec2::new(0.0, 10.0),
            ..start
        };
        predictor.reconcile(&state(pushed, true), Seq(3), DT, &map);
        assert_eq!(predictor.stats.mispredictions, 1);
        assert!((predictor.stats.max_correction - drawn_before.distance(pushed.pos)).abs() < 1e-3);
        let drawn_after = predictor.drawn_position(1.0).expect("placed");
        assert!(drawn_after.distance(drawn_before) < 1e-3, "no visible jump");
        for _ in 0..30 {
            predictor.smooth(DT);
        }
        let settled = predictor.drawn_position(1.0).expect("placed");
        assert!(
            settled.distance(pushed.pos) < 0.01,
            "the correction fades out: {settled}"
        );
    }

    #[test]
    fn death_and_respawn_re_base_without_counting() {
        let (mut predictor, map, start) = placed();
        predictor.apply_input(input(1, buttons::LEFT), DT, &map);
        predictor.reconcile(&state(start, false), Seq(1), DT, &map);
        predictor.apply_input(input(2, buttons::LEFT), DT, &map);
        assert_eq!(
            predictor.position(),
            Some(start.pos),
            "the dead do not move"
        );
        let respawned = Body {
            pos: Vec2::new(900.0, 900.0),
            vel: Vec2::ZERO,
        };
        predictor.reconcile(&state(respawned, true), Seq(2), DT, &map);
        assert_eq!(predictor.position(), Some(respawned.pos));
        assert_eq!(
            predictor.drawn_position(1.0),
            Some(respawned.pos),
            "drawn there at once"
        );
        assert_eq!(predictor.stats.mispredictions, 0);
    }
}
