//! The queries behind the REST API, each in one read-only repeatable-read transaction,
//! so an answer is one consistent moment even while every process commits beside it.
//! They answer exactly as the SQLite backend's do: the same types, so the same JSON.

use deadpool_postgres::{ClientWrapper, Transaction};
use shared::ProfileId;
use tokio_postgres::Row;
use tokio_postgres::error::Error as PgError;
use tokio_postgres::types::FromSql;

use crate::store::{
    EndReason, LeaderboardCursor, LeaderboardEntry, LeaderboardPage, LifetimeStats, MatchId,
    MatchPage, MatchRecord, MatchResult, PlayerMatch, PlayerRecord, PlayerResult, Rating,
};

/// What a read can fail with: the database, or a row this build cannot take.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error(transparent)]
    Postgres(#[from] PgError),
    /// A stored value outside what the types allow: damage, or another writer's bug.
    #[error("column {column}: {problem}")]
    BadValue {
        column: &'static str,
        problem: String,
    },
}

async fn read_only(client: &mut ClientWrapper) -> Result<Transaction<'_>, PgError> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

/// Up to `limit` matches with ids below `before`, newest first, with their lines.
pub(super) async fn matches(
    client: &mut ClientWrapper,
    limit: u32,
    before: Option<MatchId>,
) -> Result<MatchPage, ReadError> {
    let tx = read_only(client).await?;
    // One more than asked tells whether there is a next page.
    let fetch = i64::from(limit) + 1;
    let rows = tx
        .query(
            "SELECT id, room, map, started_at_ms, ended_at_ms, end_reason
             FROM matches WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[&before.unwrap_or(MatchId::MAX), &fetch],
        )
        .await?;
    let mut records = rows.iter().map(match_head).collect::<Result<Vec<_>, _>>()?;
    let next = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(|record| record.id)
    } else {
        None
    };
    if !records.is_empty() {
        let ids: Vec<MatchId> = records.iter().map(|record| record.id).collect();
        let lines = tx
            .query(
                "SELECT match_id, profile, name, kills, deaths, shots, hits, score, \"placing\"
                 FROM match_players WHERE match_id = ANY($1) ORDER BY match_id, line",
                &[&ids],
            )
            .await?;
        for row in &lines {
            let match_id: MatchId = row.try_get(0)?;
            // `records` is in descending id order, hence the reversed comparison.
            if let Ok(index) = records.binary_search_by(|record| match_id.cmp(&record.id)) {
                records[index].result.players.push(player_line(row, 1)?);
            }
        }
    }
    tx.commit().await?;
    Ok(MatchPage {
        matches: records,
        next,
    })
}

/// One match with its lines, if it exists.
pub(super) async fn match_by_id(
    client: &mut ClientWrapper,
    id: MatchId,
) -> Result<Option<MatchRecord>, ReadError> {
    let tx = read_only(client).await?;
    let head = tx
        .query_opt(
            "SELECT id, room, map, started_at_ms, ended_at_ms, end_reason
             FROM matches WHERE id = $1",
            &[&id],
        )
        .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    let mut record = match_head(&head)?;
    record.result.players = tx
        .query(
            "SELECT profile, name, kills, deaths, shots, hits, score, \"placing\"
             FROM match_players WHERE match_id = $1 ORDER BY line",
            &[&id],
        )
        .await?
        .iter()
        .map(|row| player_line(row, 0))
        .collect::<Result<_, _>>()?;
    tx.commit().await?;
    Ok(Some(record))
}

/// A player's stats, rating, rank and `recent` newest matches, if they have played.
pub(super) async fn player(
    client: &mut ClientWrapper,
    profile: ProfileId,
    recent: u32,
) -> Result<Option<PlayerRecord>, ReadError> {
    let tx = read_only(client).await?;
    let hex = profile.to_hex();
    let entry = tx
        .query_opt(
            "SELECT profile, name, rating, skill, uncertainty, matches, wins, kills, deaths,
                    shots, hits, score
             FROM profiles WHERE profile = $1",
            &[&hex],
        )
        .await?;
    let Some(entry) = entry else {
        return Ok(None);
    };
    let entry = leaderboard_entry(&entry)?;
    let rank = ahead_of(
        &tx,
        LeaderboardCursor {
            rating: entry.rating.rating,
            profile,
        },
    )
    .await?
        + 1;
    let recent_matches = tx
        .query(
            "SELECT m.id, m.room, m.map, m.started_at_ms, m.ended_at_ms, m.end_reason,
                    (SELECT count(*) FROM match_players AS everyone
                     WHERE everyone.match_id = m.id),
                    p.name, p.kills, p.deaths, p.shots, p.hits, p.score, p.\"placing\"
             FROM match_players AS p JOIN matches AS m ON m.id = p.match_id
             WHERE p.profile = $1
             ORDER BY p.match_id DESC, p.line
             LIMIT $2",
            &[&hex, &i64::from(recent)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(PlayerMatch {
                id: row.try_get(0)?,
                room: row.try_get(1)?,
                map: row.try_get(2)?,
                started_at_ms: row.try_get(3)?,
                ended_at_ms: row.try_get(4)?,
                end_reason: end_reason(row, 5)?,
                n_players: narrow(row, 6, "n_players")?,
                name: row.try_get(7)?,
                kills: narrow(row, 8, "kills")?,
                deaths: narrow(row, 9, "deaths")?,
                shots: narrow(row, 10, "shots")?,
                hits: narrow(row, 11, "hits")?,
                score: narrow(row, 12, "score")?,
                placing: narrow(row, 13, "placing")?,
            })
        })
        .collect::<Result<_, ReadError>>()?;
    tx.commit().await?;
    Ok(Some(PlayerRecord {
        profile,
        name: entry.name,
        rank,
        rating: entry.rating,
        stats: entry.stats,
        recent_matches,
    }))
}

