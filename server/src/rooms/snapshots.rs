//! A room's outgoing snapshots: the world quantized once, encoded by `Outgoing` (a
//! body once per baseline in use, a small head per client), and one write into each
//! client's socket.

use std::time::Instant;

use shared::consts::SNAPSHOT_RING;
use shared::game::Phase;
use shared::protocol::CloseReason;
use shared::quant::quantize_vel;
use shared::replay::ReplayHeader;
use shared::snapshot::QState;

use crate::rooms::outbox::Overflow;
use crate::rooms::room::Room;

impl Room {
    /// Quantizes the world and writes a snapshot to every client: a delta against the
    /// newest snapshot each client acknowledged. Bodies are encoded once per distinct
    /// baseline; each client gets only its own small head, and its socket gets one
    /// vectored write of frame header, head and the shared body.
    pub(super) fn send_snapshots(&mut self) {
        let started = Instant::now();
        let state = QState::of_world(&self.world);
        let tick = state.tick;
        let stall_ticks =
            (self.settings.stall_timeout.as_secs_f32() * f32::from(self.settings.tick_hz)) as i32;
        let outgoing = &mut self.outgoing;
        outgoing.clear();
        let mut stalled = Vec::new();

        for (idx, occupant) in self.occupants.iter_mut().enumerate() {
            // A seat held for a resume has nobody to send to.
            let Some(link) = &occupant.link else {
                continue;
            };
            let ack = link.acks.load();
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
            let own_vel = self
                .world
                .player(occupant.id)
                .map(|p| quantize_vel(p.body.vel))
                .filter(|vel| *vel != [0, 0]);
            outgoing.add(idx, &state, baseline, occupant.last_seq.0 as u16, own_vel);
        }
        let encoded_at = Instant::now();
        // Writing goes into the sockets themselves: measured apart from encoding.
        let mut overflowed = Vec::new();
        for (idx, head, body) in outgoing.each() {
            let occupant = &mut self.occupants[idx];
            let sent = occupant
                .link
                .as_mut()
                .map(|link| link.outbox.send_snapshot(head, body));
            if sent == Some(Err(Overflow)) {
                overflowed.push(occupant.id);
            }
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
            .inc_by(outgoing.recipients() as u64);
        metrics.snapshot_bodies.inc_by(outgoing.bodies() as u64);
        // A match that starts in an empty room (it stays open a while) is played by
        // nobody: recording it would hold a file open for nothing.
        if state.clock.phase == Phase::Playing && !self.occupants.is_empty() {
            self.record(&state);
        }
        self.spectators
            .snapshot_sent(&state, self.settings.deltas, stall_ticks);
        if self.sent.len() == SNAPSHOT_RING {
            self.sent.pop_front();
        }
        self.sent.push_back(state);
        // Both are too slow: one stopped acknowledging, one let its backlog fill. Either
        // may be a connection that died without a word, so the seat is held for a resume.
        for id in stalled.into_iter().chain(overflowed) {
            self.hold_seat(id, Some(CloseReason::TooSlow));
        }
    }

    /// Hands the state of the match being played to its recording.
    fn record(&mut self, state: &QState) {
        let (id, settings, started_at_ms) = (&self.id, &self.settings, self.match_started_ms);
        self.recorder.record(
            state,
            self.sent.back(),
            self.occupants.iter().map(|o| (o.id, o.name.as_str())),
            || ReplayHeader {
                room: id.clone(),
                map: settings.map.clone(),
                tick_hz: settings.tick_hz,
                snapshot_hz: settings.snapshot_hz,
                started_at_ms,
            },
        );
    }
}
