//! One room: its world and the players seated in it. The room alone owns both:
//! connections reach it only through its command channel and their own input queues,
//! and it reaches them only through non-blocking outboxes. It never waits for a client.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shared::codec::encode_server;
use shared::consts::{
    MAX_INPUT_CREDIT, MAX_INPUTS_PER_TICK, MAX_QUEUED_INPUTS, MAX_SEQ_JUMP, SNAPSHOT_RING,
};
use shared::game::{GameEvent, InputFrame, MatchRules, World};
use shared::protocol::{CloseReason, RosterEntry, ServerMsg, Welcome};
use shared::snapshot::QState;
use shared::text::dedup_name;
use shared::{Map, PlayerId, ProfileId, Seq, Tick};
use tokio::sync::{mpsc, oneshot};

use crate::ops::metrics::Metrics;
use crate::rooms::ack::AckSlot;
use crate::rooms::directory::SeatLease;
use crate::rooms::input_queue::InputQueue;
use crate::rooms::inspect::{RateWindow, RoomReport, TickTimes};
use crate::rooms::link_stats::LinkStats;
use crate::rooms::outbox::Outbox;
use crate::rooms::outgoing::Outgoing;
use crate::rooms::recorder::Recorder;
use crate::rooms::rewind_judge::RewindJudge;
use crate::rooms::seat_token::{SeatClaim, SeatTokens, new_nonce};
use crate::rooms::spectators::{SpectatorLink, SpectatorSettings, Spectators, WatchRefused};
use crate::rooms::uplink::Uplink;
use crate::store::replays::{RecordingKey, ReplaySink};
use crate::store::{MatchId, ResultSink};

/// How every room runs; set once from the flags.
#[derive(Clone, Debug)]
pub(crate) struct RoomSettings {
    pub tick_hz: u16,
    pub snapshot_hz: u16,
    /// Ticks of input each client sends per message, as the welcome tells it.
    pub input_batch: u8,
    pub capacity: u16,
    pub empty_grace: Duration,
    pub map: Map,
    /// Send deltas against acknowledged baselines; off sends every snapshot in full.
    pub deltas: bool,
    /// A client whose acknowledgements stop advancing for this long is closed.
    pub stall_timeout: Duration,
    /// How the room's matches run.
    pub rules: MatchRules,
    /// Where finished matches go.
    pub results: Arc<dyn ResultSink>,
    /// How long the seat of a player whose connection dropped is held for a resume;
    /// zero lets them go at once.
    pub resume_grace: Duration,
    /// The most a shot is rewound to where its shooter saw the targets; 0 turns lag
    /// compensation off.
    pub max_rewind_ticks: u32,
    /// Signs the resume tokens the room hands out with every welcome.
    pub seat_tokens: Arc<SeatTokens>,
    /// Set once the server drains: a room then closes when its match is over.
    pub draining: Arc<AtomicBool>,
    /// Where recordings of matches go.
    pub replays: ReplaySink,
    /// How far behind spectators watch, and how many one room admits.
    pub spectators: SpectatorSettings,
}

impl RoomSettings {
    /// Ticks from one snapshot to the next, at least one.
    pub(crate) fn ticks_per_snapshot(&self) -> u32 {
        u32::from(self.tick_hz)
            .div_ceil(u32::from(self.snapshot_hz.max(1)))
            .max(1)
    }
}

/// Which connection a link came from, so word from a connection that was since replaced
/// (by a resume) is told apart from word from the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinkId(pub u64);

/// What a connection hands the room when it joins or resumes.
#[derive(Debug)]
pub(crate) struct PlayerLink {
    pub id: LinkId,
    /// Validated input frames, in arrival order, that the room read and has yet to
    /// apply. Bounded: a flooding client fills only its own.
    pub inputs: InputQueue,
    pub acks: Arc<AckSlot>,
    pub outbox: Outbox,
    /// What the connection measures of the player, for the console.
    pub stats: Arc<LinkStats>,
    /// The player's messages, read by the room at its ticks.
    pub uplink: Arc<dyn Uplink>,
}

