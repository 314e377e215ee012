//! `cargo xtask deny`: cargo-deny (advisories, bans, licences, sources). The RustSec
//! advisory database comes from a snapshot archive when there is one (machines that
//! cannot reach the database's git remote keep one), and is otherwise fetched by
//! cargo-deny itself, so a plain clone audits too. Installs cargo-deny if it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::util::{cargo, exec, output, root, target_dir};

/// The snapshot's folder name is what cargo-deny derives from the default database URL.
const DB_FOLDER: &str = "advisory-db-3157b0e258782691";

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// The RustSec snapshot archive (default: ../shared/advisory-db/advisory-db.tar.gz).
    /// When it is not there, cargo-deny fetches the database instead.
    #[arg(long, env = "SKIRMISH_ADVISORY_DB_ARCHIVE")]
    archive: Option<PathBuf>,
}

/// Where the advisory database comes from.
#[derive(Debug, PartialEq, Eq)]
enum AdvisorySource {
    /// A snapshot archive that is there.
    Snapshot(PathBuf),
    /// No snapshot where one was looked for: cargo-deny fetches the database.
    Fetch { looked_at: PathBuf },
}

/// The archive named on the command line or in the environment, else the default one,
/// if it is a file; otherwise a fetch. A named archive that is missing is not replaced
/// by the default one: whoever named it meant that one.
fn choose_source(
    named: Option<&Path>,
    default_archive: &Path,
    is_file: impl Fn(&Path) -> bool,
) -> AdvisorySource {
    let archive = named.unwrap_or(default_archive);
    if is_file(archive) {
        AdvisorySource::Snapshot(archive.to_path_buf())
    } else {
        AdvisorySource::Fetch {
            looked_at: archive.to_path_buf(),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure_cargo_deny()?;
    let default_archive = root().join("../shared/advisory-db/advisory-db.tar.gz");
    let source = choose_source(args.archive.as_deref(), &default_archive, Path::is_file);
    let dbs = match &source {
        AdvisorySource::Snapshot(archive) => use_snapshot(archive)?,
        AdvisorySource::Fetch { looked_at } => fetch_database(looked_at)?,
    };
    exec(cargo().args(["fetch", "--locked"]))?;
    exec(
        cargo()
            .args([
                "deny",
                "--offline",
                "check",
                "advisories",
                "bans",
                "licenses",
                "sources",
            ])
            .env("SKIRMISH_ADVISORY_DBS", &dbs),
    )
}

fn ensure_cargo_deny() -> anyhow::Result<()> {
    let has_deny = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_deny {
        exec(cargo().args(["install", "cargo-deny", "--locked"]))?;
    }
    Ok(())
}

/// Unpacks the snapshot for cargo-deny and says which it is; the databases' folder.
fn use_snapshot(archive: &Path) -> anyhow::Result<PathBuf> {
    let dbs = target_dir().join("advisory-dbs/snapshot");
    let db = dbs.join(DB_FOLDER);
    unpack(archive, &db)?;
    let date = snapshot_date(archive).unwrap_or_else(|| last_commit_date(&db));
    eprintln!(
        "deny: advisory database: RustSec snapshot dated {date}, from {}",
        archive.display()
    );
    Ok(dbs)
}

/// Lets cargo-deny fetch the database into the target folder; the databases' folder.
/// A failure is one line saying what to do, with cargo-deny's own words in a log.
fn fetch_database(looked_at: &Path) -> anyhow::Result<PathBuf> {
    let dbs = target_dir().join("advisory-dbs/fetched");
    std::fs::create_dir_all(&dbs).with_context(|| format!("create {}", dbs.display()))?;
    eprintln!(
        "deny: no RustSec snapshot at {}; cargo-deny fetches the advisory database into {}",
        looked_at.display(),
        dbs.display()
    );
    let fetched = cargo()
        .args(["deny", "fetch", "db"])
        .env("SKIRMISH_ADVISORY_DBS", &dbs)
        .output()
        .context("run cargo deny fetch db")?;
    if !fetched.status.success() {
        let log = dbs.join("fetch.log");
        let _ = std::fs::write(&log, [fetched.stdout, fetched.stderr].concat());
        bail!("{}", unavailable(looked_at, &log));
    }
    eprintln!(
        "deny: advisory database: fetched by cargo-deny, last advisory commit {}",
        last_commit_date(&dbs.join(DB_FOLDER))
    );
    Ok(dbs)
}

/// The one line that ends an audit with no database.
fn unavailable(looked_at: &Path, log: &Path) -> String {
    format!(
        "no RustSec advisory database: no snapshot at {} and cargo-deny could not fetch one \
         (its output: {}); set SKIRMISH_ADVISORY_DB_ARCHIVE to a RustSec snapshot archive \
         (advisory-db.tar.gz) or allow network access to github.com",
        looked_at.display(),
        log.display()
    )
}

/// The date of a database folder's newest commit, or "unknown".
fn last_commit_date(db: &Path) -> String {
    output(
        Command::new("git")
            .args(["log", "-1", "--format=%cs"])
            .current_dir(db),
    )
    .map(|date| date.trim().to_owned())
    .ok()
    .filter(|date| !date.is_empty())
    .unwrap_or_else(|| "unknown".to_owned())
}

/// Unpacks the archive into `db` as a one-commit git repository dated like the
/// snapshot, unless it is already there from an earlier run with the same archive.
fn unpack(archive: &Path, db: &Path) -> anyhow::Result<()> {
    let stamp = db.join(".git/skirmish-archive");
    let archive_id = format!(
        "{} {}",
        archive.display(),
        std::fs::metadata(archive)
            .with_context(|| format!("read {}", archive.display()))?
            .len()
    );
    if std::fs::read_to_string(&stamp).is_ok_and(|seen| seen == archive_id) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(db);
    std::fs::create_dir_all(db).with_context(|| format!("create {}", db.display()))?;
    exec(
        Command::new("tar")
            .arg("xzf")
            .arg(archive)
            .arg("-C")
            .arg(db),
    )?;
    let date = snapshot_date(archive).unwrap_or_else(|| "2000-01-01".to_owned());
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.args([
            "-c",
            "user.name=snapshot",
            "-c",
            "user.email=snapshot@localhost",
        ])
        .args(args)
        .current_dir(db)
        .env("GIT_AUTHOR_DATE", format!("{date}T00:00:00Z"))
        .env("GIT_COMMITTER_DATE", format!("{date}T00:00:00Z"));
        cmd
    };
    output(&mut git(&["init", "--quiet"]))?;
    output(&mut git(&["add", "-A"]))?;
    output(&mut git(&[
        "commit",
        "--quiet",
        "-m",
        "RustSec advisory database snapshot",
    ]))?;
    std::fs::write(&stamp, archive_id).context("stamp the unpacked snapshot")?;
    Ok(())
}

/// The snapshot's date, as its README beside the archive states it (`dated YYYY-MM-DD`).
fn snapshot_date(archive: &Path) -> Option<String> {
    let readme = std::fs::read_to_string(archive.with_file_name("README.md")).ok()?;
    let after = readme.split("dated ").nth(1)?;
    let date: String = after.chars().take(10).collect();
    (date.len() == 10 && date.chars().filter(|c| *c == '-').count() == 2).then_some(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "/repo/../shared/advisory-db/advisory-db.tar.gz";

    fn exists(paths: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |path| paths.iter().any(|p| Path::new(p) == path)
    }

    #[test]
    fn default_snapshot_is_used_when_it_is_there() {
        assert_eq!(
            choose_source(None, Path::new(DEFAULT), exists(&[DEFAULT])),
            AdvisorySource::Snapshot(DEFAULT.into())
        );
    }

    #[test]
    fn named_snapshot_wins_over_the_default() {
        assert_eq!(
            choose_source(
                Some(Path::new("/tmp/db.tar.gz")),
                Path::new(DEFAULT),
                exists(&[DEFAULT, "/tmp/db.tar.gz"])
            ),
            AdvisorySource::Snapshot("/tmp/db.tar.gz".into())
        );
    }

    #[test]
    fn a_clone_without_shared_beside_it_fetches() {
        assert_eq!(
            choose_source(None, Path::new(DEFAULT), exists(&[])),
            AdvisorySource::Fetch {
                looked_at: DEFAULT.into()
            }
        );
    }

    #[test]
    fn missing_named_snapshot_fetches_rather_than_taking_the_default() {
        assert_eq!(
            choose_source(
                Some(Path::new("/nonexistent.tar.gz")),
                Path::new(DEFAULT),
                exists(&[DEFAULT])
            ),
            AdvisorySource::Fetch {
                looked_at: "/nonexistent.tar.gz".into()
            }
        );
    }

    #[test]
    fn no_database_is_one_line_that_says_what_to_do() {
        let line = unavailable(
            Path::new("/nonexistent.tar.gz"),
            Path::new("target/advisory-dbs/fetched/fetch.log"),
        );
        assert!(!line.contains('\n'), "the message should be a single line");
        assert!(line.contains("/nonexistent.tar.gz"));
        assert!(line.contains("SKIRMISH_ADVISORY_DB_ARCHIVE"));
        assert!(line.contains("network"));
    }
}
