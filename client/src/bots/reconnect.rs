//! Getting a bot back into the game after its connection was lost: its held seat first,
//! as the browser does, and a fresh join if the server refuses the resume.

use std::time::Duration;

use shared::protocol::CloseReason;
use tokio::time::{Instant, sleep, timeout};

use crate::native::{Connection, Hello, NetError, Trust};

/// How long one connection attempt may take, handshake and welcome included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause after a failed attempt, before the next; it grows with each failure.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long a bot keeps trying before it gives up on the game.
const PATIENCE: Duration = Duration::from_secs(15);

/// How a bot got back in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum How {
    /// Into its held seat, the same player with the same score.
    Resumed,
    /// As a new player: the resume was refused, or there was nothing to resume.
    Joined,
}

/// One connection attempt, bounded in time.
pub(crate) async fn attempt(
    url: &str,
    hello: Hello,
    trust: &Trust,
) -> Result<Connection, NetError> {
    timeout(
        ATTEMPT_TIMEOUT,
        Connection::join_trusting(url, hello, trust),
    )
    .await
    .unwrap_or(Err(NetError::TimedOut))
}

/// Tries `seat` (a resuming hello) until it works or the server refuses it, then
/// `fresh`; attempts that fail to connect are retried until `PATIENCE` or `deadline`.
pub(crate) async fn back_into_seat(
    url: &str,
    trust: &Trust,
    seat: Option<Hello>,
    fresh: Hello,
    deadline: Instant,
) -> Result<(Connection, How), NetError> {
    let give_up = deadline.min(Instant::now() + PATIENCE);
    let mut seat = seat;
    let mut failures = 0u32;
    loop {
        let (hello, how) = match &seat {
            Some(seat) => (seat.clone(), How::Resumed),
            None => (fresh.clone(), How::Joined),
        };
        match attempt(url, hello, trust).await {
            Ok(conn) => return Ok((conn, how)),
            Err(NetError::Refused {
                reason: CloseReason::ResumeRefused,
                ..
            }) if seat.is_some() => seat = None,
            Err(err @ NetError::Refused { .. }) => return Err(err),
            Err(err) => {
                failures += 1;
                let pause = RETRY_PAUSE * failures.min(10);
                if Instant::now() + pause >= give_up {
                    return Err(err);
                }
                sleep(pause).await;
            }
        }
    }
}