#[derive(Debug)]
pub(crate) enum RoomCmd {
    /// Seat a player whose seat the lobby has reserved. The reply carries their id.
    Join {
        name: String,
        /// Who the player is, and the token that proves it, for the welcome.
        profile: ProfileId,
        token: String,
        link: PlayerLink,
        /// The seat the directory counts for this player; the room keeps it until the
        /// player leaves for good.
        lease: SeatLease,
        reply: oneshot::Sender<PlayerId>,
    },
    /// Give a held seat to a new connection, if `claim` (from a verified resume token)
    /// names the seat's current nonce and identity. The reply carries the id, or why not.
    Resume {
        claim: SeatClaim,
        /// The newest snapshot the client holds: the baseline for its next delta.
        newest_tick: Option<Tick>,
        link: PlayerLink,
        reply: oneshot::Sender<Result<PlayerId, ResumeRefused>>,
    },
    /// The player on `link` left for good (closed normally, or was closed for misbehaving).
    Leave { id: PlayerId, link: LinkId },
    /// The connection on `link` dropped; the seat is held for a resume.
    Lost { id: PlayerId, link: LinkId },
    /// A sanitised chat line from a player.
    Chat { id: PlayerId, text: String },
    /// Admit a spectator: no seat, the room's snapshots and messages `--spectator-delay-secs`
    /// late. The reply says whether it was admitted.
    Watch {
        link: SpectatorLink,
        reply: oneshot::Sender<Result<(), WatchRefused>>,
    },
    /// The spectator on `link` has gone.
    Unwatch { link: LinkId },
    /// The console asks how the room and its players are doing.
    Inspect { reply: oneshot::Sender<RoomReport> },
    /// An operator removes a player for good (4008, seat not held), with a validated
    /// reason. The reply says whether the player was here.
    Kick {
        id: PlayerId,
        reason: Option<String>,
        reply: oneshot::Sender<bool>,
    },
    /// An operator closes the room: the match ends, everyone is let go (4008) and the
    /// room closes. The reply carries how many players were let go.
    Close { reply: oneshot::Sender<usize> },
    /// A validated message from the operators for every player.
    Announce { text: String },
    /// Wakes a parked room of a draining server, to close at once.
    Drain,
    /// Makes the room's next tick panic, so tests can see a failing room contained.
    #[cfg(test)]
    Panic,
}

/// Why a resume was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResumeRefused {
    /// Nobody holds that seat any more: the grace window ended, or the room closed.
    #[error("the seat is no longer held; its grace window may have ended")]
    SeatGone,
    /// The seat is held, but the token is not its current one: it was used already.
    #[error("the resume token was used already")]
    Replayed,
}

/// A seated player as the room sees them: the connection-facing half of a player.
#[derive(Debug)]
pub(super) struct Occupant {
    pub(super) id: PlayerId,
    pub(super) name: String,
    pub(super) profile: ProfileId,
    /// The identity token, repeated in the welcome that answers a resume.
    identity_token: String,
    /// The player's connection; `None` while the seat is held for a resume.
    pub(super) link: Option<PlayerLink>,
    /// Since when the connection has been gone, while the seat is held.
    away_since: Option<Tick>,
    /// The nonce of the one resume token that is valid now.
    resume_nonce: u64,
    /// Keeps the seat counted in the directory for as long as the player is seated.
    _lease: SeatLease,
    /// After a resume, the next input's sequence starts the count anew: a reloaded page
    /// numbers its inputs from the start.
    resync_seq: bool,
    /// The last input sequence applied (or skipped); reported back in snapshots.
    pub(super) last_seq: Seq,
    /// Inputs this player may still have applied; one is added per tick.
    input_credit: u32,
    /// The newest snapshot this client has acknowledged that the room still holds.
    pub(super) acked: Option<Tick>,
    /// The last acknowledgement read, as sent (low 16 tick bits).
    pub(super) last_ack: Option<u16>,
    /// When a new acknowledgement last arrived (or the player joined).
    pub(super) ack_progress_at: Tick,
    /// Inputs taken from the player's queue, applied or dropped.
    pub(super) inputs_taken: u64,
    /// What the player's per-second rates are taken against.
    pub(super) rates: RateWindow,
}

