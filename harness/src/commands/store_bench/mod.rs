//! `harness store-bench`: the match store under load. Seeds a fresh database with
//! 100,000 players through the store's own API, then measures (1) the REST reads
//! (leaderboard pages, top and deep, and player pages) with 200 requests in flight
//! against a release server on that database, and (2) the rooms' tick timing while a
//! second process writes 1,000 results a second into the same database file.

pub(crate) mod reads;
mod seed;
mod ticks;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use harness::ServerProcess;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Serialize;

use crate::Binaries;
use crate::commands::{machine, server_command};
use reads::{BoardWalk, ReadPhase};
use seed::{PLAYERS_PER_MATCH, Seeding};
use ticks::{TickReport, TickSetup};

/// Cursors the board walk keeps for the deep pages: one every hundredth of the board.
const DEEP_CURSORS: u64 = 100;
/// How long each endpoint is read one request at a time before the load, for what a
/// request costs without queueing behind others.
const ONE_AT_A_TIME: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Players to seed, ten to a match, each in one match.
    #[arg(long, default_value_t = 100_000)]
    players: u64,
    /// Keep-alive connections reading at once, each with one request in flight.
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// Seconds each read phase (leaderboard, then players) lasts.
    #[arg(long, default_value_t = 15.0)]
    read_secs: f64,
    /// Playing bots in rooms of 16 during the tick windows.
    #[arg(long, default_value_t = 160)]
    bots: usize,
    /// Seconds of each tick window (without writes, then with them).
    #[arg(long, default_value_t = 20.0)]
    tick_window_secs: f64,
    /// Results a second the second process submits in the writing window.
    #[arg(long, default_value_t = 1000)]
    writes_per_s: u32,
    /// Use this data directory, and keep it: seeded only if it has no database yet, so
    /// a second run skips the seeding. Without it, a fresh folder removed at the end.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    machine: String,
    data_dir: PathBuf,
    seeding: Seeding,
    /// The walk from the top of the leaderboard to its end that collected the deep
    /// cursors, one request at a time.
    board_walk: BoardWalk,
    /// One connection at a time for each endpoint, then the loaded phases.
    reads: Vec<ReadPhase>,
    ticks: TickReport,
}

pub fn run(args: &Args, binaries: &Binaries) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.players >= PLAYERS_PER_MATCH as u64,
        "--players must be at least {PLAYERS_PER_MATCH}"
    );
    let data_dir = DataDir::for_run(args.data_dir.clone());
    let mut rng = SmallRng::seed_from_u64(5);
    let seeding = seed::seed(data_dir.path(), args.players, &mut rng)?;
    eprintln!(
        "store-bench: seeded in {:.1} s ({:.0} matches/s), {:.1} MiB",
        seeding.seconds, seeding.matches_per_s, seeding.database_mib
    );
    let (board_walk, reads) = measure_reads(args, data_dir.path(), binaries)?;
    let ticks = ticks::measure(
        TickSetup {
            bots: args.bots,
            window: Duration::from_secs_f64(args.tick_window_secs),
            writes_per_s: args.writes_per_s,
            n_players: args.players,
        },
        data_dir.path(),
        binaries,
    )?;

    let report = Report {
        scenario: scenario(args),
        machine: machine("; server, bots, readers and writer on the same machine and disk"),
        data_dir: data_dir.path().to_path_buf(),
        seeding,
        board_walk,
        reads,
        ticks,
    };
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    let path = binaries.out_dir.join("store-bench.json");
    std::fs::write(&path, &json).with_context(|| format!("write {}", path.display()))?;
    eprintln!("report: {}", path.display());
    Ok(())
}

