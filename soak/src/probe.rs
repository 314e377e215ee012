//! Reading the server from outside: its Prometheus text at `/metrics`, and its resident
//! memory and open descriptors from `/proc`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One scrape: every sample line, by its full name with labels.
#[derive(Debug, Default)]
pub struct Scrape {
    samples: BTreeMap<String, f64>,
}

pub async fn scrape(addr: SocketAddr) -> anyhow::Result<Scrape> {
    let mut stream = TcpStream::connect(addr)
        .await
        .context("connect for /metrics")?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let samples = body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect();
    Ok(Scrape { samples })
}

impl Scrape {
    pub fn get(&self, name: &str) -> f64 {
        self.samples.get(name).copied().unwrap_or(0.0)
    }

    /// `skirmish_disconnects_total` by its `reason` label.
    pub fn disconnects(&self) -> BTreeMap<String, u64> {
        self.samples
            .iter()
            .filter_map(|(name, value)| {
                let reason = name
                    .strip_prefix("skirmish_disconnects_total{reason=\"")?
                    .strip_suffix("\"}")?;
                Some((reason.to_owned(), *value as u64))
            })
            .collect()
    }

    /// A histogram's cumulative buckets, `(upper bound, count)` in order.
    fn buckets(&self, histogram: &str) -> Vec<(f64, f64)> {
        let prefix = format!("{histogram}_bucket{{le=\"");
        let mut buckets: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter_map(|(name, count)| {
                let bound = name.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().ok()?
                };
                Some((bound, *count))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }

    /// p50, p99 (interpolated within the bucket, as Prometheus does) and the maximum
    /// (from the `_max` gauge beside the histogram), in milliseconds.
    pub fn quantiles_ms(&self, histogram: &str) -> Quantiles {
        let buckets = self.buckets(histogram);
        let total = buckets.last().map_or(0.0, |b| b.1);
        let quantile = |q: f64| -> f64 {
            if total == 0.0 {
                return 0.0;
            }
            let rank = q * total;
            let mut lower = (0.0, 0.0);
            for &(bound, count) in &buckets {
                if count >= rank {
                    if bound.is_infinite() {
                        return lower.0 * 1e3;
                    }
                    let in_bucket = (count - lower.1).max(1.0);
                    return (lower.0 + (bound - lower.0) * (rank - lower.1) / in_bucket) * 1e3;
                }
                lower = (bound, count);
            }
            lower.0 * 1e3
        };
        let max_name = histogram.replacen("_seconds", "_max_seconds", 1);
        Quantiles {
            samples: total as u64,
            p50_ms: round(quantile(0.50)),
            p99_ms: round(quantile(0.99)),
            max_ms: round(self.get(&max_name) * 1e3),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Quantiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}
