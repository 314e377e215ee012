//! Interpolation of everything the client does not predict: the room is drawn slightly in
//! the past, between the two buffered snapshots that bracket the render time. The delay
//! adapts to the measured snapshot interval and its jitter.

use std::collections::VecDeque;

use shared::Tick;
use shared::game::ViewTime;
use shared::view::{PlayerState, ProjectileState, Snapshot};

/// Snapshots kept at most (two seconds at 30 Hz): the render time never lags further.
const MAX_BUFFERED: usize = 64;

/// Weight of each new inter-arrival sample in the running mean interval.
const INTERVAL_WEIGHT: f64 = 0.1;

/// Per-snapshot decay of the jitter peak: a spike is forgotten over a few seconds.
const JITTER_DECAY: f64 = 0.98;

/// Per-snapshot pull of the clock offset towards a later arrival. The offset drops at once to
/// an early arrival and creeps up slowly, so it follows the fastest deliveries.
const OFFSET_CREEP: f64 = 0.01;

/// The render clock runs at most this much faster or slower than real time to close a gap
/// to its target, so the catch-up is not visible.
const MAX_CLOCK_SKEW: f64 = 0.1;

/// A gap to the target beyond this, in seconds, is closed at once (after a stall or a
/// hidden tab).
const CLOCK_SNAP_SECS: f64 = 0.25;

/// A player who moved further than this between two snapshots was teleported (a respawn),
/// and is not drawn sliding across the map.
const TELEPORT_DISTANCE: f32 = 150.0;

/// The room as it is drawn at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomFrame {
    pub players: Vec<PlayerState>,
    pub projectiles: Vec<ProjectileState>,
}

#[derive(Debug)]
pub struct Interpolator {
    tick_hz: f64,
    /// Oldest first; ticks strictly increase.
    snapshots: VecDeque<Snapshot>,
    /// The tick that server time 0 refers to, so times stay small and survive tick wrap.
    base_tick: Option<Tick>,
    /// Local arrival time minus server time of the fastest recent delivery, in seconds.
    clock_offset: Option<f64>,
    last_arrival: Option<f64>,
    /// Running mean time between snapshot arrivals, in seconds.
    interval: f64,
    /// Recent peak deviation of an arrival interval from the mean, in seconds.
    jitter: f64,
    /// The server time being drawn, in seconds.
    render_time: Option<f64>,
    /// Set while the render time is past the newest snapshot.
    starving: bool,
    /// Where between which snapshots the last frame was drawn: what a shot fired now
    /// was aimed at.
    drawn: Option<ViewTime>,
    /// Times the render time ran past the newest snapshot: there was nothing to draw towards.
    pub underruns: u64,
}

impl Interpolator {
    pub fn new(tick_hz: u16, snapshot_hz: u16) -> Interpolator {
        Interpolator {
            tick_hz: f64::from(tick_hz.max(1)),
            snapshots: VecDeque::new(),
            base_tick: None,
            clock_offset: None,
            last_arrival: None,
            interval: 1.0 / f64::from(snapshot_hz.max(1)),
            jitter: 0.0,
            render_time: None,
            starving: false,
            drawn: None,
            underruns: 0,
        }
    }

    fn server_time(&self, tick: Tick) -> f64 {
        let base = self.base_tick.unwrap_or(tick);
        f64::from(tick.since(base)) / self.tick_hz
    }

    /// Buffers a snapshot that arrived at local time `now` (seconds).
    pub fn push(&mut self, snapshot: Snapshot, now: f64) {
        if let Some(newest) = self.snapshots.back()
            && snapshot.tick.since(newest.tick) <= 0
        {
            return;
        }
        if let Some(last) = self.last_arrival {
            let gap = now - last;
            self.interval += (gap - self.interval) * INTERVAL_WEIGHT;
            self.jitter = (self.jitter * JITTER_DECAY).max((gap - self.interval).abs());
        }
        self.last_arrival = Some(now);
        self.base_tick.get_or_insert(snapshot.tick);
        let sample = now - self.server_time(snapshot.tick);
        self.clock_offset = Some(match self.clock_offset {
            Some(offset) if sample > offset => offset + (sample - offset) * OFFSET_CREEP,
            _ => sample,
        });
        self.snapshots.push_back(snapshot);
        if self.snapshots.len() > MAX_BUFFERED {
            self.snapshots.pop_front();
        }
    }

    /// How far in the past the room is drawn: two snapshot intervals plus the jitter.
    pub fn delay(&self) -> f64 {
        2.0 * self.interval + self.jitter
    }

    /// The moment of the room the last frame showed, for the server to judge a shot
    /// against; `None` before the first frame.
    pub fn drawn(&self) -> Option<ViewTime> {
        self.drawn
    }

