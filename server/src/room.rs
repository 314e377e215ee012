//! One room's fixed-rate tick. The room alone owns its world: connections reach it only
//! through its command channel and their own input queues, and it reaches them only
//! through non-blocking outboxes. It never waits for a client, nor for anything else.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shared::codec::{encode_server, encode_snapshot_body, encode_snapshot_head};
use shared::consts::{
    MAX_INPUT_CREDIT, MAX_INPUTS_PER_TICK, MAX_QUEUED_INPUTS, MAX_SEQ_JUMP, SNAPSHOT_RING,
};
use shared::game::World;
use shared::protocol::{
    CloseReason, GameEvent, InputFrame, RosterEntry, ServerMsg, SnapshotHeader, TickRef, Welcome,
};
use shared::quant::quantize_vel;
use shared::snapshot::{QState, diff};
use shared::text::dedup_name;
use shared::{Map, PlayerId, Seq, Tick};
use tokio::sync::{mpsc, oneshot};

use crate::ack::AckSlot;
use crate::lobby::Lobby;
use crate::metrics::Metrics;
use crate::outbox::Outbox;

/// How every room runs; set once from the flags.
#[derive(Clone, Debug)]
pub struct RoomSettings {
    pub tick_hz: u16,
    pub snapshot_hz: u16,
    pub capacity: u16,
    pub empty_grace: Duration,
    pub map: Map,
    /// Send deltas against acknowledged baselines; off sends every snapshot in full.
    pub deltas: bool,
    /// A client whose acknowledgements stop advancing for this long is closed.
    pub stall_timeout: Duration,
}

/// What a connection hands the room when it joins.
#[derive(Debug)]
pub struct PlayerLink {
    /// Validated input frames, in arrival order. Bounded: a flooding client fills only its own.
    pub inputs: mpsc::Receiver<InputFrame>,
    pub acks: Arc<AckSlot>,
    pub outbox: Outbox,
}

#[derive(Debug)]
pub enum RoomCmd {
    /// Seat a player whose seat the lobby has reserved. The reply carries their id.
    Join {
        name: String,
        link: PlayerLink,
        reply: oneshot::Sender<PlayerId>,
    },
    Leave {
        id: PlayerId,
    },
    /// A sanitised chat line from a player.
    Chat {
        id: PlayerId,
        text: String,
    },
}

/// A seated player as the room sees them: the connection-facing half of a player.
#[derive(Debug)]
struct Occupant {
    id: PlayerId,
    name: String,
    link: PlayerLink,
    /// The last input sequence applied (or skipped); reported back in snapshots.
    last_seq: Seq,
    /// Inputs this player may still have applied; one is added per tick.
    input_credit: u32,
    /// The newest snapshot this client has acknowledged that the room still holds.
    acked: Option<Tick>,
    /// The last acknowledgement read, as sent (low 16 tick bits).
    last_ack: Option<u16>,
    /// When a new acknowledgement last arrived (or the player joined).
    ack_progress_at: Tick,
}

#[derive(Debug)]
struct Room {
    id: String,
    settings: Arc<RoomSettings>,
    world: World,
    /// Sorted by id, like the world's players.
    occupants: Vec<Occupant>,
    next_player_id: u8,
    metrics: Arc<Metrics>,
    /// Reused every tick so the steady state allocates nothing for them.
    inputs: Vec<(PlayerId, InputFrame)>,
    events: Vec<GameEvent>,
    /// The last `SNAPSHOT_RING` snapshots sent, oldest first: the possible baselines.
    sent: VecDeque<QState>,
    /// Encoded bodies of the current snapshot, one per baseline in use.
    bodies: Vec<(Option<Tick>, Bytes)>,
    /// Every recipient's snapshot head, end to end, between encoding and writing.
    heads: Vec<u8>,
    /// Per recipient: its index in `occupants`, where its head ends in `heads`, and its
    /// body in `bodies`.
    recipients: Vec<(usize, usize, usize)>,
}

