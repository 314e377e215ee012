//! Rooms driven by hand: a manual clock and in-memory connections, no sockets and no
//! sleeps. Each test steps a room tick by tick, exactly as a room thread would, and
//! reads what each player was sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use shared::codec::decode_server;
use shared::consts::{MAX_INPUT_CREDIT, MAX_INPUTS_PER_TICK, SNAPSHOT_RING};
use shared::game::InputFrame;
use shared::game::{MatchEnd, MatchRules};
use shared::protocol::{CloseReason, ServerMsg, SnapshotHeader, TickRef};
use shared::{PlayerId, ProfileId, Seq, Tick};
use tokio::sync::{mpsc, oneshot};

use crate::net::frame::binary_payloads;
use crate::ops::metrics::Metrics;
use crate::rooms::ack::AckSlot;
use crate::rooms::directory::SeatLease;
use crate::rooms::input_queue::InputQueue;
use crate::rooms::outbox::{Downlink, Kick, Outbox, Overflow, Queued};
use crate::rooms::room::{LinkId, PlayerLink, ResumeRefused, RoomCmd, RoomSettings};
use crate::rooms::runner::{RoomKey, RoomRunner, SLOTS_PER_TICK, Ticked};
use crate::rooms::scheduler::{Janitor, RoomThread};
use crate::rooms::seat_token::{SeatClaim, SeatTokens};
use crate::rooms::spectators::{SpectatorLink, SpectatorSettings, WatchRefused};
use crate::rooms::uplink::Uplink;
use crate::store::replays::ReplayWriter;
use crate::store::{EndReason, MatchId, MatchResult, ResultSink};

const TICK_HZ: u16 = 60;
const SNAPSHOT_HZ: u16 = 30;
const GRACE: Duration = Duration::from_secs(10);
const STALL: Duration = Duration::from_secs(2);
const RESUME_GRACE: Duration = Duration::from_secs(5);
const SEAT_KEY: [u8; 32] = [9; 32];
/// Five snapshots at `SNAPSHOT_HZ`.
const SPECTATOR_DELAY: Duration = Duration::from_millis(5000 / SNAPSHOT_HZ as u64);
const MAX_SPECTATORS: u16 = 2;

/// A connection that keeps every payload it is sent, in order.
#[derive(Debug, Default)]
pub(super) struct MemoryDownlink {
    payloads: Mutex<Vec<Vec<u8>>>,
    /// Refuse the next snapshots, as a client whose backlog is full.
    full: AtomicBool,
}

impl Downlink for MemoryDownlink {
    fn send_snapshot(&self, queued: &Queued, head: &[u8], body: &[u8]) -> Result<(), Overflow> {
        if self.full.load(Ordering::Relaxed) {
            return Err(Overflow);
        }
        let mut payloads = self.payloads.lock();
        payloads.extend(binary_payloads(&queued.frames));
        payloads.push([head, body].concat());
        Ok(())
    }

    fn send_now(&self, payload: &[u8]) -> Result<(), Overflow> {
        if self.full.load(Ordering::Relaxed) {
            return Err(Overflow);
        }
        self.payloads.lock().push(payload.to_vec());
        Ok(())
    }
}

/// A player's socket as the room reads it: what the test sends waits here until the
/// room pulls, as it waits in a real socket until the room's tick reads it.
#[derive(Debug)]
struct MemoryUplink {
    unread: Mutex<Vec<InputFrame>>,
    /// Whether the room said each look was due, in order.
    looks: Mutex<Vec<bool>>,
}

impl MemoryUplink {
    fn new() -> Arc<MemoryUplink> {
        Arc::new(MemoryUplink {
            unread: Mutex::default(),
            looks: Mutex::default(),
        })
    }

    fn send(&self, frame: InputFrame) {
        self.unread.lock().push(frame);
    }
}

impl Uplink for MemoryUplink {
    fn pull(&self, due: bool, inputs: &mut InputQueue) {
        self.looks.lock().push(due);
        if !due {
            return;
        }
        inputs.extend(std::mem::take(&mut *self.unread.lock()));
    }
}

/// One player's end of an in-memory connection.
struct TestPlayer {
    id: PlayerId,
    inputs: Arc<MemoryUplink>,
    acks: Arc<AckSlot>,
    downlink: Arc<MemoryDownlink>,
    kicked: oneshot::Receiver<Kick>,
    next_seq: u32,
}

impl TestPlayer {
    /// Everything sent since the last call, decoded.
    fn received(&self) -> Vec<ServerMsg> {
        std::mem::take(&mut *self.downlink.payloads.lock())
            .iter()
            .map(|payload| decode_server(payload).expect("the room sends what decodes"))
            .collect()
    }

    /// The headers of the snapshots sent since the last call.
    fn snapshot_headers(&self) -> Vec<SnapshotHeader> {
        self.received()
            .into_iter()
            .filter_map(|msg| match msg {
                ServerMsg::Snapshot(snapshot) => Some(snapshot.header),
                _ => None,
            })
            .collect()
    }

    /// The input acknowledgement of the newest snapshot sent since the last call.
    fn newest_input_acked(&self) -> u16 {
        self.snapshot_headers()
            .last()
            .expect("a snapshot")
            .ack_input_low
    }

    fn send_input(&mut self) {
        self.send_input_held(0);
    }

    fn send_input_held(&mut self, buttons: u8) {
        self.next_seq += 1;
        let frame = InputFrame {
            seq: Seq(self.next_seq),
            buttons,
            ..InputFrame::default()
        };
        self.inputs.send(frame);
    }

    fn kick_reason(&mut self) -> Option<CloseReason> {
        self.kicked.try_recv().ok().map(|kick| kick.reason)
    }
}

/// A store stand-in that keeps what it is given in memory and saves it at once; the
/// real store is tested against real files in `store`.
#[derive(Debug, Default)]
pub(super) struct MemoryStore {
    results: Mutex<Vec<MatchResult>>,
}

impl ResultSink for MemoryStore {
    fn submit(&self, result: MatchResult, saved: oneshot::Sender<MatchId>) {
        let mut results = self.results.lock();
        results.push(result);
        let _ = saved.send(results.len() as MatchId);
    }

    fn flush(&self, _within: Duration) -> bool {
        true
    }
}

/// A room, its command channel and a manual clock.
struct TestRoom {
    runner: RoomRunner,
    commands: mpsc::Sender<RoomCmd>,
    now: Instant,
    store: Arc<MemoryStore>,
    /// Stopped (and joined) before the folder it writes in goes.
    replays: ReplayWriter,
    data_dir: TestDir,
}

/// A folder of its own under the system's temporary folder, removed at the end.
#[derive(Debug)]
struct TestDir(std::path::PathBuf);

