//! Misbehaving clients for the soak: each joins like a player, then fails in one way a
//! real client does, and says whether the server dealt with it as it should.

use std::time::Duration;

use client::native::{Connection, Hello};
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use shared::protocol::ClientMsg;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use tokio_tungstenite::MaybeTlsStream;

/// Long enough for any close the server sends promptly.
const PATIENCE: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Stops reading and writing: a frozen tab or a half-open TCP connection.
    Stall,
    /// Sends bytes that are not a message.
    Garbage,
    /// Sends messages as fast as it can.
    Flood,
    /// Dies halfway through a frame, with a reset.
    ResetMidFrame,
    /// Dies halfway through a frame, with an orderly FIN.
    FinMidFrame,
}

impl Fault {
    /// Its name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Stall => "stall",
            Fault::Garbage => "garbage",
            Fault::Flood => "flood",
            Fault::ResetMidFrame => "reset_mid_frame",
            Fault::FinMidFrame => "fin_mid_frame",
        }
    }
}

pub const ALL: [Fault; 5] = [
    Fault::Stall,
    Fault::Garbage,
    Fault::Flood,
    Fault::ResetMidFrame,
    Fault::FinMidFrame,
];

/// What happened to one faulty client.
#[derive(Debug)]
pub struct Outcome {
    pub fault: Fault,
    /// The server handled it as it should (the right close code, or the socket freed).
    pub as_expected: bool,
    pub detail: String,
}

/// Runs one faulty client against `url`. `idle_timeout` is the server's.
pub async fn run(
    fault: Fault,
    url: &str,
    name: String,
    seed: u64,
    idle_timeout: Duration,
) -> Outcome {
    let outcome = |as_expected: bool, detail: String| Outcome {
        fault,
        as_expected,
        detail,
    };
    let mut conn = match Connection::join(url, Hello::new(name)).await {
        Ok(conn) => conn,
        Err(err) => return outcome(false, format!("could not join: {err}")),
    };
    match fault {
        Fault::Stall => {
            // Neither read nor write: no input, and no pong for the server's pings.
            tokio::time::sleep(idle_timeout + Duration::from_secs(2)).await;
            let ended = timeout(PATIENCE, async {
                while conn.socket_mut().next().await.is_some() {}
            })
            .await;
            outcome(ended.is_ok(), format!("freed: {}", ended.is_ok()))
        }
        Fault::Garbage => {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let len = if rng.random_bool(0.3) {
                4096
            } else {
                rng.random_range(1..64)
            };
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            // An unknown message tag, so the bytes can never be a valid message by luck.
            bytes[0] = 0xF0 | rng.random_range(0..16);
            let _ = conn.send_raw(bytes).await;
            let code = close_code(&mut conn).await;
            outcome(
                matches!(code, Some(1007 | 1009)),
                format!("close code {code:?}"),
            )
        }
        Fault::Flood => {
            for nonce in 0..100_000 {
                if conn.send(&ClientMsg::Ping { nonce }).await.is_err() {
                    break;
                }
            }
            let code = close_code(&mut conn).await;
            outcome(code == Some(1008), format!("close code {code:?}"))
        }
        Fault::ResetMidFrame | Fault::FinMidFrame => {
            let _ = timeout(Duration::from_secs(1), async {
                while conn.recv().await.is_ok() {}
            })
            .await;
            let _ = conn.socket_mut().flush().await;
            let MaybeTlsStream::Plain(tcp) = conn.socket_mut().get_mut() else {
                return outcome(false, "not a plain TCP stream".into());
            };
            // A masked binary frame announcing 100 bytes, then 4 of them.
            let half_frame = [0x82, 0x80 | 100, 1, 2, 3, 4, 0xAA, 0xBB, 0xCC, 0xDD];
            let sent = tcp.write_all(&half_frame).await.is_ok();
            if fault == Fault::ResetMidFrame {
                let _ = socket2::SockRef::from(&*tcp).set_linger(Some(Duration::ZERO));
            } else {
                let _ = tcp.shutdown().await;
            }
            drop(conn);
            // The server's side is checked at the end: connections and fds at baseline.
            outcome(sent, "sent half a frame and died".into())
        }
    }
}

/// Reads until the server closes; its close code, if it sent a close frame.
async fn close_code(conn: &mut Connection) -> Option<u16> {
    let _ = timeout(PATIENCE, async {
        loop {
            match conn.recv().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    conn.close.as_ref().map(|(code, _)| *code)
}
