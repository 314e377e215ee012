//! One snapshot tick's encoding, for the players and the spectators alike: the body of
//! the snapshot encoded once per baseline in use, and a small head per recipient, all
//! reused from one snapshot to the next so that the steady state allocates nothing.

use bytes::Bytes;
use shared::Tick;
use shared::codec::{encode_snapshot_body, encode_snapshot_head};
use shared::protocol::{SnapshotHeader, TickRef};
use shared::snapshot::{QState, diff};

#[derive(Debug, Default)]
pub(super) struct Outgoing {
    /// Encoded bodies of the current snapshot, one per baseline in use.
    bodies: Vec<(Option<Tick>, Bytes)>,
    /// Every recipient's snapshot head, end to end.
    heads: Vec<u8>,
    recipients: Vec<Recipient>,
}

/// Who gets the snapshot being sent, and which parts are theirs.
#[derive(Clone, Copy, Debug)]
struct Recipient {
    /// The caller's index of the recipient (an occupant, a watcher).
    who: usize,
    /// Where its head ends in `Outgoing::heads`; it starts where the previous one's ends.
    head_end: usize,
    /// Index of its body in `Outgoing::bodies`.
    body: usize,
}

impl Outgoing {
    /// Begins the encoding of a new snapshot.
    pub(super) fn clear(&mut self) {
        self.bodies.clear();
        self.heads.clear();
        self.recipients.clear();
    }

    /// Adds recipient `who`, which gets `state` as a delta against `baseline` (in full
    /// without one), with its own input acknowledgement and velocity in its head.
    pub(super) fn add(
        &mut self,
        who: usize,
        state: &QState,
        baseline: Option<&QState>,
        ack_input_low: u16,
        own_vel: Option<[i16; 2]>,
    ) {
        let baseline_tick = baseline.map(|b| b.tick);
        let body = match self.bodies.iter().position(|(t, _)| *t == baseline_tick) {
            Some(body) => body,
            None => {
                let body = Bytes::from(encode_snapshot_body(&diff(baseline, state)));
                self.bodies.push((baseline_tick, body));
                self.bodies.len() - 1
            }
        };
        let header = SnapshotHeader {
            tick: match baseline_tick {
                Some(base) => TickRef::Delta {
                    baseline_low: base.0 as u16,
                    after: state.tick.since(base) as u32,
                },
                None => TickRef::Full(state.tick),
            },
            ack_input_low,
            own_vel,
        };
        encode_snapshot_head(&header, &mut self.heads);
        self.recipients.push(Recipient {
            who,
            head_end: self.heads.len(),
            body,
        });
    }

    /// Each recipient, in the order added, with its head and its body.
    pub(super) fn each(&self) -> impl Iterator<Item = (usize, &[u8], &[u8])> {
        self.recipients.iter().scan(0, |head_start, recipient| {
            let head = &self.heads[*head_start..recipient.head_end];
            *head_start = recipient.head_end;
            Some((recipient.who, head, &self.bodies[recipient.body].1[..]))
        })
    }

    pub(super) fn recipients(&self) -> usize {
        self.recipients.len()
    }

    pub(super) fn bodies(&self) -> usize {
        self.bodies.len()
    }
}