impl TestDir {
    fn new(what: &str) -> TestDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "skirmish-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("make a test folder");
        TestDir(path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestRoom {
    fn new() -> TestRoom {
        TestRoom::with_rules(MatchRules::default())
    }

    fn with_rules(rules: MatchRules) -> TestRoom {
        TestRoom::with_rates(rules, SNAPSHOT_HZ)
    }

    fn with_rates(rules: MatchRules, snapshot_hz: u16) -> TestRoom {
        let store = Arc::new(MemoryStore::default());
        let data_dir = TestDir::new("room");
        let (replays, replay_sink) =
            ReplayWriter::start(&data_dir.0, &Metrics::new()).expect("the replay writer starts");
        let settings = RoomSettings {
            tick_hz: TICK_HZ,
            snapshot_hz,
            input_batch: 2,
            capacity: 16,
            empty_grace: GRACE,
            map: crate::load_map(None).expect("the built-in map"),
            deltas: true,
            stall_timeout: STALL,
            rules,
            results: Arc::clone(&store) as Arc<dyn ResultSink>,
            resume_grace: RESUME_GRACE,
            max_rewind_ticks: 15,
            seat_tokens: Arc::new(SeatTokens::new(SEAT_KEY)),
            draining: Arc::default(),
            replays: replay_sink,
            spectators: SpectatorSettings {
                delay: SPECTATOR_DELAY,
                max_per_room: MAX_SPECTATORS,
            },
        };
        let (commands, receiver) = mpsc::channel(64);
        let now = Instant::now();
        let mut runner = RoomRunner::new(
            1,
            "test".into(),
            Arc::new(settings),
            receiver,
            Arc::new(AtomicBool::new(false)),
            Arc::new(Metrics::new()),
            now,
        );
        runner.start_in_slot(std::iter::empty(), now);
        TestRoom {
            runner,
            commands,
            now,
            store,
            replays,
            data_dir,
        }
    }

    /// Moves the clock to the room's next tick and runs it.
    fn tick(&mut self) -> Ticked {
        self.now = self.now.max(self.runner.due());
        self.runner.tick(self.now)
    }

    fn ticks(&mut self, n: usize) {
        for _ in 0..n {
            self.tick();
        }
    }

    /// Ticks until the next snapshot tick has run.
    fn until_snapshot(&mut self) {
        let due = self.runner.next_snapshot_due();
        while self.runner.due() <= due {
            self.tick();
        }
    }

    fn send(&self, cmd: RoomCmd) {
        self.commands
            .try_send(cmd)
            .expect("the command queue has room");
    }

    /// Seats a player on the next tick.
    fn join(&mut self, name: &str) -> TestPlayer {
        let inputs = MemoryUplink::new();
        let (kick_tx, kicked) = oneshot::channel();
        let (reply, mut reply_rx) = oneshot::channel();
        let acks = Arc::new(AckSlot::default());
        let downlink = Arc::new(MemoryDownlink::default());
        self.send(RoomCmd::Join {
            name: name.into(),
            profile: profile_of(name),
            token: format!("token-of-{name}"),
            link: PlayerLink {
                id: LinkId(0),
                inputs: InputQueue::default(),
                acks: Arc::clone(&acks),
                outbox: Outbox::new(Arc::clone(&downlink) as Arc<dyn Downlink>, kick_tx),
                stats: Arc::default(),
                uplink: Arc::clone(&inputs) as Arc<dyn Uplink>,
            },
            lease: SeatLease::unlisted(),
            reply,
        });
        self.tick();
        let id = reply_rx.try_recv().expect("seated on the next tick");
        TestPlayer {
            id,
            inputs,
            acks,
            downlink,
            kicked,
            next_seq: 0,
        }
    }
}

/// A join whose connection the test will not play through: nobody reads its messages
/// or sends it inputs.
fn bare_join(name: &str, reply: oneshot::Sender<PlayerId>) -> RoomCmd {
    let (kick, _kicked) = oneshot::channel();
    RoomCmd::Join {
        name: name.into(),
        profile: profile_of(name),
        token: String::new(),
        link: PlayerLink {
            id: LinkId(0),
            inputs: InputQueue::default(),
            acks: Arc::default(),
            outbox: Outbox::new(Arc::new(MemoryDownlink::default()), kick),
            stats: Arc::default(),
            uplink: MemoryUplink::new(),
        },
        lease: SeatLease::unlisted(),
        reply,
    }
}

/// Each test player's lasting identity, made from its name.
fn profile_of(name: &str) -> ProfileId {
    ProfileId(
        name.bytes()
            .fold(7, |hash, byte| hash * 31 + u64::from(byte)),
    )
}

/// The low 16 bits of a snapshot's tick, as acknowledgements carry them.
fn low_tick_of(header: &SnapshotHeader) -> u16 {
    match header.tick {
        TickRef::Full(tick) => tick.0 as u16,
        TickRef::Delta {
            baseline_low,
            after,
        } => baseline_low.wrapping_add(after as u16),
    }
}

fn tick_of(header: &SnapshotHeader) -> Tick {
    match header.tick {
        TickRef::Full(tick) => tick,
        TickRef::Delta { .. } => panic!("expected a full snapshot"),
    }
}

#[test]
fn a_join_whose_connection_stopped_waiting_leaves_no_seat() {
    let mut room = TestRoom::new();
    let (reply, reply_rx) = oneshot::channel();
    drop(reply_rx);
    room.send(bare_join("ghost", reply));
    room.tick();
    let watcher = room.join("watcher");
    room.until_snapshot();
    assert_eq!(room.runner.players(), 1, "only the watcher is seated");
    let seen_ghost = watcher.received().iter().any(|msg| match msg {
        ServerMsg::Welcome(welcome) => welcome.roster.iter().any(|p| p.name == "ghost"),
        ServerMsg::PlayerJoined { name, .. } => name == "ghost",
        _ => false,
    });
    assert!(!seen_ghost, "nobody was told of a player who never arrived");
}

#[test]
fn a_player_gets_at_most_its_input_credit_per_tick() {
    let mut room = TestRoom::new();
    let mut player = room.join("p");
    // Long enough idle for the credit to be full.
    room.ticks(MAX_INPUT_CREDIT as usize);
    room.until_snapshot();
    player.received();
    // A burst well past the credit, all arriving before one look (the snapshot tick's).
    for _ in 0..10 {
        player.send_input();
    }
    room.until_snapshot();
    let first_tick = MAX_INPUTS_PER_TICK.min(MAX_INPUT_CREDIT);
    let second_tick = MAX_INPUTS_PER_TICK.min(MAX_INPUT_CREDIT - first_tick + 1);
    let third_tick = MAX_INPUTS_PER_TICK.min(MAX_INPUT_CREDIT + 2 - first_tick - second_tick);
    let applied = player.newest_input_acked();
    assert_eq!(
        u32::from(applied),
        first_tick,
        "the saved credit, on the tick that read the burst"
    );
    room.until_snapshot();
    let applied = player.newest_input_acked();
    assert_eq!(
        u32::from(applied),
        first_tick + second_tick + third_tick,
        "then one input a tick"
    );
    // The rest of the burst goes in at one a tick; after it, a player who sends one
    // input per tick is never held back.
    room.ticks(10);
    for _ in 0..20 {
        player.send_input();
        room.tick();
    }
    room.until_snapshot();
    let caught_up = player.newest_input_acked();
    assert_eq!(
        u32::from(caught_up),
        player.next_seq,
        "every input of a steady sender is applied"
    );
}

#[test]
fn snapshots_are_deltas_against_the_newest_acknowledged_one() {
    let mut room = TestRoom::new();
    let player = room.join("p");
    room.until_snapshot();
    let first = player.snapshot_headers();
    let first = first.last().expect("a snapshot");
    let full_tick = tick_of(first);

    room.until_snapshot();
    let headers = player.snapshot_headers();
    assert!(
        matches!(headers.last().expect("a snapshot").tick, TickRef::Full(_)),
        "without an acknowledgement every snapshot is full"
    );

    player.acks.store(full_tick.0 as u16);
    room.until_snapshot();
    let header = player.snapshot_headers().pop().expect("a snapshot");
    assert_eq!(
        header.tick,
        TickRef::Delta {
            baseline_low: full_tick.0 as u16,
            after: u32::from(TICK_HZ / SNAPSHOT_HZ) * 2,
        },
        "a delta against the acknowledged snapshot"
    );

    // An acknowledgement of a snapshot the ring no longer holds leaves no baseline.
    const { assert!(SNAPSHOT_RING < 1000, "the stale tick is out of the ring") };
    player.acks.store(full_tick.0.wrapping_sub(1000) as u16);
    room.until_snapshot();
    let header = player.snapshot_headers().pop().expect("a snapshot");
    assert!(
        matches!(header.tick, TickRef::Full(_)),
        "an unknown baseline means a full snapshot, not {header:?}"
    );
}

#[test]
fn a_client_that_stops_acknowledging_is_closed_after_the_stall_timeout_and_its_seat_held() {
    let mut room = TestRoom::new();
    let mut reader = room.join("reader");
    let mut staller = room.join("staller");
    let stall_ticks = (STALL.as_secs_f32() * f32::from(TICK_HZ)) as usize;
    for _ in 0..stall_ticks - SNAPSHOT_HZ as usize {
        room.tick();
        if let Some(header) = reader.snapshot_headers().last() {
            let tick = match header.tick {
                TickRef::Full(tick) => tick.0,
                TickRef::Delta {
                    baseline_low,
                    after,
                } => u32::from(baseline_low) + after,
            };
            reader.acks.store(tick as u16);
        }
    }
    assert_eq!(
        staller.kick_reason(),
        None,
        "not yet: inside the stall timeout"
    );
    room.ticks(SNAPSHOT_HZ as usize * 2);
    assert_eq!(staller.kick_reason(), Some(CloseReason::TooSlow));
    assert_eq!(
        reader.kick_reason(),
        None,
        "a reader that acknowledges stays"
    );
    assert_eq!(
        room.runner.players(),
        2,
        "a stall may be a dead link: the seat is held for a resume"
    );
}

#[test]
fn a_client_whose_backlog_is_full_is_closed_and_its_seat_held() {
    let mut room = TestRoom::new();
    let mut player = room.join("p");
    player.downlink.full.store(true, Ordering::Relaxed);
    room.until_snapshot();
    assert_eq!(player.kick_reason(), Some(CloseReason::TooSlow));
    assert_eq!(room.runner.players(), 1, "the seat is held for a resume");
    room.ticks(grace_ticks() + 1);
    assert_eq!(
        room.runner.players(),
        0,
        "and given up after the grace window"
    );
}

/// Ticks in the resume grace window.
fn grace_ticks() -> usize {
    (RESUME_GRACE.as_secs_f64() * f64::from(TICK_HZ)) as usize
}

/// The welcome among `msgs`, if any.
fn welcome_in(msgs: &[ServerMsg]) -> Option<&shared::protocol::Welcome> {
    msgs.iter().find_map(|msg| match msg {
        ServerMsg::Welcome(welcome) => Some(&**welcome),
        _ => None,
    })
}

/// Reads the claim in a welcome's resume token, as a connection would.
fn claim_of(welcome: &shared::protocol::Welcome) -> SeatClaim {
    SeatTokens::new(SEAT_KEY)
        .read(&welcome.resume_token)
        .expect("the room signs its resume tokens with the server's key")
}

impl TestRoom {
    /// Sends a resume for `claim` on a new in-memory connection, runs a tick, and
    /// returns the room's answer and the new connection.
    fn resume(
        &mut self,
        claim: SeatClaim,
        newest_tick: Option<Tick>,
        link: u64,
    ) -> (Result<PlayerId, ResumeRefused>, TestPlayer) {
        let inputs = MemoryUplink::new();
        let (kick_tx, kicked) = oneshot::channel();
        let (reply, mut reply_rx) = oneshot::channel();
        let acks = Arc::new(AckSlot::default());
        let downlink = Arc::new(MemoryDownlink::default());
        self.send(RoomCmd::Resume {
            claim,
            newest_tick,
            link: PlayerLink {
                id: LinkId(link),
                inputs: InputQueue::default(),
                acks: Arc::clone(&acks),
                outbox: Outbox::new(Arc::clone(&downlink) as Arc<dyn Downlink>, kick_tx),
                stats: Arc::default(),
                uplink: Arc::clone(&inputs) as Arc<dyn Uplink>,
            },
            reply,
        });
        self.tick();
        let answer = reply_rx.try_recv().expect("answered on the next tick");
        let player = TestPlayer {
            id: answer.unwrap_or(PlayerId(0)),
            inputs,
            acks,
            downlink,
            kicked,
            next_seq: 0,
        };
        (answer, player)
    }

    /// Runs `n` ticks while `reader` acknowledges every snapshot, as a live client
    /// does; returns everything it was sent.
    fn ticks_reading(&mut self, n: usize, reader: &TestPlayer) -> Vec<ServerMsg> {
        let mut seen = Vec::new();
        for _ in 0..n {
            self.tick();
            let msgs = reader.received();
            let newest = msgs.iter().rev().find_map(|msg| match msg {
                ServerMsg::Snapshot(snapshot) => Some(low_tick_of(&snapshot.header)),
                _ => None,
            });
            if let Some(tick) = newest {
                reader.acks.store(tick);
            }
            seen.extend(msgs);
        }
        seen
    }

    /// The player's position in the world now.
    fn position_of(&self, id: PlayerId) -> glam::Vec2 {
        self.runner
            .world()
            .player(id)
            .expect("the player is in the world")
            .body
            .pos
    }
}

#[test]
fn a_lost_connection_holds_the_seat_and_others_see_the_player_away_not_gone() {
    let mut room = TestRoom::new();
    let mut runner = room.join("runner");
    let watcher = room.join("watcher");
    room.until_snapshot();
    let _ = watcher.received();
    for _ in 0..10 {
        runner.send_input_held(shared::game::buttons::RIGHT);
        room.tick();
    }
    room.send(RoomCmd::Lost {
        id: runner.id,
        link: LinkId(0),
    });
    room.tick();
    let held_at = room.position_of(runner.id);
    room.until_snapshot();
    let seen = watcher.received();
    assert!(
        seen.contains(&ServerMsg::PlayerAway { id: runner.id }),
        "the others are told the player is away: {seen:?}"
    );
    assert!(
        !seen.contains(&ServerMsg::PlayerLeft { id: runner.id }),
        "and not that they left"
    );
    let mut seen = room.ticks_reading(grace_ticks() / 2, &watcher);
    assert_eq!(
        room.runner.players(),
        2,
        "the seat is held inside the window"
    );
    assert_eq!(
        room.position_of(runner.id),
        held_at,
        "an away player gets no input: they stand still"
    );
    assert!(!seen.contains(&ServerMsg::PlayerLeft { id: runner.id }));
    seen = room.ticks_reading(grace_ticks() / 2 + SNAPSHOT_HZ as usize, &watcher);
    assert_eq!(room.runner.players(), 1, "the window ended");
    assert!(
        seen.contains(&ServerMsg::PlayerLeft { id: runner.id }),
        "only then do the others see a leave"
    );
}

#[test]
fn a_resume_takes_the_held_seat_back_with_a_delta_against_the_tick_the_client_holds() {
    let mut room = TestRoom::new();
    let player = room.join("p");
    let watcher = room.join("watcher");
    room.until_snapshot();
    let welcome = welcome_in(&player.received()).expect("welcomed").clone();
    let claim = claim_of(&welcome);
    assert_eq!(claim.player, player.id);
    room.until_snapshot();
    let newest = tick_of(player.snapshot_headers().last().expect("a snapshot"));
    room.send(RoomCmd::Lost {
        id: player.id,
        link: LinkId(0),
    });
    room.tick();
    let _ = watcher.received();

    let (answer, back) = room.resume(claim, Some(newest), 1);
    assert_eq!(answer, Ok(player.id), "the same seat, the same id");
    room.until_snapshot();
    let msgs = back.received();
    let again = welcome_in(&msgs).expect("a welcome answers the resume");
    assert!(again.resumed);
    assert_eq!(again.player_id, player.id);
    assert_ne!(
        again.resume_token, welcome.resume_token,
        "every resume rotates the token"
    );
    let header = msgs
        .iter()
        .find_map(|msg| match msg {
            ServerMsg::Snapshot(snapshot) => Some(snapshot.header),
            _ => None,
        })
        .expect("a snapshot follows");
    assert!(
        matches!(header.tick, TickRef::Delta { baseline_low, .. } if baseline_low == newest.0 as u16),
        "the first snapshot is a delta against the tick the client holds, not {header:?}"
    );
    let seen = watcher.received();
    assert!(seen.contains(&ServerMsg::PlayerBack { id: player.id }));
    assert!(
        !seen.iter().any(|msg| matches!(
            msg,
            ServerMsg::PlayerLeft { .. } | ServerMsg::PlayerJoined { .. }
        )),
        "nobody else sees a leave or a join: {seen:?}"
    );
    assert_eq!(room.runner.players(), 2);
}

#[test]
fn a_resume_naming_a_tick_the_room_no_longer_holds_gets_a_full_snapshot() {
    let mut room = TestRoom::new();
    let player = room.join("p");
    room.until_snapshot();
    let claim = claim_of(welcome_in(&player.received()).expect("welcomed"));
    room.send(RoomCmd::Lost {
        id: player.id,
        link: LinkId(0),
    });
    let (answer, back) = room.resume(claim, Some(Tick(100_000)), 1);
    assert_eq!(answer, Ok(player.id));
    room.until_snapshot();
    let header = back.snapshot_headers().pop().expect("a snapshot");
    assert!(
        matches!(header.tick, TickRef::Full(_)),
        "an unknown baseline means a full snapshot, not {header:?}"
    );
}

#[test]
fn a_used_token_is_refused_and_a_token_outliving_its_seat_too() {
    let mut room = TestRoom::new();
    let player = room.join("p");
    room.until_snapshot();
    let claim = claim_of(welcome_in(&player.received()).expect("welcomed"));
    room.send(RoomCmd::Lost {
        id: player.id,
        link: LinkId(0),
    });
    let (first, back) = room.resume(claim.clone(), None, 1);
    assert_eq!(first, Ok(player.id));
    let (replayed, _) = room.resume(claim, None, 2);
    assert_eq!(replayed, Err(ResumeRefused::Replayed), "a token works once");

    room.until_snapshot();
    let rotated = claim_of(welcome_in(&back.received()).expect("welcomed again"));
    let stranger = SeatClaim {
        profile: ProfileId(rotated.profile.0 ^ 1),
        ..rotated.clone()
    };
    let (wrong_identity, _) = room.resume(stranger, None, 3);
    assert_eq!(wrong_identity, Err(ResumeRefused::SeatGone));

    room.send(RoomCmd::Lost {
        id: player.id,
        link: LinkId(1),
    });
    room.ticks(grace_ticks() + 1);
    let (expired, _) = room.resume(rotated, None, 4);
    assert_eq!(
        expired,
        Err(ResumeRefused::SeatGone),
        "the token expires with the window"
    );
}

#[test]
fn a_resume_over_a_live_connection_replaces_it_and_its_late_word_is_ignored() {
    let mut room = TestRoom::new();
    let mut old = room.join("p");
    room.until_snapshot();
    let claim = claim_of(welcome_in(&old.received()).expect("welcomed"));
    let (answer, _new) = room.resume(claim, None, 1);
    assert_eq!(answer, Ok(old.id));
    assert_eq!(old.kick_reason(), Some(CloseReason::Replaced));
    // The replaced connection closes and says so, after the resume.
    room.send(RoomCmd::Leave {
        id: old.id,
        link: LinkId(0),
    });
    room.ticks(grace_ticks() + 1);
    assert_eq!(
        room.runner.players(),
        1,
        "word from a replaced connection changes nothing"
    );
}

#[test]
fn a_resumed_page_numbering_its_inputs_anew_is_not_ignored() {
    let mut room = TestRoom::new();
    let mut player = room.join("p");
    for _ in 0..50 {
        player.send_input();
        room.tick();
    }
    room.until_snapshot();
    let claim = claim_of(welcome_in(&player.received()).expect("welcomed"));
    room.send(RoomCmd::Lost {
        id: player.id,
        link: LinkId(0),
    });
    let (answer, mut reloaded) = room.resume(claim, None, 1);
    assert_eq!(answer, Ok(player.id));
    for _ in 0..3 {
        reloaded.send_input();
        room.tick();
    }
    room.until_snapshot();
    let header = reloaded.snapshot_headers().pop().expect("a snapshot");
    assert_eq!(
        header.ack_input_low, 3,
        "a reloaded page's inputs 1, 2, 3 are applied after the old page's 50"
    );
}

#[test]
fn an_empty_room_parks_then_expires_after_its_grace() {
    let mut room = TestRoom::new();
    let player = room.join("p");
    let period = Duration::from_secs_f64(1.0 / f64::from(TICK_HZ));
    assert_eq!(room.runner.due() - room.now, period, "a seated room plays");
    room.send(RoomCmd::Leave {
        id: player.id,
        link: LinkId(0),
    });
    assert_eq!(room.tick(), Ticked::Open);
    assert!(room.runner.is_parked(), "an empty room parks");
    assert!(
        room.runner.due() - room.now >= Duration::from_millis(500),
        "a parked room does not tick at the simulation rate"
    );
    let emptied = room.now;
    let mut parked_ticks = 0;
    while room.tick() == Ticked::Open {
        parked_ticks += 1;
        assert!(parked_ticks < 100, "the room expires");
    }
    assert!(room.now - emptied >= GRACE, "not before its grace is over");
    assert!(room.now - emptied < GRACE + Duration::from_secs(1));
    assert!(
        parked_ticks <= 11,
        "{parked_ticks} parked ticks in a 10 s grace"
    );
}

#[test]
fn a_command_to_a_parked_room_wakes_it() {
    let mut room = TestRoom::new();
    room.tick();
    assert!(
        room.runner.is_parked(),
        "a new room with nobody in it parks"
    );
    assert!(!room.runner.wants_waking());
    let (reply, _reply_rx) = oneshot::channel();
    room.send(bare_join("late", reply));
    assert!(room.runner.wants_waking(), "the thread is told to wake it");
    room.runner.wake(std::iter::empty(), room.now);
    assert!(!room.runner.is_parked());
    room.tick();
    assert_eq!(room.runner.players(), 1, "the join was taken on waking");
}

/// A directory stand-in that records what the scheduler told it.
#[derive(Default)]
struct RecordingJanitor {
    crashed: Mutex<Vec<RoomKey>>,
}

impl Janitor for RecordingJanitor {
    fn close_if_empty(&self, _key: RoomKey, _room: &str) -> bool {
        true
    }

    fn phase_changed(&self, _key: RoomKey, _room: &str, _phase: shared::game::Phase) {}

    fn crashed(&self, key: RoomKey, _room: &str) {
        self.crashed.lock().push(key);
    }
}

#[test]
fn a_room_that_panics_costs_only_that_room() {
    let mut failing = TestRoom::new();
    let mut victim = failing.join("victim");
    let mut healthy = TestRoom::new();
    let mut bystander = healthy.join("bystander");
    failing.send(RoomCmd::Panic);
    let failing_key = failing.runner.key();
    let janitor = Arc::new(RecordingJanitor::default());
    let metrics = Arc::new(Metrics::new());
    let mut thread = RoomThread::by_hand(
        Arc::clone(&janitor) as Arc<dyn Janitor>,
        Arc::clone(&metrics),
        vec![failing.runner, healthy.runner],
    );
    let now = failing.now.max(healthy.now) + Duration::from_secs(1);

    // The default hook would print the expected panic as if it were a failure.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    thread.tick(0, now);
    std::panic::set_hook(hook);

    assert_eq!(victim.kick_reason(), Some(CloseReason::RoomCrashed));
    assert_eq!(CloseReason::RoomCrashed.close_code(), 1011);
    assert_eq!(
        *janitor.crashed.lock(),
        vec![failing_key],
        "its entry is freed"
    );
    assert_eq!(metrics.room_failures.get(), 1);
    assert_eq!(thread.rooms.len(), 1, "only the failed room is gone");
    bystander.received();
    for _ in 0..4 {
        thread.tick(0, now);
    }
    assert_eq!(bystander.kick_reason(), None);
    assert!(
        !bystander.snapshot_headers().is_empty(),
        "the other room goes on sending snapshots"
    );
}

#[test]
fn a_room_reads_a_socket_on_snapshot_ticks_and_what_it_read_shows_in_that_snapshot() {
    let mut room = TestRoom::new();
    let mut player = room.join("ann");
    room.until_snapshot();
    player.received();
    player.inputs.looks.lock().clear();
    // A batch of two (the test room's), sent before a tick that sends no snapshot.
    player.send_input();
    player.send_input();
    room.tick();
    assert_eq!(*player.inputs.looks.lock(), [false]);
    assert!(player.snapshot_headers().is_empty(), "two ticks a snapshot");
    room.tick();
    assert_eq!(*player.inputs.looks.lock(), [false, true]);
    let headers = player.snapshot_headers();
    assert_eq!(headers.len(), 1);
    assert_eq!(
        headers[0].ack_input_low, 2,
        "both inputs, read on the snapshot tick, are in its snapshot"
    );
}

#[test]
fn with_more_ticks_a_snapshot_than_one_tick_applies_the_room_looks_every_tick() {
    let ticks_per_snapshot = 6;
    let mut room = TestRoom::with_rates(MatchRules::default(), TICK_HZ / ticks_per_snapshot);
    let mut player = room.join("ann");
    room.until_snapshot();
    player.received();
    player.inputs.looks.lock().clear();
    for _ in 0..ticks_per_snapshot {
        player.send_input();
        room.tick();
    }
    assert_eq!(*player.inputs.looks.lock(), [true; 6]);
    let headers = player.snapshot_headers();
    assert_eq!(headers.len(), 1);
    assert_eq!(
        u32::from(headers[0].ack_input_low),
        player.next_seq,
        "an input a tick, each read on its tick, all in the snapshot"
    );
}

#[test]
fn new_rooms_send_their_snapshots_in_the_widest_gap() {
    let cycle = Duration::from_secs_f64(1.0 / f64::from(SNAPSHOT_HZ));
    let now = Instant::now();
    let mut rooms: Vec<RoomRunner> = Vec::new();
    for _ in 0..4 {
        let mut room = TestRoom::new().runner;
        room.start_in_slot(rooms.iter().map(RoomRunner::next_snapshot_due), now);
        assert_eq!(
            room.next_snapshot_due(),
            room.due(),
            "a new room's first tick sends a snapshot"
        );
        rooms.push(room);
    }
    // Four rooms in one 33 ms snapshot cycle: a quarter cycle apart.
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
            (gap - cycle.as_secs_f64() / 4.0).abs() < 1e-6,
            "phases {phases:?} are not a quarter cycle apart"
        );
    }
}

