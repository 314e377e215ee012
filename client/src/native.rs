//! A native client connection over a real WebSocket (`ws://`, or `wss://` trusting the
//! public certificate authorities and any the caller adds): the handshake, then typed
//! sends and receives. The bots and the server's tests talk to the server through it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use futures_util::{FutureExt, SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use shared::codec::{DecodeError, decode_server, encode_client, is_snapshot_frame};
use shared::consts::{MAX_SERVER_MSG_BYTES, PROTOCOL_VERSION};
use shared::protocol::{ClientMsg, CloseReason, Resume, ServerMsg, Welcome};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection could not be made or ended.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// The server said why it refused or dropped us.
    #[error("refused ({reason:?}): {detail}")]
    Refused { reason: CloseReason, detail: String },
    #[error("the server closed the connection before welcoming us")]
    ClosedBeforeWelcome,
    #[error("the server closed the connection")]
    Closed,
    /// Nothing came from the server for longer than a live connection allows.
    #[error("the server went quiet")]
    Silent,
    /// A connection attempt took longer than a reachable server needs.
    #[error("the connection attempt timed out")]
    TimedOut,
    #[error("expected a welcome, got {0}")]
    UnexpectedFirstMessage(String),
    /// The servers sent the hello on more often than a cluster does.
    #[error("redirected too many times")]
    TooManyRedirects,
}

/// Why a certificate authority could not be trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file is missing or unreadable.
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not PEM, or holds no certificate.
    #[error("no PEM certificate in {}", .0.display())]
    NoCertificate(PathBuf),
    /// A certificate in it is not one an authority can be.
    #[error("{}: {source}", path.display())]
    BadCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
}

/// The certificate authorities a `wss://` connection trusts: the public ones (Mozilla's
/// list, as the `webpki-roots` crate carries it), and any added with `with_ca_file`.
#[derive(Clone, Debug)]
pub struct Trust {
    config: Arc<rustls::ClientConfig>,
}

impl Trust {
    /// The public authorities alone, as a browser would trust them. Built once.
    pub fn public() -> Trust {
        static PUBLIC: OnceLock<Trust> = OnceLock::new();
        PUBLIC
            .get_or_init(|| Trust::with_roots(public_roots()))
            .clone()
    }

    /// The public authorities and those in the PEM file `path` (a local or private CA).
    pub fn with_ca_file(path: &Path) -> Result<Trust, TrustError> {
        let pem = std::fs::read(path).map_err(|source| TrustError::Read {
            path: path.to_owned(),
            source,
        })?;
        let authorities: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|_| TrustError::NoCertificate(path.to_owned()))?;
        if authorities.is_empty() {
            return Err(TrustError::NoCertificate(path.to_owned()));
        }
        let mut roots = public_roots();
        for authority in authorities {
            roots
                .add(authority)
                .map_err(|source| TrustError::BadCertificate {
                    path: path.to_owned(),
                    source,
                })?;
        }
        Ok(Trust::with_roots(roots))
    }

    fn with_roots(roots: rustls::RootCertStore) -> Trust {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The ring provider supports every safe default version: this cannot fail.
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Trust {
            config: Arc::new(config),
        }
    }

    /// The TLS config, for clients that open TLS connections of their own.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }
}

impl Default for Trust {
    fn default() -> Trust {
        Trust::public()
    }
}

fn public_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// What the client says in its hello.
#[derive(Clone, Debug)]
pub struct Hello {
    pub name: String,
    pub room: Option<String>,
    pub protocol: u16,
    /// An identity token from an earlier welcome.
    pub token: Option<String>,
    /// Takes back the seat a lost connection left held, instead of joining afresh.
    pub resume: Option<Resume>,
    /// The seat another process of a cluster reserved (from `ServerMsg::Redirect`).
    pub reservation: Option<String>,
}

impl Hello {
    pub fn new(name: impl Into<String>) -> Hello {
        Hello {
            name: name.into(),
            room: None,
            protocol: PROTOCOL_VERSION,
            token: None,
            resume: None,
            reservation: None,
        }
    }

    pub fn in_room(mut self, room: impl Into<String>) -> Hello {
        self.room = Some(room.into());
        self
    }

