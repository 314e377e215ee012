//! Integration tests of the client core against the real server in-process, over real
//! WebSockets (and, for latency, a delaying TCP proxy).

mod delay_proxy;
mod prediction;
