use std::time::Duration;

use shared::protocol::CloseReason;
use tokio::time::{Instant, sleep};

use crate::support::*;

/// Resident memory of this process (server and test clients together), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Reads snapshots for `how_long`, returning how many arrived.
async fn read_for(mut client: Client, how_long: Duration) -> (Client, u32) {
    let until = Instant::now() + how_long;
    let mut snapshots = 0;
    while Instant::now() < until {
        if let Ok(snapshot) =
            tokio::time::timeout(until - Instant::now(), next_snapshot(&mut client)).await
        {
            let _ = snapshot;
            snapshots += 1;
        }
    }
    (client, snapshots)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_resumes_at_the_present_and_costs_the_others_nothing() {
    let server = start_server(|_| {}).await;
    let mut stalled = join_room(&server, "stalled", "slow").await;
    next_snapshot(&mut stalled).await;
    let readers = [
        join_room(&server, "ann", "slow").await,
        join_room(&server, "bob", "slow").await,
    ];

    let rss_before = rss_kib();
    let stall = Duration::from_secs(5);
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|r| tokio::spawn(read_for(r, stall)))
        .collect();
    let mut readers = Vec::new();
    for task in tasks {
        let (reader, n_snapshots) = task.await.expect("reader task");
        // 30 Hz for 5 s is 150; a busy machine may lose a few to scheduling.
        assert!(
            n_snapshots >= 135,
            "a reader got {n_snapshots} snapshots in 5 s while another stalled"
        );
        readers.push(reader);
    }
    let rss_after = rss_kib();
    assert!(
        rss_after.saturating_sub(rss_before) < 8 * 1024,
        "memory grew by {} KiB during the stall",
        rss_after - rss_before
    );

    // On reading again, the stalled client decodes the newest snapshot that reached it,
    // not the five seconds queued behind it.
    let now_tick = next_snapshot(&mut readers[0]).await.tick;
    let first = next_snapshot(&mut stalled).await;
    let behind = now_tick.since(first.tick);
    assert!(
        behind <= 6,
        "the first snapshot decoded after a 5 s stall is {behind} ticks behind the room"
    );
    assert!(
        stalled.skipped_snapshots >= 100,
        "the stale snapshots were skipped undecoded ({} skipped)",
        stalled.skipped_snapshots
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_for_longer_than_the_stall_timeout_is_closed() {
    let server = start_server(|config| config.stall_timeout_secs = 1.0).await;
    let mut stalled = join(&server, "stalled").await;
    next_snapshot(&mut stalled).await;
    sleep(Duration::from_secs(3)).await;
    let (close, goodbye) = expect_closed(&mut stalled).await;
    assert_eq!(close.map(|(code, _)| code), Some(1008));
    assert!(
        matches!(
            goodbye,
            Some(shared::protocol::ServerMsg::Disconnect {
                reason: CloseReason::TooSlow,
                ..
            })
        ),
        "got {goodbye:?}"
    );
}
