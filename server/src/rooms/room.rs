//! One room: its world and the players seated in it. The room alone owns both:
//! connections reach it only through its command channel and their own input queues,
//! and it reaches them only through non-blocking outboxes. It never waits for a client.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
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
use crate::rooms::outbox::Outbox;
use crate::store::{MatchId, ResultSink};

/// How every room runs; set once from the flags.
#[derive(Clone, Debug)]
pub(crate) struct RoomSettings {
    pub tick_hz: u16,
    pub snapshot_hz: u16,
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
}

/// What a connection hands the room when it joins.
#[derive(Debug)]
pub(crate) struct PlayerLink {
    /// Validated input frames, in arrival order. Bounded: a flooding client fills only its own.
    pub inputs: mpsc::Receiver<InputFrame>,
    pub acks: Arc<AckSlot>,
    pub outbox: Outbox,
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
    /// Makes the room's next tick panic, so tests can see a failing room contained.
    #[cfg(test)]
    Panic,
}

/// A seated player as the room sees them: the connection-facing half of a player.
#[derive(Debug)]
pub(super) struct Occupant {
    pub(super) id: PlayerId,
    pub(super) name: String,
    pub(super) profile: ProfileId,
    pub(super) link: PlayerLink,
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
    events: Vec<GameEvent>,
    /// The last `SNAPSHOT_RING` snapshots sent, oldest first: the possible baselines.
    pub(super) sent: VecDeque<QState>,
    /// What the snapshot being sent needs between encoding and writing, kept across
    /// ticks so the steady state allocates nothing.
    pub(super) outgoing: Outgoing,
    /// When the match being played started, in milliseconds since the Unix epoch.
    pub(super) match_started_ms: i64,
    /// Finished matches handed to the store, waiting for it to say they are saved.
    pub(super) saving: Vec<oneshot::Receiver<MatchId>>,
}

/// One snapshot tick's encoding: a body per baseline in use, and a head per recipient.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    /// Encoded bodies of the current snapshot, one per baseline in use.
    pub(super) bodies: Vec<(Option<Tick>, Bytes)>,
    /// Every recipient's snapshot head, end to end.
    pub(super) heads: Vec<u8>,
    pub(super) recipients: Vec<Recipient>,
}

/// Who gets the snapshot being sent, and which parts are theirs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Recipient {
    /// Index in the room's occupants.
    pub(super) occupant: usize,
    /// Where this recipient's head ends in `Outgoing::heads`; it starts where the
    /// previous one's ends.
    pub(super) head_end: usize,
    /// Index of its body in `Outgoing::bodies`.
    pub(super) body: usize,
}

impl Room {
    pub(super) fn new(id: String, settings: Arc<RoomSettings>, metrics: Arc<Metrics>) -> Room {
        Room {
            id,
            world: World::with_rules(settings.map.clone(), settings.rules),
            settings,
            occupants: Vec::new(),
            next_player_id: 1,
            metrics,
            inputs: Vec::new(),
            events: Vec::new(),
            sent: VecDeque::with_capacity(SNAPSHOT_RING),
            outgoing: Outgoing::default(),
            match_started_ms: super::results::unix_ms_now(),
            saving: Vec::new(),
        }
    }

    /// One simulation step: seats and unseats, applies the inputs, steps the world and
    /// queues what happened for every occupant.
    pub(super) fn step(&mut self, commands: &mut mpsc::Receiver<RoomCmd>, dt: f32) {
        while let Ok(cmd) = commands.try_recv() {
            self.handle(cmd);
        }
        self.collect_inputs();
        self.world.step(&self.inputs, dt, &mut self.events);
        self.broadcast_events();
        self.announce_saves();
    }

    pub(super) fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }

    /// Lets every occupant go with `reason`, after the room failed.
    pub(super) fn evict_all(&mut self, reason: CloseReason) {
        for occupant in &mut self.occupants {
            occupant.link.outbox.kick(reason);
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
                reply,
            } => self.join(name, profile, token, link, reply),
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

    fn join(
        &mut self,
        name: String,
        profile: ProfileId,
        token: String,
        link: PlayerLink,
        reply: oneshot::Sender<PlayerId>,
    ) {
        // A connection that stopped waiting (its join timed out) is gone: seating it
        // would leave a ghost in the world until the stall timeout.
        if reply.is_closed() {
            return;
        }
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
            profile,
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
            profile,
            token,
        }));
        self.occupants[idx]
            .link
            .outbox
            .queue(&encode_server(&welcome));
        if reply.send(id).is_err() {
            // It went between the check above and now; nobody will send its Leave.
            self.leave(id);
            return;
        }
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
            match event {
                GameEvent::MatchOver { reason } => self.finish_match(reason.into()),
                GameEvent::MatchStarted => self.match_started_ms = super::results::unix_ms_now(),
                _ => {}
            }
        }
        self.events.clear();
    }

    /// Queues a message that must arrive for every occupant, to go with the next snapshot.
    pub(super) fn broadcast(&mut self, msg: &ServerMsg) {
        let bytes = encode_server(msg);
        for occupant in &mut self.occupants {
            occupant.link.outbox.queue(&bytes);
        }
    }

    pub(super) fn kick(&mut self, id: PlayerId, reason: CloseReason) {
        if let Ok(idx) = self.occupants.binary_search_by_key(&id, |o| o.id) {
            tracing::info!(room = %self.id, player = id.0, ?reason, "kicking player");
            self.occupants[idx].link.outbox.kick(reason);
            self.leave(id);
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