#[derive(Debug)]
pub(super) struct Room {
    pub(super) id: String,
    pub(super) settings: Arc<RoomSettings>,
    pub(super) world: World,
    /// Sorted by id, like the world's players.
    pub(super) occupants: Vec<Occupant>,
    next_player_id: u8,
    pub(super) metrics: Arc<Metrics>,
    /// Reused every tick so the steady state allocates nothing for them.
    inputs: Vec<(PlayerId, InputFrame)>,
    /// What a shooter's claimed view is checked against.
    rewind: RewindJudge,
    events: Vec<GameEvent>,
    /// The last `SNAPSHOT_RING` snapshots sent, oldest first: the possible baselines.
    pub(super) sent: VecDeque<QState>,
    /// What the snapshot being sent needs between encoding and writing, kept across
    /// ticks so the steady state allocates nothing.
    pub(super) outgoing: Outgoing,
    /// When the match being played started, in milliseconds since the Unix epoch.
    pub(super) match_started_ms: i64,
    /// Finished matches handed to the store, waiting for it to say they are saved.
    pub(super) saving: Vec<Saving>,
    /// The recording of the match being played.
    pub(super) recorder: Recorder,
    /// The most recent tick times, for the console.
    pub(super) tick_times: TickTimes,
    /// An operator closed the room, or it drained: it closes as soon as it is empty.
    pub(super) closing: bool,
    /// Who watches without a seat, and what they are shown.
    pub(super) spectators: Spectators,
}

/// A finished match the store has not confirmed yet.
#[derive(Debug)]
pub(super) struct Saving {
    /// Gets the match's id once it is saved.
    pub(super) saved: oneshot::Receiver<MatchId>,
    /// Its recording, kept under that id.
    pub(super) replay: Option<RecordingKey>,
}

impl Room {
    pub(super) fn new(id: String, settings: Arc<RoomSettings>, metrics: Arc<Metrics>) -> Room {
        let spectators = Spectators::new(settings.spectators, settings.snapshot_hz);
        let mut world = World::with_rules(settings.map.clone(), settings.rules);
        world.compensate_lag(settings.max_rewind_ticks);
        let rewind = RewindJudge::new(&settings, metrics.clone());
        Room {
            id,
            world,
            recorder: Recorder::new(settings.replays.clone(), settings.tick_hz),
            settings,
            occupants: Vec::new(),
            next_player_id: 1,
            metrics,
            inputs: Vec::new(),
            rewind,
            events: Vec::new(),
            sent: VecDeque::with_capacity(SNAPSHOT_RING),
            outgoing: Outgoing::default(),
            match_started_ms: super::results::unix_ms_now(),
            saving: Vec::new(),
            tick_times: TickTimes::default(),
            closing: false,
            spectators,
        }
    }

