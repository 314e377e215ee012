//! The match clock over the scoreboard and the results panel: what the match phase is and
//! how long it has left, and, once a match ends, its table of placings with a line that
//! says when the result is saved. Like the rest of the HUD, it touches the DOM only when
//! what it shows has changed.

use shared::game::{MatchEnd, Phase};
use shared::protocol::MatchResults;
use shared::view::Snapshot;
use web_sys::HtmlElement;

use super::dom::{by_id, element, show};

#[derive(Debug, Default)]
pub struct ResultsPanel {
    clock_shown: String,
    /// The results and saved state on screen, to skip redrawing what has not changed.
    shown: Option<(MatchResults, Option<i64>)>,
}

impl ResultsPanel {
    /// "4:32 left", or the seconds until the next match while results stand.
    pub fn clock(&mut self, snapshot: Option<&Snapshot>, tick_hz: u16) {
        let text = snapshot.map_or_else(String::new, |snapshot| {
            let secs = snapshot
                .clock
                .ticks_left(snapshot.tick)
                .div_ceil(u32::from(tick_hz.max(1)));
            match snapshot.clock.phase {
                Phase::Playing => format!("{}:{:02} left", secs / 60, secs % 60),
                Phase::Results => format!("next match in {secs} s"),
            }
        });
        if text != self.clock_shown {
            by_id::<HtmlElement>("match-clock").set_text_content(Some(&text));
            self.clock_shown = text;
        }
    }

    /// Shows the table of the match that ended last, or hides it once the next begins.
    pub fn results(&mut self, results: Option<&MatchResults>, saved: Option<i64>) {
        let wanted = results.map(|results| (results.clone(), saved));
        if wanted == self.shown {
            return;
        }
        let panel: HtmlElement = by_id("results");
        let Some((results, saved)) = &wanted else {
            show(&panel, false);
            self.shown = None;
            return;
        };
        by_id::<HtmlElement>("results-title").set_text_content(Some(match results.reason {
            MatchEnd::ScoreLimit => "Match over: score limit reached",
            MatchEnd::TimeLimit => "Match over: time is up",
        }));
        let rows = js_sys::Array::new();
        let head = element("tr", "", "");
        for title in ["#", "player", "kills", "deaths", "accuracy", "score"] {
            let _ = head.append_child(&element("th", "", title));
        }
        rows.push(&head);
        for line in &results.lines {
            let accuracy = if line.shots == 0 {
                "–".to_owned()
            } else {
                format!(
                    "{:.0}%",
                    100.0 * f64::from(line.hits) / f64::from(line.shots)
                )
            };
            let row = element("tr", if line.placing == 1 { "best" } else { "" }, "");
            let cells = [
                line.placing.to_string(),
                line.name.clone(),
                line.kills.to_string(),
                line.deaths.to_string(),
                accuracy,
                line.score.to_string(),
            ];
            for cell in &cells {
                let _ = row.append_child(&element("td", "", cell));
            }
            rows.push(&row);
        }
        by_id::<HtmlElement>("results-table").replace_children_with_node(&rows);
        let saved_text = match saved {
            Some(id) => format!("Saved as match {id}."),
            None => "Saving the result…".to_owned(),
        };
        let saved_line: HtmlElement = by_id("results-saved");
        saved_line.set_text_content(Some(&saved_text));
        saved_line.set_class_name(if saved.is_some() { "saved" } else { "" });
        show(&panel, true);
        self.shown = wanted;
    }
}