#[test]
fn rooms_on_one_thread_share_tick_slots_but_not_snapshot_slots() {
    let period = Duration::from_secs_f64(1.0 / f64::from(TICK_HZ));
    let tick_slots = SLOTS_PER_TICK as usize;
    let slot = period / SLOTS_PER_TICK;
    // Two ticks a snapshot.
    let snapshot_slots = 2 * tick_slots;
    let mut now = Instant::now();
    let mut rooms: Vec<RoomRunner> = Vec::new();
    for n in 0..30u64 {
        let mut room = TestRoom::new().runner;
        room.start_in_slot(rooms.iter().map(RoomRunner::next_snapshot_due), now);
        rooms.push(room);
        // Rooms open at any moment, not on the grid.
        now += Duration::from_micros(1_337 * (n % 7));
    }
    let origin = rooms.iter().map(RoomRunner::due).min().expect("rooms");
    let slot_of = |at: Instant| {
        let offset = at.duration_since(origin).as_secs_f64() / slot.as_secs_f64();
        assert!(
            (offset - offset.round()).abs() < 1e-3,
            "a room ticks off the thread's grid: {offset} slots from the first"
        );
        offset.round() as usize
    };
    let mut per_snapshot_slot = vec![0; snapshot_slots];
    let mut per_tick_slot = vec![0; tick_slots];
    for room in &rooms {
        per_tick_slot[slot_of(room.due()) % tick_slots] += 1;
        per_snapshot_slot[slot_of(room.next_snapshot_due()) % snapshot_slots] += 1;
    }
    let (fewest, most) = (
        per_snapshot_slot.iter().min(),
        per_snapshot_slot.iter().max(),
    );
    assert!(
        most.zip(fewest)
            .is_some_and(|(most, fewest)| most - fewest <= 1),
        "snapshot slots are unevenly shared: {per_snapshot_slot:?}"
    );
    assert!(
        per_tick_slot.iter().all(|&rooms| rooms > 0),
        "thirty rooms tick in every slot of a period: {per_tick_slot:?}"
    );
    // The first rooms fill the snapshot slots two to a tick slot: each room that opens
    // a tick slot is joined in it by the next, in the other snapshot slot it holds, so
    // any first 2k of them (up to the snapshot slots) wake the thread in k tick slots.
    for pairs in 1..=tick_slots {
        let woken: std::collections::BTreeSet<usize> = rooms[..2 * pairs]
            .iter()
            .map(|room| slot_of(room.due()) % tick_slots)
            .collect();
        assert_eq!(
            woken.len(),
            pairs,
            "the first {} rooms share {pairs} tick slots, two snapshot slots each",
            2 * pairs
        );
    }
}

