//! The Skirmish game server as a library, so tests and tools can run the real thing
//! in-process on `127.0.0.1:0`. Three layers, each a folder: `net` (sockets, HTTP,
//! connections), `rooms` (the directory, the rooms and their threads) and `ops` (flags
//! and metrics); above them `admin`, the operations console on a listener of its own,
//! and `cluster`, which joins this process to others through Redis (`--redis`).
//! `Server` owns everything it starts, and stops it all.

mod admin;
mod agones;
mod cluster;
mod net;
mod ops;
mod rooms;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use shared::Map;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::net::inbound;
pub use crate::net::tls::CertError;
pub use crate::ops::config::{Config, DatabaseUrl, RedisUrl};
pub use crate::ops::metrics::Metrics;
pub use crate::rooms::directory::RoomInfo;

use crate::agones::{Agones, Sdk};
use crate::cluster::Cluster;
use crate::net::caps::ConnCaps;
use crate::net::client_addr::TrustedProxies;
use crate::net::conn::ConnLimits;
use crate::net::identity::Identities;
use crate::net::listener::Serving;
use crate::net::origin::OriginPolicy;
use crate::net::tls::{Certificates, Handshaker, TlsFiles};
use crate::net::web_files::WebFiles;
use crate::rooms::directory::{Directory, LocalDirectory, RoomLimits};
use crate::rooms::listing::{self, Listings};
use crate::rooms::room::RoomSettings;
use crate::rooms::scheduler::{self, Janitor, Scheduler};
use crate::rooms::seat_token::SeatTokens;
use crate::rooms::spectators::SpectatorSettings;
use crate::store::replays::{ReplaySink, ReplayWriter};
use crate::store::{AuditLog, MatchStore, PostgresStore, ResultSink, SqliteStore};

/// How long `Server::shutdown` waits for connections to finish their close handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long `Server::shutdown` waits for the store to write the matches it holds,
/// those the shutdown itself ended among them.
const STORE_FLUSH_BUDGET: Duration = Duration::from_secs(3);

/// What every connection task shares.
#[derive(Debug)]
struct AppState {
    directory: Arc<dyn Directory>,
    metrics: Arc<Metrics>,
    limits: ConnLimits,
    /// Open game WebSockets, server-wide and per IP.
    caps: Arc<ConnCaps>,
    /// Which pages may open the game WebSocket.
    origins: OriginPolicy,
    /// Whose word on a client's address is taken.
    proxies: TrustedProxies,
    /// Serve the compliance echo at `/echo` (off unless `--echo-route`).
    echo_route: bool,
    /// Serve `/metrics` on the public port too (off unless `--public-metrics`).
    public_metrics: bool,
    /// The page and its bundle (or the placeholder), in memory.
    web_files: Arc<WebFiles>,
    /// Cancelled when the server shuts down; connections close with 1001.
    shutdown: CancellationToken,
    /// Every HTTP connection and WebSocket task, and the lobby's listing publisher, so
    /// shutdown can wait for them.
    tasks: TaskTracker,
    /// Issues and checks players' identity tokens.
    identities: Identities,
    /// Checks the tokens that take back a held seat (the rooms issue them).
    seat_tokens: Arc<SeatTokens>,
    /// Numbers each game connection's link to its room.
    next_link: AtomicU64,
    /// Finished matches, stats and ratings.
    store: Arc<dyn MatchStore>,
    /// The newest room listing, for the lobby feed's sockets.
    listings: Listings,
    /// Where the replays are kept (`--data-dir`).
    data_dir: std::path::PathBuf,
    /// This process's place in a cluster (`--redis`); `None` runs it alone.
    cluster: Option<Arc<Cluster>>,
}

impl AppState {
    /// The rooms `/api/rooms` and the lobby list: this process's, or in a cluster every
    /// process's.
    fn rooms_listed(&self) -> Vec<RoomInfo> {
        let local = self.directory.list();
        match &self.cluster {
            Some(cluster) => cluster.list(&local),
            None => local,
        }
    }
}

