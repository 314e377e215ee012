//! Command-line flags of the server, which are also its whole configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use shared::consts::{
    DEFAULT_ROOM_CAPACITY, DEFAULT_SNAPSHOT_HZ, DEFAULT_TICK_HZ, MAX_RATE_HZ, MAX_ROOM_CAPACITY,
    MIN_RATE_HZ,
};

/// Skirmish game server: serves the page, the client bundle and the game WebSocket.
#[derive(Clone, Debug, Parser)]
#[command(name = "server", version)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the first stdout line names it).
    #[arg(long, default_value = "127.0.0.1:8080", env = "SKIRMISH_ADDR")]
    pub addr: SocketAddr,

    /// Simulation rate of every room, in ticks per second.
    #[arg(long, default_value_t = DEFAULT_TICK_HZ, value_parser = clap::value_parser!(u16).range(MIN_RATE_HZ as i64..=MAX_RATE_HZ as i64))]
    pub tick_hz: u16,

    /// Snapshot rate, per second; at most the tick rate.
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_HZ, value_parser = clap::value_parser!(u16).range(MIN_RATE_HZ as i64..=MAX_RATE_HZ as i64))]
    pub snapshot_hz: u16,

    /// Seats per room.
    #[arg(long, default_value_t = DEFAULT_ROOM_CAPACITY, value_parser = clap::value_parser!(u16).range(1..=MAX_ROOM_CAPACITY as i64))]
    pub room_capacity: u16,

    /// Seconds an empty room stays open before it closes.
    #[arg(long, default_value_t = 10.0)]
    pub room_grace_secs: f64,

    /// Seconds a new WebSocket has to send its hello before it is closed.
    #[arg(long, default_value_t = 5.0)]
    pub join_timeout_secs: f64,

    /// Send every snapshot in full instead of as a delta (for comparison and debugging).
    #[arg(long)]
    pub no_deltas: bool,

    /// Seconds a client may go without acknowledging snapshots before it is closed.
    #[arg(long, default_value_t = 10.0)]
    pub stall_timeout_secs: f64,

    /// Map file (JSON) the rooms play on; without it, the built-in copy of
    /// `assets/maps/arena.json`.
    #[arg(long)]
    pub map: Option<PathBuf>,

    /// Folder with the built browser bundle (index.html and friends), served at `/`.
    /// Without one, `/` serves a page that says how to build it.
    #[arg(long, env = "SKIRMISH_WEB_ROOT")]
    pub web_root: Option<PathBuf>,
}

impl Config {
    /// The configuration with every default, listening on `addr`.
    pub fn for_addr(addr: SocketAddr) -> Config {
        let mut config = Config::parse_from(["server"]);
        config.addr = addr;
        config
    }

    pub fn room_grace(&self) -> Duration {
        Duration::from_secs_f64(self.room_grace_secs.max(0.0))
    }

    pub fn stall_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.stall_timeout_secs.max(0.5))
    }

    pub fn join_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.join_timeout_secs.max(0.1))
    }

    /// Checks what clap's parsers cannot see alone.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.snapshot_hz <= self.tick_hz,
            "--snapshot-hz ({}) must not exceed --tick-hz ({})",
            self.snapshot_hz,
            self.tick_hz
        );
        anyhow::ensure!(
            self.room_grace_secs.is_finite(),
            "--room-grace-secs must be finite"
        );
        anyhow::ensure!(
            self.stall_timeout_secs.is_finite(),
            "--stall-timeout-secs must be finite"
        );
        anyhow::ensure!(
            self.join_timeout_secs.is_finite(),
            "--join-timeout-secs must be finite"
        );
        Ok(())
    }
}
