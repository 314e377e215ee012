//! A private PostgreSQL for tests: a cluster of its own (initdb) under the target
//! folder, run by pg_ctl as an unprivileged user on a free loopback port, with its unix
//! socket in its data directory; stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

/// The environment variable naming the folder of `initdb`, `pg_ctl`, `postgres` and
/// `psql` (on Debian, `/usr/lib/postgresql/<version>/bin`). `cargo xtask test` installs
/// PostgreSQL when it can and sets it; without it (a plain `cargo test`) the tests that
/// need PostgreSQL say they skip, and with it a missing program fails them.
pub const BIN_ENV: &str = "SKIRMISH_POSTGRES_BIN";

/// The programs a private instance needs from the folder.
const PROGRAMS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "psql"];

/// The superuser `initdb` makes; connections from loopback are trusted.
const SUPERUSER: &str = "postgres";

/// Who runs the cluster when the tests run as root, which PostgreSQL refuses to be.
const UNPRIVILEGED_USER: &str = "postgres";

/// The longest path a unix socket may have, less a margin; past it, the scratch folder
/// moves to the system's temporary folder.
const MAX_SOCKET_PATH: usize = 100;

/// The folder `BIN_ENV` names, checked. `None` when it is unset, after telling stderr
/// that `test` is skipped; a panic when it is set but a program is missing, since then
/// the run meant to test against PostgreSQL and must not pass without it.
pub fn bin_dir(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(BIN_ENV) else {
        eprintln!(
            "skipping {test}: it needs PostgreSQL, and {BIN_ENV} is not set; `cargo xtask test` installs PostgreSQL and runs it"
        );
        return None;
    };
    let dir = PathBuf::from(dir);
    for program in PROGRAMS {
        assert!(
            dir.join(program).is_file(),
            "{BIN_ENV} is {}, which has no {program}: install PostgreSQL (Debian: apt-get install postgresql)",
            dir.display()
        );
    }
    Some(dir)
}

/// The certificate chain and key, in PEM, a server started with TLS presents.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A running private PostgreSQL. Dropping it stops the server at once and removes its
/// files.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// The instance's folder: the data directory and the log.
    base: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// Whom the programs run as, when the tests run as root.
    run_as: Option<&'static str>,
}

impl Postgres {
    /// Makes a fresh cluster and starts it on a free loopback port.
    pub fn start(bin: &Path) -> anyhow::Result<Postgres> {
        Postgres::start_with(bin, None)
    }

    /// As `start`, with TLS on and required: the server presents `tls`'s certificate,
    /// and refuses TCP connections that do not use TLS.
    pub fn start_with_tls(bin: &Path, tls: &ServerTls) -> anyhow::Result<Postgres> {
        Postgres::start_with(bin, Some(tls))
    }

