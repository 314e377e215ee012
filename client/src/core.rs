//! What a client knows of its room, rebuilt from the server's messages alone.

use std::collections::VecDeque;

use shared::codec::{DecodeError, decode_server, encoded_len};
use shared::consts::{MAX_INPUT_BATCH, SNAPSHOT_RING};
use shared::game::GameEvent;
use shared::game::{InputFrame, ViewTime, buttons};
use shared::protocol::{
    ClientMsg, MatchResults, ServerMsg, SnapshotMsg, TickRef, Watching, Welcome,
};
use shared::quant::dequantize_vel;
use shared::snapshot::{DeltaError, Fixed16, QState, apply};
use shared::view::Snapshot;
use shared::{Map, PlayerId, ProfileId, Seq, Tick};

/// A server frame this client could not use.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Delta(#[from] DeltaError),
}

/// What the snapshots cost on the wire, for the net graph and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SnapshotStats {
    pub full: u64,
    pub deltas: u64,
    /// Player deltas in delta snapshots that moved the player.
    pub moving_players: u64,
    /// Bytes those deltas took, plus their share of the changed-players bitmap.
    pub moving_player_bytes: u64,
}

/// A client's view of the room, updated by `apply` with every server message.
#[derive(Debug, Default)]
pub struct RoomView {
    pub me: Option<PlayerId>,
    pub room: String,
    pub map: Option<Map>,
    pub tick_hz: u16,
    pub snapshot_hz: u16,
    /// Ticks of input gathered into each message, as the welcome asked (at least 1).
    pub input_batch: u8,
    /// Everyone in the room: names, and who is away.
    pub roster: Roster,
    /// The newest snapshot, as the room's state at its tick.
    pub snapshot: Option<Snapshot>,
    pub snapshots_received: u64,
    pub snapshot_stats: SnapshotStats,
    /// Chat lines as (sender name, text), oldest first, the newest `CHAT_LOG` kept.
    pub chat: Vec<(String, String)>,
    /// The operators' announcements, oldest first, the newest `CHAT_LOG` kept.
    pub announcements: Vec<String>,
    pub events: Vec<GameEvent>,
    /// This player's lasting identity and the token that proves it on the next visit.
    pub profile: Option<ProfileId>,
    pub token: Option<String>,
    /// Takes this seat back after a lost connection (`Hello::resume`); each works once.
    pub resume_token: Option<String>,
    /// The results of the match that ended last; cleared when the next starts.
    pub results: Option<MatchResults>,
    /// The id the store saved those results under, once it has.
    pub saved_match: Option<i64>,
    /// Recent snapshots as received, newest last: the baselines deltas refer to.
    received: VecDeque<QState>,
    /// The newest input sequence this client has sent or gathered to send.
    last_sent_seq: Seq,
    /// Inputs gathered since the last input message, oldest first.
    unsent_inputs: Vec<InputFrame>,
}

const CHAT_LOG: usize = 100;

/// Everyone in the room, by id. A sorted `Vec` rather than a `BTreeMap` and a
/// `BTreeSet`: a room seats a few dozen at most, and the browser module carries the
/// B-tree code anew for every map type it uses (about 8 KiB each).
#[derive(Debug, Default)]
pub struct Roster {
    /// Sorted by id, one per id.
    seats: Vec<Seat>,
}

/// One player in the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    pub id: PlayerId,
    pub name: String,
    /// Their connection dropped, and the seat is held while they reconnect.
    pub away: bool,
}