/// A room with its schedule: what a room thread runs, one tick at a time.
#[derive(Debug)]
pub struct RoomRunner {
    room: Room,
    commands: mpsc::Receiver<RoomCmd>,
    lobby: Arc<Lobby>,
    period: Duration,
    dt: f32,
    /// When the next tick is due.
    next_tick: Instant,
    snapshot_credit: u32,
    empty_since: Option<Instant>,
}

impl RoomRunner {
    pub fn new(
        id: String,
        settings: Arc<RoomSettings>,
        commands: mpsc::Receiver<RoomCmd>,
        lobby: Arc<Lobby>,
        metrics: Arc<Metrics>,
    ) -> RoomRunner {
        let now = Instant::now();
        RoomRunner {
            period: Duration::from_secs_f64(1.0 / f64::from(settings.tick_hz)),
            dt: shared::consts::tick_dt(settings.tick_hz),
            room: Room {
                id,
                world: World::new(settings.map.clone()),
                settings,
                occupants: Vec::new(),
                next_player_id: 1,
                metrics,
                inputs: Vec::new(),
                events: Vec::new(),
                sent: VecDeque::with_capacity(SNAPSHOT_RING),
                bodies: Vec::new(),
                heads: Vec::new(),
                recipients: Vec::new(),
            },
            commands,
            lobby,
            next_tick: now,
            snapshot_credit: 0,
            empty_since: Some(now),
        }
    }

    /// When the next tick is due.
    pub fn due(&self) -> Instant {
        self.next_tick
    }

    /// When the next tick that sends snapshots is due.
    pub fn next_snapshot_due(&self) -> Instant {
        let (tick_hz, snapshot_hz) = (
            u32::from(self.room.settings.tick_hz),
            u32::from(self.room.settings.snapshot_hz),
        );
        let ticks_away = tick_hz
            .saturating_sub(self.snapshot_credit)
            .div_ceil(snapshot_hz)
            .saturating_sub(1);
        self.next_tick + self.period * ticks_away
    }

    /// Delays this new room's first tick, and makes it a snapshot tick, so that its
    /// snapshots fall in the widest gap between those of `others` (the rooms already
    /// on its thread). Encoding and writing snapshots is most of a tick's work; rooms
    /// that snapshot at the same moment make each other late.
    pub fn start_in_gap(&mut self, others: impl Iterator<Item = Instant>) {
        let settings = &self.room.settings;
        let cycle = Duration::from_secs_f64(1.0 / f64::from(settings.snapshot_hz)).as_nanos();
        let now = Instant::now();
        let mut offsets: Vec<u128> = others
            .map(|due| due.saturating_duration_since(now).as_nanos() % cycle)
            .collect();
        offsets.sort_unstable();
        let start = match (offsets.first(), offsets.last()) {
            (Some(&first), Some(&last)) => {
                // The gap that wraps around the cycle, then each gap between neighbours.
                let wrap = (first + cycle - last, last);
                let widest = offsets
                    .windows(2)
                    .map(|pair| (pair[1] - pair[0], pair[0]))
                    .fold(
                        wrap,
                        |widest, gap| if gap.0 > widest.0 { gap } else { widest },
                    );
                (widest.1 + widest.0 / 2) % cycle
            }
            _ => 0,
        };
        self.next_tick = now + Duration::from_nanos(start as u64);
        self.snapshot_credit = u32::from(settings.tick_hz) - u32::from(settings.snapshot_hz);
    }

    /// Runs the tick that is due. Returns false once the room has closed: it stayed
    /// empty for its grace period and the lobby let it go.
    pub fn tick(&mut self) -> bool {
        let room = &mut self.room;
        let (tick_hz, snapshot_hz, empty_grace) = (
            u32::from(room.settings.tick_hz),
            u32::from(room.settings.snapshot_hz),
            room.settings.empty_grace,
        );
        let started = Instant::now();
        room.metrics.tick_lateness.observe(
            started
                .saturating_duration_since(self.next_tick)
                .as_secs_f64(),
        );

        while let Ok(cmd) = self.commands.try_recv() {
            room.handle(cmd);
        }
        room.collect_inputs();
        room.world.step(&room.inputs, self.dt, &mut room.events);
        room.broadcast_events();
        self.snapshot_credit += snapshot_hz;
        if self.snapshot_credit >= tick_hz {
            self.snapshot_credit -= tick_hz;
            room.send_snapshots();
        }
        room.metrics
            .tick_duration
            .observe(started.elapsed().as_secs_f64());

        self.next_tick += self.period;
        // After a long stall (a suspended process, an overloaded machine) resume the
        // schedule from now instead of running a burst of catch-up ticks.
        if started.saturating_duration_since(self.next_tick) > self.period * 5 {
            self.next_tick = started + self.period;
        }

        if room.occupants.is_empty() {
            let since = *self.empty_since.get_or_insert(started);
            if started - since >= empty_grace && self.lobby.close_if_empty(&room.id) {
                return false;
            }
        } else {
            self.empty_since = None;
        }
        true
    }
}