#[test]
fn a_stopped_scheduler_has_joined_its_threads() {
    let (spawner, pending) = crate::rooms::scheduler::queues(2);
    let janitor = Arc::new(RecordingJanitor::default());
    let mut scheduler = pending
        .start(
            Arc::clone(&janitor) as Arc<dyn Janitor>,
            Arc::new(Metrics::new()),
            false,
        )
        .expect("threads start");
    for _ in 0..3 {
        let room = TestRoom::new().runner;
        spawner
            .spawn(room, Arc::new(AtomicBool::new(false)))
            .expect("a thread takes the room");
    }
    scheduler.stop();
    assert_eq!(
        Arc::strong_count(&janitor),
        1,
        "every thread has ended and let go of the directory"
    );
    let refused = spawner.spawn(TestRoom::new().runner, Arc::new(AtomicBool::new(false)));
    assert!(refused.is_err(), "a stopped scheduler takes no rooms");
}

#[test]
fn a_finished_match_is_shown_stored_and_then_announced_saved() {
    let mut room = TestRoom::with_rules(MatchRules::new(20, 1.0, 1.0, TICK_HZ));
    let ann = room.join("ann");
    let bob = room.join("bob");
    let mut shown = None;
    let mut saved = None;
    for _ in 0..TICK_HZ * 2 {
        room.tick();
        for msg in ann.received() {
            match msg {
                ServerMsg::MatchResults(results) => shown = Some(results),
                ServerMsg::MatchSaved { match_id } => saved = Some(match_id),
                _ => {}
            }
        }
        if saved.is_some() {
            break;
        }
    }
    let shown = shown.expect("the results are shown when the time runs out");
    assert_eq!(shown.reason, MatchEnd::TimeLimit);
    let names: Vec<&str> = shown.lines.iter().map(|line| line.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        shown.lines.iter().all(|line| line.placing == 1),
        "nobody scored: a tie"
    );
    assert_eq!(saved, Some(1), "then the store's word that it is saved");
    let stored = room.store.results.lock().clone();
    assert_eq!(stored.len(), 1);
    let record = &stored[0];
    assert_eq!(
        (record.room.as_str(), record.map.as_str()),
        ("test", "arena")
    );
    assert_eq!(record.end_reason, EndReason::TimeLimit);
    let mut profiles: Vec<ProfileId> = record.players.iter().map(|p| p.profile).collect();
    profiles.sort();
    let mut expected = vec![profile_of("ann"), profile_of("bob")];
    expected.sort();
    assert_eq!(profiles, expected, "results follow identities, not names");
    assert!(record.ended_at_ms >= record.started_at_ms);
    drop(bob);
}

