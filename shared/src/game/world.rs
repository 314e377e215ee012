//! A room's whole game state and its step. The step reads like the rules: apply each
//! player's inputs, fly the projectiles, bring the dead back, then move the match on.

use glam::Vec2;

use crate::consts::tuning::*;
use crate::consts::{MAX_PROJECTILES, MAX_ROOM_CAPACITY};
use crate::game::collide::{sweep_point_box, sweep_point_circle};
use crate::game::event::GameEvent;
use crate::game::input::{InputFrame, buttons};
use crate::game::matches::{MatchClock, MatchEnd, MatchRules, Phase};
use crate::game::movement::{Body, step_body};
use crate::game::rewind::{History, Trace};
use crate::ids::{PlayerId, Tick};
use crate::map::Map;
use crate::view::{PlayerState, ProjectileState};

#[derive(Clone, Debug, PartialEq)]
pub struct Player {
    pub id: PlayerId,
    pub body: Body,
    pub aim: f32,
    pub health: u8,
    pub score: u16,
    /// This match's record; reset when a match starts.
    pub stats: MatchStats,
    /// Seconds until the player may fire again; counts down with the player's own inputs.
    pub fire_cooldown: f32,
    /// Seconds until respawn while dead; `None` while alive.
    pub respawn_in: Option<f32>,
    /// When this life began: joining, respawning and a match's start all teleport.
    pub spawned_at: Tick,
}

