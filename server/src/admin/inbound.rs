//! The one pure entry for what operators send: the login form, the actions' bodies, the
//! room and player in a path, the headers that carry credentials, and the console
//! socket's messages. Each is validated here before anything acts on it; bad input is a
//! 400 (or a closed console socket), never a panic.

use serde::Deserialize;
use shared::PlayerId;
use shared::text::{sanitize_chat, validate_name, validate_room_name};

use crate::admin::auth::COOKIE;

/// The largest body or message the console reads; anything larger is refused whole.
pub(crate) const MAX_BODY_BYTES: usize = 2 * 1024;
/// The longest kick reason kept, in characters, so the close frame (123 bytes at most)
/// still holds "kicked by an operator: " and the reason.
const MAX_REASON_CHARS: usize = 80;

/// Input the console refuses, with what to tell its sender.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Invalid(pub(crate) String);

fn invalid(what: impl Into<String>) -> Invalid {
    Invalid(what.into())
}

/// What the login form sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Login {
    pub(crate) token: String,
    /// The operator's name for the audit log.
    pub(crate) who: String,
}

/// Reads the login form (`application/x-www-form-urlencoded`: `token`, and `name`,
/// which defaults to `operator`).
pub(crate) fn read_login(form: &[u8]) -> Result<Login, Invalid> {
    if form.len() > MAX_BODY_BYTES {
        return Err(invalid("the form is too large"));
    }
    let (mut token, mut name) = (None, None);
    for (key, value) in form_urlencoded::parse(form) {
        match key.as_ref() {
            "token" => token = Some(value.into_owned()),
            "name" => name = Some(value.into_owned()),
            _ => {}
        }
    }
    let token = token
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| invalid("the token is missing"))?;
    let who = match name.as_deref().map(str::trim) {
        None | Some("") => "operator".to_owned(),
        Some(name) => validate_name(name).map_err(|err| invalid(format!("the name {err}")))?,
    };
    Ok(Login { token, who })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KickBody {
    reason: Option<String>,
}

/// Reads a kick's body: nothing, or `{"reason": "..."}`. The reason is sanitised like a
/// chat line and shortened; an empty one is none.
pub(crate) fn read_kick(body: &[u8]) -> Result<Option<String>, Invalid> {
    let kick: KickBody = read_json_or_default(body)?;
    Ok(kick
        .reason
        .as_deref()
        .and_then(sanitize_chat)
        .map(|reason| reason.chars().take(MAX_REASON_CHARS).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastBody {
    text: String,
}

/// Reads a broadcast's body, `{"text": "..."}`, sanitised like a chat line.
pub(crate) fn read_broadcast(body: &[u8]) -> Result<String, Invalid> {
    let broadcast: BroadcastBody = read_json(body)?;
    sanitize_chat(&broadcast.text).ok_or_else(|| invalid("the message is empty"))
}

fn read_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Invalid> {
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid("the body is too large"));
    }
    serde_json::from_slice(body).map_err(|err| invalid(format!("the body is not valid: {err}")))
}

fn read_json_or_default<'a, T: Deserialize<'a> + Default>(body: &'a [u8]) -> Result<T, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    read_json(body)
}

/// A room name from a path.
pub(crate) fn read_room(raw: &str) -> Result<String, Invalid> {
    validate_room_name(raw).map_err(|err| invalid(format!("the room name {err}")))
}

/// A player id from a path: 1 to 255.
pub(crate) fn read_player(raw: &str) -> Result<PlayerId, Invalid> {
    match raw.parse::<u8>() {
        Ok(id) if id > 0 => Ok(PlayerId(id)),
        _ => Err(invalid("a player id is a number from 1 to 255")),
    }
}

/// The credentials a request carries, unchecked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// From `Authorization: Bearer TOKEN`.
    pub(crate) bearer: Option<String>,
    /// The session id from the console's cookie.
    pub(crate) session: Option<String>,
}