/// A running server. Dropping it stops the room threads and the accept loops;
/// `shutdown` also lets every connection finish its close handshake first.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    app: Arc<AppState>,
    accept_task: JoinHandle<()>,
    /// The admin listener: `/metrics` and the operations console.
    admin: admin::Admin,
    /// The certificate served, when the port speaks TLS.
    certificates: Option<Arc<Certificates>>,
    /// The plain-HTTP listener that redirects to HTTPS, when there is one.
    redirect: Option<Redirect>,
    scheduler: Scheduler,
    /// The replay files' writer; `None` once `shutdown` stopped it.
    replays: Option<ReplayWriter>,
    /// The Agones SDK client's task, when Agones runs the process.
    agones: Option<Agones>,
}

/// The `--redirect-http` listener's address and its accept loop.
#[derive(Debug)]
struct Redirect {
    addr: SocketAddr,
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
    let origins = OriginPolicy::new(&config.allow_origins)?;
    let map = load_map(config.map.as_deref())?;
    let web_files = Arc::new(web_files(&config)?);
    let metrics = Arc::new(Metrics::new());
    let certificates = load_certificates(&config)?;
    let identities = Identities::load(config.secret_file.as_deref(), &config.data_dir)?;
    // Before anything else is started: an unreachable Redis stops the start here.
    let redis = match &config.redis {
        Some(url) => Some(cluster::connect(url).await?),
        None => None,
    };
    let (store, audit) = open_store(&config, &metrics).await?;
    let seat_tokens = Arc::new(SeatTokens::new(identities.derive_key("seat tokens")));
    let (replays, replay_sink) = ReplayWriter::start(&config.data_dir, &metrics)
        .with_context(|| format!("open the replays folder in {}", config.data_dir.display()))?;
    let settings = Arc::new(room_settings(
        &config,
        map,
        Arc::clone(&store) as Arc<dyn ResultSink>,
        Arc::clone(&seat_tokens),
        replay_sink,
    ));
    let limits = RoomLimits {
        max_rooms: config.max_rooms as usize,
        new_rooms_per_minute: config.new_rooms_per_minute,
    };
    let listener =
        net::listener::bind(config.addr).with_context(|| format!("bind {}", config.addr))?;
    let addr = listener.local_addr().context("read the bound address")?;
    let agones_sdk = config.agones_sdk_http_port.map(Sdk::new);
    let cluster = match redis {
        Some(redis) => {
            let tls = certificates.is_some();
            let public_url = match (&config.public_url, &agones_sdk) {
                (Some(url), _) => url.clone(),
                (None, Some(sdk)) => agones::public_url(sdk, tls).await?,
                (None, None) => {
                    let scheme = if tls { "https" } else { "http" };
                    format!("{scheme}://{addr}")
                }
            };
            Some(Arc::new(Cluster::new(
                redis,
                public_url,
                config.room_capacity,
            )))
        }
        None => None,
    };
    let room_suffix = cluster
        .as_ref()
        .map_or_else(String::new, |cluster| cluster.room_suffix());
    let (spawner, threads) = scheduler::queues(config.room_threads());
    let directory = Arc::new(LocalDirectory::new(
        settings,
        limits,
        Arc::clone(&metrics),
        spawner,
        room_suffix,
    ));
    let scheduler = threads
        .start(
            Arc::clone(&directory) as Arc<dyn Janitor>,
            Arc::clone(&metrics),
            !config.no_realtime_rooms,
        )
        .context("start the room threads")?;
    let (publish_listings, listings) = listing::channel();
    let app = Arc::new(AppState {
        directory,
        metrics,
        limits: conn_limits(&config),
        caps: ConnCaps::new(config.max_connections, config.max_connections_per_ip),
        origins,
        proxies: TrustedProxies::new(config.trusted_proxies.clone()),
        echo_route: config.echo_route,
        public_metrics: config.public_metrics,
        web_files,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        identities,
        seat_tokens,
        next_link: AtomicU64::new(1),
        store,
        listings,
        data_dir: config.data_dir.clone(),
        cluster,
    });
    // Tracked tasks, so shutdown waits for them as for the connections.
    let changes = listing::Changes {
        here: app.directory.changes(),
        elsewhere: app.cluster.as_ref().map(|cluster| cluster.changes()),
    };
    let listed = Arc::clone(&app);
    app.tasks.spawn(listing::publish(
        changes,
        move || listed.rooms_listed(),
        publish_listings,
        app.shutdown.clone(),
    ));
    if let Some(cluster) = &app.cluster {
        tracing::info!(process = cluster.id(), "joined the cluster");
        app.tasks.spawn(cluster::heartbeat(
            Arc::clone(cluster),
            Arc::clone(&app.directory),
            Arc::clone(&app.metrics),
            app.shutdown.clone(),
        ));
    }
    let routes = net::routes::routes(Arc::clone(&app));
    let tls = match &certificates {
        Some(certificates) => Some(Handshaker::new(
            net::tls::server_config(Arc::clone(certificates)).context("set up TLS")?,
            config.tls_handshake_timeout(),
            Arc::clone(&app.metrics),
        )),
        None => None,
    };
    let serving = Serving {
        header_timeout: config.header_timeout(),
        tls,
    };
    let redirect = match config.redirect_http {
        Some(redirect_addr) => Some(start_redirect(redirect_addr, addr.port(), &config, &app)?),
        None => None,
    };
    let accept_task = tokio::spawn(net::listener::accept_loop(
        listener,
        routes,
        serving,
        app.shutdown.clone(),
        app.tasks.clone(),
    ));
    let admin = admin::start(
        &config,
        admin::Parts {
            directory: Arc::clone(&app.directory),
            metrics: Arc::clone(&app.metrics),
            audit,
            limits: app.limits,
            shutdown: app.shutdown.clone(),
            tasks: app.tasks.clone(),
        },
    )
    .await;
    let admin = match admin {
        Ok(admin) => admin,
        Err(err) => {
            // Nothing may be left running: the public listeners and the rooms stop here.
            app.shutdown.cancel();
            accept_task.abort();
            if let Some(redirect) = &redirect {
                redirect.accept_task.abort();
            }
            return Err(err);
        }
    };
    // Last, once the port listens and nothing more can fail: Ready goes out from here.
    let agones = agones_sdk
        .map(|sdk| Agones::start(sdk, Arc::clone(&app.directory), config.agones_health()));
    Ok(Server {
        addr,
        app,
        accept_task,
        admin,
        certificates,
        redirect,
        scheduler,
        replays: Some(replays),
        agones,
    })
}