impl Room {
    fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join { name, link, reply } => self.join(name, link, reply),
            RoomCmd::Leave { id } => self.leave(id),
            RoomCmd::Chat { id, text } => {
                if let Some(sender) = self.occupant(id) {
                    let msg = ServerMsg::Chat {
                        from: id,
                        name: sender.name.clone(),
                        text,
                    };
                    self.broadcast(&msg);
                }
            }
        }
    }

    fn occupant(&self, id: PlayerId) -> Option<&Occupant> {
        let idx = self.occupants.binary_search_by_key(&id, |o| o.id).ok()?;
        Some(&self.occupants[idx])
    }

    fn allocate_player_id(&mut self) -> PlayerId {
        // Ids count up and wrap, skipping 0 and ids in use, so a leaver's id is not
        // handed to the next joiner while their last messages may still be in flight.
        loop {
            let id = PlayerId(self.next_player_id);
            self.next_player_id = self.next_player_id.wrapping_add(1).max(1);
            if self.occupant(id).is_none() {
                return id;
            }
        }
    }

    fn join(&mut self, name: String, link: PlayerLink, reply: oneshot::Sender<PlayerId>) {
        let id = self.allocate_player_id();
        let name = dedup_name(&name, |candidate| {
            self.occupants
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(candidate))
        });
        self.world.add_player(id);
        self.broadcast(&ServerMsg::PlayerJoined {
            id,
            name: name.clone(),
        });
        let occupant = Occupant {
            id,
            name,
            link,
            last_seq: Seq(0),
            input_credit: 1,
            acked: None,
            last_ack: None,
            ack_progress_at: self.world.tick,
        };
        let idx = self.occupants.partition_point(|o| o.id < id);
        self.occupants.insert(idx, occupant);
        let welcome = ServerMsg::Welcome(Box::new(Welcome {
            player_id: id,
            name: self.occupants[idx].name.clone(),
            room: self.id.clone(),
            tick_hz: self.settings.tick_hz,
            snapshot_hz: self.settings.snapshot_hz,
            tick: self.world.tick,
            map: self.settings.map.clone(),
            roster: self
                .occupants
                .iter()
                .map(|o| RosterEntry {
                    id: o.id,
                    name: o.name.clone(),
                })
                .collect(),
        }));
        self.occupants[idx]
            .link
            .outbox
            .queue(&encode_server(&welcome));
        // The connection may have gone already; its Leave is queued behind this Join.
        let _ = reply.send(id);
        tracing::debug!(room = %self.id, player = id.0, "player joined");
    }

    fn leave(&mut self, id: PlayerId) {
        let Ok(idx) = self.occupants.binary_search_by_key(&id, |o| o.id) else {
            return;
        };
        self.occupants.remove(idx);
        self.world.remove_player(id);
        self.broadcast(&ServerMsg::PlayerLeft { id });
        tracing::debug!(room = %self.id, player = id.0, "player left");
    }

    /// Takes each player's queued inputs in sequence order, within the player's credit.
    fn collect_inputs(&mut self) {
        self.inputs.clear();
        for occupant in &mut self.occupants {
            occupant.input_credit = (occupant.input_credit + 1).min(MAX_INPUT_CREDIT);
            let mut applied = 0;
            while applied < MAX_INPUTS_PER_TICK && occupant.input_credit > 0 {
                let Ok(input) = occupant.link.inputs.try_recv() else {
                    break;
                };
                if !is_next_input(occupant.last_seq, input.seq) {
                    continue;
                }
                occupant.last_seq = input.seq;
                occupant.input_credit -= 1;
                applied += 1;
                self.inputs.push((occupant.id, input));
            }
            // A backlog means the client sends faster than we tick: drop its oldest
            // extras rather than let its inputs lag further and further behind.
            while occupant.link.inputs.len() > MAX_QUEUED_INPUTS {
                if let Ok(input) = occupant.link.inputs.try_recv()
                    && is_next_input(occupant.last_seq, input.seq)
                {
                    occupant.last_seq = input.seq;
                }
            }
        }
    }

    fn broadcast_events(&mut self) {
        for event_idx in 0..self.events.len() {
            let event = self.events[event_idx];
            self.broadcast(&ServerMsg::Event(event));
        }
        self.events.clear();
    }

    /// Queues a message that must arrive for every occupant, to go with the next snapshot.
    fn broadcast(&mut self, msg: &ServerMsg) {
        let bytes = encode_server(msg);
        for occupant in &mut self.occupants {
            occupant.link.outbox.queue(&bytes);
        }
    }

    fn kick(&mut self, id: PlayerId, reason: CloseReason) {
        if let Ok(idx) = self.occupants.binary_search_by_key(&id, |o| o.id) {
            tracing::info!(room = %self.id, player = id.0, ?reason, "kicking player");
            self.occupants[idx].link.outbox.kick(reason);
            self.leave(id);
        }
    }

    /// Quantizes the world and writes a snapshot to every client: a delta against the
    /// newest snapshot each client acknowledged. Bodies are encoded once per distinct
    /// baseline; each client gets only its own small head, and its socket gets one
    /// vectored write of frame header, head and the shared body.
    fn send_snapshots(&mut self) {
        let started = Instant::now();
        let state = QState::of_world(&self.world);
        let tick = state.tick;
        let stall_ticks =
            (self.settings.stall_timeout.as_secs_f32() * f32::from(self.settings.tick_hz)) as i32;
        self.bodies.clear();
        self.heads.clear();
        self.recipients.clear();
        let mut stalled = Vec::new();

        for (idx, occupant) in self.occupants.iter_mut().enumerate() {
            let ack = occupant.link.acks.load();
            if ack.is_some() && ack != occupant.last_ack {
                // Any new acknowledgement shows the client is reading. One of a snapshot
                // the room no longer holds (after a long stall) leaves no baseline, so
                // the next snapshot goes out in full.
                occupant.last_ack = ack;
                occupant.ack_progress_at = tick;
                occupant.acked = self
                    .sent
                    .iter()
                    .rev()
                    .find(|s| Some(s.tick.0 as u16) == ack)
                    .map(|s| s.tick);
            }
            if tick.since(occupant.ack_progress_at) > stall_ticks {
                stalled.push(occupant.id);
                continue;
            }
            let baseline = occupant
                .acked
                .filter(|_| self.settings.deltas)
                .and_then(|acked| self.sent.iter().find(|s| s.tick == acked));
            let baseline_tick = baseline.map(|b| b.tick);
            let body = match self.bodies.iter().position(|(t, _)| *t == baseline_tick) {
                Some(body) => body,
                None => {
                    let body = Bytes::from(encode_snapshot_body(&diff(baseline, &state)));
                    self.bodies.push((baseline_tick, body));
                    self.bodies.len() - 1
                }
            };
            let own_vel = self
                .world
                .player(occupant.id)
                .map(|p| quantize_vel(p.body.vel))
                .filter(|vel| *vel != [0, 0]);
            let header = SnapshotHeader {
                tick: match baseline_tick {
                    Some(base) => TickRef::Delta {
                        baseline_low: base.0 as u16,
                        after: tick.since(base) as u32,
                    },
                    None => TickRef::Full(tick),
                },
                ack_input_low: occupant.last_seq.0 as u16,
                own_vel,
            };
            encode_snapshot_head(&header, &mut self.heads);
            self.recipients.push((idx, self.heads.len(), body));
        }
        let encoded_at = Instant::now();
        // Writing goes into the sockets themselves: measured apart from encoding.
        let mut head_start = 0;
        let mut overflowed = Vec::new();
        for &(idx, head_end, body) in &self.recipients {
            let occupant = &mut self.occupants[idx];
            let head = &self.heads[head_start..head_end];
            if occupant
                .link
                .outbox
                .send_snapshot(head, &self.bodies[body].1)
                .is_err()
            {
                overflowed.push(occupant.id);
            }
            head_start = head_end;
        }
        let metrics = &self.metrics;
        metrics
            .snapshot_encode_seconds
            .inc_by((encoded_at - started).as_secs_f64());
        metrics
            .snapshot_write_seconds
            .inc_by(encoded_at.elapsed().as_secs_f64());
        metrics
            .snapshot_recipients
            .inc_by(self.recipients.len() as u64);
        metrics.snapshot_bodies.inc_by(self.bodies.len() as u64);
        if self.sent.len() == SNAPSHOT_RING {
            self.sent.pop_front();
        }
        self.sent.push_back(state);
        // Both are too slow: one stopped acknowledging, one let its backlog fill.
        for id in stalled.into_iter().chain(overflowed) {
            self.kick(id, CloseReason::TooSlow);
        }
    }
}

