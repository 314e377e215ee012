//! Resume tokens: the proof a reconnecting client shows to take back its held seat.
//! A token names the room, the seat (player id), the identity and a nonce, signed with
//! HMAC-SHA256. The signature stops forgery; the room stops the rest, because it holds
//! each seat's current nonce (so a token works once, and a new one comes with every
//! welcome) and forgets the seat when its grace window ends (so a token expires with it).
//!
//! A token reads `s1.<room>.<player>.<16 hex digits of the profile>.<16 hex digits of the
//! nonce>.<64 hex digits of the MAC>`; room names never hold a dot.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use shared::{PlayerId, ProfileId};

const VERSION: &str = "s1";
/// Longer than any token `SeatTokens::issue` makes (a 24-character room name gives 132).
pub(crate) const MAX_TOKEN_CHARS: usize = 160;

/// What a resume token claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeatClaim {
    pub(crate) room: String,
    pub(crate) player: PlayerId,
    pub(crate) profile: ProfileId,
    /// The seat's nonce when the token was issued; the room accepts only the current one.
    pub(crate) nonce: u64,
}

/// Issues and checks resume tokens with a key of their own.
pub(crate) struct SeatTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for SeatTokens {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeatTokens")
    }
}

impl SeatTokens {
    pub(crate) fn new(key: [u8; 32]) -> SeatTokens {
        SeatTokens { key }
    }

    pub(crate) fn issue(&self, claim: &SeatClaim) -> String {
        let body = format!(
            "{VERSION}.{}.{}.{}.{:016x}",
            claim.room,
            claim.player.0,
            claim.profile.to_hex(),
            claim.nonce
        );
        let tag = hex::encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// The claim inside `token` if this server signed it; `None` for anything else.
    pub(crate) fn read(&self, token: &str) -> Option<SeatClaim> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let (body, tag) = token.rsplit_once('.')?;
        let mut tag_bytes = [0u8; 32];
        hex::decode_to_slice(tag, &mut tag_bytes).ok()?;
        // Compared in constant time, so the MAC cannot be found byte by byte.
        self.mac(body).verify_slice(&tag_bytes).ok()?;
        let mut parts = body.split('.');
        let (Some(VERSION), Some(room), Some(player), Some(profile), Some(nonce), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Some(SeatClaim {
            room: room.to_owned(),
            player: PlayerId(player.parse().ok()?),
            profile: ProfileId::from_hex(profile)?,
            nonce: u64::from_str_radix(nonce, 16).ok()?,
        })
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        // Invariant: HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        mac
    }
}

/// A fresh nonce for a seat's next token.
pub(crate) fn new_nonce() -> u64 {
    let mut bytes = [0u8; 8];
    // Without the OS's randomness a nonce is still unique enough to stop a replay
    // within one seat's life: the clock moves between any two issues.
    if getrandom::fill(&mut bytes).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |since| since.as_nanos() as u64);
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> SeatClaim {
        SeatClaim {
            room: "arena-1".into(),
            player: PlayerId(7),
            profile: ProfileId(0x1234_5678_9abc_def0),
            nonce: 42,
        }
    }

    #[test]
    fn an_issued_token_reads_back_as_its_claim() {
        let tokens = SeatTokens::new([3; 32]);
        let token = tokens.issue(&claim());
        assert_eq!(tokens.read(&token), Some(claim()));
    }

    #[test]
    fn the_longest_room_name_fits_the_limit() {
        let tokens = SeatTokens::new([3; 32]);
        let long = SeatClaim {
            room: "r".repeat(shared::consts::ROOM_NAME_MAX_CHARS),
            player: PlayerId(255),
            ..claim()
        };
        let token = tokens.issue(&long);
        assert!(token.len() <= MAX_TOKEN_CHARS, "{} chars", token.len());
        assert_eq!(tokens.read(&token), Some(long));
    }

    #[test]
    fn a_tampered_token_or_another_key_is_refused() {
        let tokens = SeatTokens::new([3; 32]);
        let token = tokens.issue(&claim());
        let other_seat = token.replacen(".7.", ".8.", 1);
        assert_ne!(other_seat, token);
        assert_eq!(tokens.read(&other_seat), None, "another seat, same MAC");
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(tokens.read(&flipped), None, "a flipped MAC digit");
        assert_eq!(SeatTokens::new([4; 32]).read(&token), None, "another key");
        assert_eq!(tokens.read("s1.garbage"), None);
        assert_eq!(tokens.read(""), None);
    }
}
