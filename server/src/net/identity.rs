//! Guest identities. On a first visit the server issues a random `ProfileId` inside a
//! token signed with HMAC-SHA256; the browser keeps the token and presents it in its
//! next hello. Stats follow the profile, not the nickname. A token that does not verify
//! is never trusted: its bearer gets a fresh identity, and the event is logged.
//!
//! A token reads `v1.<16 hex digits of the profile>.<64 hex digits of the MAC>`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use shared::ProfileId;

/// Bytes of key the server generates, and the least it accepts from a secret file.
const KEY_BYTES: usize = 32;
/// The key's file in the data directory when no `--secret-file` is given.
const KEY_FILE: &str = "identity.key";
const VERSION: &str = "v1";

/// Issues and verifies identity tokens with the server's key.
pub(crate) struct Identities {
    key: Vec<u8>,
}

impl std::fmt::Debug for Identities {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identities")
    }
}

impl Identities {
    /// The key from `secret_file`, or else from the data directory, where one is made and
    /// kept on first start. A key that is too short stops the server.
    pub(crate) fn load(secret_file: Option<&Path>, data_dir: &Path) -> anyhow::Result<Identities> {
        let key = match secret_file {
            Some(path) => read_key(path)?,
            None => {
                let path = data_dir.join(KEY_FILE);
                if path.exists() {
                    read_key(&path)?
                } else {
                    create_key(&path)?
                }
            }
        };
        Ok(Identities { key })
    }

    /// Identities signed with `key`, for tests.
    #[cfg(test)]
    pub(crate) fn with_key(key: &[u8]) -> Identities {
        Identities { key: key.to_vec() }
    }

    /// The profile a hello's token proves, or a fresh one with its token. The second
    /// part is the token the client should keep.
    pub(crate) fn admit(&self, presented: Option<&str>) -> (ProfileId, String) {
        if let Some(token) = presented {
            if let Some(profile) = self.verify(token) {
                return (profile, token.to_owned());
            }
            tracing::info!(
                "an identity token that does not verify was presented; issuing a fresh identity"
            );
        }
        let profile = ProfileId(random_u64());
        (profile, self.token_for(profile))
    }

    /// The token that proves `profile`.
    pub(crate) fn token_for(&self, profile: ProfileId) -> String {
        let claim = format!("{VERSION}.{}", profile.to_hex());
        let tag = hex::encode(self.mac(&claim).finalize().into_bytes());
        format!("{claim}.{tag}")
    }

    /// The profile inside `token` if this server signed it; `None` for anything else.
    pub(crate) fn verify(&self, token: &str) -> Option<ProfileId> {
        let (claim, tag) = token.rsplit_once('.')?;
        let (version, profile) = claim.split_once('.')?;
        if version != VERSION {
            return None;
        }
        let profile = ProfileId::from_hex(profile)?;
        let mut tag_bytes = [0u8; 32];
        hex::decode_to_slice(tag, &mut tag_bytes).ok()?;
        // Compared in constant time, so the MAC cannot be found byte by byte.
        self.mac(claim).verify_slice(&tag_bytes).ok()?;
        Some(profile)
    }

    /// A key of its own for another use of this server's secret, so a token of one
    /// kind can never pass for another.
    pub(crate) fn derive_key(&self, purpose: &str) -> [u8; 32] {
        self.mac(&format!("derive:{purpose}"))
            .finalize()
            .into_bytes()
            .into()
    }

    fn mac(&self, claim: &str) -> Hmac<Sha256> {
        // Invariant: HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(claim.as_bytes());
        mac
    }
}

fn read_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let key =
        std::fs::read(path).with_context(|| format!("read the identity key {}", path.display()))?;
    anyhow::ensure!(
        key.len() >= KEY_BYTES,
        "the identity key {} holds {} bytes; it needs at least {KEY_BYTES}",
        path.display(),
        key.len()
    );
    Ok(key)
}

/// Makes a new random key and keeps it, readable by this user only.
fn create_key(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key)
        .map_err(|err| anyhow::anyhow!("read random bytes for the identity key: {err}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("create the identity key {}", path.display()))?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write the identity key {}", path.display()))?;
    tracing::info!(path = %path.display(), "made a new identity key");
    Ok(key)
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without the OS's randomness nothing here is safe to run; it has it on every
    // platform the server builds for.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the OS provides random bytes");
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_proves_the_profile_it_was_issued_for() {
        let identities = Identities::with_key(&[7; 32]);
        let (profile, token) = identities.admit(None);
        assert_eq!(identities.verify(&token), Some(profile));
        assert_eq!(identities.admit(Some(&token)), (profile, token.clone()));
        let (another, _) = identities.admit(None);
        assert_ne!(another, profile, "a fresh identity each time");
    }

    #[test]
    fn tampered_and_foreign_tokens_get_a_fresh_identity() {
        let identities = Identities::with_key(&[7; 32]);
        let (profile, token) = identities.admit(None);
        let other_server = Identities::with_key(&[8; 32]);
        let (_, foreign) = other_server.admit(None);
        let other_profile = ProfileId(profile.0 ^ 1);
        let tag = token.rsplit_once('.').expect("a tag").1;
        let forged = format!("v1.{}.{tag}", other_profile.to_hex());
        let mut flipped = token.clone();
        let last = flipped.pop().expect("a last digit");
        flipped.push(if last == '0' { '1' } else { '0' });
        for bad in [
            foreign.as_str(),
            forged.as_str(),
            flipped.as_str(),
            "",
            "v1",
            "v2.0000000000000001.00",
            "v1.zzzzzzzzzzzzzzzz.00",
            &token[..token.len() - 2],
        ] {
            assert_eq!(identities.verify(bad), None, "{bad:?}");
            let (fresh, fresh_token) = identities.admit(Some(bad));
            assert_ne!(fresh_token, bad);
            assert_eq!(identities.verify(&fresh_token), Some(fresh));
        }
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("skirmish-identity-{}", random_u64()));
        let first = Identities::load(None, &dir).expect("a key is made");
        let (profile, token) = first.admit(None);
        let again = Identities::load(None, &dir).expect("the key is read back");
        assert_eq!(
            again.verify(&token),
            Some(profile),
            "tokens survive a restart"
        );
        let short = dir.join("short.key");
        std::fs::write(&short, b"too short").expect("write");
        assert!(Identities::load(Some(&short), &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
