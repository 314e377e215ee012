//! The harness's helpers, one of each: the server launcher, the HTTP client, the
//! Prometheus text parser, the `/proc` readers, the faulty-network proxy (with `proxy`) and (with
//! `certs`) the test certificates. The `harness` program's runs use them,
//! and so does xtask (for the WebSocket compliance run), so no task grows its own.

#[cfg(feature = "certs")]
pub mod certs;
pub mod http;
pub mod metrics;
pub mod procfs;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod server_process;

pub use metrics::{Histogram, Metrics};
pub use server_process::ServerProcess;
