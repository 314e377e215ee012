//! The operations console and its own listener, apart from the public port: `/metrics`,
//! the console's page at `/admin`, its JSON API under `/admin/api/`, and its WebSocket,
//! over which a sample of the server is pushed every second. It sits above the other
//! layers and nothing below depends on it. It reaches rooms only through their command
//! queues, never waiting on one, and writes its audit log through the store's writer.

mod api;
mod auth;
mod inbound;
mod page;
mod sampler;
mod socket;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::Context;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::auth::Auth;
use crate::admin::sampler::{Published, ServerFigures};
use crate::net::conn::ConnLimits;
use crate::net::ratelimit::TokenBucket;
use crate::ops::config::Config;
use crate::ops::metrics::Metrics;
use crate::rooms::directory::Directory;
use crate::rooms::results::unix_ms_now;
use crate::store::{AuditEntry, AuditLog};

/// Console pages open at once; past it the socket is refused (503).
pub(crate) const MAX_CONSOLES: usize = 4;
/// Audit entries the console shows.
const RECENT_AUDIT: usize = 50;
/// Wrong tokens tolerated in a burst at the login form, and how fast that refills.
const LOGIN_BURST: u32 = 10;
const LOGINS_PER_SECOND: f32 = 0.2;

/// The admin listener, owned by `Server`.
#[derive(Debug)]
pub(crate) struct Admin {
    pub(crate) addr: SocketAddr,
    accept_task: JoinHandle<()>,
    sampler_task: Option<JoinHandle<()>>,
}

/// What the admin listener's routes share.
#[derive(Debug)]
pub(crate) struct AdminState {
    metrics: Arc<Metrics>,
    /// `None` when no token file was given: the console and its API are off.
    console: Option<Arc<Console>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// The console, when it is on.
#[derive(Debug)]
pub(crate) struct Console {
    auth: Auth,
    directory: Arc<dyn Directory>,
    metrics: Arc<Metrics>,
    audit: Arc<dyn AuditLog>,
    /// The game socket's limits, which the console's socket keeps too.
    limits: ConnLimits,
    /// The latest sample, for the console sockets to push.
    samples: watch::Receiver<Arc<Published>>,
    /// The last ten minutes of samples, oldest first.
    history: Mutex<VecDeque<ServerFigures>>,
    /// Console sockets open now.
    open: AtomicUsize,
    /// The room each open console socket inspects, by socket.
    watched: Mutex<HashMap<u64, String>>,
    next_socket: AtomicU64,
    /// The newest audit entries, newest last, and a number that changes with them.
    recent_audit: Mutex<(u64, VecDeque<AuditEntry>)>,
    logins: Mutex<TokenBucket>,
}

/// What the admin listener needs from the rest of the server.
pub(crate) struct Parts {
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) audit: Arc<dyn AuditLog>,
    pub(crate) limits: ConnLimits,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

/// Binds the admin listener and starts serving, and, with a token file, the sampler.
pub(crate) async fn start(config: &Config, parts: Parts) -> anyhow::Result<Admin> {
    let console = match &config.admin_token_file {
        Some(path) => Some(Console::open(path, &parts).await?),
        None => {
            tracing::warn!(
                "the operations console is off: start the server with --admin-token-file FILE to turn it on"
            );
            None
        }
    };
    let sampler_task = console.as_ref().map(|(console, publish)| {
        tokio::spawn(sampler::sample_loop(
            Arc::clone(console),
            publish.clone(),
            parts.shutdown.clone(),
        ))
    });
    let state = Arc::new(AdminState {
        metrics: Arc::clone(&parts.metrics),
        console: console.map(|(console, _)| console),
        shutdown: parts.shutdown.clone(),
        tasks: parts.tasks.clone(),
    });
    let listener = crate::net::listener::bind(config.admin_addr)
        .with_context(|| format!("bind the admin listener on {}", config.admin_addr))?;
    let addr = listener
        .local_addr()
        .context("read the admin listener's address")?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the admin listener is not on loopback: /metrics answers anyone who reaches it");
    }
    let routes = api::routes(state);
    // Plain HTTP always, even when the public port speaks TLS: the admin listener is
    // for loopback or a private network.
    let serving = crate::net::listener::Serving {
        header_timeout: config.header_timeout(),
        tls: None,
    };
    let accept_task = tokio::spawn(crate::net::listener::accept_loop(
        listener,
        routes,
        serving,
        parts.shutdown,
        parts.tasks,
    ));
    Ok(Admin {
        addr,
        accept_task,
        sampler_task,
    })
}

impl Admin {
    /// Waits for the accept loop and the sampler, which end with the shutdown signal.
    pub(crate) async fn stopped(&mut self) {
        let _ = (&mut self.accept_task).await;
        if let Some(sampler) = &mut self.sampler_task {
            let _ = sampler.await;
        }
    }

    pub(crate) fn abort(&self) {
        self.accept_task.abort();
        if let Some(sampler) = &self.sampler_task {
            sampler.abort();
        }
    }
}

impl Console {
    async fn open(
        token_file: &std::path::Path,
        parts: &Parts,
    ) -> anyhow::Result<(Arc<Console>, watch::Sender<Arc<Published>>)> {
        let auth = Auth::load(token_file)?;
        let audit = Arc::clone(&parts.audit);
        let recent = tokio::task::spawn_blocking(move || audit.recent_audit(RECENT_AUDIT as u32))
            .await
            .context("read the audit log")?
            .context("read the audit log")?;
        let (publish, samples) = watch::channel(Arc::new(Published::default()));
        let console = Console {
            auth,
            directory: Arc::clone(&parts.directory),
            metrics: Arc::clone(&parts.metrics),
            audit: Arc::clone(&parts.audit),
            limits: parts.limits,
            samples,
            history: Mutex::new(VecDeque::with_capacity(sampler::HISTORY)),
            open: AtomicUsize::new(0),
            watched: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(1),
            recent_audit: Mutex::new((
                1,
                recent
                    .into_iter()
                    .rev()
                    .map(|record| record.entry)
                    .collect(),
            )),
            logins: Mutex::new(TokenBucket::new(LOGIN_BURST, LOGINS_PER_SECOND)),
        };
        tracing::info!("the operations console is on");
        Ok((Arc::new(console), publish))
    }

    /// Console sockets open now.
    fn n_open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Every room some open console inspects.
    fn watched_rooms(&self) -> BTreeSet<String> {
        self.watched.lock().values().cloned().collect()
    }

    /// Writes an action to the audit log (through the store's writer, never waiting for
    /// the disk) and to the list the consoles show.
    fn record(&self, who: &str, action: &str, target: &str, detail: &str) {
        let entry = AuditEntry {
            at_ms: unix_ms_now(),
            who: who.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.to_owned(),
        };
        tracing::info!(who, action, target, detail, "operator action");
        let (saved, _saved) = oneshot::channel();
        self.audit.record(entry.clone(), saved);
        let mut recent = self.recent_audit.lock();
        recent.0 += 1;
        recent.1.push_back(entry);
        if recent.1.len() > RECENT_AUDIT {
            recent.1.pop_front();
        }
    }

    /// The audit list's version, and the list as JSON, newest first.
    fn recent_audit_json(&self) -> (u64, String) {
        let recent = self.recent_audit.lock();
        let newest_first: Vec<&AuditEntry> = recent.1.iter().rev().collect();
        (
            recent.0,
            serde_json::to_string(&newest_first).unwrap_or_else(|_| "[]".into()),
        )
    }
}