#[test]
fn a_shutdown_records_the_match_in_play_and_lets_everyone_go() {
    let mut room = TestRoom::new();
    let mut ann = room.join("ann");
    room.ticks(10);
    room.runner.close_for_shutdown();
    let stored = room.store.results.lock().clone();
    assert_eq!(stored.len(), 1, "the match in play is stored");
    assert_eq!(stored[0].end_reason, EndReason::Shutdown);
    assert_eq!(stored[0].players.len(), 1);
    assert_eq!(ann.kick_reason(), Some(CloseReason::ServerShutdown));
}

#[test]
fn an_operators_kick_closes_with_4008_and_holds_no_seat() {
    let mut room = TestRoom::new();
    let mut victim = room.join("victim");
    let watcher = room.join("watcher");
    let (reply, mut kicked) = oneshot::channel();
    room.send(RoomCmd::Kick {
        id: victim.id,
        reason: Some("spamming".into()),
        reply,
    });
    room.tick();
    assert_eq!(
        kicked.try_recv(),
        Ok(true),
        "the room says the player was there"
    );
    let kick = victim
        .kicked
        .try_recv()
        .expect("the connection is told to close");
    assert_eq!(kick.reason, CloseReason::Kicked);
    assert_eq!(kick.reason.close_code(), 4008);
    assert_eq!(
        kick.detail.as_deref(),
        Some("kicked by an operator: spamming"),
        "the client is told who removed it, and why"
    );
    assert_eq!(
        room.runner.players(),
        1,
        "the kicked player's seat is gone, not held"
    );
    room.until_snapshot();
    let told = watcher.received();
    assert!(
        told.iter()
            .any(|msg| matches!(msg, ServerMsg::PlayerLeft { id } if *id == victim.id)),
        "the others see the player leave, not go away: {told:?}"
    );
    let (reply, mut again) = oneshot::channel();
    room.send(RoomCmd::Kick {
        id: victim.id,
        reason: None,
        reply,
    });
    room.tick();
    assert_eq!(again.try_recv(), Ok(false), "a second kick finds nobody");
}

