//! The memory of the game: finished matches, each player's lifetime stats and rating.
//! Two traits are the seam: rooms hand a `ResultSink` results without ever waiting for
//! a disk, and the REST API reads from a `MatchStore`. Two backends sit behind them,
//! each with its own SQL: SQLite in the data directory (the default), and PostgreSQL
//! shared by many processes, with a spool on local disk for when it is down.

#[cfg(test)]
mod behaviour;
mod postgres;
pub(crate) mod rating;
pub(crate) mod replays;
mod spool;
mod sqlite;
mod writing;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};
use shared::ProfileId;
use tokio::sync::oneshot;

pub use crate::store::postgres::PostgresStore;
pub use crate::store::spool::SPOOL_DIR;
pub use crate::store::sqlite::{DB_FILE, SqliteStore};

/// A finished match's number, as the store assigned it; ascending in the order matches
/// were saved, and never reused, so a match's URL always names the same match.
pub type MatchId = i64;

/// Why a match ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A player reached the score limit.
    ScoreLimit,
    /// The time limit ran out.
    TimeLimit,
    /// The server stopped while the match was being played.
    Shutdown,
}

impl EndReason {
    /// The name it is stored and served under.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ScoreLimit => "score_limit",
            EndReason::TimeLimit => "time_limit",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// The reason stored under `name`, if it is one.
    pub fn from_name(name: &str) -> Option<EndReason> {
        [
            EndReason::ScoreLimit,
            EndReason::TimeLimit,
            EndReason::Shutdown,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == name)
    }
}

/// A finished match as a room hands it over. Served as it was handed over (with its
/// times under `started_at` and `ended_at`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchResult {
    pub room: String,
    pub map: String,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "started_at")]
    pub started_at_ms: i64,
    #[serde(rename = "ended_at")]
    pub ended_at_ms: i64,
    pub end_reason: EndReason,
    /// Everyone seated when the match ended, best placing first.
    pub players: Vec<PlayerResult>,
}

/// One player's line in a finished match.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlayerResult {
    #[serde(serialize_with = "profile_as_hex")]
    pub profile: ProfileId,
    /// The nickname the player had in this match.
    pub name: String,
    pub kills: u32,
    pub deaths: u32,
    pub shots: u32,
    pub hits: u32,
    pub score: u32,
    /// 1 for the winner; players with equal scores share a placing.
    pub placing: u32,
}

/// A saved match: its id and the result as it was handed over.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchRecord {
    pub id: MatchId,
    #[serde(flatten)]
    pub result: MatchResult,
}

/// One page of matches, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchPage {
    pub matches: Vec<MatchRecord>,
    /// What to pass as `before` for the next page; `None` on the last page.
    pub next: Option<MatchId>,
}

/// A player's rating after the matches saved so far (Weng-Lin, see `rating`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rating {
    /// What the leaderboard orders by: `skill - 3 * uncertainty`, so one lucky match
    /// does not put a newcomer on top. Starts at 0.
    pub rating: f64,
    /// The estimate of the player's skill (Weng-Lin's mu; starts at 25).
    pub skill: f64,
    /// How unsure that estimate is (sigma; starts at 25/3 and shrinks with matches).
    pub uncertainty: f64,
}

/// What a player did over every saved match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LifetimeStats {
    pub matches: u64,
    /// Matches finished with placing 1.
    pub wins: u64,
    pub kills: u64,
    pub deaths: u64,
    pub shots: u64,
    pub hits: u64,
    pub score: u64,
}

/// One of a player's recent matches, with the player's own line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlayerMatch {
    pub id: MatchId,
    pub room: String,
    pub map: String,
    #[serde(rename = "started_at")]
    pub started_at_ms: i64,
    #[serde(rename = "ended_at")]
    pub ended_at_ms: i64,
    pub end_reason: EndReason,
    /// How many played in the match.
    pub n_players: u32,
    pub name: String,
    pub kills: u32,
    pub deaths: u32,
    pub shots: u32,
    pub hits: u32,
    pub score: u32,
    pub placing: u32,
}

/// A player's page: lifetime stats, rating, place on the leaderboard, recent matches.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlayerRecord {
    #[serde(serialize_with = "profile_as_hex")]
    pub profile: ProfileId,
    /// The nickname of the player's latest match.
    pub name: String,
    /// Place on the leaderboard, 1 for the top.
    pub rank: u64,
    #[serde(flatten)]
    pub rating: Rating,
    #[serde(flatten)]
    pub stats: LifetimeStats,
    /// Newest first.
    pub recent_matches: Vec<PlayerMatch>,
}

/// One line of the leaderboard.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaderboardEntry {
    /// 1 for the top; ties in rating are ordered by profile id, so ranks are distinct.
    pub rank: u64,
    #[serde(serialize_with = "profile_as_hex")]
    pub profile: ProfileId,
    pub name: String,
    #[serde(flatten)]
    pub rating: Rating,
    #[serde(flatten)]
    pub stats: LifetimeStats,
}

/// Where a leaderboard page ends: the last entry's rating and profile. The next page
/// starts just after it in the leaderboard's order (rating down, then profile up).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeaderboardCursor {
    pub rating: f64,
    pub profile: ProfileId,
}

/// One page of the leaderboard, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderboardPage {
    pub entries: Vec<LeaderboardEntry>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<LeaderboardCursor>,
}

