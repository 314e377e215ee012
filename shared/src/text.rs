//! Rules for the text players type: nicknames, room names and chat lines.
//! The server enforces them; clients use them to warn before sending.

use crate::consts::{CHAT_MAX_CHARS, NAME_MAX_CHARS, NAME_MIN_CHARS, ROOM_NAME_MAX_CHARS};

/// Why a nickname or room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must be {min} to {max} characters")]
    Length { min: usize, max: usize },
    #[error("may only use letters, digits, spaces and _ - .")]
    Characters,
}

/// Trims a nickname and checks its length and characters. Returns the name to use.
pub fn validate_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    let n_chars = name.chars().count();
    if !(NAME_MIN_CHARS..=NAME_MAX_CHARS).contains(&n_chars) {
        return Err(NameError::Length {
            min: NAME_MIN_CHARS,
            max: NAME_MAX_CHARS,
        });
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.');
    if !name.chars().all(allowed) {
        return Err(NameError::Characters);
    }
    // Runs of spaces would let two names look alike.
    Ok(name
        .split(' ')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" "))
}

/// Checks a room name: ASCII letters, digits, `_` and `-`, so it is safe in a URL.
pub fn validate_room_name(raw: &str) -> Result<String, NameError> {
    let n_chars = raw.chars().count();
    if !(1..=ROOM_NAME_MAX_CHARS).contains(&n_chars) {
        return Err(NameError::Length {
            min: 1,
            max: ROOM_NAME_MAX_CHARS,
        });
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(NameError::Characters);
    }
    Ok(raw.to_owned())
}

/// Makes `name` unique among names for which `is_taken` is true, by appending the
/// smallest number from 2 up that frees it, shortening the base to stay within the limit.
pub fn dedup_name(name: &str, is_taken: impl Fn(&str) -> bool) -> String {
    if !is_taken(name) {
        return name.to_owned();
    }
    (2u32..)
        .map(|n| {
            let suffix = n.to_string();
            let keep = NAME_MAX_CHARS - suffix.len();
            let base: String = name.chars().take(keep).collect();
            format!("{}{}", base.trim_end(), suffix)
        })
        .find(|candidate| !is_taken(candidate))
        .unwrap_or_else(|| name.to_owned())
}

/// Bidirectional-text controls, which can make a line display as something it is not.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Strips control and bidi characters, trims, and cuts to the length limit.
/// Returns `None` when nothing printable is left.
pub fn sanitize_chat(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .take(CHAT_MAX_CHARS * 2)
        .collect();
    let line: String = cleaned.trim().chars().take(CHAT_MAX_CHARS).collect();
    let line = line.trim_end().to_owned();
    (!line.is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(validate_name("  ann  ").as_deref(), Ok("ann"));
        assert_eq!(validate_name("a   b").as_deref(), Ok("a b"));
        assert_eq!(validate_name("Zoë_1").as_deref(), Ok("Zoë_1"));
        assert!(matches!(
            validate_name("   "),
            Err(NameError::Length { .. })
        ));
        assert!(matches!(
            validate_name(&"x".repeat(17)),
            Err(NameError::Length { .. })
        ));
        assert_eq!(validate_name("a<b>"), Err(NameError::Characters));
        assert_eq!(validate_name("evil\u{202E}"), Err(NameError::Characters));
    }

    #[test]
    fn duplicate_names_get_the_smallest_free_suffix() {
        let taken = ["bob", "bob2"];
        assert_eq!(dedup_name("bob", |n| taken.contains(&n)), "bob3");
        assert_eq!(dedup_name("ann", |n| taken.contains(&n)), "ann");
        let long = "x".repeat(NAME_MAX_CHARS);
        let deduped = dedup_name(&long, |n| n == long);
        assert_eq!(deduped.chars().count(), NAME_MAX_CHARS);
        assert!(deduped.ends_with('2'));
    }

    #[test]
    fn room_names_are_url_safe() {
        assert_eq!(validate_room_name("room-1").as_deref(), Ok("room-1"));
        assert_eq!(validate_room_name("a b"), Err(NameError::Characters));
        assert!(validate_room_name("").is_err());
    }

    #[test]
    fn chat_is_stripped_of_controls_and_bidi_and_cut_to_length() {
        assert_eq!(
            sanitize_chat(" hi\u{0007}\n there ").as_deref(),
            Some("hi there")
        );
        assert_eq!(sanitize_chat("\u{202E}gnp.exe").as_deref(), Some("gnp.exe"));
        assert_eq!(sanitize_chat(" \u{200F} "), None);
        let long = "y".repeat(CHAT_MAX_CHARS + 50);
        assert_eq!(
            sanitize_chat(&long).map(|s| s.chars().count()),
            Some(CHAT_MAX_CHARS)
        );
    }
}
