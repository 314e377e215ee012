//! The queries behind the REST API, each in one read transaction, so an answer is one
//! consistent moment even while the writer commits beside it (WAL).

use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};
use shared::ProfileId;

use crate::store::{
    AuditEntry, AuditRecord, EndReason, LeaderboardCursor, LeaderboardEntry, LeaderboardPage,
    LifetimeStats, MatchId, MatchPage, MatchRecord, MatchResult, PlayerMatch, PlayerRecord,
    PlayerResult, Rating,
};

/// Up to `limit` matches with ids below `before`, newest first, with their lines.
pub(super) fn matches(
    conn: &mut Connection,
    limit: u32,
    before: Option<MatchId>,
) -> rusqlite::Result<MatchPage> {
    let tx = conn.transaction()?;
    // One more than asked tells whether there is a next page.
    let mut records: Vec<MatchRecord> = tx
        .prepare_cached(
            "SELECT id, room, map, started_at_ms, ended_at_ms, end_reason
             FROM matches WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(
            params![before.unwrap_or(MatchId::MAX), i64::from(limit) + 1],
            match_head,
        )?
        .collect::<rusqlite::Result<_>>()?;
    let next = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(|record| record.id)
    } else {
        None
    };
    if let (Some(newest), Some(oldest)) = (records.first(), records.last()) {
        // The page is every match from its oldest to its newest id, so one range scan
        // finds all their lines.
        let (low, high) = (oldest.id, newest.id);
        let mut lines = tx.prepare_cached(
            "SELECT match_id, profile, name, kills, deaths, shots, hits, score, placing
             FROM match_players WHERE match_id BETWEEN ?1 AND ?2 ORDER BY match_id, line",
        )?;
        let mut rows = lines.query(params![low, high])?;
        while let Some(row) = rows.next()? {
            let match_id: MatchId = row.get(0)?;
            // `records` is in descending id order, hence the reversed comparison.
            if let Ok(index) = records.binary_search_by(|record| match_id.cmp(&record.id)) {
                records[index].result.players.push(player_line(row, 1)?);
            }
        }
    }
    Ok(MatchPage {
        matches: records,
        next,
    })
}

