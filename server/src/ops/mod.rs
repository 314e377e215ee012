//! What operators set and see: the flags, and the metrics; and how the server waits
//! out a failure.

pub(crate) mod backoff;
pub(crate) mod config;
pub(crate) mod metrics;