#[test]
fn an_operator_closing_a_room_lets_everyone_go_and_the_room_expires_at_once() {
    let mut room = TestRoom::new();
    let mut ann = room.join("ann");
    let mut bob = room.join("bob");
    room.ticks(10);
    let (reply, mut closed) = oneshot::channel();
    room.send(RoomCmd::Close { reply });
    assert_eq!(
        room.tick(),
        Ticked::Expired,
        "a closed room does not wait out the empty grace period"
    );
    assert_eq!(closed.try_recv(), Ok(2), "both players were let go");
    assert_eq!(ann.kick_reason(), Some(CloseReason::Kicked));
    assert_eq!(bob.kick_reason(), Some(CloseReason::Kicked));
    assert_eq!(room.runner.players(), 0);
    let results = room.store.results.lock();
    assert_eq!(results.len(), 1, "the match being played is recorded");
    assert_eq!(results[0].end_reason, EndReason::Shutdown);
}

#[test]
fn an_announcement_reaches_every_player_with_the_next_snapshot() {
    let mut room = TestRoom::new();
    let ann = room.join("ann");
    let bob = room.join("bob");
    room.until_snapshot();
    let _ = (ann.received(), bob.received());
    room.send(RoomCmd::Announce {
        text: "restarting soon".into(),
    });
    room.until_snapshot();
    for player in [&ann, &bob] {
        assert!(
            player.received().iter().any(|msg| matches!(
                msg,
                ServerMsg::Announcement { text } if text == "restarting soon"
            )),
            "every player is shown the announcement"
        );
    }
}

