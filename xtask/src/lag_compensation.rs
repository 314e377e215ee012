//! `cargo xtask lag-compensation`: the hit rates of a shooter a 150 ms round trip away,
//! with lag compensation and without, as the server's integration test measures and
//! prints them; docs/PERFORMANCE.md quotes this run.

use crate::util::{cargo, exec};

const TEST: &str = "lag_compensation::behind_150_ms_shots_aimed_at_the_drawn_target_hit_only_with_lag_compensation";

pub fn run() -> anyhow::Result<()> {
    exec(cargo().args([
        "test",
        "-p",
        "server",
        "--test",
        "it",
        "--",
        "--exact",
        "--nocapture",
        TEST,
    ]))
}
