//! Integration tests: the real server on 127.0.0.1:0, real WebSockets, real HTTP.

mod admin;
mod bad_input;
mod bots;
mod cheats;
mod cluster;
mod edges;
mod fuzz_corpus;
mod gameplay;
mod handshake;
mod history;
mod http;
mod identity;
mod lag_compensation;
mod lifecycle;
mod lobby;
mod matches;
mod postgres;
mod proxy;
mod replays;
mod resume;
mod room_limits;
mod slow_clients;
mod support;
mod tls;
mod web_files;
