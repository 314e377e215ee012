//! Prometheus metrics for operators: tick timing, occupancy and WebSocket traffic.
//! Handles are cloned out once at start-up, so hot paths touch only atomics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use shared::protocol::CloseReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreadLabel {
    thread: String,
}

/// Upper bounds of the timing buckets, in seconds: fine at the bottom, where healthy
/// ticks live, with 2 ms (the capacity bar for lateness) an exact bound.
const TIMING_BUCKETS: [f64; 16] = [
    25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 10e-3, 25e-3, 50e-3,
    100e-3, 250e-3, 1.0,
];

/// A timing histogram of plain atomic counters: observing is two relaxed adds and no
/// lock, so a room thread pays next to nothing, and the console can read the counts
/// (prometheus-client's histogram keeps them to itself).
#[derive(Clone, Debug, Default)]
pub struct Buckets(Arc<BucketsInner>);

#[derive(Debug, Default)]
struct BucketsInner {
    /// One count per bound of `TIMING_BUCKETS`, then the count above the last.
    counts: [AtomicU64; TIMING_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Buckets {
    pub fn observe(&self, seconds: f64) {
        let bucket = TIMING_BUCKETS.partition_point(|&bound| bound < seconds);
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_ns
            .fetch_add((seconds.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }

    /// What has been observed so far.
    pub fn counts(&self) -> BucketCounts {
        BucketCounts {
            counts: std::array::from_fn(|idx| self.0.counts[idx].load(Ordering::Relaxed)),
        }
    }
}

impl TypedMetric for Buckets {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Buckets {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.counts();
        let buckets: Vec<(f64, u64)> = TIMING_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(counts.counts)
            .collect();
        let sum = self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.total(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The counts of a `Buckets` at one moment; two of them give a window's quantiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketCounts {
    counts: [u64; TIMING_BUCKETS.len() + 1],
}

impl BucketCounts {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was observed after `earlier`.
    pub fn since(&self, earlier: &BucketCounts) -> BucketCounts {
        BucketCounts {
            counts: std::array::from_fn(|idx| self.counts[idx].saturating_sub(earlier.counts[idx])),
        }
    }

    /// The `q` quantile in seconds, as Prometheus's `histogram_quantile` (and the
    /// harness's parser) computes it: observations spread evenly within their bucket,
    /// and a rank above the last bound given as that bound. `None` if nothing was
    /// observed.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 || q.is_nan() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let (mut lower_bound, mut below) = (0.0, 0u64);
        for (idx, &count) in self.counts.iter().enumerate() {
            let cumulative = below + count;
            if cumulative as f64 >= rank && cumulative > 0 {
                let Some(&upper_bound) = TIMING_BUCKETS.get(idx) else {
                    return Some(lower_bound);
                };
                if count == 0 {
                    return Some(lower_bound);
                }
                let fraction = (rank - below as f64) / count as f64;
                return Some(lower_bound + (upper_bound - lower_bound) * fraction);
            }
            if let Some(&bound) = TIMING_BUCKETS.get(idx) {
                lower_bound = bound;
            }
            below = cumulative;
        }
        Some(lower_bound)
    }
}

/// One room thread's tick timing, as its thread observes it.
#[derive(Clone, Debug)]
pub struct ThreadTiming {
    /// The thread's name, `rooms-N`.
    pub thread: String,
    pub duration: Buckets,
    pub lateness: Buckets,
}

/// A timing histogram that also keeps the largest value seen, which buckets cannot tell.
#[derive(Clone, Debug)]
pub struct Timing {
    histogram: Histogram,
    max: Gauge<f64, AtomicU64>,
}

impl Timing {
    fn new() -> Timing {
        Timing {
            histogram: Histogram::new(TIMING_BUCKETS),
            max: Gauge::default(),
        }
    }

    pub fn observe(&self, seconds: f64) {
        self.histogram.observe(seconds);
        // Rooms observe concurrently: raise the maximum with a compare-and-swap loop.
        let _ = self
            .max
            .inner()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                (seconds > f64::from_bits(bits)).then_some(seconds.to_bits())
            });
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Seconds one room tick took: inputs, step, encode and hand-off.
    pub tick_duration: Timing,
    /// Seconds a tick started after its scheduled time.
    pub tick_lateness: Timing,
    pub rooms: Gauge,
    pub players: Gauge,
    pub connections: Gauge,
    pub ws_sent_bytes: Counter,
    pub ws_sent_messages: Counter,
    pub ws_received_bytes: Counter,
    pub ws_received_messages: Counter,
    /// Seconds spent quantizing, diffing and encoding snapshots, summed over rooms.
    pub snapshot_encode_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Seconds spent writing encoded snapshots into client sockets.
    pub snapshot_write_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Snapshots handed to clients.
    pub snapshot_recipients: Counter,
    /// Snapshot bodies encoded (one per distinct baseline per snapshot tick).
    pub snapshot_bodies: Counter,
    /// Rooms whose tick panicked; each was closed and its players let go.
    pub room_failures: Counter,
    /// Players who took their held seat back on a new connection.
    pub resumes: Counter,
    /// Resumes refused: a bad, used or outlived token.
    pub resumes_refused: Counter,
    /// Held seats whose grace window ended before their player came back.
    pub seats_given_up: Counter,
    /// Shots whose claimed view was too far from the shooter's round trip and
    /// interpolation delay to believe, and was clamped.
    pub rewind_claims_clamped: Counter,
    /// Seconds the operations console spent on its own work: sampling, serializing and
    /// pushing samples (waits not included), so its cost can be read against the
    /// process's CPU.
    pub console_work_seconds: Counter<f64, AtomicU64>,
    disconnects: Family<ReasonLabel, Counter>,
    /// Tick timing per room thread, by thread name.
    room_thread_duration: Family<ThreadLabel, Buckets>,
    room_thread_lateness: Family<ThreadLabel, Buckets>,
    /// Every room thread's timing, in thread order, for the console.
    room_threads: Mutex<Vec<ThreadTiming>>,
    /// TLS handshakes that did not complete: `refused` (not TLS, or TLS the server
    /// will not speak) or `timeout`.
    tls_handshake_failures: Family<ReasonLabel, Counter>,
    /// Finished matches accepted by the store and not yet written (or given up on).
    pub store_queue_depth: Gauge,
    /// Finished matches durably written.
    pub store_results_saved: Counter,
    /// Finished matches lost: the queue was full, the database refused one, or the
    /// server stopped while the disk was failing.
    pub store_results_dropped: Counter,
    /// Replay frames lost because the replay writer's queue was full; the recording
    /// goes on from a keyframe.
    pub replay_frames_dropped: Counter,
    /// Replay files kept, one per saved match.
    pub replays_saved: Counter,
    /// Replay files lost to a disk error.
    pub replay_write_failures: Counter,
    /// Failed tries to write a match (disk full, I/O error, a lock held elsewhere);
    /// each is retried.
    pub store_write_failures: Counter,
    /// Finished matches waiting in the spool for the shared database (PostgreSQL only).
    pub store_spool_depth: Gauge,
    /// Bytes the spool file holds on disk (PostgreSQL only).
    pub store_spool_bytes: Gauge,
    /// Finished matches that went to the spool because the shared database could not
    /// take them, or older ones were still waiting there (PostgreSQL only).
    pub store_results_spooled: Counter,
    /// Open lobby feed WebSockets; they take connection slots as game sockets do.
    pub lobby_connections: Gauge,
    /// Spectators watching a room now; they take connection slots, but no seats.
    pub spectators: Gauge,
    /// 1 while the cluster's Redis answers the heartbeat, 0 while it does not (cluster
    /// mode only; always 0 without `--redis`).
    pub cluster_reachable: Gauge,
    /// Joins and resumes sent on to the process that owns their room (cluster mode).
    pub cluster_redirects: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        use prometheus_client::registry::Unit;
        let mut registry = Registry::with_prefix("skirmish");
        let tick_duration = Timing::new();
        let tick_lateness = Timing::new();
        let metrics = Metrics {
            registry: Registry::default(),
            tick_duration: tick_duration.clone(),
            tick_lateness: tick_lateness.clone(),
            rooms: Gauge::default(),
            players: Gauge::default(),
            connections: Gauge::default(),
            ws_sent_bytes: Counter::default(),
            ws_sent_messages: Counter::default(),
            ws_received_bytes: Counter::default(),
            ws_received_messages: Counter::default(),
            snapshot_encode_seconds: Counter::default(),
            snapshot_write_seconds: Counter::default(),
            snapshot_recipients: Counter::default(),
            snapshot_bodies: Counter::default(),
            room_failures: Counter::default(),
            resumes: Counter::default(),
            resumes_refused: Counter::default(),
            seats_given_up: Counter::default(),
            rewind_claims_clamped: Counter::default(),
            console_work_seconds: Counter::default(),
            disconnects: Family::default(),
            room_thread_duration: Family::default(),
            room_thread_lateness: Family::default(),
            room_threads: Mutex::new(Vec::new()),
            tls_handshake_failures: Family::default(),
            store_queue_depth: Gauge::default(),
            store_results_saved: Counter::default(),
            store_results_dropped: Counter::default(),
            replay_frames_dropped: Counter::default(),
            replays_saved: Counter::default(),
            replay_write_failures: Counter::default(),
            store_write_failures: Counter::default(),
            store_spool_depth: Gauge::default(),
            store_spool_bytes: Gauge::default(),
            store_results_spooled: Counter::default(),
            lobby_connections: Gauge::default(),
            spectators: Gauge::default(),
            cluster_reachable: Gauge::default(),
            cluster_redirects: Counter::default(),
        };
        let m = &metrics;
        registry.register_with_unit(
            "tick_duration",
            "Time one room tick took: inputs, step, encode, hand-off",
            Unit::Seconds,
            tick_duration.histogram,
        );
        registry.register_with_unit(
            "tick_duration_max",
            "Longest room tick since the server started",
            Unit::Seconds,
            tick_duration.max,
        );
        registry.register_with_unit(
            "tick_lateness",
            "How late a room tick started against its schedule",
            Unit::Seconds,
            tick_lateness.histogram,
        );
        registry.register_with_unit(
            "tick_lateness_max",
            "Latest start of a room tick since the server started",
            Unit::Seconds,
            tick_lateness.max,
        );
        registry.register("rooms", "Open rooms", m.rooms.clone());
        registry.register("players", "Players seated in rooms", m.players.clone());
        registry.register(
            "connections",
            "Open game WebSocket connections",
            m.connections.clone(),
        );
        registry.register(
            "ws_sent_bytes",
            "WebSocket payload bytes sent",
            m.ws_sent_bytes.clone(),
        );
        registry.register(
            "ws_sent_messages",
            "WebSocket messages sent",
            m.ws_sent_messages.clone(),
        );
        registry.register(
            "ws_received_bytes",
            "WebSocket payload bytes received",
            m.ws_received_bytes.clone(),
        );
        registry.register(
            "ws_received_messages",
            "WebSocket messages received",
            m.ws_received_messages.clone(),
        );
        registry.register_with_unit(
            "snapshot_encode",
            "Time spent quantizing, diffing and encoding snapshots",
            Unit::Seconds,
            m.snapshot_encode_seconds.clone(),
        );
        registry.register_with_unit(
            "snapshot_write",
            "Time spent writing encoded snapshots into client sockets",
            Unit::Seconds,
            m.snapshot_write_seconds.clone(),
        );
        registry.register(
            "snapshot_recipients",
            "Snapshots handed to clients",
            m.snapshot_recipients.clone(),
        );
        registry.register(
            "snapshot_bodies",
            "Snapshot bodies encoded, one per distinct baseline per snapshot",
            m.snapshot_bodies.clone(),
        );
        registry.register(
            "room_failures",
            "Rooms whose tick failed; each was closed and its players let go",
            m.room_failures.clone(),
        );
        registry.register(
            "resumes",
            "Players who took their held seat back on a new connection",
            m.resumes.clone(),
        );
        registry.register(
            "resumes_refused",
            "Resumes refused for a bad, used or outlived token",
            m.resumes_refused.clone(),
        );
        registry.register(
            "seats_given_up",
            "Held seats whose grace window ended before their player came back",
            m.seats_given_up.clone(),
        );
        registry.register(
            "rewind_claims_clamped",
            "Shots whose claimed view strayed too far from the round trip and interpolation delay, clamped",
            m.rewind_claims_clamped.clone(),
        );
        registry.register_with_unit(
            "console_work",
            "Time the operations console spent sampling, serializing and pushing",
            Unit::Seconds,
            m.console_work_seconds.clone(),
        );
        registry.register(
            "store_queue_depth",
            "Finished matches waiting to be written",
            m.store_queue_depth.clone(),
        );
        registry.register(
            "store_results_saved",
            "Finished matches durably written",
            m.store_results_saved.clone(),
        );
        registry.register(
            "store_results_dropped",
            "Finished matches lost: queue full, refused by the database, or the disk failing at shutdown",
            m.store_results_dropped.clone(),
        );
        registry.register(
            "replay_frames_dropped",
            "Replay frames lost to a full writer queue; the recording goes on from a keyframe",
            m.replay_frames_dropped.clone(),
        );
        registry.register(
            "replays_saved",
            "Replay files kept, one per saved match",
            m.replays_saved.clone(),
        );
        registry.register(
            "replay_write_failures",
            "Replay files lost to a disk error",
            m.replay_write_failures.clone(),
        );
        registry.register(
            "store_write_failures",
            "Failed tries to write a finished match; each is retried",
            m.store_write_failures.clone(),
        );
        registry.register(
            "store_spool_depth",
            "Finished matches waiting in the local spool for the shared database",
            m.store_spool_depth.clone(),
        );
        registry.register_with_unit(
            "store_spool",
            "Size of the local spool file of finished matches",
            Unit::Bytes,
            m.store_spool_bytes.clone(),
        );
        registry.register(
            "store_results_spooled",
            "Finished matches that went to the local spool instead of straight to the shared database",
            m.store_results_spooled.clone(),
        );
        registry.register(
            "lobby_connections",
            "Open lobby feed WebSocket connections",
            m.lobby_connections.clone(),
        );
        registry.register(
            "spectators",
            "Spectators watching a room (game connections without a seat)",
            m.spectators.clone(),
        );
        registry.register(
            "cluster_reachable",
            "1 while the cluster's Redis answers this process's heartbeat",
            m.cluster_reachable.clone(),
        );
        registry.register(
            "cluster_redirects",
            "Joins and resumes sent on to the process that owns their room",
            m.cluster_redirects.clone(),
        );
        registry.register(
            "disconnects",
            "Game connections closed, by reason",
            m.disconnects.clone(),
        );
        registry.register_with_unit(
            "room_thread_tick_duration",
            "Time one room tick took, by room thread",
            Unit::Seconds,
            m.room_thread_duration.clone(),
        );
        registry.register_with_unit(
            "room_thread_tick_lateness",
            "How late a room tick started against its schedule, by room thread",
            Unit::Seconds,
            m.room_thread_lateness.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that did not complete, by reason",
            m.tls_handshake_failures.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The timing of room thread `index`, made on first call; each thread takes its
    /// own once and observes into it without a lock.
    pub(crate) fn room_thread(&self, index: usize) -> ThreadTiming {
        let mut threads = self.room_threads.lock();
        if let Some(timing) = threads.get(index) {
            return timing.clone();
        }
        let thread = format!("rooms-{index}");
        let label = ThreadLabel {
            thread: thread.clone(),
        };
        let timing = ThreadTiming {
            thread,
            duration: self.room_thread_duration.get_or_create_owned(&label),
            lateness: self.room_thread_lateness.get_or_create_owned(&label),
        };
        threads.push(timing.clone());
        timing
    }

    /// Every room thread's timing, in thread order.
    pub(crate) fn room_thread_timings(&self) -> Vec<ThreadTiming> {
        self.room_threads.lock().clone()
    }

    /// Closed game connections so far, by reason label, leaving out reasons never seen.
    pub(crate) fn disconnect_counts(&self) -> Vec<(&'static str, u64)> {
        std::iter::once("client_closed")
            .chain(CloseReason::ALL.into_iter().map(CloseReason::label))
            .filter_map(|reason| {
                let count = self.disconnects.get(&ReasonLabel { reason })?.get();
                Some((reason, count))
            })
            .collect()
    }

    /// Counts a closed game connection under a stable snake_case reason.
    pub(crate) fn count_disconnect(&self, reason: &'static str) {
        self.disconnects
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub(crate) fn count_tls_failure(&self, reason: &'static str) {
        self.tls_handshake_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// TLS handshakes that failed for `reason` so far.
    pub fn tls_failures(&self, reason: &'static str) -> u64 {
        self.tls_handshake_failures
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// The OpenMetrics text exposition, which Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantiles_interpolate_within_the_bucket() {
        let buckets = Buckets::default();
        // Two in (0.5, 1] ms, two in (1, 1.5] ms.
        for seconds in [0.6e-3, 0.9e-3, 1.2e-3, 1.4e-3] {
            buckets.observe(seconds);
        }
        let counts = buckets.counts();
        assert_eq!(counts.total(), 4);
        let p50 = counts.quantile(0.5).expect("observations were made");
        assert!(
            (p50 - 1e-3).abs() < 1e-9,
            "p50 is the top of (0.5, 1] ms: {p50}"
        );
        let p100 = counts.quantile(1.0).expect("observations were made");
        assert!(
            (p100 - 1.5e-3).abs() < 1e-9,
            "p100 is the top of (1, 1.5] ms: {p100}"
        );
        assert_eq!(
            counts.since(&counts).quantile(0.5),
            None,
            "an empty window has none"
        );
        buckets.observe(5.0);
        assert_eq!(
            buckets.counts().since(&counts).quantile(0.99),
            Some(1.0),
            "past the last bound reads as the last bound"
        );
    }

    #[test]
    fn room_thread_timings_are_exported_per_thread() {
        let metrics = Metrics::new();
        metrics.room_thread(0).duration.observe(1e-3);
        metrics.room_thread(1).lateness.observe(2e-3);
        let text = metrics.render();
        assert!(
            text.contains("skirmish_room_thread_tick_duration_seconds_count{thread=\"rooms-0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("skirmish_room_thread_tick_lateness_seconds_bucket{le=\"0.002\",thread=\"rooms-1\"} 1"),
            "{text}"
        );
        assert_eq!(metrics.room_thread_timings().len(), 2);
    }
}