    /// Presents the identity an earlier welcome gave (`Welcome::token`).
    pub fn with_token(mut self, token: impl Into<String>) -> Hello {
        self.token = Some(token.into());
        self
    }

    /// Asks for the seat a welcome's `resume_token` names, holding snapshots up to
    /// `newest_tick`.
    pub fn resuming(
        mut self,
        token: impl Into<String>,
        newest_tick: Option<shared::Tick>,
    ) -> Hello {
        self.resume = Some(Resume {
            token: token.into(),
            newest_tick,
        });
        self
    }
}

/// Counters of what crossed the socket, in WebSocket payload bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    pub down_bytes: u64,
    pub down_messages: u64,
    pub up_bytes: u64,
    pub up_messages: u64,
}

#[derive(Debug)]
pub struct Connection {
    socket: Socket,
    /// The game socket this connection ended up on, after any redirects: where a
    /// resume goes first.
    pub url: String,
    pub welcome: Welcome,
    pub traffic: Traffic,
    /// Payload bytes of the last message received.
    pub last_message_len: usize,
    /// Snapshots skipped because a newer one had already arrived behind them.
    pub skipped_snapshots: u64,
    /// Frames read from the socket but not yet returned, oldest first.
    ready: VecDeque<Bytes>,
    /// The close frame the server sent, once it has.
    pub close: Option<(u16, String)>,
}

/// Bytes read from the socket at a time: many snapshots.
const READ_BUFFER: usize = 4 * 1024;

/// Opens the WebSocket with an `Origin` of the server itself, as a browser on the
/// game's page would; a `wss://` URL is verified against `trust`.
pub async fn open_socket(url: &str, trust: &Trust) -> Result<Socket, NetError> {
    let mut request = url.into_client_request()?;
    let page_scheme = if request.uri().scheme_str() == Some("wss") {
        "https"
    } else {
        "http"
    };
    let origin = request
        .uri()
        .authority()
        .map(|authority| format!("{page_scheme}://{authority}"))
        .and_then(|origin| HeaderValue::from_str(&origin).ok());
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin);
    }
    // tungstenite's default read buffer is 128 KiB, zero-filled up to its length before
    // every read: for a 60-byte snapshot that memset was most of a bot's CPU. Messages
    // longer than the buffer still arrive whole; the buffer grows for them.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_SERVER_MSG_BYTES));
    // Nagle would hold a ping behind the input frame sent just before it.
    let (socket, _response) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        Some(Connector::Rustls(trust.client_config())),
    )
    .await?;
    Ok(socket)
}

impl Connection {
    /// Connects, says hello and waits for the welcome; `wss://` trusts the public
    /// authorities only.
    pub async fn join(url: &str, hello: Hello) -> Result<Connection, NetError> {
        Connection::join_trusting(url, hello, &Trust::public()).await
    }

    /// As `join`, verifying a `wss://` server against `trust`. A server of a cluster
    /// may answer that the room lives on another process: the hello goes there, with
    /// the seat reserved for it, as the browser's does.
    pub async fn join_trusting(
        url: &str,
        hello: Hello,
        trust: &Trust,
    ) -> Result<Connection, NetError> {
        let mut url = url.to_owned();
        let mut hello = hello;
        for _ in 0..MAX_REDIRECTS {
            match Connection::join_once(&url, hello.clone(), trust).await? {
                Answer::Welcomed(connection) => return Ok(*connection),
                Answer::Redirected {
                    url: next,
                    reservation,
                } => {
                    url = next;
                    hello.reservation = reservation;
                }
            }
        }
        Err(NetError::TooManyRedirects)
    }

