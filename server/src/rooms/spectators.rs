//! A room's spectators and the delay buffer they watch through: the room's snapshots
//! and messages held back by `--spectator-delay-secs`, then sent to every spectator
//! with the players' encoding (deltas against acknowledged baselines, a body encoded
//! once per baseline). The buffer exists only while someone watches, so a room nobody
//! watches pays nothing, and its cost does not grow with the number of spectators.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shared::codec::encode_server;
use shared::consts::SNAPSHOT_RING;
use shared::protocol::{CloseReason, RosterEntry, ServerMsg, Watching};
use shared::snapshot::QState;
use shared::{Map, PlayerId, Tick};

use crate::rooms::ack::AckSlot;
use crate::rooms::outbox::{Outbox, Overflow};
use crate::rooms::outgoing::Outgoing;
use crate::rooms::room::LinkId;

/// What a spectator's connection hands the room.
#[derive(Debug)]
pub(crate) struct SpectatorLink {
    pub id: LinkId,
    pub acks: Arc<AckSlot>,
    pub outbox: Outbox,
}

/// Why a room turned a spectator away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WatchRefused {
    /// The room has `--max-spectators-per-room` spectators already.
    #[error("the room has as many spectators as it admits")]
    Full,
}

/// How spectating runs in every room; set once from the flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpectatorSettings {
    /// How far behind the room's present spectators are.
    pub delay: Duration,
    /// Spectators one room admits at once; they take no seats.
    pub max_per_room: u16,
}

/// One spectator, as the room sees it.
#[derive(Debug)]
struct Watcher {
    link: SpectatorLink,
    /// The last acknowledgement read, as sent (low 16 tick bits).
    last_ack: Option<u16>,
    /// The newest acknowledged snapshot still among those shown: its next baseline.
    acked: Option<Tick>,
    /// When an acknowledgement last arrived, or the first snapshot was shown to it.
    ack_progress_at: Option<Tick>,
}

/// A message the room broadcast, held back with the snapshot it went out before.
#[derive(Debug)]
struct HeldMessage {
    bytes: Bytes,
    roster: Option<RosterChange>,
}

/// What a held message does to the roster spectators are shown.
#[derive(Debug)]
enum RosterChange {
    Joined(PlayerId, String),
    Left(PlayerId),
    Away(PlayerId, bool),
}

/// A snapshot the room sent its players, and the messages they got just before it.
#[derive(Debug)]
struct Held {
    state: QState,
    messages: Vec<HeldMessage>,
}

/// Spectators of one room and what they are shown. Owned by the room, like its players.
#[derive(Debug)]
pub(super) struct Spectators {
    settings: SpectatorSettings,
    watchers: Vec<Watcher>,
    /// How many snapshots the delay spans.
    delay_snapshots: usize,
    /// Snapshots not yet due for spectators, oldest first.
    held: VecDeque<Held>,
    /// Messages broadcast since the last snapshot.
    messages: Vec<HeldMessage>,
    /// The last `SNAPSHOT_RING` snapshots shown to spectators: their possible baselines.
    shown: VecDeque<QState>,
    /// The room's roster as of the newest snapshot shown, which a new spectator starts from.
    roster: Vec<RosterEntry>,
    /// The encoding of the snapshot being shown.
    outgoing: Outgoing,
}

impl Spectators {
    pub(super) fn new(settings: SpectatorSettings, snapshot_hz: u16) -> Spectators {
        let delay_snapshots =
            (settings.delay.as_secs_f64() * f64::from(snapshot_hz)).round() as usize;
        Spectators {
            settings,
            watchers: Vec::new(),
            delay_snapshots,
            held: VecDeque::new(),
            messages: Vec::new(),
            shown: VecDeque::new(),
            roster: Vec::new(),
            outgoing: Outgoing::default(),
        }
    }

    /// Admits a spectator, and queues what it is told first. `present` is the room's
    /// roster now, which is where the buffer starts when nobody was watching.
    pub(super) fn watch(
        &mut self,
        mut link: SpectatorLink,
        room: &str,
        map: &Map,
        rates: (u16, u16),
        present: impl FnOnce() -> Vec<RosterEntry>,
    ) -> Result<(), (SpectatorLink, WatchRefused)> {
        if self.watchers.len() >= usize::from(self.settings.max_per_room) {
            return Err((link, WatchRefused::Full));
        }
        if self.watchers.is_empty() {
            self.roster = present();
        }
        let watching = ServerMsg::Watching(Box::new(Watching {
            room: room.to_owned(),
            tick_hz: rates.0,
            snapshot_hz: rates.1,
            delay_ms: u32::try_from(self.settings.delay.as_millis()).unwrap_or(u32::MAX),
            map: map.clone(),
            roster: self.roster.clone(),
        }));
        // Now, not with its first snapshot, which is a whole delay away.
        if link.outbox.send_now(&encode_server(&watching)).is_err() {
            link.outbox.kick(CloseReason::TooSlow);
            return Ok(());
        }
        self.watchers.push(Watcher {
            link,
            last_ack: None,
            acked: None,
            ack_progress_at: None,
        });
        Ok(())
    }