#[test]
fn an_inspection_reports_the_match_tick_times_and_each_players_figures() {
    let mut room = TestRoom::new();
    let mut ann = room.join("ann");
    // Under the stall timeout: the player acknowledges nothing.
    for _ in 0..(3 * TICK_HZ / 2) {
        ann.send_input();
        room.tick();
    }
    let (reply, mut report) = oneshot::channel();
    room.send(RoomCmd::Inspect { reply });
    room.tick();
    let report = report.try_recv().expect("answered at the next tick");
    assert_eq!(report.id, "test");
    assert_eq!(report.phase, "playing");
    assert!(report.seconds_left > 0.0, "the match has time left");
    assert!(report.tick_p99_ms.is_some(), "tick times are known");
    let player = &report.players[0];
    assert_eq!(player.name, "ann");
    assert!(
        (player.inputs_per_s - f64::from(TICK_HZ)).abs() < 2.0,
        "one input per tick is the tick rate: {}",
        player.inputs_per_s
    );
    assert!(player.bytes_out_per_s > 0.0, "snapshots went out");
    assert_eq!(player.ping_ms, None, "no ping has come back in memory");
}

#[test]
fn a_draining_room_finishes_its_match_then_lets_everyone_go() {
    let rules = MatchRules::new(20, 1.0, 1.0, TICK_HZ);
    let mut room = TestRoom::with_rules(rules);
    let mut ann = room.join("ann");
    room.runner
        .settings()
        .draining
        .store(true, Ordering::Relaxed);
    room.ticks(usize::from(TICK_HZ) / 2);
    assert_eq!(ann.kick_reason(), None, "the match being played goes on");
    room.ticks(2 * usize::from(TICK_HZ) + 5);
    assert_eq!(
        ann.kick_reason(),
        Some(CloseReason::ServerShutdown),
        "the room closes where the next match would start"
    );
    assert_eq!(
        room.store.results.lock().len(),
        1,
        "the finished match was recorded"
    );
    assert_eq!(room.tick(), Ticked::Expired, "then it closes at once");
}

/// Moves and fires, changing course every second, and acknowledges the newest snapshot:
/// what a bot does, without a socket.
fn play_like_a_bot(player: &mut TestPlayer, style: usize, tick: usize) -> Vec<ServerMsg> {
    use shared::game::buttons::{DOWN, FIRE, LEFT, RIGHT, UP};
    const COURSES: [u8; 4] = [
        UP | RIGHT | FIRE,
        DOWN | LEFT,
        LEFT | UP | FIRE,
        RIGHT | DOWN,
    ];
    player.next_seq += 1;
    let frame = InputFrame {
        seq: Seq(player.next_seq),
        buttons: COURSES[(style + tick / TICK_HZ as usize) % COURSES.len()],
        aim: (tick as f32 * 0.05 + style as f32).sin() * 3.0,
        view: None,
    };
    player.inputs.send(frame);
    let received = player.received();
    for msg in &received {
        if let ServerMsg::Snapshot(snapshot) = msg {
            let tick = match snapshot.header.tick {
                TickRef::Full(tick) => tick.0 as u16,
                TickRef::Delta {
                    baseline_low,
                    after,
                } => baseline_low.wrapping_add(after as u16),
            };
            player.acks.store(tick);
        }
    }
    received
}

#[test]
fn a_recorded_match_replays_every_player_within_one_grid_step_of_the_room() {
    let mut room = TestRoom::with_rules(MatchRules::new(1000, 7.0, 1.0, TICK_HZ));
    let mut players: Vec<TestPlayer> = ["ann", "bob", "cyd"]
        .into_iter()
        .map(|name| room.join(name))
        .collect();
    // The room's own full-precision state at every third snapshot tick.
    let mut sampled: Vec<(Tick, Vec<(PlayerId, glam::Vec2)>)> = Vec::new();
    let mut saved = None;
    for tick in 0..TICK_HZ as usize * 9 {
        for (style, player) in players.iter_mut().enumerate() {
            for msg in play_like_a_bot(player, style, tick) {
                if let ServerMsg::MatchSaved { match_id } = msg {
                    saved = Some(match_id);
                }
            }
        }
        room.until_snapshot();
        let world = room.runner.world();
        if tick % 3 == 0 && world.clock().phase == shared::game::Phase::Playing {
            sampled.push((
                world.tick,
                world.players().iter().map(|p| (p.id, p.body.pos)).collect(),
            ));
        }
        if saved.is_some() {
            break;
        }
    }
    let match_id = saved.expect("the match ended and was saved");
    let path = crate::store::replays::replay_path(&room.data_dir.0, match_id);
    let bytes = wait_for_file(&path);
    let replay = shared::replay::decode(&bytes).expect("the replay's header reads");
    assert_eq!(replay.damage, None, "a finished recording is whole");
    assert_eq!(replay.header.room, "test");
    assert!(
        replay.keyframes.len() >= 7 / usize::from(shared::consts::REPLAY_KEYFRAME_SECS),
        "a keyframe every few seconds: {:?}",
        replay.keyframes
    );
    assert!(
        replay.keyframes.len() * 10 < replay.states.len(),
        "between keyframes the frames are deltas: {} keyframes in {} frames",
        replay.keyframes.len(),
        replay.states.len()
    );
    let names: Vec<&str> = replay
        .roster_at(replay.states.len() - 1)
        .iter()
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(names, ["ann", "bob", "cyd"]);
    assert!(sampled.len() > 50, "the match was sampled throughout");
    let step = 1.0 / shared::quant::POS_STEPS_PER_UNIT;
    let mut n_compared = 0;
    for (tick, positions) in &sampled {
        let Some(state) = replay.states.iter().find(|state| state.tick == *tick) else {
            continue;
        };
        let snapshot = state.to_snapshot(shared::consts::tick_dt(TICK_HZ));
        assert_eq!(snapshot.players.len(), positions.len(), "at {tick:?}");
        for (player, (id, pos)) in snapshot.players.iter().zip(positions) {
            assert_eq!(player.id, *id);
            assert!(
                (player.pos - *pos).abs().max_element() <= step,
                "player {id:?} at {tick:?}: replayed {} but the room had {pos}",
                player.pos
            );
        }
        n_compared += 1;
    }
    assert!(
        n_compared * 10 >= sampled.len() * 9,
        "nearly every sampled tick is in the replay ({n_compared} of {})",
        sampled.len()
    );
}

#[test]
fn a_replay_is_kept_for_a_match_the_shutdown_ended_after_the_room_is_gone() {
    let mut room = TestRoom::new();
    let _ann = room.join("ann");
    room.ticks(TICK_HZ as usize);
    room.runner.close_for_shutdown();
    let data_dir = room.data_dir.0.clone();
    let TestRoom {
        runner,
        mut replays,
        data_dir: _dir,
        ..
    } = room;
    drop(runner);
    replays.stop();
    let bytes = std::fs::read(crate::store::replays::replay_path(&data_dir, 1))
        .expect("the shutdown's match keeps its replay");
    let replay = shared::replay::decode(&bytes).expect("it reads");
    assert_eq!(replay.damage, None);
    assert!(!replay.states.is_empty(), "it holds the second played");
}

