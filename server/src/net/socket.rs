//! A connection's WebSocket: tungstenite's protocol state (`WebSocketContext`) over the
//! connection's `WireIo`, handed the caller's task context at each read. A read never
//! waits: it takes what the socket holds and says `Pending` when that is not yet a
//! whole message. A task reading with its own context is woken when data arrives; a
//! room looking at its ticks reads with a context that wakes nothing, and moves on.
//!
//! tokio-tungstenite's stream does the same with a waker proxy it registers on every
//! read. A room reads hundreds of sockets a tick, from a thread outside the runtime,
//! so the socket is driven here directly. Writes (tungstenite's pongs and close frames)
//! go through the wire, in order with the room's frames, and never wait.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::task::noop_waker_ref;
use tokio::io::{AsyncRead, ReadBuf};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Message};

use crate::net::wire::WireIo;

#[derive(Debug)]
pub(crate) struct Socket {
    protocol: WebSocketContext,
    io: WireIo,
    /// The connection closed or failed: no read will give anything more.
    ended: bool,
}

impl Socket {
    /// The server's side of a WebSocket on `io`, after the handshake; `read_ahead` holds
    /// what the client sent after its handshake that was already read.
    pub(crate) fn new(io: WireIo, read_ahead: &[u8], config: WebSocketConfig) -> Socket {
        Socket {
            protocol: WebSocketContext::from_partially_read(
                read_ahead.to_vec(),
                Role::Server,
                Some(config),
            ),
            io,
            ended: false,
        }
    }

    pub(crate) fn io_mut(&mut self) -> &mut WireIo {
        &mut self.io
    }

    /// The next message, or `Pending` (woken through `cx` if the `WireIo` waits for
    /// data). `None` once the connection has closed: the close handshake is done or the
    /// peer is gone. An error ends the socket too.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut stream = Polled {
            io: &mut self.io,
            cx,
        };
        match self.protocol.read(&mut stream) {
            Ok(msg) => Poll::Ready(Some(Ok(msg))),
            Err(Error::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(err) => {
                self.ended = true;
                Poll::Ready(match err {
                    Error::ConnectionClosed | Error::AlreadyClosed => None,
                    err => Some(Err(err)),
                })
            }
        }
    }

    pub(crate) async fn next(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Sends `msg` (through the wire, which never waits).
    pub(crate) fn send(&mut self, msg: Message) -> Result<(), Error> {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut stream = Polled {
            io: &mut self.io,
            cx: &mut cx,
        };
        self.protocol.write(&mut stream, msg)?;
        self.protocol.flush(&mut stream)
    }
}

/// The `WireIo` as tungstenite reads and writes it, with the context a read registers
/// with if it must wait: `WouldBlock` then means "pending".
struct Polled<'a, 'b> {
    io: &'a mut WireIo,
    cx: &'a mut Context<'b>,
}

impl Read for Polled<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(err)) => Err(err),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Polled<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
