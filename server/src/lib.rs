//! The Skirmish game server as a library, so tests and tools can run the real thing
//! in-process on `127.0.0.1:0`.

pub mod ack;
pub mod caps;
pub mod config;
pub mod conn;
pub mod echo;
pub mod http;
pub mod inbound;
pub mod lobby;
pub mod metrics;
pub mod net;
pub mod origin;
pub mod outbox;
pub mod ratelimit;
pub mod room;
pub mod room_threads;
pub mod upgrade;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shared::Map;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::caps::ConnCaps;
pub use crate::config::Config;
use crate::conn::ConnLimits;
use crate::lobby::Lobby;
use crate::metrics::Metrics;
use crate::origin::OriginPolicy;
use crate::room::RoomSettings;
use crate::room_threads::RoomThreads;

/// What every connection task shares.
#[derive(Debug)]
pub struct AppState {
    pub lobby: Arc<Lobby>,
    pub metrics: Arc<Metrics>,
    pub limits: ConnLimits,
    /// Open game WebSockets, server-wide and per IP.
    pub caps: Arc<ConnCaps>,
    /// Which pages may open the game WebSocket.
    pub origins: OriginPolicy,
    /// Serve the compliance echo at `/echo` (off unless `--echo-route`).
    pub echo_route: bool,
    pub web_root: Option<PathBuf>,
    /// Cancelled when the server shuts down; connections close with 1001.
    pub shutdown: CancellationToken,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<AppState>,
    accept_task: JoinHandle<()>,
}

/// The arena every room plays on unless `--map` names another.
const DEFAULT_MAP: &str = include_str!("../../assets/maps/arena.json");

/// Loads and checks a map file, or the built-in arena.
pub fn load_map(path: Option<&std::path::Path>) -> anyhow::Result<Map> {
    let (text, source) = match path {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("read map {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEFAULT_MAP.to_owned(), "built-in arena".to_owned()),
    };
    let map: Map = serde_json::from_str(&text).with_context(|| format!("parse map {source}"))?;
    map.validate()
        .with_context(|| format!("check map {source}"))?;
    Ok(map)
}

/// Binds and starts serving. Returns once the socket is listening.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    config.validate()?;
    let map = load_map(config.map.as_deref())?;
    let web_root = config.web_root.clone().filter(|root| {
        let usable = root.join("index.html").is_file();
        if !usable {
            tracing::warn!(root = %root.display(), "no index.html in the web root; serving the placeholder page");
        }
        usable
    });
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let room_threads =
        RoomThreads::start(config.room_threads(), !config.no_realtime_rooms, &shutdown)
            .context("start the room threads")?;
    let settings = RoomSettings {
        tick_hz: config.tick_hz,
        snapshot_hz: config.snapshot_hz,
        capacity: config.room_capacity,
        empty_grace: config.room_grace(),
        map,
        deltas: !config.no_deltas,
        stall_timeout: config.stall_timeout(),
    };
    let app = Arc::new(AppState {
        lobby: Lobby::new(settings, Arc::clone(&metrics), room_threads),
        metrics,
        limits: ConnLimits {
            join_timeout: config.join_timeout(),
            ping_interval: config.ping_interval(),
            idle_timeout: config.idle_timeout(),
            msg_rate: config.msg_rate() as f32,
            msg_burst: config.msg_burst,
            byte_rate: config.byte_rate as f32,
            byte_burst: config.byte_burst,
        },
        caps: ConnCaps::new(config.max_connections, config.max_connections_per_ip),
        origins: OriginPolicy::new(&config.allow_origins),
        echo_route: config.echo_route,
        web_root,
        shutdown,
    });
    let listener = net::bind(config.addr).with_context(|| format!("bind {}", config.addr))?;
    let addr = listener.local_addr().context("read the bound address")?;
    let routes = http::routes(Arc::clone(&app));
    let accept_task = tokio::spawn(net::accept_loop(
        listener,
        routes,
        config.header_timeout(),
        app.shutdown.clone(),
    ));
    Ok(Server {
        addr,
        app,
        accept_task,
    })
}

impl Server {
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops accepting, tells every client the server is going away, and waits (a few
    /// seconds at most) for the connections to close. Rooms need no signal: a tick has
    /// no await inside, so when their threads' runtimes stop them it is always between
    /// two ticks.
    pub async fn shutdown(self) {
        self.app.shutdown.cancel();
        let _ = self.accept_task.await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while self.app.metrics.connections.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
