//! The network layer: the listener (with TLS when configured) and HTTP routes, the
//! WebSocket handshake, the admission checks (origin, connection caps), each game
//! connection from its first frame to its close, with the wire its frames go out on, and
//! the lobby's feed sockets.

pub(crate) mod api;
pub(crate) mod caps;
pub(crate) mod client_addr;
pub(crate) mod conn;
pub(crate) mod echo;
pub(crate) mod frame;
pub(crate) mod http;
pub(crate) mod identity;
pub mod inbound;
pub(crate) mod listener;
pub(crate) mod lobby;
pub(crate) mod origin;
pub(crate) mod ratelimit;
pub(crate) mod reader;
pub(crate) mod redirect;
pub(crate) mod replay_files;
pub(crate) mod routes;
pub(crate) mod socket;
pub(crate) mod tls;
pub(crate) mod upgrade;
pub(crate) mod web_files;
pub(crate) mod wire;