/// Up to `limit` players after `after` in the leaderboard's order: rating down, then
/// profile up. (The order of the `profiles_by_rating` index.)
pub(super) async fn leaderboard(
    client: &mut ClientWrapper,
    limit: u32,
    after: Option<LeaderboardCursor>,
) -> Result<LeaderboardPage, ReadError> {
    let tx = read_only(client).await?;
    let fetch = i64::from(limit) + 1;
    let columns = "SELECT profile, name, rating, skill, uncertainty, matches, wins, kills,
                          deaths, shots, hits, score FROM profiles";
    let (rows, first_rank) = match after {
        None => (
            tx.query(
                &format!("{columns} ORDER BY rating DESC, profile ASC LIMIT $1"),
                &[&fetch],
            )
            .await?,
            1,
        ),
        Some(cursor) => (
            tx.query(
                &format!(
                    "{columns} WHERE rating < $1 OR (rating = $1 AND profile > $2)
                     ORDER BY rating DESC, profile ASC LIMIT $3"
                ),
                &[&cursor.rating, &cursor.profile.to_hex(), &fetch],
            )
            .await?,
            // The cursor's own entry is ahead too.
            ahead_of(&tx, cursor).await? + 2,
        ),
    };
    let mut entries = rows
        .iter()
        .map(leaderboard_entry)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|entry| LeaderboardCursor {
            rating: entry.rating.rating,
            profile: entry.profile,
        })
    } else {
        None
    };
    for (entry, rank) in entries.iter_mut().zip(first_rank..) {
        entry.rank = rank;
    }
    tx.commit().await?;
    Ok(LeaderboardPage { entries, next })
}

/// How many players come before `place` in the leaderboard's order.
async fn ahead_of(tx: &Transaction<'_>, place: LeaderboardCursor) -> Result<u64, ReadError> {
    let row = tx
        .query_one(
            "SELECT count(*) FROM profiles WHERE rating > $1 OR (rating = $1 AND profile < $2)",
            &[&place.rating, &place.profile.to_hex()],
        )
        .await?;
    narrow(&row, 0, "count")
}

/// `id, room, map, started_at_ms, ended_at_ms, end_reason`, with no lines yet.
fn match_head(row: &Row) -> Result<MatchRecord, ReadError> {
    Ok(MatchRecord {
        id: row.try_get(0)?,
        result: MatchResult {
            room: row.try_get(1)?,
            map: row.try_get(2)?,
            started_at_ms: row.try_get(3)?,
            ended_at_ms: row.try_get(4)?,
            end_reason: end_reason(row, 5)?,
            players: Vec::new(),
        },
    })
}

/// `profile, name, kills, deaths, shots, hits, score, placing` from column `first` on.
fn player_line(row: &Row, first: usize) -> Result<PlayerResult, ReadError> {
    Ok(PlayerResult {
        profile: profile(row, first)?,
        name: row.try_get(first + 1)?,
        kills: narrow(row, first + 2, "kills")?,
        deaths: narrow(row, first + 3, "deaths")?,
        shots: narrow(row, first + 4, "shots")?,
        hits: narrow(row, first + 5, "hits")?,
        score: narrow(row, first + 6, "score")?,
        placing: narrow(row, first + 7, "placing")?,
    })
}

/// `profile, name, rating, skill, uncertainty, matches, wins, kills, deaths, shots,
/// hits, score`; the rank is set by the caller. The rating is the stored one, exactly
/// as the order and the cursors compare it.
fn leaderboard_entry(row: &Row) -> Result<LeaderboardEntry, ReadError> {
    Ok(LeaderboardEntry {
        rank: 0,
        profile: profile(row, 0)?,
        name: row.try_get(1)?,
        rating: Rating {
            rating: row.try_get(2)?,
            skill: row.try_get(3)?,
            uncertainty: row.try_get(4)?,
        },
        stats: LifetimeStats {
            matches: narrow(row, 5, "matches")?,
            wins: narrow(row, 6, "wins")?,
            kills: narrow(row, 7, "kills")?,
            deaths: narrow(row, 8, "deaths")?,
            shots: narrow(row, 9, "shots")?,
            hits: narrow(row, 10, "hits")?,
            score: narrow(row, 11, "score")?,
        },
    })
}

/// A `bigint` column as the unsigned type the API serves it as.
fn narrow<T: TryFrom<i64>>(row: &Row, index: usize, column: &'static str) -> Result<T, ReadError> {
    let value: i64 = row.try_get(index)?;
    T::try_from(value).map_err(|_| ReadError::BadValue {
        column,
        problem: format!("{value} is out of range"),
    })
}

fn profile(row: &Row, index: usize) -> Result<ProfileId, ReadError> {
    let hex: &str = get(row, index)?;
    ProfileId::from_hex(hex).ok_or_else(|| ReadError::BadValue {
        column: "profile",
        problem: format!("{hex:?} is not a profile id"),
    })
}

fn end_reason(row: &Row, index: usize) -> Result<EndReason, ReadError> {
    let name: &str = get(row, index)?;
    EndReason::from_name(name).ok_or_else(|| ReadError::BadValue {
        column: "end_reason",
        problem: format!("{name:?} is not an end reason"),
    })
}

fn get<'row, T: FromSql<'row>>(row: &'row Row, index: usize) -> Result<T, ReadError> {
    Ok(row.try_get(index)?)
}
