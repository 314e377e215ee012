//! A room's recording of the match being played: each snapshot's state, as a keyframe
//! every `REPLAY_KEYFRAME_SECS` and as a delta against the frame before otherwise,
//! framed on the room thread and handed to the replay writer, which owns the file.

use shared::Tick;
use shared::consts::REPLAY_KEYFRAME_SECS;
use shared::replay::{MAGIC, ReplayFrame, ReplayHeader, RosterName, write_frame};
use shared::snapshot::{QState, diff};
use tokio::sync::oneshot;

use crate::store::MatchId;
use crate::store::replays::{RecordingKey, ReplaySink};

/// The room's handle on its recordings; at most one is being made at a time.
#[derive(Debug)]
pub(super) struct Recorder {
    sink: ReplaySink,
    current: Option<Recording>,
    /// Ticks between keyframes.
    keyframe_ticks: i32,
}

#[derive(Debug)]
struct Recording {
    key: RecordingKey,
    /// The tick of the last frame handed over, the baseline of the next delta; `None`
    /// after a frame was lost, so the next one is a keyframe.
    previous: Option<Tick>,
    last_keyframe: Tick,
    roster: Vec<RosterName>,
}

impl Recorder {
    pub(super) fn new(sink: ReplaySink, tick_hz: u16) -> Recorder {
        Recorder {
            sink,
            current: None,
            keyframe_ticks: i32::from(REPLAY_KEYFRAME_SECS) * i32::from(tick_hz),
        }
    }

    /// Records `state`, starting a recording with `header` if none is being made. The
    /// roster is recorded again whenever it changed. `sent_before` is the state the room
    /// sent before this one (it keeps its recent states), the delta's baseline when it is
    /// the frame recorded last.
    pub(super) fn record<'a>(
        &mut self,
        state: &QState,
        sent_before: Option<&QState>,
        roster: impl ExactSizeIterator<Item = (shared::PlayerId, &'a str)> + Clone,
        header: impl FnOnce() -> ReplayHeader,
    ) {
        let recording = match &mut self.current {
            Some(recording) => recording,
            None => {
                let mut bytes = MAGIC.to_vec();
                write_frame(&ReplayFrame::Header(header()), &mut bytes);
                let Ok(key) = self.sink.open(bytes) else {
                    return;
                };
                self.current.insert(Recording {
                    key,
                    previous: None,
                    last_keyframe: state.tick,
                    roster: Vec::new(),
                })
            }
        };
        let roster_changed = recording.roster.len() != roster.len()
            || !recording
                .roster
                .iter()
                .zip(roster.clone())
                .all(|(known, (id, name))| known.id == id && known.name == name);
        let mut sent = Ok(());
        if roster_changed {
            recording.roster = roster
                .map(|(id, name)| RosterName {
                    id,
                    name: name.to_owned(),
                })
                .collect();
            let mut bytes = Vec::new();
            write_frame(&ReplayFrame::Roster(recording.roster.clone()), &mut bytes);
            sent = self.sink.frame(recording.key, bytes, None);
        }
        let keyframe_due = state.tick.since(recording.last_keyframe) >= self.keyframe_ticks;
        let mut bytes = Vec::new();
        let baseline = sent_before.filter(|before| Some(before.tick) == recording.previous);
        let keyframe = match baseline {
            Some(previous) if !keyframe_due => {
                write_frame(
                    &ReplayFrame::Delta {
                        baseline: previous.tick,
                        tick: state.tick,
                        body: diff(Some(previous), state),
                    },
                    &mut bytes,
                );
                None
            }
            _ => {
                write_frame(
                    &ReplayFrame::Keyframe {
                        tick: state.tick,
                        body: diff(None, state),
                    },
                    &mut bytes,
                );
                Some(state.tick)
            }
        };
        match sent.and_then(|()| self.sink.frame(recording.key, bytes, keyframe)) {
            Ok(()) => {
                if keyframe.is_some() {
                    recording.last_keyframe = state.tick;
                }
                recording.previous = Some(state.tick);
            }
            Err(_) => {
                // The roster goes again with the keyframe that picks the recording up.
                recording.previous = None;
                recording.roster.clear();
            }
        }
    }

    /// Ends the recording of a match handed to the store. Returns the recording to
    /// keep once the store gives the match's id.
    pub(super) fn finish(&mut self) -> Option<RecordingKey> {
        let recording = self.current.take()?;
        self.sink.close(recording.key);
        Some(recording.key)
    }

    /// The store saved the match `key` recorded, as `id`.
    pub(super) fn keep(&self, key: RecordingKey, id: MatchId) {
        self.sink.keep(key, id);
    }

    /// The store will not save the match `key` recorded.
    pub(super) fn drop_recording(&self, key: RecordingKey) {
        self.sink.discard(key);
    }

    /// The room goes before the store's word: the writer waits for it instead.
    pub(super) fn keep_when_saved(&self, key: RecordingKey, saved: oneshot::Receiver<MatchId>) {
        self.sink.await_save(key, saved);
    }

    /// Drops the recording of a match nobody finished.
    pub(super) fn discard(&mut self) {
        if let Some(recording) = self.current.take() {
            self.sink.discard(recording.key);
        }
    }
}

impl Drop for Recorder {
    /// A room that closes mid-match (it emptied, or failed) leaves no file open.
    fn drop(&mut self) {
        self.discard();
    }
}
