//! `harness replay-size`: how big replays are. A release server with matches of a
//! given length, a room of playing bots for one whole match, then every replay file it
//! kept, read back through `shared::replay::decode`: bytes per player-minute. Writes JSON.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use harness::ServerProcess;
use serde::Serialize;

use crate::Binaries;
use crate::bots_process::Swarm;
use crate::commands::{machine, server_command};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bots in the room.
    #[arg(long, default_value_t = 16)]
    bots: usize,
    /// Length of the match, in seconds.
    #[arg(long, default_value_t = 60)]
    match_secs: u64,
}

/// One kept replay.
#[derive(Debug, Serialize)]
struct ReplayFile {
    bytes: u64,
    /// Recorded time, from the first frame to the last.
    seconds: f64,
    /// Players present, averaged over the frames.
    mean_players: f64,
    frames: usize,
    keyframes: usize,
    bytes_per_player_minute: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    bots: usize,
    match_secs: u64,
    replays: Vec<ReplayFile>,
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    let mut command = server_command(&binaries.server);
    command
        .args(["--match-time-limit-secs", &args.match_secs.to_string()])
        .args(["--match-results-secs", "2"])
        .stderr(Stdio::null());
    let server = ServerProcess::start(command)?;
    let url = server.ws_url("/ws");
    eprintln!(
        "replay-size: {} bots in one room for a {} s match",
        args.bots, args.match_secs
    );
    let (report, status) = Swarm {
        url: &url,
        count: args.bots,
        // The match, its results, and time for the store to save it.
        duration: Duration::from_secs(args.match_secs + 5),
        ramp: Duration::from_millis(500),
        room: Some("arena"),
        seed: 3,
        idle: false,
        ca_cert: None,
    }
    .spawn(&binaries.bots)?
    .report()?;
    anyhow::ensure!(status.success(), "the bots failed: {report:?}");
    let replays_dir = server.data_dir().join("replays");
    let mut replays = Vec::new();
    for entry in std::fs::read_dir(&replays_dir)
        .with_context(|| format!("read {}", replays_dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "replay") {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        replays.push(measure(&bytes).with_context(|| format!("decode {}", path.display()))?);
    }
    anyhow::ensure!(!replays.is_empty(), "the server kept no replay");
    let _ = server.stop();
    for replay in &replays {
        println!(
            "{} bytes, {:.1} s, {:.1} players: {:.0} bytes per player-minute",
            replay.bytes, replay.seconds, replay.mean_players, replay.bytes_per_player_minute
        );
    }
    let report = Report {
        machine: machine(", server and bots on the same machine"),
        bots: args.bots,
        match_secs: args.match_secs,
        replays,
    };
    let json_path = binaries.out_dir.join("replay-size.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    println!("report: {}", json_path.display());
    Ok(())
}

fn measure(bytes: &[u8]) -> anyhow::Result<ReplayFile> {
    let replay = shared::replay::decode(bytes)?;
    anyhow::ensure!(
        replay.damage.is_none(),
        "a kept replay is damaged: {:?}",
        replay.damage
    );
    let (Some(first), Some(last)) = (replay.states.first(), replay.states.last()) else {
        anyhow::bail!("a kept replay has no frames");
    };
    let seconds = last.tick.since(first.tick) as f64 / f64::from(replay.header.tick_hz);
    let mean_players = replay
        .states
        .iter()
        .map(|state| state.players.len() as f64)
        .sum::<f64>()
        / replay.states.len() as f64;
    let len = bytes.len() as u64;
    Ok(ReplayFile {
        bytes: len,
        seconds,
        mean_players,
        frames: replay.states.len(),
        keyframes: replay.keyframes.len(),
        bytes_per_player_minute: len as f64 / (mean_players * seconds / 60.0),
    })
}