    /// Forgets every buffered snapshot but the newest and restarts the render clock, so a
    /// page that was hidden shows the present at once instead of replaying the past.
    pub fn snap_to_newest(&mut self) {
        while self.snapshots.len() > 1 {
            self.snapshots.pop_front();
        }
        self.render_time = None;
        self.last_arrival = None;
        self.clock_offset = None;
        self.starving = false;
    }

    /// Advances the render clock to local time `now`, `frame_secs` after the last frame,
    /// and returns the room at the render time. `None` before the first snapshot.
    pub fn frame(&mut self, now: f64, frame_secs: f64) -> Option<RoomFrame> {
        let offset = self.clock_offset?;
        let target = now - offset - self.delay();
        let render_time = match self.render_time {
            Some(time) if (target - time).abs() <= CLOCK_SNAP_SECS => {
                let skew = ((target - time) / CLOCK_SNAP_SECS).clamp(-1.0, 1.0) * MAX_CLOCK_SKEW;
                time + frame_secs * (1.0 + skew)
            }
            _ => target,
        };
        self.render_time = Some(render_time);
        Some(self.sample(render_time))
    }

    fn sample(&mut self, render_time: f64) -> RoomFrame {
        // Drop snapshots that no longer bracket anything: keep the last one at or before
        // the render time.
        while self.snapshots.len() > 1 && self.server_time(self.snapshots[1].tick) <= render_time {
            self.snapshots.pop_front();
        }
        let (Some(older), newer) = (self.snapshots.front(), self.snapshots.get(1)) else {
            return RoomFrame::default();
        };
        let older_time = self.server_time(older.tick);
        let Some(newer) = newer else {
            self.drawn = Some(ViewTime::between(older.tick, older.tick, 0.0));
            if render_time > older_time && !self.starving {
                self.starving = true;
                self.underruns += 1;
            }
            return RoomFrame {
                players: older.players.clone(),
                projectiles: older.projectiles.clone(),
            };
        };
        self.starving = false;
        let span = self.server_time(newer.tick) - older_time;
        let t = ((render_time - older_time) / span).clamp(0.0, 1.0) as f32;
        self.drawn = Some(ViewTime::between(older.tick, newer.tick, t));
        RoomFrame {
            players: newer
                .players
                .iter()
                .map(|to| match older.players.iter().find(|p| p.id == to.id) {
                    Some(from) => lerp_player(from, to, t),
                    None => *to,
                })
                .collect(),
            projectiles: newer
                .projectiles
                .iter()
                .filter_map(|to| {
                    let from = older.projectiles.iter().find(|p| p.id == to.id)?;
                    Some(ProjectileState {
                        pos: from.pos.lerp(to.pos, t),
                        ..*to
                    })
                })
                .collect(),
        }
    }
}

fn lerp_player(from: &PlayerState, to: &PlayerState, t: f32) -> PlayerState {
    if from.alive != to.alive || from.pos.distance(to.pos) > TELEPORT_DISTANCE {
        return *to;
    }
    PlayerState {
        pos: from.pos.lerp(to.pos, t),
        vel: from.vel.lerp(to.vel, t),
        aim: lerp_angle(from.aim, to.aim, t),
        ..*to
    }
}

/// Interpolates angles the short way round.
fn lerp_angle(from: f32, to: f32, t: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    let mut delta = (to - from) % tau;
    if delta > std::f32::consts::PI {
        delta -= tau;
    } else if delta < -std::f32::consts::PI {
        delta += tau;
    }
    from + delta * t
}

#[cfg(test)]
mod tests {
    use glam::Vec2;
    use shared::PlayerId;

    use super::*;

    fn position_of(frame: &RoomFrame, id: PlayerId) -> Option<Vec2> {
        frame.players.iter().find(|p| p.id == id).map(|p| p.pos)
    }

    fn snapshot_at(tick: u32, x: f32) -> Snapshot {
        Snapshot {
            tick: Tick(tick),
            players: vec![PlayerState {
                id: PlayerId(2),
                pos: Vec2::new(x, 0.0),
                vel: Vec2::ZERO,
                aim: 0.0,
                health: 100,
                alive: true,
                score: 0,
            }],
            ..Snapshot::default()
        }
    }

    /// Feeds snapshots every 2 ticks at 60 Hz (30 Hz), arriving on time, with x = tick.
    fn steady_feed(interp: &mut Interpolator, ticks: std::ops::Range<u32>) {
        for tick in ticks.step_by(2) {
            interp.push(snapshot_at(tick, tick as f32), f64::from(tick) / 60.0);
        }
    }