/// One match with its lines, if it exists.
pub(super) fn match_by_id(
    conn: &mut Connection,
    id: MatchId,
) -> rusqlite::Result<Option<MatchRecord>> {
    let tx = conn.transaction()?;
    let head = tx
        .prepare_cached(
            "SELECT id, room, map, started_at_ms, ended_at_ms, end_reason
             FROM matches WHERE id = ?1",
        )?
        .query_map([id], match_head)?
        .next()
        .transpose()?;
    let Some(mut record) = head else {
        return Ok(None);
    };
    record.result.players = tx
        .prepare_cached(
            "SELECT profile, name, kills, deaths, shots, hits, score, placing
             FROM match_players WHERE match_id = ?1 ORDER BY line",
        )?
        .query_map([id], |row| player_line(row, 0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(record))
}

/// A player's stats, rating, rank and `recent` newest matches, if they have played.
pub(super) fn player(
    conn: &mut Connection,
    profile: ProfileId,
    recent: u32,
) -> rusqlite::Result<Option<PlayerRecord>> {
    let tx = conn.transaction()?;
    let hex = profile.to_hex();
    let entry = tx
        .prepare_cached(
            "SELECT profile, name, rating, skill, uncertainty, matches, wins, kills, deaths,
                    shots, hits, score
             FROM profiles WHERE profile = ?1",
        )?
        .query_map([&hex], |row| leaderboard_entry(row, 0))?
        .next()
        .transpose()?;
    let Some(entry) = entry else {
        return Ok(None);
    };
    let rank = ahead_of(
        &tx,
        LeaderboardCursor {
            rating: entry.rating.rating,
            profile,
        },
    )? + 1;
    let recent_matches = tx
        .prepare_cached(
            "SELECT m.id, m.room, m.map, m.started_at_ms, m.ended_at_ms, m.end_reason,
                    (SELECT count(*) FROM match_players AS everyone
                     WHERE everyone.match_id = m.id),
                    p.name, p.kills, p.deaths, p.shots, p.hits, p.score, p.placing
             FROM match_players AS p JOIN matches AS m ON m.id = p.match_id
             WHERE p.profile = ?1
             ORDER BY p.match_id DESC, p.line
             LIMIT ?2",
        )?
        .query_map(params![hex, recent], |row| {
            Ok(PlayerMatch {
                id: row.get(0)?,
                room: row.get(1)?,
                map: row.get(2)?,
                started_at_ms: row.get(3)?,
                ended_at_ms: row.get(4)?,
                end_reason: end_reason(row, 5)?,
                n_players: row.get(6)?,
                name: row.get(7)?,
                kills: row.get(8)?,
                deaths: row.get(9)?,
                shots: row.get(10)?,
                hits: row.get(11)?,
                score: row.get(12)?,
                placing: row.get(13)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
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
pub(super) fn leaderboard(
    conn: &mut Connection,
    limit: u32,
    after: Option<LeaderboardCursor>,
) -> rusqlite::Result<LeaderboardPage> {
    let tx = conn.transaction()?;
    let fetch = i64::from(limit) + 1;
    let columns = "SELECT profile, name, rating, skill, uncertainty, matches, wins, kills,
                          deaths, shots, hits, score FROM profiles";
    let (mut entries, first_rank): (Vec<LeaderboardEntry>, u64) = match after {
        None => (
            tx.prepare_cached(&format!(
                "{columns} ORDER BY rating DESC, profile ASC LIMIT ?1"
            ))?
            .query_map([fetch], |row| leaderboard_entry(row, 0))?
            .collect::<rusqlite::Result<_>>()?,
            1,
        ),
        Some(cursor) => (
            tx.prepare_cached(&format!(
                "{columns} WHERE rating < ?1 OR (rating = ?1 AND profile > ?2)
                 ORDER BY rating DESC, profile ASC LIMIT ?3"
            ))?
            .query_map(
                params![cursor.rating, cursor.profile.to_hex(), fetch],
                |row| leaderboard_entry(row, 0),
            )?
            .collect::<rusqlite::Result<_>>()?,
            // The cursor's own entry is ahead too.
            ahead_of(&tx, cursor)? + 2,
        ),
    };
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
    Ok(LeaderboardPage { entries, next })
}

/// How many players come before `place` in the leaderboard's order. A count, so it
/// costs as many index steps as the rank: nothing for a leaderboard of thousands.
fn ahead_of(conn: &Connection, place: LeaderboardCursor) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT count(*) FROM profiles WHERE rating > ?1 OR (rating = ?1 AND profile < ?2)",
    )?
    .query_row(params![place.rating, place.profile.to_hex()], |row| {
        count(row, 0)
    })
}

/// `id, room, map, started_at_ms, ended_at_ms, end_reason`, with no lines yet.
fn match_head(row: &Row<'_>) -> rusqlite::Result<MatchRecord> {
    Ok(MatchRecord {
        id: row.get(0)?,
        result: MatchResult {
            room: row.get(1)?,
            map: row.get(2)?,
            started_at_ms: row.get(3)?,
            ended_at_ms: row.get(4)?,
            end_reason: end_reason(row, 5)?,
            players: Vec::new(),
        },
    })
}

/// `profile, name, kills, deaths, shots, hits, score, placing` from column `first` on.
fn player_line(row: &Row<'_>, first: usize) -> rusqlite::Result<PlayerResult> {
    Ok(PlayerResult {
        profile: profile(row, first)?,
        name: row.get(first + 1)?,
        kills: row.get(first + 2)?,
        deaths: row.get(first + 3)?,
        shots: row.get(first + 4)?,
        hits: row.get(first + 5)?,
        score: row.get(first + 6)?,
        placing: row.get(first + 7)?,
    })
}

/// `profile, name, rating, skill, uncertainty, matches, wins, kills, deaths, shots,
/// hits, score` from column `first` on; the rank is set by the caller. The rating is
/// the stored one, exactly as the order and the cursors compare it.
fn leaderboard_entry(row: &Row<'_>, first: usize) -> rusqlite::Result<LeaderboardEntry> {
    Ok(LeaderboardEntry {
        rank: 0,
        profile: profile(row, first)?,
        name: row.get(first + 1)?,
        rating: Rating {
            rating: row.get(first + 2)?,
            skill: row.get(first + 3)?,
            uncertainty: row.get(first + 4)?,
        },
        stats: LifetimeStats {
            matches: count(row, first + 5)?,
            wins: count(row, first + 6)?,
            kills: count(row, first + 7)?,
            deaths: count(row, first + 8)?,
            shots: count(row, first + 9)?,
            hits: count(row, first + 10)?,
            score: count(row, first + 11)?,
        },
    })
}

/// A count, which SQLite keeps as a signed integer.
fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

fn profile(row: &Row<'_>, index: usize) -> rusqlite::Result<ProfileId> {
    let hex: String = row.get(index)?;
    ProfileId::from_hex(&hex).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("{hex:?} is not a profile id").into(),
        )
    })
}

fn end_reason(row: &Row<'_>, index: usize) -> rusqlite::Result<EndReason> {
    let name: String = row.get(index)?;
    EndReason::from_name(&name).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("{name:?} is not an end reason").into(),
        )
    })
}

/// The newest `limit` audit entries, newest first.
pub(super) fn recent_audit(
    conn: &mut Connection,
    limit: u32,
) -> rusqlite::Result<Vec<AuditRecord>> {
    conn.prepare_cached(
        "SELECT id, at_ms, who, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
    )?
    .query_map([i64::from(limit)], |row| {
        Ok(AuditRecord {
            id: row.get(0)?,
            entry: AuditEntry {
                at_ms: row.get(1)?,
                who: row.get(2)?,
                action: row.get(3)?,
                target: row.get(4)?,
                detail: row.get(5)?,
            },
        })
    })?
    .collect()
}