/// True if `seq` is the next input to apply after `last`: later, and not implausibly far.
fn is_next_input(last: Seq, seq: Seq) -> bool {
    let ahead = seq.since(last);
    ahead > 0 && ahead <= MAX_SEQ_JUMP
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::room_threads::RoomThreads;

    fn runner(lobby: &Arc<Lobby>, metrics: &Arc<Metrics>) -> RoomRunner {
        let (_commands, receiver) = mpsc::channel(1);
        RoomRunner::new(
            "r".into(),
            Arc::new(lobby.settings().clone()),
            receiver,
            Arc::clone(lobby),
            Arc::clone(metrics),
        )
    }

    #[test]
    fn new_rooms_send_their_snapshots_in_the_widest_gap() {
        let settings = RoomSettings {
            tick_hz: 60,
            snapshot_hz: 30,
            capacity: 16,
            empty_grace: Duration::from_secs(10),
            map: crate::load_map(None).expect("the built-in map"),
            deltas: true,
            stall_timeout: Duration::from_secs(10),
        };
        let metrics = Arc::new(Metrics::new());
        let threads = RoomThreads::start(1, false, &CancellationToken::new()).expect("threads");
        let lobby = Lobby::new(settings, Arc::clone(&metrics), threads);
        let cycle = Duration::from_secs_f64(1.0 / 30.0);

        let mut rooms: Vec<RoomRunner> = Vec::new();
        for _ in 0..4 {
            let mut room = runner(&lobby, &metrics);
            room.start_in_gap(rooms.iter().map(RoomRunner::next_snapshot_due));
            assert_eq!(
                room.next_snapshot_due(),
                room.due(),
                "a new room's first tick sends a snapshot"
            );
            rooms.push(room);
        }
        // Four rooms in one 33 ms snapshot cycle: a quarter cycle apart, give or take
        // the microseconds between the calls.
        let origin = rooms[0].next_snapshot_due();
        let mut phases: Vec<f64> = rooms
            .iter()
            .map(|r| {
                let offset = r.next_snapshot_due().saturating_duration_since(origin);
                offset.as_secs_f64() % cycle.as_secs_f64()
            })
            .collect();
        phases.sort_by(f64::total_cmp);
        for pair in phases.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                (gap - cycle.as_secs_f64() / 4.0).abs() < 0.001,
                "phases {phases:?} are not a quarter cycle apart"
            );
        }
    }

    #[test]
    fn duplicate_old_and_far_future_inputs_are_not_next() {
        assert!(is_next_input(Seq(0), Seq(1)));
        assert!(is_next_input(Seq(10), Seq(12)), "a gap is fine");
        assert!(!is_next_input(Seq(10), Seq(10)), "duplicate");
        assert!(!is_next_input(Seq(10), Seq(9)), "old");
        assert!(
            !is_next_input(Seq(10), Seq(10 + MAX_SEQ_JUMP as u32 + 1)),
            "far future"
        );
        assert!(is_next_input(Seq(u32::MAX), Seq(0)), "wrap-around");
    }
}