    #[test]
    fn draws_between_the_snapshots_that_bracket_the_render_time() {
        let mut interp = Interpolator::new(60, 30);
        steady_feed(&mut interp, 0..60);
        // Last arrival: tick 58 at 58/60 s. Delay is two intervals (4 ticks), no jitter.
        let now = 58.0 / 60.0;
        let frame = interp.frame(now, 1.0 / 60.0).expect("snapshots arrived");
        let x = position_of(&frame, PlayerId(2)).expect("player 2").x;
        assert!((x - 54.0).abs() < 0.01, "drawn at tick 54, got x = {x}");
        assert_eq!(interp.underruns, 0);
    }

    #[test]
    fn positions_between_snapshots_are_interpolated() {
        let mut interp = Interpolator::new(60, 30);
        steady_feed(&mut interp, 0..60);
        let now = 58.0 / 60.0 + 1.0 / 120.0;
        interp.frame(58.0 / 60.0, 1.0 / 60.0);
        let frame = interp.frame(now, 1.0 / 120.0).expect("snapshots arrived");
        let x = position_of(&frame, PlayerId(2)).expect("player 2").x;
        assert!(
            x > 54.0 && x < 56.0,
            "half a tick later lies between, got {x}"
        );
    }

    #[test]
    fn the_drawn_moment_names_the_bracketing_snapshots_and_the_fraction() {
        let mut interp = Interpolator::new(60, 30);
        assert_eq!(interp.drawn(), None, "nothing drawn yet");
        steady_feed(&mut interp, 0..60);
        interp.frame(58.0 / 60.0, 1.0 / 60.0);
        interp.frame(58.0 / 60.0 + 1.0 / 120.0, 1.0 / 120.0);
        let drawn = interp.drawn().expect("a frame was drawn");
        assert_eq!(drawn.older_low, 54, "between tick 54 and 56");
        assert_eq!(drawn.span, 2);
        let ticks_ago = drawn.ticks_ago(Tick(58));
        assert!(
            ticks_ago > 2.0 && ticks_ago < 4.0,
            "drawn about four ticks behind the newest, plus half a tick: {ticks_ago}"
        );
    }

    #[test]
    fn running_out_of_snapshots_counts_one_underrun_and_holds_the_newest() {
        let mut interp = Interpolator::new(60, 30);
        steady_feed(&mut interp, 0..60);
        let mut now = 58.0 / 60.0;
        let mut last = None;
        for _ in 0..30 {
            now += 1.0 / 60.0;
            last = interp.frame(now, 1.0 / 60.0);
        }
        assert_eq!(interp.underruns, 1, "one starvation episode, counted once");
        let x = last.and_then(|f| position_of(&f, PlayerId(2))).map(|p| p.x);
        assert_eq!(x, Some(58.0), "the newest state is held");
    }

    #[test]
    fn jitter_lengthens_the_delay() {
        let mut steady = Interpolator::new(60, 30);
        steady_feed(&mut steady, 0..120);
        let mut jittery = Interpolator::new(60, 30);
        for (i, tick) in (0..120u32).step_by(2).enumerate() {
            let late = if i % 3 == 0 { 0.03 } else { 0.0 };
            jittery.push(snapshot_at(tick, 0.0), f64::from(tick) / 60.0 + late);
        }
        assert!(
            jittery.delay() > steady.delay() + 0.02,
            "jittery {} vs steady {}",
            jittery.delay(),
            steady.delay()
        );
        assert!((steady.delay() - 2.0 / 30.0).abs() < 1e-3);
    }

    #[test]
    fn a_respawn_is_not_drawn_as_a_slide() {
        let from = snapshot_at(0, 0.0).players[0];
        let to = PlayerState {
            pos: Vec2::new(1000.0, 0.0),
            ..from
        };
        assert_eq!(lerp_player(&from, &to, 0.5).pos.x, 1000.0);
    }

    #[test]
    fn angles_interpolate_the_short_way() {
        let mid = lerp_angle(3.0, -3.0, 0.5);
        assert!(
            mid.abs() > 3.1,
            "halfway between 3 and -3 rad is near pi, got {mid}"
        );
    }

    #[test]
    fn snapping_to_newest_restarts_from_the_present() {
        let mut interp = Interpolator::new(60, 30);
        steady_feed(&mut interp, 0..60);
        interp.snap_to_newest();
        interp.push(snapshot_at(300, 300.0), 5.0);
        let frame = interp
            .frame(5.0, 1.0 / 60.0)
            .expect("a snapshot is buffered");
        let x = position_of(&frame, PlayerId(2)).expect("player 2").x;
        assert!(x >= 58.0, "no replay of the old backlog, got {x}");
    }
}