    /// One simulation step: seats and unseats, applies the inputs, steps the world and
    /// queues what happened for every occupant.
    /// `ticks_to_snapshot`: how many ticks after this one the next snapshots go out
    /// (0: this tick ends with them).
    pub(super) fn step(
        &mut self,
        commands: &mut mpsc::Receiver<RoomCmd>,
        dt: f32,
        ticks_to_snapshot: u32,
    ) {
        while let Ok(cmd) = commands.try_recv() {
            self.handle(cmd);
        }
        self.release_expired_seats();
        self.collect_inputs(ticks_to_snapshot);
        self.world.step(&self.inputs, dt, &mut self.events);
        self.broadcast_events();
        self.announce_saves();
        if self
            .world
            .tick
            .0
            .is_multiple_of(u32::from(self.settings.tick_hz.max(1)))
        {
            self.roll_rate_windows();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }

    /// Whether the server is draining, which closes rooms as their matches end.
    pub(super) fn is_draining(&self) -> bool {
        self.settings.draining.load(Ordering::Relaxed)
    }

    /// Lets every occupant go with `reason`, after the room failed.
    pub(super) fn evict_all(&mut self, reason: CloseReason) {
        for occupant in &mut self.occupants {
            if let Some(link) = &mut occupant.link {
                link.outbox.kick(reason);
            }
        }
        self.occupants.clear();
    }

    fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join {
                name,
                profile,
                token,
                link,
                lease,
                reply,
            } => self.join(
                Newcomer {
                    name,
                    profile,
                    identity_token: token,
                    lease,
                },
                link,
                reply,
            ),
            RoomCmd::Resume {
                claim,
                newest_tick,
                link,
                reply,
            } => self.resume(&claim, newest_tick, link, reply),
            RoomCmd::Leave { id, link } => {
                if self.is_current_link(id, link) {
                    self.leave(id);
                }
            }
            RoomCmd::Lost { id, link } => {
                if self.is_current_link(id, link) {
                    self.hold_seat(id, None);
                }
            }
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
            RoomCmd::Watch { link, reply } => self.watch(link, reply),
            RoomCmd::Unwatch { link } => self.spectators.unwatch(link),
            RoomCmd::Inspect { reply } => {
                let _ = reply.send(self.report());
            }
            RoomCmd::Kick { id, reason, reply } => {
                let _ = reply.send(self.kick_by_operator(id, reason.as_deref()));
            }
            RoomCmd::Close { reply } => {
                let _ = reply.send(self.close_by_operator());
            }
            RoomCmd::Announce { text } => self.announce(text),
            RoomCmd::Drain => {}
            #[cfg(test)]
            RoomCmd::Panic => panic!("room {} was asked to fail", self.id),
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

    /// True if `link` is the connection `id` plays on now; word from a replaced one is
    /// stale.
    fn is_current_link(&self, id: PlayerId, link: LinkId) -> bool {
        self.occupant(id)
            .and_then(|o| o.link.as_ref())
            .is_some_and(|current| current.id == link)
    }

    fn join(&mut self, newcomer: Newcomer, link: PlayerLink, reply: oneshot::Sender<PlayerId>) {
        // A connection that stopped waiting (its join timed out) is gone: seating it
        // would leave a ghost in the world until the stall timeout.
        if reply.is_closed() {
            return;
        }
        let id = self.allocate_player_id();
        let name = dedup_name(&newcomer.name, |candidate| {
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
            profile: newcomer.profile,
            identity_token: newcomer.identity_token,
            link: Some(link),
            away_since: None,
            resume_nonce: new_nonce(),
            _lease: newcomer.lease,
            resync_seq: false,
            last_seq: Seq(0),
            input_credit: 1,
            acked: None,
            last_ack: None,
            ack_progress_at: self.world.tick,
            inputs_taken: 0,
            rates: RateWindow::default(),
        };
        let idx = self.occupants.partition_point(|o| o.id < id);
        self.occupants.insert(idx, occupant);
        self.welcome(idx, false);
        if reply.send(id).is_err() {
            // It went between the check above and now; nobody will send its Leave.
            self.leave(id);
            return;
        }
        tracing::debug!(room = %self.id, player = id.0, "player joined");
    }

    /// Seats a new connection in the seat `claim` names, in place of whatever connection
    /// held it: the player, their score and health carry on, and nobody else sees a
    /// leave or a join.
    fn resume(
        &mut self,
        claim: &SeatClaim,
        newest_tick: Option<Tick>,
        link: PlayerLink,
        reply: oneshot::Sender<Result<PlayerId, ResumeRefused>>,
    ) {
        if reply.is_closed() {
            return;
        }
        let id = claim.player;
        let idx = match self.occupants.binary_search_by_key(&id, |o| o.id) {
            Ok(idx) if claim.room == self.id && self.occupants[idx].profile == claim.profile => idx,
            _ => {
                let _ = reply.send(Err(ResumeRefused::SeatGone));
                return;
            }
        };
        if self.occupants[idx].resume_nonce != claim.nonce {
            let _ = reply.send(Err(ResumeRefused::Replayed));
            return;
        }
        let baseline = newest_tick.filter(|tick| self.sent.iter().any(|s| s.tick == *tick));
        let now = self.world.tick;
        let occupant = &mut self.occupants[idx];
        if let Some(mut replaced) = occupant.link.replace(link) {
            replaced.outbox.kick(CloseReason::Replaced);
        }
        let was_away = occupant.away_since.take().is_some();
        occupant.resume_nonce = new_nonce();
        occupant.resync_seq = true;
        occupant.input_credit = 1;
        occupant.acked = baseline;
        occupant.last_ack = None;
        occupant.ack_progress_at = now;
        // The new connection counts its traffic from zero.
        occupant.rates = RateWindow::default();
        self.welcome(idx, true);
        if was_away {
            self.broadcast(&ServerMsg::PlayerBack { id });
        }
        if reply.send(Ok(id)).is_err() {
            // Gone again before it heard back: hold the seat as before.
            self.hold_seat(id, None);
            return;
        }
        self.metrics.resumes.inc();
        tracing::debug!(room = %self.id, player = id.0, ?baseline, "player resumed");
    }

    /// Admits a spectator, unless the room has as many as it admits.
    fn watch(&mut self, link: SpectatorLink, reply: oneshot::Sender<Result<(), WatchRefused>>) {
        // Like a join: a connection that stopped waiting is not admitted.
        if reply.is_closed() {
            return;
        }
        let link_id = link.id;
        let occupants = &self.occupants;
        let present = || {
            occupants
                .iter()
                .map(|o| RosterEntry {
                    id: o.id,
                    name: o.name.clone(),
                    away: o.away_since.is_some(),
                })
                .collect()
        };
        let rates = (self.settings.tick_hz, self.settings.snapshot_hz);
        let admitted = self
            .spectators
            .watch(link, &self.id, &self.settings.map, rates, present)
            .map_err(|(_, why)| why);
        let was_admitted = admitted.is_ok();
        if reply.send(admitted).is_err() && was_admitted {
            self.spectators.unwatch(link_id);
        }
    }

    /// Queues the welcome for the occupant at `idx`, with a fresh resume token.
    fn welcome(&mut self, idx: usize, resumed: bool) {
        let occupant = &self.occupants[idx];
        let resume_token = self.settings.seat_tokens.issue(&SeatClaim {
            room: self.id.clone(),
            player: occupant.id,
            profile: occupant.profile,
            nonce: occupant.resume_nonce,
        });
        let welcome = ServerMsg::Welcome(Box::new(Welcome {
            player_id: occupant.id,
            name: occupant.name.clone(),
            room: self.id.clone(),
            tick_hz: self.settings.tick_hz,
            snapshot_hz: self.settings.snapshot_hz,
            input_batch: self.settings.input_batch,
            tick: self.world.tick,
            map: self.settings.map.clone(),
            roster: self
                .occupants
                .iter()
                .map(|o| RosterEntry {
                    id: o.id,
                    name: o.name.clone(),
                    away: o.away_since.is_some(),
                })
                .collect(),
            profile: occupant.profile,
            token: occupant.identity_token.clone(),
            resume_token,
            resumed,
        }));
        if let Some(link) = &mut self.occupants[idx].link {
            link.outbox.queue(&encode_server(&welcome));
        }
    }

    /// The player's connection is gone (or is being closed with `kick`): keep the seat
    /// and the player in the world, with no input, for the grace window. Without one,
    /// they leave now.
    pub(super) fn hold_seat(&mut self, id: PlayerId, kick: Option<CloseReason>) {
        let Ok(idx) = self.occupants.binary_search_by_key(&id, |o| o.id) else {
            return;
        };
        let now = self.world.tick;
        let occupant = &mut self.occupants[idx];
        if let Some(mut link) = occupant.link.take()
            && let Some(reason) = kick
        {
            tracing::info!(room = %self.id, player = id.0, ?reason, "closing a player's connection");
            link.outbox.kick(reason);
        }
        if self.settings.resume_grace.is_zero() {
            self.leave(id);
            return;
        }
        if occupant.away_since.is_none() {
            occupant.away_since = Some(now);
            self.broadcast(&ServerMsg::PlayerAway { id });
            tracing::debug!(room = %self.id, player = id.0, "seat held for a resume");
        }
    }

    /// Lets go of the held seats whose grace window has ended.
    fn release_expired_seats(&mut self) {
        let grace_ticks =
            (self.settings.resume_grace.as_secs_f64() * f64::from(self.settings.tick_hz)) as i32;
        let now = self.world.tick;
        let expired: Vec<PlayerId> = self
            .occupants
            .iter()
            .filter(|o| {
                o.away_since
                    .is_some_and(|since| now.since(since) >= grace_ticks)
            })
            .map(|o| o.id)
            .collect();
        for id in expired {
            self.metrics.seats_given_up.inc();
            self.leave(id);
        }
    }

    pub(super) fn leave(&mut self, id: PlayerId) {
        let Ok(idx) = self.occupants.binary_search_by_key(&id, |o| o.id) else {
            return;
        };
        self.occupants.remove(idx);
        if self.occupants.is_empty() {
            // An empty room may stay open a while: its match is played by nobody, and
            // its recording would hold a file open for nothing (see `record`'s caller).
            self.recorder.discard();
        }
        self.world.remove_player(id);
        self.broadcast(&ServerMsg::PlayerLeft { id });
        tracing::debug!(room = %self.id, player = id.0, "player left");
    }

    /// Reads what each player sent (see `uplink` for when), and takes their queued
    /// inputs in sequence order, within the player's credit.
    fn collect_inputs(&mut self, ticks_to_snapshot: u32) {
        self.inputs.clear();
        // A snapshot interval's input (a frame a tick), read on the snapshot tick, is
        // applied on it when it is at most a tick's worth; past that the room looks
        // every tick, as input arrives.
        let look =
            ticks_to_snapshot == 0 || self.settings.ticks_per_snapshot() > MAX_INPUTS_PER_TICK;
        for occupant in &mut self.occupants {
            let Some(link) = &mut occupant.link else {
                continue;
            };
            occupant.input_credit = (occupant.input_credit + 1).min(MAX_INPUT_CREDIT);
            link.uplink.pull(look, &mut link.inputs);
            let mut applied = 0;
            let waiting = &mut link.inputs;
            while applied < MAX_INPUTS_PER_TICK && occupant.input_credit > 0 {
                let Some(input) = waiting.pop_front() else {
                    break;
                };
                occupant.inputs_taken += 1;
                if std::mem::take(&mut occupant.resync_seq) {
                    occupant.last_seq = Seq(input.seq.0.wrapping_sub(1));
                }
                if !is_next_input(occupant.last_seq, input.seq) {
                    continue;
                }
                occupant.last_seq = input.seq;
                occupant.input_credit -= 1;
                applied += 1;
                let input = InputFrame {
                    view: input
                        .view
                        .and_then(|view| self.rewind.judge(view, self.world.tick, &link.stats)),
                    ..input
                };
                self.inputs.push((occupant.id, input));
            }
            // A backlog means the client sends faster than we tick: drop its oldest
            // extras rather than let its inputs lag further and further behind.
            while waiting.len() > MAX_QUEUED_INPUTS {
                let Some(input) = waiting.pop_front() else {
                    break;
                };
                occupant.inputs_taken += 1;
                if is_next_input(occupant.last_seq, input.seq) {
                    occupant.last_seq = input.seq;
                }
            }
        }
    }

    fn broadcast_events(&mut self) {
        for event_idx in 0..self.events.len() {
            let event = self.events[event_idx];
            self.broadcast(&ServerMsg::Event(event));
            match event {
                GameEvent::MatchOver { reason } => self.finish_match(reason.into()),
                GameEvent::MatchStarted => {
                    self.match_started_ms = super::results::unix_ms_now();
                    self.close_if_drained(event);
                }
                _ => {}
            }
        }
        self.events.clear();
    }

    /// Queues a message that must arrive for every occupant, to go with the next snapshot.
    pub(super) fn broadcast(&mut self, msg: &ServerMsg) {
        let bytes = encode_server(msg);
        for link in self.occupants.iter_mut().filter_map(|o| o.link.as_mut()) {
            link.outbox.queue(&bytes);
        }
        self.spectators.hold_message(msg, &bytes);
    }
}

/// Who a join seats, as the connection vouched for them.
#[derive(Debug)]
struct Newcomer {
    name: String,
    profile: ProfileId,
    identity_token: String,
    lease: SeatLease,
}

/// True if `seq` is the next input to apply after `last`: later, and not implausibly far.
fn is_next_input(last: Seq, seq: Seq) -> bool {
    let ahead = seq.since(last);
    ahead > 0 && ahead <= MAX_SEQ_JUMP
}

#[cfg(test)]
mod tests {
    use super::*;

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
