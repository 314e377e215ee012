//! What operators set and see: the flags, and the metrics.

pub(crate) mod config;
pub(crate) mod metrics;
