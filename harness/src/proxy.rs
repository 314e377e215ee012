//! A userspace TCP proxy for the network faults a player meets: every chunk delayed by a
//! base latency plus random jitter, in order, each way (what `tc netem` would give,
//! without root), and live connections cut on demand, with a reset or by going silent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

/// Chunks in flight per direction; a slow receiver pushes back on the sender.
const IN_FLIGHT: usize = 1024;
/// How long a silenced connection is held open, reading and writing nothing, before the
/// proxy lets it go: longer than any server notices a dead peer in.
const SILENT_HOLD: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, Default)]
pub struct Delay {
    pub latency: Duration,
    pub jitter: Duration,
}

/// How a connection is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Both ends get a TCP reset at once, as when a NAT or a Wi-Fi access point drops
    /// the flow: the client knows immediately.
    Reset,
    /// Nothing more passes either way and neither end is told, as when the network
    /// vanishes: each end finds out only by its own timeouts.
    Silent,
}

/// A running proxy; dropping it stops accepting (connections already made go on).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
    refusing: Arc<AtomicBool>,
    accept_task: JoinHandle<()>,
}

/// A connection through the proxy that has not been cut.
#[derive(Debug)]
struct Link {
    opened: Instant,
    cut: oneshot::Sender<Cut>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr, delay: Delay) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let links: Arc<Mutex<Vec<Link>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let accept_task = tokio::spawn(accept(
            listener,
            upstream,
            delay,
            Arc::clone(&links),
            Arc::clone(&refusing),
        ));
        Ok(Proxy {
            addr,
            links,
            refusing,
            accept_task,
        })
    }

    /// While on, every new connection is reset at once: the network is still down.
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Relaxed);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now that have not been cut.
    pub fn live(&self) -> usize {
        let mut links = lock(&self.links);
        links.retain(|link| !link.cut.is_closed());
        links.len()
    }

    /// Cuts the oldest connection that has been open at least `min_age`; false if none
    /// has. Each connection is cut at most once.
    pub fn cut_oldest(&self, min_age: Duration, how: Cut) -> bool {
        let mut links = lock(&self.links);
        links.retain(|link| !link.cut.is_closed());
        let now = Instant::now();
        let Some(idx) = links
            .iter()
            .position(|link| now.duration_since(link.opened) >= min_age)
        else {
            return false;
        };
        links.remove(idx).cut.send(how).is_ok()
    }

    /// Cuts every connection open now; returns how many were cut.
    pub fn cut_all(&self, how: Cut) -> usize {
        std::mem::take(&mut *lock(&self.links))
            .into_iter()
            .filter_map(|link| link.cut.send(how).ok())
            .count()
    }
}

/// The list of links; a panic elsewhere cannot leave it half-changed, so a poisoned lock
/// is still good.
fn lock(links: &Mutex<Vec<Link>>) -> MutexGuard<'_, Vec<Link>> {
    links.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    delay: Delay,
    links: Arc<Mutex<Vec<Link>>>,
    refusing: Arc<AtomicBool>,
) {
    let mut seed = 1u64;
    while let Ok((client, _)) = listener.accept().await {
        if refusing.load(Ordering::Relaxed) {
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            continue;
        }
        seed += 1;
        let (cut_tx, cut_rx) = oneshot::channel();
        lock(&links).push(Link {
            opened: Instant::now(),
            cut: cut_tx,
        });
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(upstream).await {
                forward(client, server, delay, seed, cut_rx).await;
            }
        });
    }
}

/// Forwards both ways until both ends are done, or until a cut.
async fn forward(
    client: TcpStream,
    server: TcpStream,
    delay: Delay,
    seed: u64,
    cut: oneshot::Receiver<Cut>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Second handles on both sockets, to reset them after the pipes (which own the
    // halves) are dropped.
    let ends = [&client, &server].map(|stream| socket2::SockRef::from(stream).try_clone().ok());
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut pipes = Box::pin(async {
        tokio::join!(
            pipe(client_read, server_write, delay, seed * 2),
            pipe(server_read, client_write, delay, seed * 2 + 1),
        )
    });
    let how = tokio::select! {
        _ = &mut pipes => return,
        how = cut => match how {
            Ok(how) => how,
            // The proxy is gone; keep forwarding.
            Err(_) => {
                pipes.await;
                return;
            }
        },
    };
    match how {
        Cut::Reset => {
            for end in ends.iter().flatten() {
                let _ = end.set_linger(Some(Duration::ZERO));
            }
        }
        // Holding the pipes without polling them: nothing is read or written.
        Cut::Silent => sleep(SILENT_HOLD).await,
    }
    // The halves close first; the sockets go (with a reset, if set) with the last handle.
    drop(pipes);
    drop(ends);
}

/// Copies one direction, each chunk delivered no earlier than its due time and never
/// before the chunk ahead of it, so the stream stays in order as TCP's would.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Delay, seed: u64) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reader = async move {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut last_due = Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let jitter = delay.jitter.mul_f64(rng.random::<f64>());
            let due = (Instant::now() + delay.latency + jitter).max(last_due);
            last_due = due;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
