//! Certificates for tests and local development: a certificate authority of our own and
//! certificates it signs for localhost (`localhost`, `127.0.0.1`, `::1`), as PEM. The
//! tests give the authority to their clients; `cargo xtask serve --tls` asks the
//! developer to trust it once.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen could not make, sign or read one.
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A PEM certificate could not be read as X.509.
    #[error("not a readable PEM certificate")]
    Unreadable,
}

/// A certificate authority that signs certificates for localhost.
#[derive(Debug)]
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The authority's certificate, which clients are told to trust.
    pub cert_pem: String,
    /// The authority's private key, kept only to sign more certificates later.
    pub key_pem: String,
}

/// A server certificate and its private key.
#[derive(Debug)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 of the certificate's public key (its SubjectPublicKeyInfo), in base64:
    /// the form Chromium's `--ignore-certificate-errors-spki-list` takes.
    pub spki_sha256: String,
}

impl Authority {
    /// A new authority called `name`, valid from an hour ago for `valid_for`.
    pub fn new(name: &str, valid_for: Duration) -> Result<Authority, CertsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Skirmish development");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, valid_for);
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Authority {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// An authority made earlier, from its certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Authority, CertsError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Authority {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// A certificate for `localhost`, `127.0.0.1` and `::1` with serial number `serial`,
    /// valid from an hour ago for `valid_for`, signed by this authority.
    pub fn issue_localhost(&self, serial: u64, valid_for: Duration) -> Result<Leaf, CertsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        params.serial_number = Some(SerialNumber::from(serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, valid_for);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            spki_sha256: data_encoding::BASE64
                .encode(&Sha256::digest(key.subject_public_key_info())),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Valid from an hour ago (so a clock a little behind still accepts it) for `valid_for`.
fn set_validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + valid_for;
}

/// How long the PEM certificate `cert_pem` has left at `now`: zero once expired.
pub fn time_left(cert_pem: &str, now: std::time::SystemTime) -> Result<Duration, CertsError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|_| CertsError::Unreadable)?;
    let cert = pem.parse_x509().map_err(|_| CertsError::Unreadable)?;
    let not_after = cert.validity().not_after.timestamp();
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        });
    Ok(Duration::from_secs(
        u64::try_from(not_after.saturating_sub(now)).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn an_authority_read_back_signs_certificates_with_the_asked_validity() {
        let made = Authority::new("test CA", 30 * DAY).expect("a CA");
        let kept = Authority::from_pem(&made.cert_pem, &made.key_pem).expect("read back");
        let leaf = kept.issue_localhost(7, 10 * DAY).expect("a certificate");
        let left = time_left(&leaf.cert_pem, std::time::SystemTime::now()).expect("readable");
        assert!(
            left > 9 * DAY && left <= 10 * DAY,
            "a 10-day certificate has about 10 days left, not {left:?}"
        );
        assert_eq!(leaf.spki_sha256.len(), 44, "base64 of 32 bytes");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(time_left("not a certificate", std::time::SystemTime::now()).is_err());
    }
}
