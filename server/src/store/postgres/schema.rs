//! Bringing the shared database up to date with server/migrations/postgres/: each
//! migration once and in order, recorded in `skirmish_migrations`, under an advisory
//! lock so that processes starting together migrate once between them.

use deadpool_postgres::ClientWrapper;

/// Every migration, in order, with the version it brings. A migration, once released,
/// is never edited: a change is a new file.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    include_str!("../../../migrations/postgres/0001_matches.sql"),
)];

/// The advisory lock migrations run under ('SKRM'), held until their transaction ends.
const MIGRATION_LOCK: i64 = 0x534B_524D;

/// The schema version this build writes.
pub(super) fn known_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub(super) enum MigrateError {
    /// The database failed or refused a statement.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// A newer build has migrated the database past what this one knows.
    #[error("the database has schema version {found}, newer than this build knows ({known})")]
    TooNew { found: i32, known: i32 },
}

/// Applies the migrations the database lacks, all in one transaction with their
/// record, so a failure leaves it as it was.
pub(super) async fn migrate(client: &mut ClientWrapper) -> Result<(), MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS skirmish_migrations (
             version    integer     PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM skirmish_migrations",
            &[],
        )
        .await?
        .get(0);
    if found > known_version() {
        return Err(MigrateError::TooNew {
            found,
            known: known_version(),
        });
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if *version <= found {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO skirmish_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    if let Some(version) = applied.last() {
        tracing::info!(version, "the shared database was migrated");
    }
    Ok(())
}