    fn start_with(bin: &Path, tls: Option<&ServerTls>) -> anyhow::Result<Postgres> {
        let run_as = is_root()?.then_some(UNPRIVILEGED_USER);
        let base = new_base(run_as)?;
        let data = base.join("data");
        let mut postgres = Postgres {
            bin: bin.to_owned(),
            log: base.join("postgres.log"),
            base,
            data,
            port: 0,
            run_as,
        };
        postgres.init()?;
        if let Some(tls) = tls {
            postgres.require_tls(tls)?;
        }
        // A port found free may be taken before the server binds it: try another.
        let mut last_error = None;
        for _ in 0..3 {
            postgres.port = test_scratch::free_port()?;
            postgres.configure()?;
            match postgres.pg_ctl(&["start", "-w", "-t", "60", "-l"], Some(&postgres.log)) {
                Ok(()) => return Ok(postgres),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no try to start was made")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Runs `sql` in `database` with psql and returns what it printed, unaligned and
    /// without headers (`|` between columns, one row a line).
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
            ])
            .args(["-c", sql])
            .output()
            .context("run psql")?;
        let output = succeeded(output, &format!("psql -c {sql:?}"))?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned())
    }

    /// Stops the server as an operator would (`pg_ctl stop -m fast`): connections are
    /// cut, and the data stays for `restart`.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"], None)
    }

    /// Starts the stopped server again, on the same port with the same data.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["start", "-w", "-t", "60", "-l"], Some(&self.log))
    }

    fn init(&self) -> anyhow::Result<()> {
        let output = self
            .as_owner(&self.bin.join("initdb"))
            .arg("-D")
            .arg(&self.data)
            .args(["-U", SUPERUSER, "--auth=trust", "--no-sync", "--no-locale"])
            .args(["-E", "UTF8"])
            .output()
            .context("run initdb")?;
        succeeded(output, "initdb").map(drop)
    }

    /// Appends this instance's settings to its configuration; a later line wins, so a
    /// new port on a retry simply follows the old.
    fn configure(&self) -> anyhow::Result<()> {
        use std::io::Write;
        let settings = format!(
            "\n# Written by test-postgres.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             max_connections = 50\n\
             shared_buffers = 16MB\n\
             # Durability is not what these tests are about; speed is welcome.\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            port = self.port,
            socket_dir = self.data.display(),
        );
        let config = self.data.join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .with_context(|| format!("configure {}", config.display()))
    }

    /// Puts the certificate and key in the data directory (the key readable by its
    /// owner alone, as PostgreSQL demands), turns TLS on, and lets TCP clients in only
    /// over TLS.
    fn require_tls(&self, tls: &ServerTls) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, chown};
        let owner = self.run_as.map(ids_of).transpose()?;
        let write = |name: &str, contents: &str, mode: u32| -> anyhow::Result<()> {
            let path = self.data.join(name);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(&path)
                .with_context(|| format!("create {}", path.display()))?;
            file.write_all(contents.as_bytes())
                .with_context(|| format!("write {}", path.display()))?;
            if let Some((uid, gid)) = owner {
                chown(&path, Some(uid), Some(gid))
                    .with_context(|| format!("give {} to the cluster's owner", path.display()))?;
            }
            Ok(())
        };
        write("server.crt", &tls.cert_pem, 0o644)?;
        write("server.key", &tls.key_pem, 0o600)?;
        write(
            "pg_hba.conf",
            "# Written by test-postgres: TCP only over TLS.\n\
             local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
            0o600,
        )?;
        let config = self.data.join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .and_then(|mut file| {
                file.write_all(
                    b"\n# Written by test-postgres.\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
                )
            })
            .with_context(|| format!("turn TLS on in {}", config.display()))
    }

    /// Runs `pg_ctl -D <data> <args>`, with `log` as the last argument when given.
    fn pg_ctl(&self, args: &[&str], log: Option<&Path>) -> anyhow::Result<()> {
        let mut command = self.as_owner(&self.bin.join("pg_ctl"));
        command.arg("-D").arg(&self.data).args(args);
        if let Some(log) = log {
            command.arg(log);
        }
        let output = command.output().context("run pg_ctl")?;
        succeeded(output, &format!("pg_ctl {}", args.join(" "))).map_err(|err| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            err.context(format!("server log:\n{}", tail.join("\n")))
        })?;
        Ok(())
    }

    /// `program` run as the cluster's owner.
    fn as_owner(&self, program: &Path) -> Command {
        as_user(self.run_as, program)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate: nothing here is worth a checkpoint, and the files go next.
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate", "-w", "-t", "60"])
            .output();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn as_user(run_as: Option<&str>, program: &Path) -> Command {
    match run_as {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn succeeded(output: Output, what: &str) -> anyhow::Result<Output> {
    if output.status.success() {
        return Ok(output);
    }
    bail!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether this process runs as root: `Uid:` in its status, real id first.
fn is_root() -> anyhow::Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .context("find Uid in /proc/self/status")?;
    Ok(uid == "0")
}

/// The user and group ids of `user`, from /etc/passwd.
fn ids_of(user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("read /etc/passwd")?;
    let fields: Vec<&str> = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&user))
        .with_context(|| {
            format!("running as root needs a user `{user}` to run PostgreSQL as (Debian's postgresql package makes it)")
        })?;
    let id = |index: usize| -> anyhow::Result<u32> {
        fields
            .get(index)
            .and_then(|id| id.parse().ok())
            .with_context(|| format!("read the ids of `{user}` in /etc/passwd"))
    };
    Ok((id(2)?, id(3)?))
}

/// A new, empty folder for one instance, owned by whoever runs the cluster: under the
/// target folder when the cluster's owner can reach it and the socket path fits, else
/// under the system's temporary folder.
fn new_base(run_as: Option<&str>) -> anyhow::Result<PathBuf> {
    let name = test_scratch::unique_name();
    let mut tried = Vec::new();
    for root in test_scratch::roots("postgres") {
        remove_stale(&root, run_as);
        let base = root.join(&name);
        let socket = base.join("data").join(".s.PGSQL.65535");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            tried.push(format!("{}: the socket path is too long", root.display()));
            continue;
        }
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
        if let Some(user) = run_as {
            let (uid, gid) = ids_of(user)?;
            std::os::unix::fs::chown(&base, Some(uid), Some(gid))
                .with_context(|| format!("give {} to {user}", base.display()))?;
            let reachable = as_user(Some(user), Path::new("test"))
                .arg("-w")
                .arg(&base)
                .status()
                .is_ok_and(|status| status.success());
            if !reachable {
                let _ = std::fs::remove_dir_all(&base);
                tried.push(format!("{}: {user} cannot reach it", root.display()));
                continue;
            }
        }
        return Ok(base);
    }
    bail!("no folder for a private PostgreSQL: {}", tried.join("; "))
}

/// Stops and removes instances left by test processes that no longer run (killed
/// before their `Drop`), so a crashed run does not leave servers behind for good.
fn remove_stale(root: &Path, run_as: Option<&str>) {
    for stale in test_scratch::stale_folders(root) {
        let data = stale.join("data");
        if data.join("postmaster.pid").exists()
            && let Ok(bin) = std::env::var(BIN_ENV)
        {
            let _ = as_user(run_as, &Path::new(&bin).join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["stop", "-m", "immediate", "-w"])
                .output();
        }
        let _ = std::fs::remove_dir_all(stale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_server_starts_answers_stops_restarts_and_is_removed() {
        let Some(bin) = bin_dir("a_private_server_starts_answers_stops_restarts_and_is_removed")
        else {
            return;
        };
        let postgres = Postgres::start(&bin).expect("a private PostgreSQL starts");
        let url = postgres.create_database("probe").expect("a database");
        assert!(url.ends_with(&format!(":{}/probe", postgres.port())));
        postgres
            .psql(
                "probe",
                "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)",
            )
            .expect("it runs SQL");
        assert_eq!(
            postgres
                .psql("probe", "SHOW listen_addresses")
                .expect("a setting"),
            "127.0.0.1",
            "it listens on loopback only"
        );
        postgres.stop().expect("it stops");
        assert!(
            postgres.psql("probe", "SELECT 1").is_err(),
            "a stopped server does not answer"
        );
        postgres.restart().expect("it starts again");
        assert_eq!(
            postgres.psql("probe", "SELECT n FROM kept").expect("a row"),
            "7",
            "the data outlives a restart"
        );
        let base = postgres.base.clone();
        drop(postgres);
        assert!(!base.exists(), "dropping removes the instance's files");
    }
}