/// The certificate and key of `--tls-cert` and `--tls-key`, checked; `None` without
/// them. Any file that cannot be used stops the start, named in the error.
fn load_certificates(config: &Config) -> anyhow::Result<Option<Arc<Certificates>>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let files = TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    };
    let (certificates, summary) = Certificates::load(files).context("load the TLS certificate")?;
    summary.log(cert, "serving TLS");
    Ok(Some(Arc::new(certificates)))
}

/// Binds `--redirect-http` and answers there, until shutdown, with redirects to the
/// HTTPS port, under the same header timeout as the game's port.
fn start_redirect(
    redirect_addr: SocketAddr,
    https_port: u16,
    config: &Config,
    app: &AppState,
) -> anyhow::Result<Redirect> {
    let listener = net::listener::bind(redirect_addr)
        .with_context(|| format!("bind {redirect_addr} for --redirect-http"))?;
    let addr = listener
        .local_addr()
        .context("read the redirect's bound address")?;
    let serving = Serving {
        header_timeout: config.header_timeout(),
        tls: None,
    };
    let accept_task = tokio::spawn(net::listener::accept_loop(
        listener,
        net::redirect::routes(https_port),
        serving,
        app.shutdown.clone(),
        app.tasks.clone(),
    ));
    tracing::info!(%addr, "redirecting plain HTTP to HTTPS");
    Ok(Redirect { addr, accept_task })
}