impl Roster {
    /// Everyone named, as a replay's roster lists them.
    pub fn of<'a>(names: impl IntoIterator<Item = (PlayerId, &'a str)>) -> Roster {
        let mut roster = Roster::default();
        for (id, name) in names {
            roster.join(id, name);
        }
        roster
    }

    pub fn name(&self, id: PlayerId) -> Option<&str> {
        let idx = self.find(id).ok()?;
        Some(&self.seats[idx].name)
    }

    pub fn is_away(&self, id: PlayerId) -> bool {
        self.find(id).is_ok_and(|idx| self.seats[idx].away)
    }

    /// Every seat, by id.
    pub fn iter(&self) -> std::slice::Iter<'_, Seat> {
        self.seats.iter()
    }

    pub fn len(&self) -> usize {
        self.seats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    fn find(&self, id: PlayerId) -> Result<usize, usize> {
        self.seats.binary_search_by_key(&id, |seat| seat.id)
    }

    /// Names a player, seating them if they are new.
    fn join(&mut self, id: PlayerId, name: &str) {
        match self.find(id) {
            Ok(idx) => name.clone_into(&mut self.seats[idx].name),
            Err(idx) => self.seats.insert(
                idx,
                Seat {
                    id,
                    name: name.to_owned(),
                    away: false,
                },
            ),
        }
    }

    fn set_away(&mut self, id: PlayerId, away: bool) {
        if let Ok(idx) = self.find(id) {
            self.seats[idx].away = away;
        }
    }

    fn leave(&mut self, id: PlayerId) {
        if let Ok(idx) = self.find(id) {
            self.seats.remove(idx);
        }
    }
}

