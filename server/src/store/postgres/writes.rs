//! A batch of results in one transaction: every player of the batch locked first, in
//! profile order, so writers in several processes neither deadlock nor lose an update;
//! then each match under a savepoint of its own, skipped if its key is already saved.

use deadpool_postgres::{ClientWrapper, Transaction};
use tokio_postgres::types::ToSql;

use crate::store::rating::{self, Skill};
use crate::store::spool::ResultKey;
use crate::store::writing::per_profile;
use crate::store::{MatchId, MatchResult};

/// What became of one result of a batch.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Written now, under this id.
    Saved(MatchId),
    /// Its key was already in the database (a result sent again from the spool): it
    /// was saved before, under this id, and nothing was written twice.
    AlreadySaved(MatchId),
    /// The database refused it for what it holds; it was rolled back alone.
    Refused(tokio_postgres::Error),
}

/// Writes `batch` in one transaction; each result's fate is in its place in the answer.
/// Statements are prepared once per connection (`prepare_cached`): one round trip each
/// instead of two.
/// Any failure that is not about one result (the connection, the server) fails the
/// whole batch, and nothing of it is committed.
pub(super) async fn save_batch(
    client: &mut ClientWrapper,
    batch: &[(ResultKey, &MatchResult)],
) -> Result<Vec<Outcome>, tokio_postgres::Error> {
    let mut tx = client.transaction().await?;
    let mut profiles: Vec<String> = batch
        .iter()
        .flat_map(|(_, result)| result.players.iter().map(|player| player.profile.to_hex()))
        .collect();
    profiles.sort_unstable();
    profiles.dedup();
    lock_profiles(&tx, &profiles).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (key, result) in batch {
        let savepoint = tx.savepoint("result").await?;
        match write_match(&savepoint, *key, result).await {
            Ok(outcome) => {
                savepoint.commit().await?;
                outcomes.push(outcome);
            }
            Err(err) if is_about_the_result(&err) => {
                savepoint.rollback().await?;
                outcomes.push(Outcome::Refused(err));
            }
            Err(err) => return Err(err),
        }
    }
    // A player whose only match here was refused keeps no empty row.
    tx.execute(
        &tx.prepare_cached("DELETE FROM profiles WHERE profile = ANY($1) AND matches = 0")
            .await?,
        &[&profiles],
    )
    .await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Locks the row of every player in `profiles` (sorted), making a placeholder row for
/// a newcomer. One statement takes every lock in profile order, inserted rows and
/// existing ones alike, so two transactions never wait on each other in a cycle. The
/// locks are held until the commit, which is what makes each player's stats and rating
/// a read-modify-write that no other writer can interleave with.
async fn lock_profiles(
    tx: &Transaction<'_>,
    profiles: &[String],
) -> Result<(), tokio_postgres::Error> {
    let newcomer = Skill::newcomer();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO profiles
             (profile, name, matches, wins, kills, deaths, shots, hits, score,
              skill, uncertainty, rating)
         SELECT profile, '', 0, 0, 0, 0, 0, 0, 0, $2, $3, $4
         FROM unnest($1::text[]) AS batch (profile)
         ORDER BY profile COLLATE \"C\"
         ON CONFLICT (profile) DO UPDATE SET name = profiles.name",
        )
        .await?,
        &[
            &profiles,
            &newcomer.mean,
            &newcomer.deviation,
            &newcomer.conservative(),
        ],
    )
    .await?;
    Ok(())
}

