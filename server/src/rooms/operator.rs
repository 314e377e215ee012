//! What operators do to a room from the console: remove a player, close the room, tell
//! every player something, and drain. The console validated every word; the room only
//! carries the actions out, at its next tick, like any other command.

use shared::PlayerId;
use shared::game::GameEvent;
use shared::protocol::{CloseReason, ServerMsg};

use crate::rooms::room::Room;

/// What a kicked player is told, before the operator's reason if one was given.
pub(crate) const KICKED: &str = "kicked by an operator";

impl Room {
    /// Removes a player for good: their connection is closed with 4008 and their seat is
    /// not held for a resume. False if nobody has that id here.
    pub(super) fn kick_by_operator(&mut self, id: PlayerId, reason: Option<&str>) -> bool {
        let Ok(idx) = self.occupants.binary_search_by_key(&id, |o| o.id) else {
            return false;
        };
        let detail = match reason {
            Some(reason) => format!("{KICKED}: {reason}"),
            None => KICKED.to_owned(),
        };
        if let Some(mut link) = self.occupants[idx].link.take() {
            link.outbox.kick_with(CloseReason::Kicked, Some(detail));
        }
        tracing::info!(room = %self.id, player = id.0, ?reason, "player kicked by an operator");
        self.leave(id);
        true
    }

    /// Ends the match being played (recorded as `shutdown`), lets every player go with
    /// 4008 and closes the room once it is empty. Returns how many players were let go.
    pub(super) fn close_by_operator(&mut self) -> usize {
        self.end_for_shutdown();
        let n_players = self.let_everyone_go(
            CloseReason::Kicked,
            &format!("{KICKED}: the room was closed"),
        );
        self.closing = true;
        tracing::info!(room = %self.id, n_players, "room closed by an operator");
        n_players
    }

    /// Shows every player an announcement from the operators.
    pub(super) fn announce(&mut self, text: String) {
        self.broadcast(&ServerMsg::Announcement { text });
    }

    /// A draining room closes where its next match would begin: the match being played
    /// went on to its end and its results stood.
    pub(super) fn close_if_drained(&mut self, event: GameEvent) {
        if event == GameEvent::MatchStarted && self.is_draining() {
            self.let_everyone_go(
                CloseReason::ServerShutdown,
                "the server is restarting; the match was finished",
            );
            self.closing = true;
        }
    }

    /// Every player leaves for good, told `detail` with `reason`.
    fn let_everyone_go(&mut self, reason: CloseReason, detail: &str) -> usize {
        let ids: Vec<PlayerId> = self.occupants.iter().map(|o| o.id).collect();
        for &id in &ids {
            if let Ok(idx) = self.occupants.binary_search_by_key(&id, |o| o.id)
                && let Some(mut link) = self.occupants[idx].link.take()
            {
                link.outbox.kick_with(reason, Some(detail.to_owned()));
            }
            self.leave(id);
        }
        ids.len()
    }
}
