//! `cargo xtask deny`: cargo-deny (advisories, bans, licences, sources) against the
//! offline RustSec snapshot, which this machine must use because it cannot reach the
//! database's git remote. Installs cargo-deny if it is missing.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::util::{cargo, exec, output, root, target_dir};

/// The snapshot's folder name is what cargo-deny derives from the default database URL.
const DB_FOLDER: &str = "advisory-db-3157b0e258782691";

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// The RustSec snapshot archive (default: ../shared/advisory-db/advisory-db.tar.gz).
    #[arg(long, env = "SKIRMISH_ADVISORY_DB_ARCHIVE")]
    archive: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let has_deny = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_deny {
        exec(cargo().args(["install", "cargo-deny", "--locked"]))?;
    }
    let archive = args
        .archive
        .unwrap_or_else(|| root().join("../shared/advisory-db/advisory-db.tar.gz"));
    let dbs = target_dir().join("advisory-dbs");
    let db = dbs.join(DB_FOLDER);
    unpack(&archive, &db)?;
    let date = output(
        Command::new("git")
            .args(["log", "-1", "--format=%cs", "--", "."])
            .current_dir(&db),
    )?;
    eprintln!(
        "deny: RustSec snapshot {} from {}",
        snapshot_date(&archive).unwrap_or_else(|| date.trim().to_owned()),
        archive.display()
    );
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

/// Unpacks the archive into `db` as a one-commit git repository dated like the
/// snapshot, unless it is already there from an earlier run with the same archive.
fn unpack(archive: &std::path::Path, db: &std::path::Path) -> anyhow::Result<()> {
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
fn snapshot_date(archive: &std::path::Path) -> Option<String> {
    let readme = std::fs::read_to_string(archive.with_file_name("README.md")).ok()?;
    let after = readme.split("dated ").nth(1)?;
    let date: String = after.chars().take(10).collect();
    (date.len() == 10 && date.chars().filter(|c| *c == '-').count() == 2).then_some(date)
}
