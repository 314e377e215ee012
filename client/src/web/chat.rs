//! The chat box: Enter opens it, Enter sends, Esc closes. The server's limits are shown
//! before they bite: a length counter, and the same burst-and-refill budget the server
//! applies, so a line over the limit is held back with a reason instead of vanishing.

use std::collections::VecDeque;

use shared::consts::{CHAT_BURST, CHAT_MAX_CHARS, CHAT_PER_SECOND};
use shared::text::sanitize_chat;
use web_sys::{Element, HtmlElement, HtmlInputElement};

use super::dom::{by_id, element, show};

/// Chat lines kept on screen.
const CHAT_LINES: usize = 8;

#[derive(Debug)]
pub struct Chat {
    open: bool,
    /// Lines the budget allows now; refills at the server's rate up to its burst.
    budget: f64,
    budget_at: f64,
    lines: VecDeque<Element>,
}

impl Chat {
    pub fn new(now: f64) -> Chat {
        Chat {
            open: false,
            budget: f64::from(CHAT_BURST),
            budget_at: now,
            lines: VecDeque::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn open(&mut self) {
        self.open = true;
        show(&by_id::<HtmlElement>("chat-form"), true);
        let input: HtmlInputElement = by_id("chat-input");
        let _ = input.focus();
        self.show_length();
    }

    pub fn close(&mut self) {
        self.open = false;
        let input: HtmlInputElement = by_id("chat-input");
        input.set_value("");
        let _ = input.blur();
        show(&by_id::<HtmlElement>("chat-form"), false);
    }

    /// Shows how much of the length limit the typed line uses.
    pub fn show_length(&self) {
        let n_chars = by_id::<HtmlInputElement>("chat-input")
            .value()
            .chars()
            .count();
        let counter: HtmlElement = by_id("chat-limit");
        counter.set_text_content(Some(&format!("{n_chars}/{CHAT_MAX_CHARS}")));
        counter.set_class_name(if n_chars > CHAT_MAX_CHARS { "over" } else { "" });
    }

    /// The typed line to send, if there is one and the budget allows it; closes the box
    /// when the line is sent or empty, and says why when it is held back.
    pub fn take_line(&mut self, now: f64) -> Option<String> {
        let input: HtmlInputElement = by_id("chat-input");
        let Some(line) = sanitize_chat(&input.value()) else {
            self.close();
            return None;
        };
        self.budget = (self.budget + (now - self.budget_at) * f64::from(CHAT_PER_SECOND))
            .min(f64::from(CHAT_BURST));
        self.budget_at = now;
        if self.budget < 1.0 {
            let wait = (1.0 - self.budget) / f64::from(CHAT_PER_SECOND);
            self.notice(&format!(
                "chat limit: {CHAT_BURST} lines in a row, then one every {:.0} s. Wait {wait:.0} s.",
                1.0 / CHAT_PER_SECOND
            ));
            return None;
        }
        self.budget -= 1.0;
        self.close();
        Some(line)
    }

    pub fn line(&mut self, from: &str, text: &str) {
        let line = element("li", "", "");
        let _ = line.append_child(&element("span", "from", &format!("{from}:")));
        let _ = line.append_child(&element("span", "text", text));
        self.push(line);
    }

    /// A line from the server or the page itself, not from a player.
    pub fn notice(&mut self, text: &str) {
        self.push(element("li", "notice", text));
    }

    fn push(&mut self, line: Element) {
        let _ = by_id::<HtmlElement>("chat-log").append_child(&line);
        self.lines.push_back(line);
        while self.lines.len() > CHAT_LINES {
            if let Some(old) = self.lines.pop_front() {
                old.remove();
            }
        }
    }
}
