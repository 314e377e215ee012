//! End-to-end tests in real headless Chromium, against the real server serving the real
//! bundle, and through a real Caddy in front of it. `cargo xtask test` builds the bundle,
//! makes sure Chromium, chromedriver and Caddy are installed, and runs these (they are
//! ignored by a plain `cargo test`, which has none of them).

mod cluster;
mod console;
mod crowd;
mod first_load;
mod guest;
mod history;
mod live_lobby;
mod proxy;
mod reconnect;
mod refusal;
mod replay_viewer;
mod resume;
mod spectate;
mod touch;
mod two_pages;
mod wss;
