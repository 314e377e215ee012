//! `cargo xtask compliance`: the Autobahn WebSocket cases (run by the PyPI package
//! kosoku) against the server's real upgrade path, through its test-only echo route.
//! The verdicts, without durations, must match `xtask/compliance/expected.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

use harness::ServerProcess;

use crate::util::{build_release_bins, exec, output, root, target_dir};

/// The kosoku release line the expected verdicts were recorded with.
const KOSOKU: &str = "kosoku>=0.1,<0.2";
/// Compression (permessage-deflate) cases: the server negotiates no extensions, so
/// these are expected to be UNIMPLEMENTED.
const COMPRESSION_GROUPS: [&str; 2] = ["12", "13"];

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Write the verdicts of this run as the new expected results.
    #[arg(long)]
    bless: bool,
}

fn expected_path() -> PathBuf {
    root().join("xtask/compliance/expected.json")
}

/// A venv under the target folder with kosoku in it; created on first use.
fn kosoku() -> anyhow::Result<PathBuf> {
    let venv = target_dir().join("kosoku-venv");
    let binary = venv.join("bin/kosoku");
    if !binary.is_file() {
        exec(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        exec(Command::new(venv.join("bin/pip")).args(["install", "--quiet", KOSOKU]))?;
    }
    let version = output(Command::new(venv.join("bin/pip")).args(["show", "kosoku"]))?;
    if let Some(line) = version.lines().find(|l| l.starts_with("Version:")) {
        eprintln!(
            "compliance: kosoku {}",
            line.trim_start_matches("Version:").trim()
        );
    }
    Ok(binary)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let kosoku = kosoku()?;
    // The release build the soak and the load runs use: one build serves them all.
    build_release_bins()?;
    let mut server = Command::new(target_dir().join("release/server"));
    server.arg("--echo-route").current_dir(root());
    let server = ServerProcess::start(server)?;
    let reports = target_dir().join("compliance");
    let _ = std::fs::remove_dir_all(&reports);
    std::fs::create_dir_all(&reports).with_context(|| format!("create {}", reports.display()))?;
    let log = std::fs::File::create(reports.join("kosoku.log")).context("create kosoku.log")?;
    // kosoku exits non-zero when any case is not OK, which the compression cases never
    // are; the verdicts are judged below instead.
    let _ = Command::new(&kosoku)
        .arg(server.ws_url("/echo"))
        .args(["--parallelism", "2", "--outdir"])
        .arg(&reports)
        .stdout(log.try_clone().context("clone the log handle")?)
        .stderr(log)
        .status()
        .context("run kosoku")?;
    let clean_exit = server.stop().context("stop the server")?;
    let verdicts = read_verdicts(&reports.join("index.json"))?;
    summarize(&verdicts)?;
    anyhow::ensure!(clean_exit, "the server did not exit cleanly after the run");

    let expected_file = expected_path();
    if args.bless {
        // One case per line, in case order, so a change reads as a one-line diff.
        let lines = verdicts
            .values()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        let text = format!("[\n{}\n]\n", lines.join(",\n"));
        std::fs::write(&expected_file, text)
            .with_context(|| format!("write {}", expected_file.display()))?;
        eprintln!("compliance: wrote {}", expected_file.display());
        return Ok(());
    }
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(&expected_file)
            .with_context(|| format!("read {}", expected_file.display()))?,
    )?;
    let expected: BTreeMap<String, Value> = expected
        .into_iter()
        .map(|verdict| (sort_key(verdict["case"].as_str().unwrap_or("?")), verdict))
        .collect();
    let mut differences = Vec::new();
    for (case, got) in &verdicts {
        match expected.get(case) {
            Some(want) if want == got => {}
            Some(want) => differences.push(format!("expected {want}, got {got}")),
            None => differences.push(format!("new case {got}")),
        }
    }
    for (case, want) in &expected {
        if !verdicts.contains_key(case) {
            differences.push(format!("expected but not run: {want}"));
        }
    }
    if !differences.is_empty() {
        for line in &differences {
            eprintln!("compliance: {line}");
        }
        bail!(
            "{} compliance verdicts differ from {} (reports in {})",
            differences.len(),
            expected_file.display(),
            reports.display()
        );
    }
    eprintln!("compliance: all {} verdicts as expected", verdicts.len());
    Ok(())
}

/// Case order to `{case, behavior, behaviorClose, remoteCloseCode}`: the report's index
/// without durations and file names, which change from run to run.
fn read_verdicts(index: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let text =
        std::fs::read_to_string(index).with_context(|| format!("read {}", index.display()))?;
    let index: BTreeMap<String, BTreeMap<String, Value>> = serde_json::from_str(&text)?;
    let mut verdicts = BTreeMap::new();
    // One agent: the server under test (named by its address, which changes per run).
    for cases in index.into_values() {
        for (case, entry) in cases {
            let mut keep = serde_json::Map::new();
            keep.insert("case".to_owned(), Value::String(case.clone()));
            for key in ["behavior", "behaviorClose", "remoteCloseCode"] {
                keep.insert(
                    key.to_owned(),
                    entry.get(key).cloned().unwrap_or(Value::Null),
                );
            }
            verdicts.insert(sort_key(&case), Value::Object(keep));
        }
    }
    Ok(verdicts)
}

/// `1.2.10` sorts after `1.2.9`: each part zero-padded.
fn sort_key(case: &str) -> String {
    case.split('.')
        .map(|part| format!("{part:0>3}"))
        .collect::<Vec<_>>()
        .join(".")
}

/// Prints the verdict counts and fails if any non-compression case is not acceptable.
fn summarize(verdicts: &BTreeMap<String, Value>) -> anyhow::Result<()> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut unacceptable = Vec::new();
    for (case, verdict) in verdicts {
        let behavior = verdict["behavior"].as_str().unwrap_or("?");
        let close = verdict["behaviorClose"].as_str().unwrap_or("?");
        let group = case.split('.').next().unwrap_or("").trim_start_matches('0');
        let case = verdict["case"].as_str().unwrap_or(case);
        let compression = COMPRESSION_GROUPS.contains(&group);
        let label = if compression {
            format!("compression {behavior}")
        } else {
            behavior.to_owned()
        };
        *counts.entry(label).or_default() += 1;
        let acceptable = matches!(behavior, "OK" | "NON-STRICT" | "INFORMATIONAL")
            && matches!(close, "OK" | "INFORMATIONAL");
        if !compression && !acceptable {
            unacceptable.push(format!("{case}: {behavior}/{close}"));
        }
    }
    eprintln!("compliance: {} cases: {counts:?}", verdicts.len());
    if !unacceptable.is_empty() {
        bail!("cases not OK, NON-STRICT or INFORMATIONAL: {unacceptable:?}");
    }
    Ok(())
}