impl RoomView {
    /// Decodes and applies one binary frame from the server, returning the message.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Result<ServerMsg, ApplyError> {
        let msg = decode_server(bytes)?;
        self.apply(&msg)?;
        Ok(msg)
    }

    pub fn apply(&mut self, msg: &ServerMsg) -> Result<(), DeltaError> {
        match msg {
            ServerMsg::Welcome(welcome) => self.welcome(welcome),
            ServerMsg::Watching(watching) => self.watching(watching),
            ServerMsg::Snapshot(snapshot) => self.snapshot(snapshot)?,
            ServerMsg::PlayerJoined { id, name } => self.roster.join(*id, name),
            ServerMsg::PlayerAway { id } => self.roster.set_away(*id, true),
            ServerMsg::PlayerBack { id } => self.roster.set_away(*id, false),
            ServerMsg::PlayerLeft { id } => {
                self.roster.leave(*id);
                if let Some(snapshot) = &mut self.snapshot {
                    snapshot.players.retain(|p| p.id != *id);
                }
            }
            ServerMsg::Chat { name, text, .. } => {
                self.chat.push((name.clone(), text.clone()));
                if self.chat.len() > CHAT_LOG {
                    self.chat.remove(0);
                }
            }
            ServerMsg::Announcement { text } => {
                self.announcements.push(text.clone());
                if self.announcements.len() > CHAT_LOG {
                    self.announcements.remove(0);
                }
            }
            ServerMsg::Event(event) => {
                if *event == GameEvent::MatchStarted {
                    self.results = None;
                    self.saved_match = None;
                }
                self.events.push(*event);
            }
            ServerMsg::MatchResults(results) => {
                self.results = Some((**results).clone());
                self.saved_match = None;
            }
            ServerMsg::MatchSaved { match_id } => self.saved_match = Some(*match_id),
            ServerMsg::Pong { .. }
            | ServerMsg::Notice { .. }
            | ServerMsg::Disconnect { .. }
            | ServerMsg::Redirect { .. } => {}
        }
        Ok(())
    }

    fn welcome(&mut self, welcome: &Welcome) {
        self.me = Some(welcome.player_id);
        self.room = welcome.room.clone();
        self.map = Some(welcome.map.clone());
        self.tick_hz = welcome.tick_hz;
        self.snapshot_hz = welcome.snapshot_hz;
        self.input_batch = welcome.input_batch.clamp(1, MAX_INPUT_BATCH);
        self.roster = Roster::default();
        for entry in &welcome.roster {
            self.roster.join(entry.id, &entry.name);
            self.roster.set_away(entry.id, entry.away);
        }
        self.profile = Some(welcome.profile);
        self.token = Some(welcome.token.clone());
        self.resume_token = Some(welcome.resume_token.clone());
        // A resumed seat carries on: the snapshots held stay, as baselines for the
        // deltas that follow.
        if !welcome.resumed {
            self.received.clear();
            self.snapshot = None;
            self.unsent_inputs.clear();
        }
    }

    /// Starts watching a room without a seat: nobody is `me`, and nothing carries over.
    fn watching(&mut self, watching: &Watching) {
        self.me = None;
        self.room = watching.room.clone();
        self.map = Some(watching.map.clone());
        self.tick_hz = watching.tick_hz;
        self.snapshot_hz = watching.snapshot_hz;
        self.roster = Roster::default();
        for entry in &watching.roster {
            self.roster.join(entry.id, &entry.name);
            self.roster.set_away(entry.id, entry.away);
        }
        self.received.clear();
        self.snapshot = None;
        self.unsent_inputs.clear();
    }

    /// The tick of the newest snapshot held, which a resume names as its baseline.
    pub fn newest_tick(&self) -> Option<Tick> {
        self.received.back().map(|s| s.tick)
    }

    fn snapshot(&mut self, msg: &SnapshotMsg) -> Result<(), DeltaError> {
        let (baseline, tick) = match msg.header.tick {
            TickRef::Full(tick) => (None, tick),
            TickRef::Delta {
                baseline_low,
                after,
            } => {
                let baseline = self
                    .received
                    .iter()
                    .rev()
                    .find(|s| s.tick.0 as u16 == baseline_low)
                    .ok_or(DeltaError::MissingBaseline)?;
                (Some(baseline), Tick(baseline.tick.0.wrapping_add(after)))
            }
        };
        let state = apply(baseline, tick, &msg.body)?;
        self.count(baseline.is_some(), msg);
        self.snapshots_received += 1;
        let newer = self
            .received
            .back()
            .is_none_or(|newest| tick.since(newest.tick) > 0);
        if !newer {
            return Ok(());
        }
        let dt = shared::consts::tick_dt(self.tick_hz);
        let mut snapshot = state.to_snapshot(dt);
        snapshot.ack_input = self.widen_input_ack(msg.header.ack_input_low);
        if let (Some(me), Some(vel)) = (self.me, msg.header.own_vel)
            && let Some(mine) = snapshot.players.iter_mut().find(|p| p.id == me)
        {
            mine.vel = dequantize_vel(vel);
        }
        self.snapshot = Some(snapshot);
        if self.received.len() >= 2 * SNAPSHOT_RING {
            self.received.pop_front();
        }
        self.received.push_back(state);
        Ok(())
    }

    fn count(&mut self, is_delta: bool, msg: &SnapshotMsg) {
        let stats = &mut self.snapshot_stats;
        if !is_delta {
            stats.full += 1;
            return;
        }
        stats.deltas += 1;
        let moving: Vec<_> = msg
            .body
            .changed
            .iter()
            .filter(|d| d.moved != [0, 0])
            .collect();
        if moving.is_empty() {
            return;
        }
        let bitmap_share =
            encoded_len(&msg.body.changed_bits) * moving.len() / msg.body.changed.len();
        stats.moving_players += moving.len() as u64;
        stats.moving_player_bytes +=
            (bitmap_share + moving.iter().map(|d| encoded_len(*d)).sum::<usize>()) as u64;
    }

    /// The full input sequence whose low 16 bits the server acknowledged: the latest
    /// sent sequence with those low bits (acks never run ahead of what was sent).
    fn widen_input_ack(&self, low: u16) -> Seq {
        let behind = (self.last_sent_seq.0 as u16).wrapping_sub(low);
        Seq(self.last_sent_seq.0.wrapping_sub(u32::from(behind)))
    }

    /// The tick of the newest snapshot applied, as acknowledgements carry it.
    fn ack(&self) -> Option<Fixed16> {
        self.received.back().map(|s| Fixed16(s.tick.0 as u16))
    }

    /// Gathers this tick's input; once the welcome's batch is full, returns the
    /// message that sends every input gathered, acknowledging the newest snapshot.
    /// Every client sends its inputs through here, so bots and browsers send alike.
    pub fn queue_input(&mut self, frame: InputFrame) -> Option<ClientMsg> {
        self.gather(frame);
        if self.unsent_inputs.len() < usize::from(self.input_batch.max(1)) {
            return None;
        }
        self.flush_inputs()
    }

    /// The message that sends every input gathered so far at once; `None` if there
    /// is none.
    pub fn flush_inputs(&mut self) -> Option<ClientMsg> {
        if self.unsent_inputs.is_empty() {
            return None;
        }
        Some(ClientMsg::Input {
            ack: self.ack(),
            frames: std::mem::take(&mut self.unsent_inputs),
        })
    }

    /// The message that sends `frame` now, after any inputs gathered before it.
    pub fn input_message(&mut self, frame: InputFrame) -> ClientMsg {
        self.gather(frame);
        // Invariant: `gather` just added a frame, so there is one to send.
        self.flush_inputs().expect("a frame was just gathered")
    }

    fn gather(&mut self, frame: InputFrame) {
        self.last_sent_seq = frame.seq;
        // A batch never outgrows what the server reads; a client held up for longer
        // sends what it has so far rather than a message the server would refuse.
        if self.unsent_inputs.len() >= usize::from(MAX_INPUT_BATCH) {
            self.unsent_inputs.remove(0);
        }
        self.unsent_inputs.push(frame);
    }

    /// An acknowledgement of the newest snapshot, for a client that is not sending
    /// inputs (a hidden tab, an idle connection). `None` before the first snapshot.
    pub fn ack_message(&self) -> Option<ClientMsg> {
        self.ack().map(|tick| ClientMsg::Ack { tick })
    }

    /// What a client that aims at the newest snapshot (it draws nothing, as a bot)
    /// claims to have seen, on a frame that fires: that snapshot, as it is.
    pub fn seen_when_firing(&self, held: u8) -> Option<ViewTime> {
        let newest = self
            .snapshot
            .as_ref()
            .filter(|_| held & buttons::FIRE != 0)?;
        Some(ViewTime::between(newest.tick, newest.tick, 0.0))
    }

    /// Takes the game events received since the last call.
    pub fn drain_events(&mut self) -> Vec<GameEvent> {
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use shared::codec::encode_server;
    use shared::protocol::{RosterEntry, SnapshotHeader};
    use shared::snapshot::{QPlayer, diff};

    use super::*;

    fn q_player(id: u8, x: u16) -> QPlayer {
        QPlayer {
            id: PlayerId(id),
            pos: [Fixed16(x), Fixed16(800)],
            aim: 0,
            health: 100,
            alive: true,
            score: 0,
        }
    }

    fn state(tick: u32, players: Vec<QPlayer>) -> QState {
        QState {
            tick: Tick(tick),
            players,
            projectiles: vec![],
            clock: shared::game::MatchClock::default(),
        }
    }

    fn snapshot_msg(baseline: Option<&QState>, current: &QState) -> ServerMsg {
        let tick = match baseline {
            Some(base) => TickRef::Delta {
                baseline_low: base.tick.0 as u16,
                after: current.tick.since(base.tick) as u32,
            },
            None => TickRef::Full(current.tick),
        };
        ServerMsg::Snapshot(SnapshotMsg {
            header: SnapshotHeader {
                tick,
                ack_input_low: 0,
                own_vel: Some([16, 0]),
            },
            body: diff(baseline, current),
        })
    }

    fn welcome(resumed: bool) -> ServerMsg {
        ServerMsg::Welcome(Box::new(Welcome {
            player_id: PlayerId(1),
            name: "ann".into(),
            room: "r1".into(),
            tick_hz: 60,
            snapshot_hz: 30,
            input_batch: 2,
            tick: Tick(0),
            map: Map::test_arena(),
            roster: vec![
                RosterEntry {
                    id: PlayerId(1),
                    name: "ann".into(),
                    away: false,
                },
                RosterEntry {
                    id: PlayerId(2),
                    name: "bob".into(),
                    away: resumed,
                },
            ],
            profile: ProfileId(9),
            token: "v1.0000000000000009.00".into(),
            resume_token: format!("s1.r1.1.0000000000000009.{:016x}.00", u8::from(resumed)),
            resumed,
        }))
    }

    fn welcomed() -> RoomView {
        let mut view = RoomView::default();
        view.apply_bytes(&encode_server(&welcome(false)))
            .expect("welcome decodes");
        view
    }

    #[test]
    fn watching_shows_the_room_with_nobody_of_ones_own() {
        let mut view = welcomed();
        let state1 = state(30, vec![q_player(1, 100), q_player(2, 200)]);
        view.apply(&snapshot_msg(None, &state1)).expect("full");
        let watching = ServerMsg::Watching(Box::new(Watching {
            room: "r2".into(),
            tick_hz: 60,
            snapshot_hz: 30,
            delay_ms: 2_000,
            map: Map::test_arena(),
            roster: vec![RosterEntry {
                id: PlayerId(5),
                name: "cat".into(),
                away: true,
            }],
        }));
        view.apply_bytes(&encode_server(&watching))
            .expect("the greeting decodes");
        assert_eq!(view.me, None, "a spectator has no player");
        assert_eq!(view.room, "r2");
        assert_eq!(view.roster.name(PlayerId(5)), Some("cat"));
        assert!(view.roster.is_away(PlayerId(5)));
        assert_eq!(view.roster.len(), 1, "the old room's roster is gone");
        assert!(
            view.snapshot.is_none() && view.newest_tick().is_none(),
            "nothing of the old room is a baseline"
        );
        let state2 = state(90, vec![q_player(5, 300)]);
        view.apply(&snapshot_msg(None, &state2)).expect("full");
        let state3 = state(92, vec![q_player(5, 310)]);
        view.apply(&snapshot_msg(Some(&state2), &state3))
            .expect("a delta against what the spectator acknowledged");
        assert_eq!(view.snapshot.as_ref().map(|s| s.tick), Some(Tick(92)));
        assert_eq!(
            view.ack_message(),
            Some(ClientMsg::Ack { tick: Fixed16(92) }),
            "a spectator acknowledges with acks, having no input to carry them"
        );
    }

    #[test]
    fn a_bot_claims_the_newest_snapshot_only_when_it_fires() {
        let mut view = welcomed();
        assert_eq!(
            view.seen_when_firing(buttons::FIRE),
            None,
            "nothing seen yet"
        );
        view.apply(&snapshot_msg(None, &state(40, vec![q_player(1, 80)])))
            .expect("a full snapshot");
        assert_eq!(
            view.seen_when_firing(buttons::FIRE | buttons::UP),
            Some(ViewTime::between(Tick(40), Tick(40), 0.0))
        );
        assert_eq!(view.seen_when_firing(buttons::UP), None);
    }

    #[test]
    fn a_session_sends_what_it_drew_with_a_shot_and_nothing_with_a_step() {
        let ServerMsg::Welcome(welcome) = welcome(false) else {
            unreachable!("welcome() makes a welcome");
        };
        let mut session = crate::session::Session::new(*welcome);
        for (at, tick) in [(0.0, 10), (1.0 / 30.0, 12), (2.0 / 30.0, 14)] {
            let msg = snapshot_msg(None, &state(tick, vec![q_player(1, 80), q_player(2, 90)]));
            session.receive(&msg, at).expect("a full snapshot");
        }
        session.interp.frame(2.0 / 30.0, 1.0 / 60.0);
        let drawn = session.interp.drawn().expect("a frame was drawn");
        let frames = |msg: Option<ClientMsg>| match msg {
            Some(ClientMsg::Input { frames, .. }) => frames,
            other => panic!("an input message, got {other:?}"),
        };
        let _ = session.input(buttons::FIRE, 0.5);
        let sent = frames(session.input(buttons::UP, 0.5));
        assert_eq!(sent[0].view, Some(drawn), "the shot names the drawn moment");
        assert_eq!(sent[1].view, None, "a step carries no view");
    }

    #[test]
    fn a_resumed_welcome_keeps_the_baselines_and_a_fresh_one_drops_them() {
        let mut view = welcomed();
        let base = state(5, vec![q_player(1, 80)]);
        view.apply(&snapshot_msg(None, &base))
            .expect("a full snapshot");
        view.apply(&welcome(true)).expect("a resumed welcome");
        assert_eq!(view.newest_tick(), Some(Tick(5)), "the baseline is kept");
        assert_eq!(
            view.resume_token.as_deref(),
            Some("s1.r1.1.0000000000000009.0000000000000001.00"),
            "the new token replaces the used one"
        );
        assert!(
            view.roster.is_away(PlayerId(2)),
            "the roster says who is away"
        );
        let next = state(9, vec![q_player(1, 120)]);
        view.apply(&snapshot_msg(Some(&base), &next))
            .expect("a delta against the tick held before the resume applies");
        view.apply(&ServerMsg::PlayerBack { id: PlayerId(2) })
            .expect("applies");
        assert!(!view.roster.is_away(PlayerId(2)), "the player is back");

        view.apply(&welcome(false)).expect("a fresh welcome");
        assert_eq!(view.newest_tick(), None, "a new seat starts from nothing");
    }

    #[test]
    fn roster_keeps_seats_by_id_and_a_rejoin_renames() {
        let mut roster = Roster::default();
        roster.join(PlayerId(7), "gus");
        roster.join(PlayerId(3), "cat");
        roster.join(PlayerId(5), "eve");
        roster.set_away(PlayerId(5), true);
        roster.join(PlayerId(5), "eva");
        let ids: Vec<_> = roster.iter().map(|seat| seat.id.0).collect();
        assert_eq!(ids, [3, 5, 7], "seats are in id order");
        assert_eq!(roster.name(PlayerId(5)), Some("eva"), "a rejoin renames");
        assert!(roster.is_away(PlayerId(5)), "a rename keeps the seat held");
        roster.leave(PlayerId(3));
        assert_eq!(roster.name(PlayerId(3)), None, "the leaver is gone");
        assert_eq!(roster.len(), 2);
    }

    #[test]
    fn view_follows_welcome_joins_leaves_and_snapshots() {
        let mut view = welcomed();
        view.apply(&ServerMsg::PlayerJoined {
            id: PlayerId(2),
            name: "bob".into(),
        })
        .expect("applies");
        let full = state(5, vec![q_player(1, 80), q_player(2, 160)]);
        view.apply_bytes(&encode_server(&snapshot_msg(None, &full)))
            .expect("applies");
        assert_eq!(view.me, Some(PlayerId(1)));
        assert_eq!(view.roster.len(), 2);
        let snapshot = view.snapshot.as_ref().expect("a snapshot arrived");
        assert_eq!(
            snapshot.players[1].pos.x, 20.0,
            "160 grid steps are 20 units"
        );
        assert_eq!(
            snapshot.players[0].vel.x, 1.0,
            "own velocity comes from the header"
        );
        assert_eq!(
            snapshot.players[1].vel.x, 0.0,
            "others' velocity is not sent"
        );
        view.apply(&ServerMsg::PlayerLeft { id: PlayerId(2) })
            .expect("applies");
        let names: Vec<_> = view.roster.iter().map(|seat| seat.name.as_str()).collect();
        assert_eq!(names, ["ann"]);
        let players = &view.snapshot.as_ref().expect("still there").players;
        assert_eq!(players.len(), 1, "the leaver is gone from the view at once");
    }

    #[test]
    fn deltas_apply_to_the_acknowledged_baseline() {
        let mut view = welcomed();
        let base = state(10, vec![q_player(1, 80), q_player(2, 160)]);
        view.apply(&snapshot_msg(None, &base))
            .expect("full applies");
        let input = view.input_message(InputFrame::default());
        assert!(
            matches!(
                input,
                ClientMsg::Input {
                    ack: Some(Fixed16(10)),
                    ..
                }
            ),
            "inputs acknowledge the newest snapshot: {input:?}"
        );
        let current = state(12, vec![q_player(1, 88), q_player(3, 0)]);
        view.apply(&snapshot_msg(Some(&base), &current))
            .expect("delta applies");
        let snapshot = view.snapshot.as_ref().expect("snapshot");
        assert_eq!(snapshot.tick, Tick(12));
        let ids: Vec<_> = snapshot.players.iter().map(|p| p.id.0).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(snapshot.players[0].pos.x, 11.0);
        assert_eq!(view.snapshot_stats.deltas, 1);
        assert_eq!(view.snapshot_stats.moving_players, 1);
        assert!(view.ack_message().is_some());
    }

    #[test]
    fn a_delta_against_an_unknown_baseline_is_an_error() {
        let mut view = welcomed();
        let base = state(10, vec![q_player(1, 80)]);
        let current = state(12, vec![q_player(1, 88)]);
        let refused = view.apply(&snapshot_msg(Some(&base), &current));
        assert_eq!(refused, Err(DeltaError::MissingBaseline));
        assert!(view.snapshot.is_none());
    }

    #[test]
    fn an_older_snapshot_does_not_replace_a_newer_one() {
        let mut view = welcomed();
        for tick in [10, 9] {
            view.apply(&snapshot_msg(None, &state(tick, vec![])))
                .expect("applies");
        }
        assert_eq!(view.snapshot.map(|s| s.tick), Some(Tick(10)));
        assert_eq!(view.snapshots_received, 2);
    }

    #[test]
    fn inputs_go_up_in_the_welcomes_batches_oldest_first_with_the_newest_ack() {
        let mut view = welcomed();
        assert_eq!(
            view.input_batch, 2,
            "the welcome asked for two ticks a message"
        );
        view.apply(&snapshot_msg(None, &state(10, vec![q_player(1, 80)])))
            .expect("full applies");
        let frame = |seq| InputFrame {
            seq: Seq(seq),
            ..InputFrame::default()
        };
        assert_eq!(view.queue_input(frame(1)), None, "the first tick waits");
        let sent = view.queue_input(frame(2));
        assert_eq!(
            sent,
            Some(ClientMsg::Input {
                ack: Some(Fixed16(10)),
                frames: vec![frame(1), frame(2)],
            }),
            "the second tick sends both"
        );
        assert_eq!(view.queue_input(frame(3)), None);
        assert_eq!(
            view.flush_inputs(),
            Some(ClientMsg::Input {
                ack: Some(Fixed16(10)),
                frames: vec![frame(3)],
            }),
            "a flush sends what is gathered"
        );
        assert_eq!(view.flush_inputs(), None, "and nothing twice");
    }

    #[test]
    fn input_acks_widen_to_the_sent_sequence() {
        let mut view = welcomed();
        view.input_message(InputFrame {
            seq: Seq(70_000),
            ..InputFrame::default()
        });
        assert_eq!(view.widen_input_ack(70_000u32 as u16), Seq(70_000));
        assert_eq!(view.widen_input_ack((69_990u32) as u16), Seq(69_990));
    }
}
