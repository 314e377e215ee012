use std::time::Duration;

use client::native::Hello;
use shared::protocol::CloseReason;
use tokio::time::{Instant, sleep};

use crate::support::*;

/// Reads snapshots for `how_long`, returning how many arrived.
async fn read_for(mut client: Client, how_long: Duration) -> (Client, u32) {
    let until = Instant::now() + how_long;
    let skipped_before = client.skipped_snapshots;
    let mut decoded = 0;
    while Instant::now() < until {
        if tokio::time::timeout(until - Instant::now(), next_snapshot(&mut client))
            .await
            .is_ok()
        {
            decoded += 1;
        }
    }
    let skipped = (client.skipped_snapshots - skipped_before) as u32;
    (client, decoded + skipped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_resumes_at_the_present_and_costs_the_others_nothing() {
    let server = ServerProcess::start(&[]);
    let join = |name: &'static str| {
        let url = server.ws_url.clone();
        async move {
            Client::connect_url(&url, Hello::new(name).in_room("slow"))
                .await
                .expect("join succeeds")
        }
    };
    let mut stalled = join("stalled").await;
    next_snapshot(&mut stalled).await;
    let readers = [join("ann").await, join("bob").await];

    let rss_before = server.rss_kib();
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
    let rss_after = server.rss_kib();
    assert!(
        rss_after.saturating_sub(rss_before) < 2 * 1024,
        "the server's memory grew by {} KiB during the stall",
        rss_after.saturating_sub(rss_before)
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
