//! Who may use the console: the operators' token, compared in constant time, and the
//! sessions the login form opens. A session is a random id in an HttpOnly,
//! SameSite=Strict cookie; the server keeps the sessions (bounded), so logging out ends
//! one for good.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "skirmish_admin";
/// How long a console login lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; past it the oldest is ended.
const MAX_SESSIONS: usize = 64;
/// The shortest token accepted: a guessable token would make the console anyone's.
const MIN_TOKEN_CHARS: usize = 16;

/// The token and the open sessions.
pub(crate) struct Auth {
    /// A random key, made at start, under which the token and each guess are MACed, so
    /// they are compared in constant time whatever their lengths.
    key: [u8; 32],
    token_mac: [u8; 32],
    /// Open sessions by the SHA-256 of their id: a lookup's timing tells nothing of ids.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    logins: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("sessions", &self.sessions.lock().len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Session {
    /// The operator's name, as given at login.
    who: String,
    expires: Instant,
    /// Counts up with each login, so the oldest is known even within one clock tick.
    opened: u64,
}

impl Auth {
    /// Reads the token from `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Auth> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the admin token file {}", path.display()))?;
        Auth::from_token(text.trim())
            .with_context(|| format!("the admin token in {}", path.display()))
    }

    pub(crate) fn from_token(token: &str) -> anyhow::Result<Auth> {
        anyhow::ensure!(
            token.chars().count() >= MIN_TOKEN_CHARS,
            "it must be at least {MIN_TOKEN_CHARS} characters"
        );
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|err| anyhow::anyhow!("random key: {err}"))?;
        let mut auth = Auth {
            key,
            token_mac: [0; 32],
            sessions: Mutex::new(HashMap::new()),
            logins: std::sync::atomic::AtomicU64::new(0),
        };
        auth.token_mac = auth.mac(token.as_bytes()).finalize().into_bytes().into();
        Ok(auth)
    }

    fn mac(&self, bytes: &[u8]) -> Hmac<Sha256> {
        // Invariant: HMAC takes a key of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(bytes);
        mac
    }

    /// Whether `given` is the operators' token; constant time.
    pub(crate) fn token_matches(&self, given: &str) -> bool {
        self.mac(given.as_bytes())
            .verify_slice(&self.token_mac)
            .is_ok()
    }

    /// Opens a session for `who`; the id goes in the cookie.
    pub(crate) fn open_session(&self, who: String) -> String {
        let mut id = [0u8; 32];
        if getrandom::fill(&mut id).is_err() {
            // Without randomness no session can be safe: hand out one that never works.
            return String::new();
        }
        let id = hex::encode(id);
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, session| session.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.opened)
                .map(|(key, _)| *key)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            session_key(&id),
            Session {
                who,
                expires: now + SESSION_TTL,
                opened: self
                    .logins
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            },
        );
        id
    }

    /// The operator whose live session `id` names.
    pub(crate) fn session(&self, id: &str) -> Option<String> {
        if id.is_empty() {
            return None;
        }
        let sessions = self.sessions.lock();
        let session = sessions.get(&session_key(id))?;
        (session.expires > Instant::now()).then(|| session.who.clone())
    }

    pub(crate) fn close_session(&self, id: &str) {
        self.sessions.lock().remove(&session_key(id));
    }
}

fn session_key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "correct horse battery staple";

    #[test]
    fn only_the_token_itself_matches() {
        let auth = Auth::from_token(TOKEN).expect("a long enough token");
        assert!(auth.token_matches(TOKEN));
        for wrong in [
            "",
            "correct horse battery stapl",
            "correct horse battery staple ",
            "x",
        ] {
            assert!(!auth.token_matches(wrong), "{wrong:?} is not the token");
        }
    }

    #[test]
    fn a_short_token_is_refused_at_start() {
        assert!(Auth::from_token("short").is_err());
    }

    #[tokio::test]
    async fn sessions_name_their_operator_until_closed() {
        let auth = Auth::from_token(TOKEN).expect("a long enough token");
        let id = auth.open_session("ops".into());
        assert_eq!(auth.session(&id).as_deref(), Some("ops"));
        assert_eq!(auth.session("not-a-session"), None);
        assert_eq!(auth.session(""), None);
        auth.close_session(&id);
        assert_eq!(auth.session(&id), None, "a closed session is over");
    }

    #[tokio::test]
    async fn sessions_are_bounded_and_the_oldest_goes_first() {
        let auth = Auth::from_token(TOKEN).expect("a long enough token");
        let first = auth.open_session("first".into());
        for n in 0..MAX_SESSIONS {
            auth.open_session(format!("op{n}"));
        }
        assert_eq!(auth.session(&first), None, "the oldest session was ended");
        assert!(auth.sessions.lock().len() <= MAX_SESSIONS);
    }
}