pub(crate) fn read_credentials(authorization: Option<&str>, cookie: Option<&str>) -> Credentials {
    let bearer = authorization.and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
    });
    let session = cookie.and_then(|value| {
        value.split(';').find_map(|pair| {
            let (name, id) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| id.trim().to_owned())
        })
    });
    Credentials { bearer, session }
}

/// What a console page sends on its socket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConsoleMsg {
    /// Show this room's players in the inspector from the next sample on (`None`: none).
    Inspect(Option<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectMsg {
    inspect: Option<String>,
}

pub(crate) fn read_console_msg(text: &str) -> Result<ConsoleMsg, Invalid> {
    let msg: InspectMsg = read_json(text.as_bytes())?;
    let room = msg.inspect.as_deref().map(read_room).transpose()?;
    Ok(ConsoleMsg::Inspect(room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_needs_a_token_and_takes_a_valid_name() {
        assert_eq!(
            read_login(b"token=abc%20def&name=ann"),
            Ok(Login {
                token: "abc def".into(),
                who: "ann".into()
            })
        );
        assert_eq!(
            read_login(b"token=abc").map(|login| login.who),
            Ok("operator".into())
        );
        assert!(read_login(b"name=ann").is_err(), "no token");
        assert!(read_login(b"token=&name=ann").is_err(), "an empty token");
        assert!(
            read_login(b"token=abc&name=%3Cscript%3E").is_err(),
            "a bad name"
        );
        assert!(
            read_login(&vec![b'a'; MAX_BODY_BYTES + 1]).is_err(),
            "too large"
        );
    }

    #[test]
    fn kick_reasons_are_optional_sanitised_and_short() {
        assert_eq!(read_kick(b""), Ok(None));
        assert_eq!(read_kick(b"{}"), Ok(None));
        assert_eq!(
            read_kick(br#"{"reason":"  spam\u0007 "}"#),
            Ok(Some("spam".into()))
        );
        let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(500));
        assert_eq!(
            read_kick(long.as_bytes()).map(|reason| reason.map(|r| r.chars().count())),
            Ok(Some(MAX_REASON_CHARS))
        );
        assert!(
            read_kick(b"{\"why\":1}").is_err(),
            "unknown fields are refused"
        );
        assert!(read_kick(b"not json").is_err());
    }

    #[test]
    fn broadcasts_need_printable_text() {
        assert_eq!(
            read_broadcast(br#"{"text":"restart at noon"}"#),
            Ok("restart at noon".into())
        );
        assert!(read_broadcast(br#"{"text":"  "}"#).is_err());
        assert!(read_broadcast(b"{}").is_err());
    }

    #[test]
    fn paths_name_valid_rooms_and_players() {
        assert_eq!(read_room("alpha-1"), Ok("alpha-1".into()));
        assert!(read_room("../etc").is_err());
        assert!(read_room("").is_err());
        assert_eq!(read_player("7"), Ok(PlayerId(7)));
        for bad in ["0", "256", "-1", "x", ""] {
            assert!(read_player(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_come_from_the_bearer_header_and_the_cookie() {
        let creds = read_credentials(
            Some("Bearer  tok en "),
            Some("a=b; skirmish_admin=s1d; c=d"),
        );
        assert_eq!(creds.bearer.as_deref(), Some("tok en"));
        assert_eq!(creds.session.as_deref(), Some("s1d"));
        assert_eq!(
            read_credentials(Some("Basic x"), None),
            Credentials::default()
        );
        assert_eq!(
            read_credentials(None, Some("other=1")),
            Credentials::default()
        );
    }

    #[test]
    fn console_messages_choose_a_room_to_inspect() {
        assert_eq!(
            read_console_msg(r#"{"inspect":"alpha"}"#),
            Ok(ConsoleMsg::Inspect(Some("alpha".into())))
        );
        assert_eq!(
            read_console_msg(r#"{"inspect":null}"#),
            Ok(ConsoleMsg::Inspect(None))
        );
        assert!(read_console_msg(r#"{"inspect":"a b"}"#).is_err());
        assert!(read_console_msg("[]").is_err());
    }
}
