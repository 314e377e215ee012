//! `cargo xtask serve`: build the browser bundle and the release server, then run the
//! server in the foreground serving the bundle at `/`. With `--tls`, over HTTPS and WSS
//! with a certificate for localhost from a local certificate authority, made once in
//! the target folder and reused while it is valid.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use harness::certs::{Authority, time_left};

use crate::build::bundle;
use crate::util::{cargo, exec, root, target_dir};

/// A certificate with less left than this is made anew.
const RENEW_BEFORE: Duration = Duration::from_secs(7 * 86_400);
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
const CERT_VALIDITY: Duration = Duration::from_secs(365 * 86_400);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Serve HTTPS and WSS with a localhost certificate from a local certificate
    /// authority (made in `target/dev-tls` on first use; trust its `ca.pem` once).
    #[arg(long)]
    tls: bool,
    /// Flags passed to the server, after `--` (see `server --help`).
    #[arg(last = true)]
    server_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let web_root = bundle()?;
    exec(cargo().args(["build", "--release", "-p", "server", "--bin", "server"]))?;
    let binary = target_dir().join("release/server");
    let mut server = std::process::Command::new(&binary);
    server.current_dir(root()).arg("--web-root").arg(&web_root);
    if args.tls {
        let files = dev_certificates(&target_dir().join("dev-tls"))?;
        print_trust_help(&files.ca);
        server
            .arg("--tls-cert")
            .arg(&files.cert)
            .arg("--tls-key")
            .arg(&files.key);
    }
    server.args(&args.server_args);
    let status = server
        .status()
        .with_context(|| format!("start {}", binary.display()))?;
    anyhow::ensure!(status.success(), "server exited with {status}");
    Ok(())
}

/// The development certificate files in their folder.
#[derive(Debug)]
struct DevCertificates {
    ca: PathBuf,
    ca_key: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl DevCertificates {
    fn in_dir(dir: &Path) -> DevCertificates {
        DevCertificates {
            ca: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            cert: dir.join("localhost.pem"),
            key: dir.join("localhost-key.pem"),
        }
    }
}

/// Reads a PEM file that is there and valid for another week, or `None`.
fn still_valid(path: &Path) -> Option<String> {
    let pem = std::fs::read_to_string(path).ok()?;
    let left = time_left(&pem, SystemTime::now()).ok()?;
    (left > RENEW_BEFORE).then_some(pem)
}

/// The local CA and the localhost certificate in `dir`: those already there while they
/// are valid for another week, else new ones. A new CA needs trusting anew, so it is
/// kept as long as it can be.
fn dev_certificates(dir: &Path) -> anyhow::Result<DevCertificates> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let files = DevCertificates::in_dir(dir);
    let kept_ca = still_valid(&files.ca).and_then(|cert_pem| {
        let key_pem = std::fs::read_to_string(&files.ca_key).ok()?;
        Authority::from_pem(&cert_pem, &key_pem).ok()
    });
    let (authority, new_ca) = match kept_ca {
        Some(authority) => (authority, false),
        None => {
            let authority = Authority::new("Skirmish local development CA", CA_VALIDITY)?;
            write_pem(&files.ca, &authority.cert_pem, false)?;
            write_pem(&files.ca_key, &authority.key_pem, true)?;
            eprintln!("serve: made a new local CA: {}", files.ca.display());
            (authority, true)
        }
    };
    if new_ca || still_valid(&files.cert).is_none() || !files.key.is_file() {
        // Seconds since the epoch: a new serial number for every certificate made here.
        let serial = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |since| since.as_secs());
        let leaf = authority.issue_localhost(serial, CERT_VALIDITY)?;
        write_pem(&files.cert, &leaf.cert_pem, false)?;
        write_pem(&files.key, &leaf.key_pem, true)?;
        eprintln!(
            "serve: made a certificate for localhost: {}",
            files.cert.display()
        );
    }
    Ok(files)
}

/// Writes a PEM file; a private key readable by its owner only.
fn write_pem(path: &Path, pem: &str, private: bool) -> anyhow::Result<()> {
    std::fs::write(path, pem).with_context(|| format!("write {}", path.display()))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("make {} private", path.display()))?;
    }
    Ok(())
}

fn print_trust_help(ca: &Path) {
    let ca = ca.display();
    eprintln!(
        "\
serve: HTTPS with a certificate for localhost, 127.0.0.1 and ::1 from a local CA.
  Browsers accept it once they trust the CA in {ca}:
  - Chromium and Chrome on Linux (their NSS store; `certutil` is in libnss3-tools):
      certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n \"Skirmish local development CA\" -i {ca}
    or Settings > Privacy and security > Security > Manage certificates > Authorities > Import.
  - Firefox: Settings > Privacy & Security > Certificates > View Certificates >
    Authorities > Import, and tick \"Trust this CA to identify websites\".
  - The system (curl and most command-line tools, on Debian and Ubuntu):
      sudo cp {ca} /usr/local/share/ca-certificates/skirmish-dev.crt && sudo update-ca-certificates
  - Bots: cargo xtask bots 16 --url wss://localhost:8080/ws -- --ca-cert {ca}
  Then open https://localhost:8080 (or the address of --addr)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_made_once_and_reused_while_valid() {
        let dir = std::env::temp_dir().join(format!("skirmish-dev-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = dev_certificates(&dir).expect("made");
        let ca = std::fs::read_to_string(&first.ca).expect("a CA file");
        let cert = std::fs::read_to_string(&first.cert).expect("a certificate file");
        let second = dev_certificates(&dir).expect("reused");
        assert_eq!(std::fs::read_to_string(&second.ca).expect("CA"), ca);
        assert_eq!(
            std::fs::read_to_string(&second.cert).expect("certificate"),
            cert
        );

        std::fs::remove_file(&first.cert).expect("remove the certificate");
        let third = dev_certificates(&dir).expect("a new certificate");
        assert_eq!(
            std::fs::read_to_string(&third.ca).expect("CA"),
            ca,
            "a missing certificate is made anew by the CA already trusted"
        );
        assert!(third.cert.is_file());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
