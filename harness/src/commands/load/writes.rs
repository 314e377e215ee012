//! Counting the server's socket writes with `strace -c -f` while bots play: each client
//! should get one write per snapshot, the messages queued since the last snapshot riding
//! in the same write. Pongs and pings are the only other writes.

use std::thread::sleep;
use std::time::Duration;

use serde::Serialize;

use super::{ServerSetup, playing_swarm, start_server, strace};
use crate::Binaries;
use crate::commands::metric;

/// System calls that write to sockets, counted over a short window.
#[derive(Debug, Serialize)]
pub(super) struct WriteCount {
    pub players: usize,
    pub seconds: f64,
    pub snapshots_sent: f64,
    /// writev, write, sendto and sendmsg calls.
    pub socket_writes: f64,
    pub writes_per_snapshot: f64,
}

/// Counts the server's socket writes under strace while `players` bots play.
pub(super) fn count_writes(
    players: usize,
    seconds: f64,
    setup: ServerSetup,
    binaries: &Binaries,
) -> anyhow::Result<WriteCount> {
    let server = start_server(setup, binaries)?;
    let url = server.ws_url("/ws");
    let swarm = playing_swarm(&url, players, seconds + 6.0);
    let _bots = swarm.spawn(&binaries.bots)?;
    sleep(swarm.ramp + Duration::from_secs(2));
    let summary = binaries.out_dir.join("load/strace.txt");
    let sent = || metric(&server, "skirmish_snapshot_recipients_total");
    let before = sent()?;
    let calls = strace::count(server.pid(), seconds, &summary)?;
    let snapshots_sent = sent()? - before;
    let socket_writes = calls.socket_writes;
    Ok(WriteCount {
        players,
        seconds,
        snapshots_sent,
        socket_writes,
        writes_per_snapshot: socket_writes / snapshots_sent.max(1.0),
    })
}