/// The match store the flags name (PostgreSQL with `--database`, else SQLite in the
/// data directory) and the operators' audit log. The audit log is always local: in the
/// SQLite store itself, or, beside PostgreSQL, in a SQLite store of its own in the data
/// directory, since the console's actions (kick, close, drain) act on this process and
/// must be recorded even while the shared database is down.
async fn open_store(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Arc<dyn MatchStore>, Arc<dyn AuditLog>)> {
    let data_dir = config.data_dir.clone();
    let open_local = |data_dir: &std::path::Path, metrics: &Metrics| {
        SqliteStore::open(data_dir, metrics)
            .with_context(|| format!("open the match store in {}", data_dir.display()))
    };
    let Some(url) = config.database.clone() else {
        let store = Arc::new(open_local(&data_dir, metrics)?);
        return Ok((Arc::clone(&store) as Arc<dyn MatchStore>, store));
    };
    // Its own metrics: its (always empty) match queue must not count in the store's.
    let audit = Arc::new(
        open_local(&data_dir, &Metrics::new())
            .context("open the audit log beside the PostgreSQL match store")?,
    );
    let spool_max_bytes = config.spool_max_bytes();
    let ca_file = config.database_ca_file.clone();
    let metrics = Arc::clone(metrics);
    // Opening waits for the database to answer (or not): off the runtime's workers.
    let store = tokio::task::spawn_blocking(move || {
        PostgresStore::open(
            url.as_str(),
            ca_file.as_deref(),
            &data_dir,
            spool_max_bytes,
            &metrics,
        )
    })
    .await
    .context("open the match store")?
    .context("open the match store in PostgreSQL (--database)")?;
    Ok((Arc::new(store), audit))
}

/// The files of the web root, if it holds a page to serve, or else the placeholder.
fn web_files(config: &Config) -> anyhow::Result<WebFiles> {
    match &config.web_root {
        Some(root) if root.join("index.html").is_file() => WebFiles::load(root),
        Some(root) => {
            tracing::warn!(root = %root.display(), "no index.html in the web root; serving the placeholder page");
            Ok(WebFiles::placeholder())
        }
        None => Ok(WebFiles::placeholder()),
    }
}

/// How every room runs, from the flags.
fn room_settings(
    config: &Config,
    map: Map,
    results: Arc<dyn ResultSink>,
    seat_tokens: Arc<SeatTokens>,
    replays: ReplaySink,
) -> RoomSettings {
    RoomSettings {
        tick_hz: config.tick_hz,
        snapshot_hz: config.snapshot_hz,
        input_batch: config.input_batch(),
        capacity: config.room_capacity,
        empty_grace: config.room_grace(),
        map,
        deltas: !config.no_deltas,
        stall_timeout: config.stall_timeout(),
        rules: config.match_rules(),
        results,
        resume_grace: config.resume_grace(),
        max_rewind_ticks: config.max_rewind_ticks(),
        seat_tokens,
        draining: Arc::default(),
        replays,
        spectators: SpectatorSettings {
            delay: config.spectator_delay(),
            max_per_room: config.max_spectators_per_room,
        },
    }
}

/// Every connection's limits, from the flags.
fn conn_limits(config: &Config) -> ConnLimits {
    ConnLimits {
        join_timeout: config.join_timeout(),
        ping_interval: config.ping_interval(),
        idle_timeout: config.idle_timeout(),
        msg_rate: config.msg_rate() as f32,
        msg_burst: config.msg_burst,
        byte_rate: config.byte_rate as f32,
        byte_burst: config.byte_burst,
    }
}

impl Server {
    /// The address of the page: `https://` when the port speaks TLS.
    pub fn http_url(&self) -> String {
        let scheme = if self.certificates.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The game's WebSocket: `wss://` when the port speaks TLS.
    pub fn ws_url(&self) -> String {
        let scheme = if self.certificates.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// Where `--redirect-http` listens, if it was given.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().map(|redirect| redirect.addr)
    }

    /// Reads the certificate and key files again and gives new handshakes the new pair;
    /// connections already open keep theirs. On any error the pair in use stays.
    /// `Ok(false)`: the server does not speak TLS, so there is nothing to reload.
    pub fn reload_certificate(&self) -> Result<bool, CertError> {
        let Some(certificates) = &self.certificates else {
            return Ok(false);
        };
        let summary = certificates.reload()?;
        summary.log(certificates.cert_path(), "reloaded the TLS certificate");
        Ok(true)
    }

    /// The lobby feed's WebSocket: the game socket's address, scheme included, at `/lobby`.
    pub fn lobby_url(&self) -> String {
        let game = self.ws_url();
        let origin = game.strip_suffix("/ws").unwrap_or(&game);
        format!("{origin}/lobby")
    }

    /// Where the admin listener (`/metrics`, the console at `/admin`) listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin.addr)
    }

