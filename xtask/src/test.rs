//! `cargo xtask test`: every check CI runs, in order from cheapest to slowest, ending with
//! the browser tests in real headless Chromium against the freshly built bundle, and the
//! reverse-proxy test behind a real Caddy; the shared store's tests get PostgreSQL and
//! the cluster's tests redis-server.

use crate::build::bundle;
use crate::programs::{ensure_caddy, ensure_chromium, ensure_postgres, ensure_redis};
use crate::util::{cargo, ensure_target, exec, target_dir, timed};
use crate::{compliance, deny, harness};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    exec(cargo().args(["fmt", "--all", "--", "--check"]))?;
    exec(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    ensure_target("wasm32-unknown-unknown")?;
    // `shared` must build for wasm32, and the web shell exists only there, so the
    // native clippy above never sees it.
    exec(cargo().args([
        "clippy",
        "-p",
        "shared",
        "-p",
        "client",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    // With the variables set, the tests that need PostgreSQL or Redis run (and fail if
    // it is not there) instead of skipping, as they do under a plain `cargo test`.
    let postgres = ensure_postgres()?;
    let redis = ensure_redis()?;
    exec(
        cargo()
            .args(["test", "--workspace"])
            .env(test_postgres::BIN_ENV, &postgres)
            .env(test_redis::BIN_ENV, &redis),
    )?;

    let web_root = bundle()?;
    let chromium = ensure_chromium()?;
    let caddy = ensure_caddy()?;
    timed("browser and proxy tests", || {
        exec(
            cargo()
                // The ignored tests are those that need programs from outside the
                // workspace (Chromium, Caddy), and so only this step runs them.
                // Selecting them with `--ignored` over the whole workspace, rather than
                // `-p e2e`, reuses the build above: the same packages, so the same
                // features. One at a time keeps frame timings honest; their output
                // (measurements, screenshot paths) is worth seeing even when they pass.
                .args([
                    "test",
                    "--workspace",
                    "--",
                    "--ignored",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(test_postgres::BIN_ENV, &postgres)
                .env(test_redis::BIN_ENV, &redis)
                .env("SKIRMISH_E2E_WEB_ROOT", &web_root)
                .env("SKIRMISH_E2E_CHROMIUM", &chromium.browser)
                .env("SKIRMISH_E2E_CHROMEDRIVER", &chromium.driver)
                .env("SKIRMISH_E2E_CADDY", &caddy)
                .env("SKIRMISH_E2E_ARTIFACTS", target_dir().join("e2e")),
        )
    })?;
    timed("dependency audit", || deny::run(deny::Args::default()))?;
    timed("websocket compliance", || {
        compliance::run(compliance::Args::default())
    })?;
    timed("short soak", harness::short_soak)?;
    Ok(())
}