    /// One hello to one server: its welcome, or where it sends us.
    async fn join_once(url: &str, hello: Hello, trust: &Trust) -> Result<Answer, NetError> {
        let mut socket = open_socket(url, trust).await?;
        let msg = ClientMsg::Hello {
            protocol: hello.protocol,
            name: hello.name,
            room: hello.room,
            token: hello.token,
            resume: hello.resume,
            reservation: hello.reservation,
            spectate: false,
        };
        let bytes = encode_client(&msg);
        let up_bytes = bytes.len() as u64;
        socket.send(Message::binary(bytes)).await?;
        let mut connection = Connection {
            socket,
            url: url.to_owned(),
            welcome: placeholder_welcome(),
            traffic: Traffic {
                up_bytes,
                up_messages: 1,
                ..Traffic::default()
            },
            last_message_len: 0,
            skipped_snapshots: 0,
            ready: VecDeque::new(),
            close: None,
        };
        match connection.recv().await? {
            Some(ServerMsg::Welcome(welcome)) => {
                connection.welcome = *welcome;
                Ok(Answer::Welcomed(Box::new(connection)))
            }
            Some(ServerMsg::Redirect { url, reservation }) => {
                // The server closes after it; our side of the close is not awaited.
                Ok(Answer::Redirected { url, reservation })
            }
            Some(ServerMsg::Disconnect { reason, detail }) => {
                Err(NetError::Refused { reason, detail })
            }
            Some(other) => Err(NetError::UnexpectedFirstMessage(format!("{other:?}"))),
            None => Err(NetError::ClosedBeforeWelcome),
        }
    }

    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), NetError> {
        self.send_raw(encode_client(msg)).await
    }

    /// Sends bytes as one binary frame, whatever they are.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), NetError> {
        self.traffic.up_bytes += bytes.len() as u64;
        self.traffic.up_messages += 1;
        self.socket.send(Message::binary(bytes)).await?;
        Ok(())
    }

    /// The next message from the server. `Ok(None)` once the connection has closed;
    /// the close frame, if any, is then in `self.close`.
    ///
    /// Latest wins: of the snapshots that have already arrived, only the newest is
    /// decoded, so a client that fell behind (a stall, a hidden tab) jumps to the
    /// present instead of replaying the past. Other messages all arrive, in order.
    pub async fn recv(&mut self) -> Result<Option<ServerMsg>, NetError> {
        if self.ready.is_empty() {
            let Some(frame) = self.next_frame().await? else {
                return Ok(None);
            };
            self.ready.push_back(frame);
            // An error while draining ends the stream; the next call reports it closed.
            while self.ready.len() < MAX_READY
                && let Some(Ok(Some(frame))) = self.next_frame().now_or_never()
            {
                self.ready.push_back(frame);
            }
        }
        while let Some(frame) = self.ready.pop_front() {
            let superseded =
                is_snapshot_frame(&frame) && self.ready.iter().any(|f| is_snapshot_frame(f));
            if superseded {
                self.skipped_snapshots += 1;
                continue;
            }
            self.last_message_len = frame.len();
            return Ok(Some(decode_server(&frame)?));
        }
        Ok(None)
    }

    /// The next binary frame off the socket, counting traffic; `None` at the end.
    async fn next_frame(&mut self) -> Result<Option<Bytes>, NetError> {
        while let Some(frame) = self.socket.next().await {
            match frame? {
                Message::Binary(bytes) => {
                    self.traffic.down_bytes += bytes.len() as u64;
                    self.traffic.down_messages += 1;
                    return Ok(Some(bytes));
                }
                Message::Close(frame) => {
                    self.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Leaves for good: closes normally (which gives the seat up at once) and waits
    /// for the server's close frame.
    pub async fn close(mut self) -> Result<(), NetError> {
        self.socket
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "leaving".into(),
            }))
            .await?;
        while self.socket.next().await.is_some() {}
        Ok(())
    }

    /// The raw socket, for tests that must misbehave below the protocol.
    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.socket
    }
}

/// Redirects one join follows at most: a cluster sends a player on once, so more means
/// processes that disagree about where a room lives.
const MAX_REDIRECTS: usize = 4;

/// What a server answered a hello with.
enum Answer {
    Welcomed(Box<Connection>),
    Redirected {
        url: String,
        reservation: Option<String>,
    },
}

/// Frames drained from the socket in one go at most; bounds a client's own memory.
const MAX_READY: usize = 4096;

/// Stands in until the real welcome is read; `join` never returns a connection with it.
fn placeholder_welcome() -> Welcome {
    Welcome {
        player_id: shared::PlayerId(0),
        name: String::new(),
        room: String::new(),
        tick_hz: 0,
        snapshot_hz: 0,
        input_batch: 1,
        tick: shared::Tick(0),
        map: shared::Map::test_arena(),
        roster: Vec::new(),
        profile: shared::ProfileId(0),
        token: String::new(),
        resume_token: String::new(),
        resumed: false,
    }
}