    /// Resolves once the server was drained (from the console) and its last room has
    /// closed: the binary then shuts down as on SIGTERM.
    pub async fn drained(&self) {
        self.app.directory.drained().cancelled().await;
    }

    /// Every open room, as `GET /api/rooms` lists them.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        self.app.directory.list()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.app.metrics
    }

    /// Stops the rooms, which record the matches being played with the end reason
    /// "shutdown" and tell their players the server is going away (1001) and to join
    /// again (in a cluster, after leaving the directory, so they land elsewhere); stops
    /// accepting; waits (3 s at most) for the connections to close; then waits (3 s at
    /// most) for the store to write what it holds; under Agones, then calls Shutdown
    /// (a few tries, 2 s each at most). A shutdown takes under a second when nothing is
    /// slow.
    pub async fn shutdown(mut self) {
        if let Some(cluster) = &self.app.cluster {
            // Draining first: nobody is seated here any more, and the other processes
            // stop sending players here before the rooms tell theirs to join again.
            self.app.directory.drain();
            cluster.withdraw(&self.app.directory.list()).await;
        }
        self.scheduler.stop();
        self.app.shutdown.cancel();
        let _ = (&mut self.accept_task).await;
        self.admin.stopped().await;
        if let Some(redirect) = &mut self.redirect {
            let _ = (&mut redirect.accept_task).await;
        }
        self.app.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.app.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = self.app.metrics.connections.get(),
                "connections still open after the shutdown grace"
            );
        }
        let store = Arc::clone(&self.app.store);
        let flushed = tokio::task::spawn_blocking(move || store.flush(STORE_FLUSH_BUDGET))
            .await
            .unwrap_or(false);
        if !flushed {
            tracing::warn!("the store had not written every match when the server stopped");
        }
        // After the store: the replays of the matches it just saved are kept by their ids.
        if let Some(mut replays) = self.replays.take() {
            let _ = tokio::task::spawn_blocking(move || replays.stop()).await;
        }
        // Last: Agones deletes the pod once told, and every player was told to go first.
        if let Some(agones) = self.agones.take() {
            agones.finish().await;
        }
    }
}

impl Drop for Server {
    /// Without `shutdown`: the room threads are stopped and joined here (their matches
    /// handed to the store, which writes them if the process lives on), and connections
    /// are told to close (on the runtime, if it still runs).
    fn drop(&mut self) {
        self.scheduler.stop();
        self.app.shutdown.cancel();
        self.accept_task.abort();
        self.admin.abort();
        if let Some(redirect) = &self.redirect {
            redirect.accept_task.abort();
        }
        if let Some(agones) = &self.agones {
            agones.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_leaves_nothing_running() {
        let mut config = Config::for_addr("127.0.0.1:0".parse().expect("an address"));
        config.data_dir = std::env::temp_dir().join(format!("skirmish-lib-{}", std::process::id()));
        let server = start(config).await.expect("the server starts");
        let seat = Arc::clone(&server.app.directory)
            .reserve(Some("lobby"), [127, 0, 0, 1].into())
            .expect("a seat");
        drop(seat);
        let app = Arc::downgrade(&server.app);
        let directory = Arc::downgrade(&server.app.directory);
        server.shutdown().await;
        assert!(
            app.upgrade().is_none(),
            "no task holds the server's state after shutdown"
        );
        assert!(
            directory.upgrade().is_none(),
            "no room thread holds the directory after shutdown"
        );
    }
}
