//! The first load, measured: a deep link opened in Chromium over a throttled network
//! (DevTools `Network.emulateNetworkConditions`: 150 ms latency, 9 Mbit/s down,
//! 1.5 Mbit/s up), once in a fresh profile and once more by reloading. For each it
//! prints the bytes transferred (the navigation and every resource, as resource timing
//! counts them) and the time from navigation start to the first snapshot applied. The
//! figures go in docs/PERFORMANCE.md; the test asserts what must hold on any machine.

use std::time::Duration;

use e2e::{Driver, Page, Setup};
use serde_json::{Value, json};

const ROOM: &str = "firstload";
/// The network a phone on a fair mobile connection has.
const LATENCY_MS: f64 = 150.0;
const DOWN_BITS_PER_S: f64 = 9e6;
const UP_BITS_PER_S: f64 = 1.5e6;

/// One visit as the page measured it.
#[derive(Debug)]
struct Visit {
    /// Bytes transferred: the navigation's and every resource's `transferSize`.
    bytes: u64,
    /// Milliseconds from navigation start to the first snapshot applied.
    first_snapshot_ms: f64,
    /// Each resource: its address, bytes transferred, and bytes after decoding.
    resources: Vec<(String, u64, u64)>,
    /// When each load ended and each of the page's marks was made, in milliseconds from
    /// navigation start: where the time went.
    moments: Vec<(String, f64)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn a_deep_link_loads_fast_and_a_repeat_visit_comes_from_the_cache() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let driver = Driver::start(&setup).await?;
    let page = driver.open("first-load", "about:blank").await?;
    let link = format!("{}/?room={ROOM}&name=newcomer", server.http_url());
    let measured = visits(&page, &link).await;
    page.screenshot(&setup.artifacts).await?;
    let errors = page.errors().await?;
    page.close().await?;
    let (first, repeat) = measured?;

    for (name, visit) in [("first visit", &first), ("repeat visit", &repeat)] {
        eprintln!(
            "{name}: {} bytes, first snapshot at {:.0} ms",
            visit.bytes, visit.first_snapshot_ms
        );
        for (url, transferred, decoded) in &visit.resources {
            eprintln!("  {transferred:>8} B (decoded {decoded:>8} B)  {url}");
        }
        for (what, at) in &visit.moments {
            eprintln!("  {at:>8.0} ms  {what}");
        }
    }
    assert!(errors.is_empty(), "no console errors: {errors:?}");
    let module = |visit: &Visit| {
        visit
            .resources
            .iter()
            .filter(|(url, ..)| url.ends_with(".wasm"))
            .count()
    };
    assert_eq!(
        module(&first),
        1,
        "the module is fetched once: its preload is the fetch the glue makes"
    );
    for (url, transferred, decoded) in &first.resources {
        if url.ends_with(".wasm") || url.ends_with(".js") {
            assert!(
                transferred < decoded,
                "{url} crosses the network compressed: {transferred} of {decoded} bytes"
            );
        }
    }
    assert!(
        repeat.bytes * 20 < first.bytes,
        "a repeat visit takes nearly everything from the cache: {} bytes against {}",
        repeat.bytes,
        first.bytes
    );
    Ok(())
}

/// Throttles the network, opens `link` in the fresh profile, then reloads it.
async fn visits(page: &Page, link: &str) -> anyhow::Result<(Visit, Visit)> {
    page.cdp("Network.enable", json!({})).await?;
    page.cdp(
        "Network.emulateNetworkConditions",
        json!({
            "offline": false,
            "latency": LATENCY_MS,
            "downloadThroughput": DOWN_BITS_PER_S / 8.0,
            "uploadThroughput": UP_BITS_PER_S / 8.0,
        }),
    )
    .await?;
    page.client.goto(link).await?;
    let first = visit(page).await?;
    // A returning player: the same browser, the same address, its cache warm.
    page.client.refresh().await?;
    let repeat = visit(page).await?;
    Ok((first, repeat))
}

/// Waits for the page's first snapshot, then reads what it measured.
async fn visit(page: &Page) -> anyhow::Result<Visit> {
    page.wait_for_probe("the first snapshot", |probe| {
        probe["firstSnapshotMs"].is_number()
    })
    .await?;
    // Resource timing entries are written when each load ends; let the last settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let timing = page
        .client
        .execute(
            "const nav = performance.getEntriesByType('navigation')[0];
             const resources = performance.getEntriesByType('resource');
             const ended = [nav, ...resources].map(r => [r.name.split('/').pop(), r.responseEnd]);
             const marks = performance.getEntriesByType('mark').map(m => [m.name, m.startTime]);
             return {
               navigation: [nav.name, nav.transferSize, nav.decodedBodySize],
               resources: resources.map(r => [r.name, r.transferSize, r.decodedBodySize]),
               moments: [...ended, ...marks, ['DOMContentLoaded', nav.domContentLoadedEventEnd]],
               first: window.skirmishProbe().firstSnapshotMs,
             };",
            vec![],
        )
        .await?;
    let entry = |entry: &Value| {
        (
            entry[0].as_str().unwrap_or_default().to_owned(),
            entry[1].as_u64().unwrap_or(0),
            entry[2].as_u64().unwrap_or(0),
        )
    };
    let mut resources = vec![entry(&timing["navigation"])];
    resources.extend(
        timing["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(entry),
    );
    let mut moments: Vec<(String, f64)> = timing["moments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|moment| {
            (
                moment[0].as_str().unwrap_or_default().to_owned(),
                moment[1].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    moments.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(Visit {
        bytes: resources
            .iter()
            .map(|(_, transferred, _)| transferred)
            .sum(),
        first_snapshot_ms: timing["first"].as_f64().unwrap_or(f64::NAN),
        resources,
        moments,
    })
}