/// Why the store could not open or answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database file is not a database, or one that fails its integrity check. It is
    /// left exactly as it was found.
    #[error(
        "{path} is damaged or not a Skirmish database ({reason}); it was left untouched: \
         restore it from a backup, or move it aside to start with no history"
    )]
    Corrupt { path: PathBuf, reason: String },
    /// The database was written by a newer build, whose schema this one does not know.
    #[error(
        "{path} has schema version {found}, newer than this build knows ({known}); \
         run a newer server or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// The shared database was migrated by a newer build, whose schema this one does
    /// not know.
    #[error(
        "the database {database} has schema version {found}, newer than this build knows \
         ({known}); run a newer server"
    )]
    DatabaseTooNew {
        database: String,
        found: i64,
        known: i64,
    },
    /// The backend failed (disk, locks, or a bug); `what` says what it was doing.
    #[error("{what}: {source}")]
    Backend {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Every read connection stayed busy for too long.
    #[error("every read connection stayed busy")]
    Busy,
}

/// Where rooms hand finished matches: all a room needs of the store. `submit` never
/// waits; `flush` is for shutdown, after the rooms have stopped.
pub trait ResultSink: Send + Sync + fmt::Debug {
    /// Queues a finished match for writing and returns at once: a room never waits for
    /// the disk. `saved` gets the match's id once it is durably committed. If the queue
    /// is full the result is lost, counted and logged, and `saved` is dropped.
    fn submit(&self, result: MatchResult, saved: oneshot::Sender<MatchId>);

    /// Waits up to `within` for every queued result to be written. True if all were.
    fn flush(&self, within: Duration) -> bool;
}

/// Where finished matches are kept and old data is read from. The read methods block
/// on the disk: call them from `tokio::task::spawn_blocking`, never from a room thread
/// or an async task.
pub trait MatchStore: ResultSink {
    /// Up to `limit` matches older than `before` (all, without it), newest first.
    fn matches(&self, limit: u32, before: Option<MatchId>) -> Result<MatchPage, StoreError>;

    /// One match in full; `None` if no match has that id.
    fn match_by_id(&self, id: MatchId) -> Result<Option<MatchRecord>, StoreError>;

    /// A player's lifetime stats, rating and rank, with their `recent` newest matches;
    /// `None` if the player has no saved match.
    fn player(&self, profile: ProfileId, recent: u32) -> Result<Option<PlayerRecord>, StoreError>;

    /// Up to `limit` players by rating, best first, starting after `after` (at the top,
    /// without it). Ratings move between pages, so a player may appear on two pages
    /// or none; each page is consistent in itself.
    fn leaderboard(
        &self,
        limit: u32,
        after: Option<LeaderboardCursor>,
    ) -> Result<LeaderboardPage, StoreError>;
}

/// One action an operator took, as the console hands it to the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who took it: the name given at the console's login, or `api`, and the address.
    pub who: String,
    /// `kick`, `close_room`, `broadcast` or `drain`.
    pub action: String,
    /// What it was taken on: `room/player`, a room, or empty for the whole server.
    pub target: String,
    /// The reason or the message, as the operator wrote it (validated).
    pub detail: String,
}

/// A saved audit entry: its id and the entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// Where the operators' actions are kept: who did what, and when. The store's one
/// writer writes them beside the matches, so the console never waits for the disk.
pub trait AuditLog: Send + Sync + fmt::Debug {
    /// Queues an entry for writing and returns at once; `saved` hears its id once it is
    /// committed. A full queue drops it (logged), and `saved` is dropped.
    fn record(&self, entry: AuditEntry, saved: oneshot::Sender<i64>);

    /// The newest `limit` entries, newest first. Blocks on the disk: call it from
    /// `tokio::task::spawn_blocking`.
    fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Profile ids go out as the 16 hex digits they are written as everywhere else.
fn profile_as_hex<S: Serializer>(profile: &ProfileId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&profile.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_read_back_from_their_names() {
        for reason in [
            EndReason::ScoreLimit,
            EndReason::TimeLimit,
            EndReason::Shutdown,
        ] {
            assert_eq!(EndReason::from_name(reason.as_str()), Some(reason));
            assert_eq!(
                serde_json::to_value(reason).expect("a reason serializes"),
                serde_json::Value::from(reason.as_str()),
                "the JSON name is the stored name"
            );
        }
        assert_eq!(EndReason::from_name("forfeit"), None);
    }

    #[test]
    fn a_saved_match_serializes_with_hex_profiles_and_plain_time_names() {
        let record = MatchRecord {
            id: 7,
            result: MatchResult {
                room: "alpha".into(),
                map: "arena".into(),
                started_at_ms: 1_000,
                ended_at_ms: 2_000,
                end_reason: EndReason::TimeLimit,
                players: vec![PlayerResult {
                    profile: ProfileId(0xab),
                    name: "ann".into(),
                    kills: 1,
                    deaths: 2,
                    shots: 3,
                    hits: 4,
                    score: 5,
                    placing: 1,
                }],
            },
        };
        let json = serde_json::to_value(&record).expect("a record serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "id": 7, "room": "alpha", "map": "arena",
                "started_at": 1000, "ended_at": 2000, "end_reason": "time_limit",
                "players": [{
                    "profile": "00000000000000ab", "name": "ann", "kills": 1, "deaths": 2,
                    "shots": 3, "hits": 4, "score": 5, "placing": 1
                }]
            })
        );
    }
}
