//! Why a bot failed, as a stable snake_case cause (`connect_refused`,
//! `closed_1008_too_slow`), so a report counts failures by cause: in an overloaded run
//! thousands of bots fail, and the first few messages say little about the rest.

use std::io::ErrorKind;

use shared::protocol::CloseReason;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;

use crate::native::NetError;

/// What the server last told the bot before its connection failed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LastWord {
    /// The reason in the server's `Disconnect` message, if one came.
    pub server_said: Option<CloseReason>,
    /// The code of the server's close frame, if one came.
    pub close_code: Option<u16>,
}

impl LastWord {
    /// Whether the connection may be taken back into its held seat: it dropped, went
    /// quiet or fell behind, rather than being closed for a cause a retry cannot fix.
    pub(crate) fn is_resumable(&self) -> bool {
        self.server_said
            .or_else(|| self.close_code.and_then(CloseReason::from_close_code))
            .is_none_or(|reason| matches!(reason, CloseReason::Timeout | CloseReason::TooSlow))
    }
}

/// The cause of a failure to join (the server has said nothing yet).
pub(crate) fn join_failure(err: &NetError) -> String {
    cause(err, LastWord::default())
}

/// The cause of a failure to join or of a connection that ended while the bot played.
pub(crate) fn cause(err: &NetError, last_word: LastWord) -> String {
    // What the server said outranks how the socket then ended: after a `Disconnect`
    // the read or write that fails is only the echo of that close.
    if let Some(reason) = last_word.server_said {
        return format!("closed_{}_{}", reason.close_code(), reason.label());
    }
    match err {
        NetError::Refused { reason, .. } => {
            format!("refused_{}_{}", reason.close_code(), reason.label())
        }
        NetError::ClosedBeforeWelcome => "closed_before_welcome".into(),
        NetError::UnexpectedFirstMessage(_) => "unexpected_first_message".into(),
        NetError::Decode(_) => "decode_error".into(),
        NetError::Silent => "server_silent".into(),
        NetError::TimedOut => "connect_timed_out".into(),
        NetError::TooManyRedirects => "too_many_redirects".into(),
        // A close frame alone does not say which reason: 1008 is a flood, a timeout
        // or a slow reader alike.
        NetError::Closed => match last_word.close_code {
            Some(code) => format!("closed_{code}"),
            None => "closed_without_close_frame".into(),
        },
        NetError::WebSocket(ws) => websocket_cause(ws),
    }
}

fn websocket_cause(err: &WsError) -> String {
    match err {
        WsError::Io(io) if io.kind() == ErrorKind::ConnectionRefused => "connect_refused".into(),
        WsError::Io(io) => snake_case(&format!("{:?}", io.kind())),
        WsError::Http(response) => format!("http_{}", response.status().as_u16()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "connection_closed".into(),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "reset_without_close".into()
        }
        WsError::Protocol(_) => "websocket_protocol_error".into(),
        WsError::Capacity(_) => "message_too_big".into(),
        _ => "websocket_error".into(),
    }
}

/// `ConnectionReset` -> `connection_reset`: a variant's name as a cause.
fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for (idx, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if idx > 0 {
                snake.push('_');
            }
            snake.push(ch.to_ascii_lowercase());
        } else if ch.is_ascii_alphanumeric() {
            snake.push(ch);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connection_is_connect_refused() {
        let err = NetError::WebSocket(WsError::Io(std::io::Error::from(
            ErrorKind::ConnectionRefused,
        )));
        assert_eq!(join_failure(&err), "connect_refused");
    }

    #[test]
    fn other_io_errors_are_named_after_their_kind() {
        let err = NetError::WebSocket(WsError::Io(std::io::Error::from(
            ErrorKind::ConnectionReset,
        )));
        assert_eq!(join_failure(&err), "connection_reset");
        let err = NetError::WebSocket(WsError::Io(std::io::Error::from(
            ErrorKind::AddrNotAvailable,
        )));
        assert_eq!(join_failure(&err), "addr_not_available");
    }

    #[test]
    fn server_disconnect_names_code_and_reason() {
        let last_word = LastWord {
            server_said: Some(CloseReason::TooSlow),
            close_code: Some(1008),
        };
        assert_eq!(
            cause(&NetError::Closed, last_word),
            "closed_1008_too_slow",
            "a Disconnect message should outrank the bare close"
        );
    }

    #[test]
    fn bare_close_frame_names_its_code() {
        let ambiguous = LastWord {
            close_code: Some(1008),
            ..LastWord::default()
        };
        assert_eq!(cause(&NetError::Closed, ambiguous), "closed_1008");
        assert_eq!(
            cause(&NetError::Closed, LastWord::default()),
            "closed_without_close_frame"
        );
    }

    #[test]
    fn refusal_at_join_names_code_and_reason() {
        let err = NetError::Refused {
            reason: CloseReason::RoomFull,
            detail: "full".into(),
        };
        assert_eq!(join_failure(&err), "refused_4002_room_full");
        let err = NetError::Refused {
            reason: CloseReason::VersionMismatch { server: 9 },
            detail: "upgrade".into(),
        };
        assert_eq!(
            join_failure(&err),
            "refused_4001_version_mismatch",
            "a reason's fields are not part of its cause"
        );
    }
}
