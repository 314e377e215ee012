//! What the private servers that tests start (`test-redis`, `test-postgres`) share: a
//! free loopback port, and scratch folders named after the test process that made them,
//! so that the folders of a process that died before cleaning up can be found and
//! removed by the next one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::Context;

/// A loopback port nobody listens on at this moment.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Where scratch folders of `kind` go, in order of preference: `<target>/tmp/<kind>`,
/// found from this test binary's own path (`<target>/<profile>/deps/<binary>`), then
/// `skirmish-test-<kind>` in the system's temporary folder.
pub fn roots(kind: &str) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(target) = exe.ancestors().nth(3)
    {
        roots.push(target.join("tmp").join(kind));
    }
    roots.push(std::env::temp_dir().join(format!("skirmish-test-{kind}")));
    roots
}

/// A folder name no other instance of this process or any running one has:
/// `<pid>-<n>`.
pub fn unique_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A path in `root` no process has used, for a folder of this test's own (not made
/// yet). The first time this process asks for one in `root`, it removes the folders
/// there of test processes that have ended.
pub fn fresh_folder(root: &Path) -> PathBuf {
    static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut swept = SWEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if !swept.iter().any(|done| done == root) {
        for stale in stale_folders(root) {
            let _ = std::fs::remove_dir_all(stale);
        }
        swept.push(root.to_owned());
    }
    root.join(unique_name())
}

/// The folders in `root` made by test processes that no longer run.
pub fn stale_folders(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.split('-')
                .next()
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
                })
        })
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_dead_processes_are_stale_and_live_ones_are_not() {
        let root = std::env::temp_dir().join(format!("skirmish-test-scratch-{}", unique_name()));
        // pid_max is at most 2^22 on Linux, so this pid never runs.
        let dead = root.join("4194305-0");
        let own = root.join(unique_name());
        let parent = root.join(format!("{}-0", std::os::unix::process::parent_id()));
        let unnamed = root.join("notes");
        for folder in [&dead, &own, &parent, &unnamed] {
            std::fs::create_dir_all(folder).expect("make a folder");
        }
        let stale = stale_folders(&root);
        std::fs::remove_dir_all(&root).expect("clean up");
        assert_eq!(stale, vec![dead]);
    }

    #[test]
    fn a_fresh_folder_is_new_and_the_first_ask_sweeps_the_dead_ones() {
        let root = std::env::temp_dir().join(format!("skirmish-test-scratch-{}", unique_name()));
        let dead = root.join("4194305-0");
        std::fs::create_dir_all(&dead).expect("make a folder");
        let first = fresh_folder(&root);
        let dead_swept = !dead.exists();
        std::fs::create_dir_all(&dead).expect("make a folder");
        let second = fresh_folder(&root);
        let swept_once = dead.exists();
        std::fs::remove_dir_all(&root).expect("clean up");
        assert!(dead_swept, "the first ask removes a dead process's folder");
        assert!(swept_once, "later asks leave the folder alone");
        assert_ne!(first, second);
        assert!(first.starts_with(&root) && !first.exists());
    }

    #[test]
    fn unique_names_differ_within_a_process() {
        assert_ne!(unique_name(), unique_name());
    }

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port().expect("a free port");
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port found free");
    }
}