fn scenario(args: &Args) -> String {
    format!(
        "a database seeded with {players} players ({matches} matches of {PLAYERS_PER_MATCH}, each \
         player in one) through SqliteStore::submit; reads: a release server on it, each \
         endpoint one request at a time for {one_at_a_time} s, then {connections} keep-alive \
         connections each with one GET in flight, {read_secs} s of leaderboard pages (half the \
         top page, half a page after one of the cursors the server handed out while the run \
         walked the whole board, one every hundredth of it) then {read_secs} s of random seeded \
         players' pages; ticks: {bots} bots playing in rooms of 16 for {window} s without \
         writes, then {window} s while a second process (this harness) opens the same database \
         file with SqliteStore::open and submits {writes} results a second of \
         {PLAYERS_PER_MATCH} seeded players each, as a stand-in for rooms finishing matches at \
         that rate: the same file, disk and cores as the rooms",
        players = args.players,
        matches = args.players / PLAYERS_PER_MATCH as u64,
        one_at_a_time = ONE_AT_A_TIME.as_secs_f64(),
        connections = args.connections,
        read_secs = args.read_secs,
        bots = args.bots,
        window = args.tick_window_secs,
        writes = args.writes_per_s,
    )
}

/// Starts the server on the seeded database, walks the board for cursors, reads each
/// endpoint one request at a time, then loads the leaderboard and the player pages in
/// turn.
fn measure_reads(
    args: &Args,
    data_dir: &Path,
    binaries: &Binaries,
) -> anyhow::Result<(BoardWalk, Vec<ReadPhase>)> {
    let mut command = server_command(&binaries.server);
    command.stderr(Stdio::null());
    let server = ServerProcess::start_on_data_dir(command, data_dir)?;

    let pages = args.players.div_ceil(100);
    let walk = reads::walk_the_board(server.addr(), (pages / DEEP_CURSORS).max(1))?;
    eprintln!(
        "store-bench: walked {} players in {} pages in {:.1} s",
        walk.players, walk.pages, walk.seconds
    );
    anyhow::ensure!(
        walk.players >= args.players,
        "the board holds {} players, fewer than the {} seeded",
        walk.players,
        args.players
    );
    let cursors = &walk.cursors;
    let top = |rng: &mut SmallRng| reads::leaderboard_request(cursors, 0.0, rng);
    let deep = |rng: &mut SmallRng| reads::leaderboard_request(cursors, 1.0, rng);
    let mixed = |rng: &mut SmallRng| reads::leaderboard_request(cursors, 0.5, rng);
    let player = |rng: &mut SmallRng| reads::player_request(args.players, rng);

    eprintln!("store-bench: each endpoint one request at a time");
    let mut phases = vec![
        reads::hammer(&server, "one at a time: top page", 1, ONE_AT_A_TIME, &top)?,
        reads::hammer(
            &server,
            "one at a time: deep pages",
            1,
            ONE_AT_A_TIME,
            &deep,
        )?,
        reads::hammer(&server, "one at a time: players", 1, ONE_AT_A_TIME, &player)?,
    ];
    let phase = Duration::from_secs_f64(args.read_secs);
    eprintln!(
        "store-bench: leaderboard pages, then player pages, {} connections, {:?} each",
        args.connections, phase
    );
    phases.push(reads::hammer(
        &server,
        "loaded: leaderboard, half top, half deep",
        args.connections,
        phase,
        &mixed,
    )?);
    phases.push(reads::hammer(
        &server,
        "loaded: players",
        args.connections,
        phase,
        &player,
    )?);
    let clean_exit = server.stop()?;
    anyhow::ensure!(clean_exit, "the server did not exit cleanly");
    Ok((walk, phases))
}

/// The run's data directory: the caller's, kept, or a fresh one removed at the end.
#[derive(Debug)]
enum DataDir {
    Kept(PathBuf),
    Temporary(PathBuf),
}

impl DataDir {
    fn for_run(given: Option<PathBuf>) -> DataDir {
        match given {
            Some(path) => DataDir::Kept(path),
            None => DataDir::Temporary(
                std::env::temp_dir().join(format!("skirmish-store-bench-{}", std::process::id())),
            ),
        }
    }

    fn path(&self) -> &Path {
        match self {
            DataDir::Kept(path) | DataDir::Temporary(path) => path,
        }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let DataDir::Temporary(path) = self {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}
