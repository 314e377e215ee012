//! A userspace TCP proxy that delays every chunk by a base latency plus random jitter,
//! in order, each way: the network conditions `tc netem` would give, without root.

use std::net::SocketAddr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// Chunks in flight per direction; a slow receiver pushes back on the sender.
const IN_FLIGHT: usize = 1024;

#[derive(Clone, Copy, Debug)]
pub struct Delay {
    pub latency: Duration,
    pub jitter: Duration,
}

/// Listens on a free loopback port and forwards every connection to `upstream`.
pub async fn start(upstream: SocketAddr, delay: Delay) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut seed = 1u64;
        while let Ok((client, _)) = listener.accept().await {
            seed += 1;
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, delay, seed * 2),
                        pipe(server_read, client_write, delay, seed * 2 + 1),
                    );
                }
            });
        }
    });
    Ok(addr)
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
