//! Prometheus metrics for operators: tick timing, occupancy and WebSocket traffic.
//! Handles are cloned out once at start-up, so hot paths touch only atomics.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// A timing histogram that also keeps the largest value seen, which buckets cannot tell.
#[derive(Clone, Debug)]
pub struct Timing {
    histogram: Histogram,
    max: Gauge<f64, AtomicU64>,
}

impl Timing {
    fn new() -> Timing {
        // Fine at the bottom, where healthy ticks live, with 2 ms (the capacity bar for
        // lateness) an exact bound.
        let buckets = [
            25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 10e-3, 25e-3,
            50e-3, 100e-3, 250e-3, 1.0,
        ];
        Timing {
            histogram: Histogram::new(buckets),
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
    disconnects: Family<ReasonLabel, Counter>,
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
            disconnects: Family::default(),
            tls_handshake_failures: Family::default(),
            store_queue_depth: Gauge::default(),
            store_results_saved: Counter::default(),
            store_results_dropped: Counter::default(),
            store_write_failures: Counter::default(),
            store_spool_depth: Gauge::default(),
            store_spool_bytes: Gauge::default(),
            store_results_spooled: Counter::default(),
            lobby_connections: Gauge::default(),
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
            "disconnects",
            "Game connections closed, by reason",
            m.disconnects.clone(),
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