/// The file once the replay writer has kept it; it works on a thread of its own.
fn wait_for_file(path: &std::path::Path) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            return bytes;
        }
        assert!(
            Instant::now() < deadline,
            "the replay writer kept {} within 10 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_room_whose_last_player_left_holds_no_recording_open() {
    let mut room = TestRoom::new();
    let ann = room.join("ann");
    room.ticks(TICK_HZ as usize);
    let pending = room.data_dir.0.join("replays").join("pending");
    let files = |dir: &std::path::Path| std::fs::read_dir(dir).map_or(0, |entries| entries.count());
    let deadline = Instant::now() + Duration::from_secs(10);
    while files(&pending) == 0 {
        assert!(Instant::now() < deadline, "the match is being recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The tick that lets ann go also sends a snapshot: it must not begin a recording.
    while room.runner.due() < room.runner.next_snapshot_due() {
        room.tick();
    }
    room.send(RoomCmd::Leave {
        id: ann.id,
        link: LinkId(0),
    });
    room.ticks(2);
    assert_eq!(room.runner.players(), 0, "ann is gone");
    // The writer works on its own thread; what it was handed shows within this.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        files(&pending),
        0,
        "the empty room's recording was dropped, its file with it, and none begun"
    );
}

/// A spectator's end of an in-memory connection.
struct TestSpectator {
    acks: Arc<AckSlot>,
    downlink: Arc<MemoryDownlink>,
    kicked: oneshot::Receiver<Kick>,
}

impl TestSpectator {
    fn received(&self) -> Vec<ServerMsg> {
        std::mem::take(&mut *self.downlink.payloads.lock())
            .iter()
            .map(|payload| decode_server(payload).expect("the room sends what decodes"))
            .collect()
    }
}

impl TestRoom {
    /// Asks the room to admit a spectator on the next tick; its answer and its end.
    fn watch(&mut self, link: u64) -> (Result<(), WatchRefused>, TestSpectator) {
        let (kick_tx, kicked) = oneshot::channel();
        let (reply, mut reply_rx) = oneshot::channel();
        let acks = Arc::new(AckSlot::default());
        let downlink = Arc::new(MemoryDownlink::default());
        self.send(RoomCmd::Watch {
            link: SpectatorLink {
                id: LinkId(link),
                acks: Arc::clone(&acks),
                outbox: Outbox::new(Arc::clone(&downlink) as Arc<dyn Downlink>, kick_tx),
            },
            reply,
        });
        self.tick();
        let answer = reply_rx.try_recv().expect("answered on the next tick");
        (
            answer,
            TestSpectator {
                acks,
                downlink,
                kicked,
            },
        )
    }
}

/// Snapshots `SPECTATOR_DELAY` spans.
const DELAY_SNAPSHOTS: usize = 5;

#[test]
fn a_spectator_is_shown_each_snapshot_the_delay_late_with_the_messages_before_it() {
    let mut room = TestRoom::new();
    let ann = room.join("ann");
    room.until_snapshot();
    ann.received();
    let (admitted, eve) = room.watch(100);
    assert_eq!(admitted, Ok(()));
    let greeting = eve.received();
    let [ServerMsg::Watching(watching)] = greeting.as_slice() else {
        panic!("the spectator is greeted at once, and only that: {greeting:?}");
    };
    assert_eq!(watching.delay_ms, 166);
    assert_eq!(
        watching.roster.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ann.id],
        "the roster names the players, not the spectator"
    );

    // Every snapshot tick the players get the present; the spectator, once the delay
    // has filled, what the players got `DELAY_SNAPSHOTS` snapshots before.
    let mut players_saw = Vec::new();
    let mut spectator_saw = Vec::new();
    let mut spectator_deltas = 0;
    for n in 0..14 {
        if n == 5 {
            room.send(RoomCmd::Chat {
                id: ann.id,
                text: "now".into(),
            });
        }
        room.until_snapshot();
        for msg in ann.received() {
            match msg {
                ServerMsg::Snapshot(snapshot) => players_saw.push(low_tick_of(&snapshot.header)),
                ServerMsg::Chat { .. } => players_saw.push(u16::MAX),
                ServerMsg::PlayerJoined { .. } => panic!("a spectator joins nobody's roster"),
                _ => {}
            }
        }
        for msg in eve.received() {
            match msg {
                ServerMsg::Snapshot(snapshot) => {
                    let low = low_tick_of(&snapshot.header);
                    eve.acks.store(low);
                    spectator_saw.push(low);
                    if matches!(snapshot.header.tick, TickRef::Delta { .. }) {
                        spectator_deltas += 1;
                    }
                }
                ServerMsg::Chat { .. } => spectator_saw.push(u16::MAX),
                _ => {}
            }
        }
    }
    assert_eq!(
        players_saw.len(),
        15,
        "fourteen snapshots and the chat line"
    );
    // What the players got up to their ninth snapshot: the last five are not yet due.
    let shown_so_far = 14 - DELAY_SNAPSHOTS;
    let mut snapshots = 0;
    let due = players_saw
        .iter()
        .take_while(|&&low| {
            snapshots += usize::from(low != u16::MAX);
            snapshots <= shown_so_far
        })
        .count();
    assert_eq!(
        spectator_saw,
        players_saw[..due],
        "the same snapshots and line, in the same order, {DELAY_SNAPSHOTS} snapshots late"
    );
    assert!(spectator_saw.contains(&u16::MAX), "the chat line came too");
    assert_eq!(
        spectator_deltas,
        shown_so_far - 1,
        "after the first, every snapshot is a delta against the one acknowledged"
    );
    assert!(eve.kicked.is_empty(), "an acknowledging spectator stays");
    assert_eq!(room.runner.players(), 1, "a spectator takes no seat");
}

#[test]
fn spectators_past_the_cap_are_refused_and_one_that_stops_acknowledging_is_let_go() {
    let mut room = TestRoom::new();
    let _ann = room.join("ann");
    let (first, mut quiet) = room.watch(100);
    let (second, _eve) = room.watch(101);
    let (third, _late) = room.watch(102);
    assert_eq!((first, second), (Ok(()), Ok(())));
    assert_eq!(third, Err(WatchRefused::Full), "past MAX_SPECTATORS");

    // `quiet` never acknowledges: after the stall timeout it is let go as too slow,
    // and its place is free again.
    let stall_snapshots = (STALL.as_secs_f64() * f64::from(SNAPSHOT_HZ)) as usize;
    for _ in 0..DELAY_SNAPSHOTS + stall_snapshots + 2 {
        room.until_snapshot();
    }
    assert_eq!(
        quiet.kicked.try_recv().map(|kick| kick.reason),
        Ok(CloseReason::TooSlow)
    );
    let (again, _next) = room.watch(103);
    assert_eq!(again, Ok(()), "the place of the one let go is free");
}