    /// Lets the spectator on `link` go. The last one out empties the buffer.
    pub(super) fn unwatch(&mut self, link: LinkId) {
        self.watchers.retain(|w| w.link.id != link);
        if self.watchers.is_empty() {
            self.held.clear();
            self.messages.clear();
            self.shown.clear();
            self.roster.clear();
        }
    }

    /// Holds back a message the room just broadcast to its players.
    pub(super) fn hold_message(&mut self, msg: &ServerMsg, bytes: &[u8]) {
        if self.watchers.is_empty() {
            return;
        }
        let roster = match msg {
            ServerMsg::PlayerJoined { id, name } => Some(RosterChange::Joined(*id, name.clone())),
            ServerMsg::PlayerLeft { id } => Some(RosterChange::Left(*id)),
            ServerMsg::PlayerAway { id } => Some(RosterChange::Away(*id, true)),
            ServerMsg::PlayerBack { id } => Some(RosterChange::Away(*id, false)),
            _ => None,
        };
        self.messages.push(HeldMessage {
            bytes: Bytes::copy_from_slice(bytes),
            roster,
        });
    }

    /// Holds back the snapshot the room just sent, and shows spectators the one that
    /// is now `delay` old. `stall_ticks` is how long a spectator may go without
    /// acknowledging before it is let go.
    pub(super) fn snapshot_sent(&mut self, state: &QState, deltas: bool, stall_ticks: i32) {
        if self.watchers.is_empty() {
            return;
        }
        self.held.push_back(Held {
            state: state.clone(),
            messages: std::mem::take(&mut self.messages),
        });
        while self.held.len() > self.delay_snapshots {
            let Some(due) = self.held.pop_front() else {
                break;
            };
            self.show(due, deltas, stall_ticks);
        }
    }

    /// Sends every spectator the held messages and then the snapshot of `due`.
    fn show(&mut self, due: Held, deltas: bool, stall_ticks: i32) {
        let Held { state, messages } = due;
        for message in &messages {
            if let Some(change) = &message.roster {
                self.apply_roster(change);
            }
            for watcher in &mut self.watchers {
                watcher.link.outbox.queue(&message.bytes);
            }
        }
        let tick = state.tick;
        self.outgoing.clear();
        let mut let_go = Vec::new();
        for (idx, watcher) in self.watchers.iter_mut().enumerate() {
            let ack = watcher.link.acks.load();
            let progress_at = *watcher.ack_progress_at.get_or_insert(tick);
            if ack.is_some() && ack != watcher.last_ack {
                watcher.last_ack = ack;
                watcher.ack_progress_at = Some(tick);
                watcher.acked = self
                    .shown
                    .iter()
                    .rev()
                    .find(|s| Some(s.tick.0 as u16) == ack)
                    .map(|s| s.tick);
            } else if tick.since(progress_at) > stall_ticks {
                let_go.push(watcher.link.id);
                continue;
            }
            let baseline = watcher
                .acked
                .filter(|_| deltas)
                .and_then(|acked| self.shown.iter().find(|s| s.tick == acked));
            // A spectator sends no input, and has no body of its own.
            self.outgoing.add(idx, &state, baseline, 0, None);
        }
        let mut overflowed = Vec::new();
        for (idx, head, body) in self.outgoing.each() {
            let watcher = &mut self.watchers[idx];
            if watcher.link.outbox.send_snapshot(head, body) == Err(Overflow) {
                overflowed.push(watcher.link.id);
            }
        }
        if self.shown.len() == SNAPSHOT_RING {
            self.shown.pop_front();
        }
        self.shown.push_back(state);
        for id in let_go.into_iter().chain(overflowed) {
            if let Some(watcher) = self.watchers.iter_mut().find(|w| w.link.id == id) {
                watcher.link.outbox.kick(CloseReason::TooSlow);
            }
            self.unwatch(id);
        }
    }

    fn apply_roster(&mut self, change: &RosterChange) {
        let find = |roster: &[RosterEntry], id: PlayerId| roster.iter().position(|e| e.id == id);
        match change {
            RosterChange::Joined(id, name) => match find(&self.roster, *id) {
                Some(idx) => name.clone_into(&mut self.roster[idx].name),
                None => {
                    let idx = self.roster.partition_point(|e| e.id < *id);
                    self.roster.insert(
                        idx,
                        RosterEntry {
                            id: *id,
                            name: name.clone(),
                            away: false,
                        },
                    );
                }
            },
            RosterChange::Left(id) => {
                if let Some(idx) = find(&self.roster, *id) {
                    self.roster.remove(idx);
                }
            }
            RosterChange::Away(id, away) => {
                if let Some(idx) = find(&self.roster, *id) {
                    self.roster[idx].away = *away;
                }
            }
        }
    }
}

impl Drop for Spectators {
    /// A room that closes (empty past its grace, by an operator, failed) lets its
    /// spectators go too, rather than leave them watching nothing.
    fn drop(&mut self) {
        for watcher in &mut self.watchers {
            watcher
                .link
                .outbox
                .kick_with(CloseReason::ServerShutdown, Some("the room closed".into()));
        }
    }
}