/// What a player did in the current match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchStats {
    pub kills: u32,
    pub deaths: u32,
    pub shots: u32,
    pub hits: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Projectile {
    pub id: u8,
    pub owner: PlayerId,
    pub pos: Vec2,
    pub vel: Vec2,
    /// Where, when and which way it was fired: all a snapshot needs to place it.
    pub origin: Vec2,
    pub direction: f32,
    pub spawn_tick: Tick,
    /// Seconds left before it expires.
    pub ttl: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct World {
    pub map: Map,
    pub tick: Tick,
    /// Sorted by id, so every loop over players runs in the same order on every run.
    players: Vec<Player>,
    projectiles: Vec<Projectile>,
    next_projectile_id: u8,
    rules: MatchRules,
    clock: MatchClock,
    /// Where everyone was over the last ticks, for judging shots where their shooter saw
    /// the targets; empty while lag compensation is off.
    history: History,
    /// The most a shot is rewound, in ticks; 0 while lag compensation is off.
    max_rewind_ticks: f32,
}

/// What a projectile's path meets first over one stretch.
enum Contact {
    Player(usize),
    Wall,
    Nothing,
}

impl Player {
    pub fn is_alive(&self) -> bool {
        self.respawn_in.is_none()
    }

    pub fn state(&self) -> PlayerState {
        PlayerState {
            id: self.id,
            pos: self.body.pos,
            vel: self.body.vel,
            aim: self.aim,
            health: self.health,
            alive: self.is_alive(),
            score: self.score,
        }
    }
}

impl Projectile {
    pub fn state(&self) -> ProjectileState {
        ProjectileState {
            id: self.id,
            owner: self.owner,
            pos: self.pos,
            vel: self.vel,
        }
    }
}

/// The unit vector of an aim angle. libm gives the same bits natively and in wasm32.
pub fn aim_direction(aim: f32) -> Vec2 {
    Vec2::new(libm::cosf(aim), libm::sinf(aim))
}

impl World {
    /// A world whose matches follow the default rules.
    pub fn new(map: Map) -> World {
        World::with_rules(map, MatchRules::default())
    }

    /// A world at tick 0, its first match just started.
    pub fn with_rules(map: Map, rules: MatchRules) -> World {
        World {
            map,
            tick: Tick(0),
            players: Vec::new(),
            projectiles: Vec::new(),
            next_projectile_id: 0,
            rules,
            clock: MatchClock {
                phase: Phase::Playing,
                ends: Tick(rules.time_limit_ticks),
            },
            history: History::default(),
            max_rewind_ticks: 0.0,
        }
    }

    /// Judges each shot where its shooter saw the targets, up to `max_rewind_ticks`
    /// back (0 turns it off). Sizes the position history once, here, for a full room.
    pub fn compensate_lag(&mut self, max_rewind_ticks: u32) {
        self.max_rewind_ticks = max_rewind_ticks as f32;
        self.history = if max_rewind_ticks == 0 {
            History::default()
        } else {
            // One tick more than the cap: a view between two ticks needs both.
            History::new(max_rewind_ticks + 1, usize::from(MAX_ROOM_CAPACITY))
        };
    }

    /// The match phase and when it ends.
    pub fn clock(&self) -> MatchClock {
        self.clock
    }

    pub fn players(&self) -> &[Player] {
        &self.players
    }

    pub fn projectiles(&self) -> &[Projectile] {
        &self.projectiles
    }

    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        let idx = self.players.binary_search_by_key(&id, |p| p.id).ok()?;
        Some(&self.players[idx])
    }

    /// Puts a new player at a free spawn point. Adding an id that is present does nothing.
    pub fn add_player(&mut self, id: PlayerId) {
        let Err(idx) = self.players.binary_search_by_key(&id, |p| p.id) else {
            return;
        };
        let pos = self.free_spawn_point(id);
        self.players.insert(
            idx,
            Player {
                id,
                body: Body {
                    pos,
                    vel: Vec2::ZERO,
                },
                aim: 0.0,
                health: MAX_HEALTH,
                score: 0,
                stats: MatchStats::default(),
                fire_cooldown: 0.0,
                respawn_in: None,
                spawned_at: self.tick,
            },
        );
    }

    /// Removes a player and the projectiles they fired.
    pub fn remove_player(&mut self, id: PlayerId) {
        self.players.retain(|p| p.id != id);
        self.projectiles.retain(|p| p.owner != id);
    }

    /// Advances the world by one tick of `dt` seconds. `inputs` are applied in the order
    /// given (the caller orders them by player, then sequence); each moves its player by
    /// one `dt`. Things worth telling players are pushed onto `events`.
    pub fn step(
        &mut self,
        inputs: &[(PlayerId, InputFrame)],
        dt: f32,
        events: &mut Vec<GameEvent>,
    ) {
        for (id, input) in inputs {
            self.apply_input(*id, input, dt, events);
        }
        self.fly_projectiles(dt, events);
        self.respawn_the_dead(dt, events);
        self.tick = self.tick.next();
        self.move_the_match_on(events);
        self.remember_positions();
    }

    fn remember_positions(&mut self) {
        let players = self.players.iter().map(|p| Trace {
            id: p.id,
            pos: p.body.pos,
            spawned_at: p.spawned_at,
        });
        self.history.record(self.tick, players);
    }

    fn apply_input(
        &mut self,
        id: PlayerId,
        input: &InputFrame,
        dt: f32,
        events: &mut Vec<GameEvent>,
    ) {
        let Ok(idx) = self.players.binary_search_by_key(&id, |p| p.id) else {
            return;
        };
        let player = &mut self.players[idx];
        if !player.is_alive() {
            return;
        }
        step_body(&mut player.body, input.buttons, dt, &self.map);
        player.aim = input.aim;
        player.fire_cooldown = (player.fire_cooldown - dt).max(0.0);
        let wants_fire = input.buttons & buttons::FIRE != 0 && player.fire_cooldown == 0.0;
        let may_fire = self.clock.phase == Phase::Playing;
        if wants_fire && may_fire && self.projectiles.len() < MAX_PROJECTILES {
            player.fire_cooldown = FIRE_COOLDOWN_S;
            player.stats.shots += 1;
            let dir = aim_direction(player.aim);
            let origin = player.body.pos + dir * (PLAYER_RADIUS + PROJECTILE_RADIUS + 1.0);
            let direction = player.aim;
            let projectile = Projectile {
                id: self.allocate_projectile_id(),
                owner: id,
                pos: origin,
                vel: dir * PROJECTILE_SPEED,
                origin,
                direction,
                spawn_tick: self.tick,
                ttl: PROJECTILE_TTL_S,
            };
            let ticks_ago = match input.view {
                Some(view) if self.max_rewind_ticks > 0.0 => view
                    .ticks_ago(self.tick)
                    .clamp(0.0, self.max_rewind_ticks.min(self.history.depth() as f32)),
                _ => 0.0,
            };
            if let Some(caught_up) = self.catch_up(projectile, ticks_ago, dt, events) {
                self.projectiles.push(caught_up);
            }
        }
    }

    /// Flies a shot fired `ticks_ago` ticks back (as its shooter saw the room) forward
    /// to now, one tick at a time, against where the targets were at each of those
    /// ticks; then it joins the others. The shooter is never moved: the shot starts
    /// where the shooter is. `None` if it hit something on the way.
    fn catch_up(
        &mut self,
        mut projectile: Projectile,
        ticks_ago: f32,
        dt: f32,
        events: &mut Vec<GameEvent>,
    ) -> Option<Projectile> {
        let n_ticks = libm::roundf(ticks_ago) as u32;
        for step in 0..n_ticks {
            let delta = projectile.vel * dt;
            // The targets as they were when this stretch of flight ends.
            let targets_ago = ticks_ago - step as f32 - 1.0;
            match self.contact(&projectile, delta, Some(targets_ago)) {
                Contact::Player(target_idx) => {
                    self.hit(target_idx, projectile.owner, events);
                    return None;
                }
                Contact::Wall => return None,
                Contact::Nothing => {
                    projectile.pos += delta;
                    projectile.ttl -= dt;
                }
            }
        }
        projectile.spawn_tick = Tick(self.tick.0.wrapping_sub(n_ticks));
        (projectile.ttl > 0.0 && self.in_arena(projectile.pos)).then_some(projectile)
    }

    fn in_arena(&self, pos: Vec2) -> bool {
        !(pos.cmplt(Vec2::ZERO).any() || pos.cmpgt(self.map.size).any())
    }

    /// What `projectile` meets first on its way along `delta`: targets where they are, or
    /// where they were `targets_ago` ticks back if the history has them.
    fn contact(&self, projectile: &Projectile, delta: Vec2, targets_ago: Option<f32>) -> Contact {
        let mut first_wall = None::<f32>;
        for wall in &self.map.walls {
            if let Some(t) = sweep_point_box(projectile.pos, delta, wall, PROJECTILE_RADIUS) {
                first_wall = Some(first_wall.map_or(t, |best| best.min(t)));
            }
        }
        let mut first_player = None::<(f32, usize)>;
        for (player_idx, player) in self.players.iter().enumerate() {
            if player.id == projectile.owner || !player.is_alive() {
                continue;
            }
            let pos = targets_ago
                .and_then(|ago| {
                    self.history
                        .position(player.id, player.spawned_at, self.tick, ago)
                })
                .unwrap_or(player.body.pos);
            let reach = PLAYER_RADIUS + PROJECTILE_RADIUS;
            if let Some(t) = sweep_point_circle(projectile.pos, delta, pos, reach)
                && first_player.is_none_or(|(best, _)| t < best)
            {
                first_player = Some((t, player_idx));
            }
        }
        match (first_player, first_wall) {
            (Some((t_player, target_idx)), wall) if wall.is_none_or(|t_wall| t_player < t_wall) => {
                Contact::Player(target_idx)
            }
            (_, Some(_)) => Contact::Wall,
            _ => Contact::Nothing,
        }
    }

    /// The next id not held by a live projectile. There are fewer live projectiles
    /// than ids (`MAX_PROJECTILES` < 256), so one is always free.
    fn allocate_projectile_id(&mut self) -> u8 {
        loop {
            let id = self.next_projectile_id;
            self.next_projectile_id = self.next_projectile_id.wrapping_add(1);
            if self.projectiles.iter().all(|p| p.id != id) {
                return id;
            }
        }
    }

    fn fly_projectiles(&mut self, dt: f32, events: &mut Vec<GameEvent>) {
        let mut projectiles = std::mem::take(&mut self.projectiles);
        projectiles.retain_mut(|projectile| {
            let delta = projectile.vel * dt;
            match self.contact(projectile, delta, None) {
                Contact::Player(target_idx) => {
                    self.hit(target_idx, projectile.owner, events);
                    false
                }
                Contact::Wall => false,
                Contact::Nothing => {
                    projectile.pos += delta;
                    projectile.ttl -= dt;
                    projectile.ttl > 0.0 && self.in_arena(projectile.pos)
                }
            }
        });
        self.projectiles = projectiles;
    }

    fn hit(&mut self, target_idx: usize, by: PlayerId, events: &mut Vec<GameEvent>) {
        let shooter = self.players.binary_search_by_key(&by, |p| p.id).ok();
        if let Some(shooter_idx) = shooter {
            self.players[shooter_idx].stats.hits += 1;
        }
        let target = &mut self.players[target_idx];
        target.health = target.health.saturating_sub(PROJECTILE_DAMAGE);
        let victim = target.id;
        events.push(GameEvent::Hit { target: victim, by });
        if target.health > 0 {
            return;
        }
        target.respawn_in = Some(RESPAWN_DELAY_S);
        target.body.vel = Vec2::ZERO;
        target.stats.deaths += 1;
        events.push(GameEvent::Killed { victim, by });
        if let Some(killer_idx) = shooter {
            let killer = &mut self.players[killer_idx];
            killer.score = killer.score.saturating_add(1);
            killer.stats.kills += 1;
        }
    }

    fn respawn_the_dead(&mut self, dt: f32, events: &mut Vec<GameEvent>) {
        for player_idx in 0..self.players.len() {
            let Some(left) = self.players[player_idx].respawn_in else {
                continue;
            };
            let left = left - dt;
            if left > 0.0 {
                self.players[player_idx].respawn_in = Some(left);
                continue;
            }
            self.respawn(player_idx);
            let id = self.players[player_idx].id;
            events.push(GameEvent::Respawned { id });
        }
    }

    /// Ends a match that reached its score or time limit, and starts the next once the
    /// results have stood for their time.
    fn move_the_match_on(&mut self, events: &mut Vec<GameEvent>) {
        let over = self.clock.ends.since(self.tick) <= 0;
        match self.clock.phase {
            Phase::Playing => {
                let reason = if self
                    .players
                    .iter()
                    .any(|p| p.score >= self.rules.score_limit)
                {
                    MatchEnd::ScoreLimit
                } else if over {
                    MatchEnd::TimeLimit
                } else {
                    return;
                };
                // Shots in flight when the match ends would land during the results.
                self.projectiles.clear();
                self.clock = MatchClock {
                    phase: Phase::Results,
                    ends: Tick(self.tick.0.wrapping_add(self.rules.results_ticks)),
                };
                events.push(GameEvent::MatchOver { reason });
            }
            Phase::Results if over => {
                self.start_match();
                events.push(GameEvent::MatchStarted);
            }
            Phase::Results => {}
        }
    }

    /// Scores reset and everyone respawned at full health, spread over the spawn points.
    fn start_match(&mut self) {
        self.projectiles.clear();
        // Everyone counts as dead until placed, so each spawn point is chosen away from
        // the players already placed rather than from where the last match left them.
        for player in &mut self.players {
            player.score = 0;
            player.stats = MatchStats::default();
            player.respawn_in = Some(0.0);
        }
        for player_idx in 0..self.players.len() {
            self.respawn(player_idx);
        }
        self.clock = MatchClock {
            phase: Phase::Playing,
            ends: Tick(self.tick.0.wrapping_add(self.rules.time_limit_ticks)),
        };
    }

    /// Brings a player back at full health, at the free spawn point farthest from
    /// everyone alive.
    fn respawn(&mut self, player_idx: usize) {
        let pos = self.free_spawn_point(self.players[player_idx].id);
        let player = &mut self.players[player_idx];
        player.respawn_in = None;
        player.health = MAX_HEALTH;
        player.fire_cooldown = 0.0;
        player.spawned_at = self.tick;
        player.body = Body {
            pos,
            vel: Vec2::ZERO,
        };
    }

    /// The spawn point farthest from every living player (ties go to the first in a
    /// rotation that depends on tick and id, so players do not all start in one corner).
    fn free_spawn_point(&self, for_id: PlayerId) -> Vec2 {
        let spawns = &self.map.spawns;
        let start = (self.tick.0 as usize).wrapping_add(for_id.0 as usize) % spawns.len();
        let mut best = (f32::NEG_INFINITY, spawns[start]);
        for offset in 0..spawns.len() {
            let spawn = spawns[(start + offset) % spawns.len()];
            let clearance = self
                .players
                .iter()
                .filter(|p| p.is_alive() && p.id != for_id)
                .map(|p| p.body.pos.distance_squared(spawn))
                .fold(f32::INFINITY, f32::min);
            if clearance > best.0 {
                best = (clearance, spawn);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Seq;

    const DT: f32 = 1.0 / 60.0;

    fn input(seq: u32, held: u8, aim: f32) -> InputFrame {
        InputFrame {
            seq: Seq(seq),
            buttons: held,
            aim,
            view: None,
        }
    }

    /// Two players facing each other across open ground, `a` at the left aiming right.
    fn duel() -> (World, PlayerId, PlayerId) {
        let mut world = World::new(Map {
            walls: vec![],
            ..Map::test_arena()
        });
        let (a, b) = (PlayerId(1), PlayerId(2));
        world.add_player(a);
        world.add_player(b);
        world.players[0].body.pos = Vec2::new(100.0, 300.0);
        world.players[1].body.pos = Vec2::new(400.0, 300.0);
        (world, a, b)
    }

    /// `a` fires (at `b`, in a duel) until someone has died, returning the events.
    fn kill_once(world: &mut World, a: PlayerId, seq: &mut u32) -> Vec<GameEvent> {
        let mut events = Vec::new();
        for _ in 0..600 {
            *seq += 1;
            world.step(&[(a, input(*seq, buttons::FIRE, 0.0))], DT, &mut events);
            if events.iter().any(|e| matches!(e, GameEvent::Killed { .. })) {
                break;
            }
        }
        events
    }

    #[test]
    fn a_match_ends_at_the_score_limit_and_nobody_fires_during_its_results() {
        let (mut world, a, b) = duel();
        world.rules = MatchRules::new(1, 300.0, 10.0, 60);
        let mut seq = 0;
        let events = kill_once(&mut world, a, &mut seq);
        assert!(
            events.contains(&GameEvent::MatchOver {
                reason: MatchEnd::ScoreLimit
            }),
            "the first kill reaches a score limit of 1: {events:?}"
        );
        assert_eq!(world.clock().phase, Phase::Results);
        let shooter = world.player(a).expect("a").stats;
        assert_eq!((shooter.kills, shooter.hits), (1, 4));
        assert!(shooter.shots >= 4);
        assert_eq!(world.player(b).expect("b").stats.deaths, 1);
        assert!(world.projectiles().is_empty(), "shots in flight are gone");
        for _ in 0..60 {
            seq += 1;
            world.step(&[(a, input(seq, buttons::FIRE, 0.0))], DT, &mut Vec::new());
        }
        assert!(
            world.projectiles().is_empty(),
            "nobody fires during results"
        );
    }

    #[test]
    fn a_match_ends_at_its_time_limit_and_the_next_starts_afresh() {
        let (mut world, a, _) = duel();
        world.rules = MatchRules::new(50, 2.0, 0.5, 60);
        world.clock.ends = Tick(world.rules.time_limit_ticks);
        let mut seq = 0;
        let killed = kill_once(&mut world, a, &mut seq);
        assert!(killed.iter().any(|e| matches!(e, GameEvent::Killed { .. })));
        let mut events = Vec::new();
        while world.clock().phase == Phase::Playing {
            world.step(&[], DT, &mut events);
        }
        assert_eq!(world.tick, Tick(120), "the match lasted its 120 ticks");
        assert!(events.contains(&GameEvent::MatchOver {
            reason: MatchEnd::TimeLimit
        }));
        assert_eq!(world.clock().ticks_left(world.tick), 30);
        events.clear();
        for _ in 0..30 {
            world.step(&[], DT, &mut events);
        }
        assert_eq!(events, vec![GameEvent::MatchStarted]);
        assert_eq!(world.clock().phase, Phase::Playing);
        assert_eq!(world.clock().ticks_left(world.tick), 120);
        for player in world.players() {
            assert_eq!(player.score, 0, "scores are reset");
            assert_eq!(player.stats, MatchStats::default(), "stats are reset");
            assert!(player.is_alive() && player.health == MAX_HEALTH);
        }
        let (pa, pb) = (world.players()[0].body.pos, world.players()[1].body.pos);
        assert_ne!(pa, pb, "everyone respawns at a spawn point of their own");
    }

    #[test]
    fn players_spawn_apart_at_spawn_points() {
        let mut world = World::new(Map::test_arena());
        for id in 1..=4 {
            world.add_player(PlayerId(id));
        }
        let mut spots: Vec<_> = world
            .players()
            .iter()
            .map(|p| p.body.pos.to_array())
            .collect();
        spots.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        spots.dedup();
        assert_eq!(
            spots.len(),
            4,
            "four players take four different spawn points"
        );
    }

    #[test]
    fn input_moves_only_its_player() {
        let (mut world, a, b) = duel();
        let before = world.player(b).map(|p| p.body);
        world.step(&[(a, input(1, buttons::DOWN, 0.0))], DT, &mut Vec::new());
        assert!(world.player(a).is_some_and(|p| p.body.pos.y > 300.0));
        assert_eq!(world.player(b).map(|p| p.body), before);
        assert_eq!(world.tick, Tick(1));
    }

    #[test]
    fn firing_respects_the_cooldown() {
        let (mut world, a, _) = duel();
        for seq in 1..=10 {
            world.step(&[(a, input(seq, buttons::FIRE, -1.0))], DT, &mut Vec::new());
        }
        // 10 ticks at 60 Hz is 0.167 s, shorter than one cooldown: one shot only.
        let fired = world.projectiles().len();
        assert_eq!(fired, 1, "fired {fired} projectiles within one cooldown");
    }

    #[test]
    fn projectiles_damage_and_kill_and_the_killer_scores() {
        let (mut world, a, b) = duel();
        let mut events = Vec::new();
        let mut seq = 0;
        // Four hits of 25 kill; fire for long enough to land them.
        for _ in 0..240 {
            seq += 1;
            world.step(&[(a, input(seq, buttons::FIRE, 0.0))], DT, &mut events);
            if world.player(b).is_some_and(|p| !p.is_alive()) {
                break;
            }
        }
        let victim = world.player(b).cloned().expect("b is in the world");
        assert!(
            !victim.is_alive(),
            "b should be dead after being shot repeatedly"
        );
        assert_eq!(victim.health, 0);
        assert_eq!(world.player(a).map(|p| p.score), Some(1));
        let hits = events
            .iter()
            .filter(|e| matches!(e, GameEvent::Hit { target, .. } if *target == b))
            .count();
        assert_eq!(hits, 4);
        assert!(events.contains(&GameEvent::Killed { victim: b, by: a }));
    }

    #[test]
    fn the_dead_respawn_after_the_delay_with_full_health() {
        let (mut world, a, b) = duel();
        world.players[1].health = PROJECTILE_DAMAGE;
        let mut events = Vec::new();
        let mut seq = 0;
        while world.player(b).is_some_and(|p| p.is_alive()) {
            seq += 1;
            world.step(&[(a, input(seq, buttons::FIRE, 0.0))], DT, &mut events);
            assert!(seq < 120, "b should die within two seconds");
        }
        let died_at = world.tick;
        while world.player(b).is_some_and(|p| !p.is_alive()) {
            world.step(&[], DT, &mut events);
        }
        let dead_for = world.tick.since(died_at) as f32 * DT;
        assert!(
            (dead_for - RESPAWN_DELAY_S).abs() < 2.0 * DT,
            "dead for {dead_for}s"
        );
        assert_eq!(world.player(b).map(|p| p.health), Some(MAX_HEALTH));
        assert!(events.contains(&GameEvent::Respawned { id: b }));
    }

    #[test]
    fn walls_stop_projectiles() {
        let (mut world, a, b) = duel();
        world.map.walls.push(crate::map::Wall {
            min: Vec2::new(240.0, 200.0),
            max: Vec2::new(260.0, 400.0),
        });
        let mut events = Vec::new();
        for seq in 1..=120 {
            world.step(&[(a, input(seq, buttons::FIRE, 0.0))], DT, &mut events);
        }
        assert_eq!(
            world.player(b).map(|p| p.health),
            Some(MAX_HEALTH),
            "the wall shields b"
        );
        assert!(events.is_empty());
        assert!(world.projectiles().iter().all(|p| p.pos.x < 240.0));
    }

    #[test]
    fn projectiles_expire() {
        let (mut world, a, _) = duel();
        world.step(
            &[(a, input(1, buttons::FIRE, -std::f32::consts::FRAC_PI_2))],
            DT,
            &mut Vec::new(),
        );
        assert_eq!(world.projectiles().len(), 1);
        for _ in 0..((PROJECTILE_TTL_S / DT) as usize + 2) {
            world.step(&[], DT, &mut Vec::new());
        }
        assert!(world.projectiles().is_empty());
    }

    #[test]
    fn removing_a_player_removes_their_projectiles() {
        let (mut world, a, _) = duel();
        world.step(&[(a, input(1, buttons::FIRE, 3.0))], DT, &mut Vec::new());
        world.remove_player(a);
        assert!(world.player(a).is_none());
        assert!(world.projectiles().is_empty());
    }

    #[test]
    fn the_step_is_deterministic() {
        let run = || {
            let mut world = World::new(Map::test_arena());
            for id in 1..=4 {
                world.add_player(PlayerId(id));
            }
            let mut events = Vec::new();
            for t in 0u32..900 {
                let inputs: Vec<_> = (1..=4u8)
                    .map(|id| {
                        let mix = t
                            .wrapping_mul(2_654_435_761)
                            .wrapping_add(id as u32 * 40_503);
                        (
                            PlayerId(id),
                            input(
                                t + 1,
                                (mix >> 24) as u8 & buttons::ALL,
                                (mix % 628) as f32 / 100.0,
                            ),
                        )
                    })
                    .collect();
                world.step(&inputs, DT, &mut events);
            }
            (world, events)
        };
        assert_eq!(run(), run());
    }

    /// `b` runs down across `a`'s line of fire (y = 300) at full speed. `a` fires
    /// straight along it at the moment its view, drawn `seen_ago` ticks late, shows `b`
    /// just far enough short of the line for the shot to meet it there (the shot needs
    /// about 17 ticks for the 250 units). Returns whether `b` was hit.
    fn shot_at_a_crossing_target(max_rewind_ticks: u32, seen_ago: u32) -> bool {
        const FLIGHT_TICKS: u32 = 17;
        let (mut world, a, b) = duel();
        world.compensate_lag(max_rewind_ticks);
        let target = world.players.iter().position(|p| p.id == b).expect("b");
        world.players[target].body.pos = Vec2::new(400.0, 60.0);
        let run = |world: &mut World, seq: u32, events: &mut Vec<GameEvent>| {
            world.step(&[(b, input(seq, buttons::DOWN, 0.0))], DT, events);
        };
        let mut dry_run = world.clone();
        let mut ticks_to_cross = 0;
        while dry_run.player(b).is_some_and(|p| p.body.pos.y < 300.0) {
            ticks_to_cross += 1;
            run(&mut dry_run, ticks_to_cross, &mut Vec::new());
        }
        let mut events = Vec::new();
        let fire_after = ticks_to_cross + seen_ago - FLIGHT_TICKS;
        for seq in 1..=fire_after {
            run(&mut world, seq, &mut events);
        }
        let seen = Tick(world.tick.0 - seen_ago);
        let shot = InputFrame {
            view: Some(crate::game::ViewTime::between(seen, seen, 0.0)),
            ..input(1, buttons::FIRE, 0.0)
        };
        world.step(&[(a, shot)], DT, &mut events);
        for seq in fire_after + 1..fire_after + 40 {
            run(&mut world, seq, &mut events);
        }
        events.contains(&GameEvent::Hit { target: b, by: a })
    }

    #[test]
    fn a_shot_is_judged_where_its_shooter_saw_the_target() {
        assert!(
            shot_at_a_crossing_target(15, 12),
            "seen 12 ticks ago at the line of fire, rewound 12 ticks: a hit"
        );
        assert!(
            !shot_at_a_crossing_target(0, 12),
            "without compensation b has run on out of the line of fire"
        );
        assert!(
            !shot_at_a_crossing_target(4, 12),
            "a cap of 4 ticks is too short to reach where b was seen"
        );
    }

    #[test]
    fn the_shooter_and_shots_in_flight_are_not_rewound() {
        let (mut world, a, _) = duel();
        world.compensate_lag(15);
        let mut seq = 0;
        for _ in 0..20 {
            seq += 1;
            world.step(&[(a, input(seq, buttons::DOWN, 0.0))], DT, &mut Vec::new());
        }
        let shooter_now = world.player(a).expect("a").body.pos;
        let view = crate::game::ViewTime::between(Tick(world.tick.0 - 10), world.tick, 0.0);
        world.step(
            &[(
                a,
                InputFrame {
                    view: Some(view),
                    ..input(seq + 1, buttons::FIRE, 0.0)
                },
            )],
            DT,
            &mut Vec::new(),
        );
        let shot = world.projectiles()[0].clone();
        assert_eq!(
            shot.origin.y,
            world.player(a).expect("a").body.pos.y,
            "the shot starts where the shooter is now, not where it was"
        );
        assert!(shooter_now.y < shot.origin.y, "a was still moving down");
        assert_eq!(
            shot.spawn_tick,
            Tick(world.tick.0 - 1 - 10),
            "the shot was fired 10 ticks back and caught up"
        );
        let flown = (shot.pos - shot.origin).length();
        assert!(
            (flown - 11.0 * PROJECTILE_SPEED * DT).abs() < 0.01,
            "10 ticks of catch-up and 1 of flight: {flown}"
        );
        let before = world.projectiles()[0].pos;
        world.step(&[], DT, &mut Vec::new());
        let moved = (world.projectiles()[0].pos - before).length();
        assert!(
            (moved - PROJECTILE_SPEED * DT).abs() < 0.01,
            "once caught up a shot flies one tick per tick: {moved}"
        );
    }
}
