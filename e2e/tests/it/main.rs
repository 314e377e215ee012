//! End-to-end tests in real headless Chromium, against the real server serving the real
//! bundle. `cargo xtask test` builds the bundle, makes sure Chromium and chromedriver are
//! installed, and runs these (they are ignored by a plain `cargo test`, which has neither).

mod crowd;
mod history;
mod reconnect;
mod refusal;
mod two_pages;
mod wss;