/// Writes one match inside the caller's transaction: the match, its lines, and each
/// player's lifetime stats and new rating. Nothing of it is visible until all of it is.
async fn write_match(
    tx: &Transaction<'_>,
    key: ResultKey,
    result: &MatchResult,
) -> Result<Outcome, tokio_postgres::Error> {
    let inserted = tx
        .query_opt(
            &tx.prepare_cached("INSERT INTO matches (result_key, room, map, started_at_ms, ended_at_ms, end_reason)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (result_key) DO NOTHING
             RETURNING id").await?,
            &[
                &&key.0[..],
                &result.room,
                &result.map,
                &result.started_at_ms,
                &result.ended_at_ms,
                &result.end_reason.as_str(),
            ],
        )
        .await?;
    let Some(inserted) = inserted else {
        let earlier: MatchId = tx
            .query_one(
                &tx.prepare_cached("SELECT id FROM matches WHERE result_key = $1")
                    .await?,
                &[&&key.0[..]],
            )
            .await?
            .get(0);
        return Ok(Outcome::AlreadySaved(earlier));
    };
    let match_id: MatchId = inserted.get(0);
    insert_lines(tx, match_id, result).await?;
    update_profiles(tx, result).await?;
    Ok(Outcome::Saved(match_id))
}

async fn insert_lines(
    tx: &Transaction<'_>,
    match_id: MatchId,
    result: &MatchResult,
) -> Result<(), tokio_postgres::Error> {
    let players = &result.players;
    let lines: Vec<i32> = (0..players.len())
        .map(|line| i32::try_from(line).unwrap_or(i32::MAX))
        .collect();
    let profiles: Vec<String> = players.iter().map(|p| p.profile.to_hex()).collect();
    let names: Vec<&str> = players.iter().map(|p| p.name.as_str()).collect();
    let column = |value: fn(&crate::store::PlayerResult) -> u32| -> Vec<i64> {
        players.iter().map(|p| i64::from(value(p))).collect()
    };
    let (kills, deaths, shots) = (
        column(|p| p.kills),
        column(|p| p.deaths),
        column(|p| p.shots),
    );
    let (hits, score, placing) = (
        column(|p| p.hits),
        column(|p| p.score),
        column(|p| p.placing),
    );
    // PLACING is a reserved word in PostgreSQL, hence the quotes around the column.
    let params: [&(dyn ToSql + Sync); 10] = [
        &match_id, &lines, &profiles, &names, &kills, &deaths, &shots, &hits, &score, &placing,
    ];
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO match_players
             (match_id, line, profile, name, kills, deaths, shots, hits, score, \"placing\")
         SELECT $1, line, profile, name, kills, deaths, shots, hits, score, \"placing\"
         FROM unnest($2::integer[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                     $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
              AS line_rows (line, profile, name, kills, deaths, shots, hits, score, \"placing\")",
        )
        .await?,
        &params,
    )
    .await?;
    Ok(())
}

/// Adds the match to each player's lifetime stats and moves their ratings, from the
/// skills their locked rows hold now.
async fn update_profiles(
    tx: &Transaction<'_>,
    result: &MatchResult,
) -> Result<(), tokio_postgres::Error> {
    let totals = per_profile(&result.players);
    let profiles: Vec<String> = totals.iter().map(|t| t.profile.to_hex()).collect();
    let rows = tx
        .query(
            &tx.prepare_cached(
                "SELECT profile, skill, uncertainty FROM profiles WHERE profile = ANY($1)",
            )
            .await?,
            &[&profiles],
        )
        .await?;
    let skills_before: Vec<(Skill, u32)> = totals
        .iter()
        .zip(&profiles)
        .map(|(player, hex)| {
            let skill = rows
                .iter()
                .find(|row| row.get::<_, &str>(0) == hex.as_str())
                .map_or_else(Skill::newcomer, |row| Skill {
                    mean: row.get(1),
                    deviation: row.get(2),
                });
            (skill, player.placing)
        })
        .collect();
    let skills_after = rating::after_match(&skills_before);
    let names: Vec<&str> = totals.iter().map(|t| t.name.as_str()).collect();
    let wins: Vec<i64> = totals.iter().map(|t| i64::from(t.placing == 1)).collect();
    let kills: Vec<i64> = totals.iter().map(|t| t.kills).collect();
    let deaths: Vec<i64> = totals.iter().map(|t| t.deaths).collect();
    let shots: Vec<i64> = totals.iter().map(|t| t.shots).collect();
    let hits: Vec<i64> = totals.iter().map(|t| t.hits).collect();
    let score: Vec<i64> = totals.iter().map(|t| t.score).collect();
    let mean: Vec<f64> = skills_after.iter().map(|s| s.mean).collect();
    let deviation: Vec<f64> = skills_after.iter().map(|s| s.deviation).collect();
    let conservative: Vec<f64> = skills_after.iter().map(|s| s.conservative()).collect();
    let params: [&(dyn ToSql + Sync); 11] = [
        &profiles,
        &names,
        &wins,
        &kills,
        &deaths,
        &shots,
        &hits,
        &score,
        &mean,
        &deviation,
        &conservative,
    ];
    tx.execute(
        &tx.prepare_cached(
            "UPDATE profiles AS p SET
             name = u.name,
             matches = p.matches + 1,
             wins = p.wins + u.wins,
             kills = p.kills + u.kills,
             deaths = p.deaths + u.deaths,
             shots = p.shots + u.shots,
             hits = p.hits + u.hits,
             score = p.score + u.score,
             skill = u.skill,
             uncertainty = u.uncertainty,
             rating = u.rating
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::float8[], $10::float8[],
                     $11::float8[])
              AS u (profile, name, wins, kills, deaths, shots, hits, score, skill,
                    uncertainty, rating)
         WHERE p.profile = u.profile",
        )
        .await?,
        &params,
    )
    .await?;
    Ok(())
}

/// Failures that trying again cannot fix, because they are about the result itself:
/// a value the database will not take (class 22, data exception) or a rule it breaks
/// (class 23, integrity constraint violation).
fn is_about_the_result(err: &tokio_postgres::Error) -> bool {
    err.code()
        .is_some_and(|code| code.code().starts_with("22") || code.code().starts_with("23"))
}
