//! TLS on the game's port: the certificate and key read from PEM files, a resolver that
//! gives every new handshake the newest pair (a reload swaps it in one atomic store, so
//! connections already open keep the session they made), and the handshake itself, run
//! in each connection's own task under a timeout.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::ops::metrics::Metrics;

/// A certificate expiring sooner than this is worth an operator's attention now.
const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the certificate chain and its private key are read from, at start and on
/// every reload.
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// Why a certificate and key could not be used. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file is missing or unreadable.
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file is not PEM, or a PEM section in it is damaged.
    #[error("{} is not a PEM file: {detail}", path.display())]
    NotPem { path: PathBuf, detail: String },
    /// The certificate file holds no certificate.
    #[error("no certificate in {}", .0.display())]
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    #[error("no private key in {}", .0.display())]
    NoKey(PathBuf),
    /// The first certificate is not an X.509 certificate that can be read.
    #[error("the certificate in {} cannot be read: {detail}", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    /// The private key is of a kind that cannot sign handshakes.
    #[error("the private key in {} cannot be used: {source}", path.display())]
    BadKey {
        path: PathBuf,
        source: rustls::Error,
    },
    /// The private key is not the certificate's.
    #[error("the private key in {} does not match the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// What a loaded certificate says of itself, for the logs.
#[derive(Clone, Debug)]
pub(crate) struct CertSummary {
    /// The leaf certificate's serial number, in hex.
    pub(crate) serial: String,
    /// When the leaf certificate expires, in seconds since the Unix epoch.
    pub(crate) not_after: i64,
}

/// The certificate every new handshake is given: loaded from `files` at start and
/// replaced by `reload`. Readers never wait: a handshake takes whatever pair is current.
#[derive(Debug)]
pub(crate) struct Certificates {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

/// The one crypto provider of every TLS config the server builds, named rather than
/// taken from a process-wide default that another library could set first.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Certificates {
    /// Loads the pair, or says which file is wrong and how.
    pub(crate) fn load(files: TlsFiles) -> Result<(Certificates, CertSummary), CertError> {
        let provider = provider();
        let (key, summary) = load_pair(&files, &provider)?;
        let certificates = Certificates {
            files,
            provider,
            current: ArcSwap::from_pointee(key),
        };
        Ok((certificates, summary))
    }

    /// Reads the files again and, only if the new pair is whole and matching, makes it
    /// the one new handshakes get. A failed reload leaves the current pair in place.
    pub(crate) fn reload(&self) -> Result<CertSummary, CertError> {
        let (key, summary) = load_pair(&self.files, &self.provider)?;
        self.current.store(Arc::new(key));
        Ok(summary)
    }

    /// The certificate file, for messages.
    pub(crate) fn cert_path(&self) -> &Path {
        &self.files.cert
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reads and checks the chain and key named by `files`.
fn load_pair(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, CertSummary), CertError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let not_pem = |path: &Path| {
        let path = path.to_owned();
        move |err: rustls_pki_types::pem::Error| CertError::NotPem {
            path,
            detail: err.to_string(),
        }
    };
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(not_pem(&files.cert))?;
    let leaf = chain
        .first()
        .ok_or_else(|| CertError::NoCertificate(files.cert.clone()))?;
    let summary = summarize(leaf).map_err(|detail| CertError::BadCertificate {
        path: files.cert.clone(),
        detail,
    })?;
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => CertError::NoKey(files.key.clone()),
        other => not_pem(&files.key)(other),
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => CertError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        },
        source => CertError::BadKey {
            path: files.key.clone(),
            source,
        },
    })?;
    Ok((certified, summary))
}

/// The serial and expiry of a DER certificate, or why it cannot be read.
fn summarize(der: &CertificateDer<'_>) -> Result<CertSummary, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|err| err.to_string())?;
    Ok(CertSummary {
        serial: cert.tbs_certificate.raw_serial_as_string(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

impl CertSummary {
    /// How long until the certificate expires, at `now`; `None` once it has.
    pub(crate) fn remaining(&self, now: SystemTime) -> Option<Duration> {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        u64::try_from(self.not_after.saturating_sub(now))
            .ok()
            .filter(|&secs| secs > 0)
            .map(Duration::from_secs)
    }

    /// Logs the certificate now in use, with a warning if it expires within a week.
    pub(crate) fn log(&self, path: &Path, what: &str) {
        match self.remaining(SystemTime::now()) {
            None => tracing::warn!(
                cert = %path.display(),
                serial = %self.serial,
                "{what}: the certificate has expired; browsers will refuse it"
            ),
            Some(left) if left < EXPIRY_WARNING => tracing::warn!(
                cert = %path.display(),
                serial = %self.serial,
                days_left = left.as_secs() / 86_400,
                "{what}: the certificate expires within a week"
            ),
            Some(left) => tracing::info!(
                cert = %path.display(),
                serial = %self.serial,
                days_left = left.as_secs() / 86_400,
                "{what}"
            ),
        }
    }
}

/// The server's TLS config: HTTP/1.1 only (the game's WebSocket upgrade is an HTTP/1.1
/// request), with the certificate from `certificates` at each handshake.
pub(crate) fn server_config(
    certificates: Arc<Certificates>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&certificates.provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Runs TLS handshakes for the accept loop's connection tasks.
#[derive(Clone)]
pub(crate) struct Handshaker {
    acceptor: TlsAcceptor,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Handshaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshaker")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Handshaker {
    pub(crate) fn new(
        config: Arc<ServerConfig>,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Handshaker {
        Handshaker {
            acceptor: TlsAcceptor::from(config),
            timeout,
            metrics,
        }
    }

    /// The server's side of the handshake on `stream`. `None` when the peer spoke
    /// something else (plain HTTP, garbage), went away, or took longer than the
    /// handshake timeout; the socket is then dropped. Anyone can do any of that to an
    /// open port, so it is counted and logged at debug, not warned about.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        // The failure is counted before the socket is dropped, so that a peer that sees
        // it close finds it counted.
        let accept = self.acceptor.accept(stream).into_fallible();
        tokio::pin!(accept);
        match tokio::time::timeout(self.timeout, accept.as_mut()).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err((err, socket))) => {
                self.metrics.count_tls_failure("refused");
                tracing::debug!(%peer, %err, "tls handshake failed");
                drop(socket);
                None
            }
            Err(_) => {
                self.metrics.count_tls_failure("timeout");
                tracing::debug!(%peer, "tls handshake timed out");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_expiring_at(not_after: i64) -> CertSummary {
        CertSummary {
            serial: "01".into(),
            not_after,
        }
    }

    #[test]
    fn time_left_is_none_once_expired() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            summary_expiring_at(1_000_000 + 3600).remaining(now),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(summary_expiring_at(1_000_000).remaining(now), None);
        assert_eq!(summary_expiring_at(i64::MIN).remaining(now), None);
        assert!(summary_expiring_at(i64::MAX).remaining(now).is_some());
    }
}
