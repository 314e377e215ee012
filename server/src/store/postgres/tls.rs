//! TLS to the database: rustls with the public authorities and, with
//! `--database-ca-file`, the operator's own. The URL's `sslmode` decides whether it is
//! used; whenever it is, the certificate must be valid for the URL's host.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// The connector every connection to the database goes through.
pub(super) fn connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let authorities = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| {
                misconfigured(format!("read --database-ca-file {}", path.display()), err)
            })?;
        if authorities.is_empty() {
            return Err(misconfigured(
                format!("read --database-ca-file {}", path.display()),
                "it holds no PEM certificate",
            ));
        }
        for authority in authorities {
            roots.add(authority).map_err(|err| {
                misconfigured(format!("trust a certificate of {}", path.display()), err)
            })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::net::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| misconfigured("set up TLS to the database".into(), err))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn misconfigured(
    what: String,
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::Backend {
        what,
        source: err.into(),
    }
}

/// Whether `err` is a failed TLS handshake (an untrusted certificate, one for another
/// host, or a database without TLS when the URL requires it): the database answered,
/// so waiting will not help.
pub(super) fn is_handshake_failure(err: &tokio_postgres::Error) -> bool {
    // The driver's error kinds are private; its message for this kind is fixed.
    err.to_string()
        .starts_with("error performing TLS handshake")
}
