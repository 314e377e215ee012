use std::time::Duration;

use client::bots::{BotsConfig, run};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_bots_play_without_errors() {
    let server = start_server(|_| {}).await;
    let report = run(BotsConfig {
        url: server.ws_url(),
        count: 32,
        duration: Duration::from_secs(3),
        room: None,
        name_prefix: "bot".into(),
        seed: 7,
        ramp: Duration::from_millis(500),
        idle: false,
    })
    .await;
    assert_eq!(report.connected, 32, "every bot joins: {report:?}");
    assert_eq!(report.failed, 0, "no bot fails: {report:?}");
    assert_eq!(report.decode_errors, 0);
    assert_eq!(report.disconnects, 0);
    assert!(
        report.snapshots_per_bot_per_s > 20.0,
        "bots receive snapshots: {report:?}"
    );
    assert_eq!(server.rooms().len(), 2, "32 bots fill two rooms of 16");
}
