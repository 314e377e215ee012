//! A room's finished matches: the results table every player is shown, the record the
//! store keeps, and word to the players once the store has it saved. The room hands
//! the record over and goes on; it never waits for the disk.

use std::time::{SystemTime, UNIX_EPOCH};

use shared::game::{MatchEnd, Phase, Player};
use shared::protocol::{MatchResults, ResultLine, ServerMsg};
use tokio::sync::oneshot;

use crate::rooms::room::{Room, Saving};
use crate::store::{EndReason, MatchResult, PlayerResult};

impl From<MatchEnd> for EndReason {
    fn from(end: MatchEnd) -> EndReason {
        match end {
            MatchEnd::ScoreLimit => EndReason::ScoreLimit,
            MatchEnd::TimeLimit => EndReason::TimeLimit,
        }
    }
}

/// Milliseconds since the Unix epoch, as matches are stamped.
pub(crate) fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

impl Room {
    /// Shows every player the match's results and hands them to the store. A match
    /// nobody finished (the room emptied) is not recorded.
    pub(super) fn finish_match(&mut self, reason: EndReason) {
        let lines = self.result_lines();
        if lines.is_empty() {
            self.recorder.discard();
            return;
        }
        let shown = ServerMsg::MatchResults(Box::new(MatchResults {
            reason: match reason {
                EndReason::ScoreLimit => MatchEnd::ScoreLimit,
                // A match cut short by the server ends, for players, like one whose time
                // ran out.
                EndReason::TimeLimit | EndReason::Shutdown => MatchEnd::TimeLimit,
            },
            lines: lines.clone(),
        }));
        self.broadcast(&shown);
        let record = MatchResult {
            room: self.id.clone(),
            map: self.settings.map.name.clone(),
            started_at_ms: self.match_started_ms,
            ended_at_ms: unix_ms_now(),
            end_reason: reason,
            players: lines
                .into_iter()
                .map(|line| PlayerResult {
                    profile: line.profile,
                    name: line.name,
                    kills: line.kills,
                    deaths: line.deaths,
                    shots: line.shots,
                    hits: line.hits,
                    score: line.score,
                    placing: line.placing,
                })
                .collect(),
        };
        let (saved, saving) = oneshot::channel();
        self.settings.results.submit(record, saved);
        self.saving.push(Saving {
            saved: saving,
            replay: self.recorder.finish(),
        });
    }

    /// Records the match being played as ended by a shutdown. Results already standing
    /// were recorded when their match ended.
    pub(super) fn end_for_shutdown(&mut self) {
        if self.world.clock().phase == Phase::Playing {
            self.finish_match(EndReason::Shutdown);
        }
    }

    /// Tells the players of each match the store has saved since the last tick.
    pub(super) fn announce_saves(&mut self) {
        let mut idx = 0;
        while idx < self.saving.len() {
            match self.saving[idx].saved.try_recv() {
                Ok(match_id) => {
                    let saving = self.saving.swap_remove(idx);
                    if let Some(key) = saving.replay {
                        self.recorder.keep(key, match_id);
                    }
                    self.broadcast(&ServerMsg::MatchSaved { match_id });
                }
                Err(oneshot::error::TryRecvError::Empty) => idx += 1,
                // Dropped: the store could not take it, and has said so in its log.
                Err(oneshot::error::TryRecvError::Closed) => {
                    let saving = self.saving.swap_remove(idx);
                    if let Some(key) = saving.replay {
                        self.recorder.drop_recording(key);
                    }
                }
            }
        }
    }

    /// Everyone seated, best score first; equal scores share a placing.
    fn result_lines(&self) -> Vec<ResultLine> {
        let mut lines: Vec<ResultLine> = self
            .occupants
            .iter()
            .filter_map(|occupant| {
                let player: &Player = self.world.player(occupant.id)?;
                Some(ResultLine {
                    id: occupant.id,
                    profile: occupant.profile,
                    name: occupant.name.clone(),
                    kills: player.stats.kills,
                    deaths: player.stats.deaths,
                    shots: player.stats.shots,
                    hits: player.stats.hits,
                    score: u32::from(player.score),
                    placing: 0,
                })
            })
            .collect();
        lines.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then(a.deaths.cmp(&b.deaths))
                .then(a.id.cmp(&b.id))
        });
        for idx in 0..lines.len() {
            lines[idx].placing = if idx > 0 && lines[idx].score == lines[idx - 1].score {
                lines[idx - 1].placing
            } else {
                idx as u32 + 1
            };
        }
        lines
    }
}

impl Drop for Room {
    /// Matches the store has not confirmed yet keep their replays all the same: the
    /// writer waits for the store's word in the room's place.
    fn drop(&mut self) {
        for saving in self.saving.drain(..) {
            if let Some(key) = saving.replay {
                self.recorder.keep_when_saved(key, saving.saved);
            }
        }
    }
}
