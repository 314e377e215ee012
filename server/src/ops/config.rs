//! Command-line flags of the server, which are also its whole configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use shared::consts::{
    DEFAULT_MATCH_RESULTS_SECS, DEFAULT_MATCH_SCORE_LIMIT, DEFAULT_MATCH_TIME_LIMIT_SECS,
    DEFAULT_MAX_REWIND_MS, DEFAULT_RESUME_GRACE_SECS, DEFAULT_ROOM_CAPACITY, DEFAULT_SNAPSHOT_HZ,
    DEFAULT_TICK_HZ, MAX_INPUT_BATCH, MAX_RATE_HZ, MAX_REWIND_MS_LIMIT, MAX_ROOM_CAPACITY,
    MIN_RATE_HZ,
};

/// The longest spectator delay: each watched room holds its snapshots for that long.
const MAX_SPECTATOR_DELAY_SECS: f64 = 60.0;

/// Skirmish game server: serves the page, the client bundle and the game WebSocket.
#[derive(Clone, Debug, Parser)]
#[command(name = "server", version)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the first stdout line names it).
    #[arg(long, default_value = "127.0.0.1:8080", env = "SKIRMISH_ADDR")]
    pub addr: SocketAddr,

    /// Simulation rate of every room, in ticks per second.
    #[arg(long, default_value_t = DEFAULT_TICK_HZ, value_parser = clap::value_parser!(u16).range(MIN_RATE_HZ as i64..=MAX_RATE_HZ as i64))]
    pub tick_hz: u16,

    /// Snapshot rate, per second; at most the tick rate.
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_HZ, value_parser = clap::value_parser!(u16).range(MIN_RATE_HZ as i64..=MAX_RATE_HZ as i64))]
    pub snapshot_hz: u16,

    /// Ticks of input each client gathers into one message (told in the welcome):
    /// fewer messages for the server to read, at up to this many ticks minus one of
    /// added input delay. Default: the ticks of one snapshot interval.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=MAX_INPUT_BATCH as i64))]
    pub input_batch: Option<u8>,

    /// Seats per room.
    #[arg(long, default_value_t = DEFAULT_ROOM_CAPACITY, value_parser = clap::value_parser!(u16).range(1..=MAX_ROOM_CAPACITY as i64))]
    pub room_capacity: u16,

    /// Seconds an empty room stays open before it closes.
    #[arg(long, default_value_t = 10.0)]
    pub room_grace_secs: f64,

    /// Seconds a player's seat is held after their connection drops, so they can
    /// reconnect into it with their score and health; 0 lets them go at once.
    #[arg(long, default_value_t = DEFAULT_RESUME_GRACE_SECS)]
    pub resume_grace_secs: f64,

    /// Milliseconds back a shot is judged where its shooter saw the targets (lag
    /// compensation); 0 judges every shot against where targets are now.
    #[arg(long, default_value_t = DEFAULT_MAX_REWIND_MS, value_parser = clap::value_parser!(u16).range(0..=MAX_REWIND_MS_LIMIT as i64))]
    pub max_rewind_ms: u16,

    /// Seconds a new WebSocket has to send its hello before it is closed.
    #[arg(long, default_value_t = 5.0)]
    pub join_timeout_secs: f64,

    /// Threads the rooms tick on, apart from the network threads; a new room goes to
    /// the one with the fewest. Default: one per core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub room_threads: Option<u16>,

    /// Run room threads at normal priority. By default they ask for real-time
    /// scheduling (SCHED_FIFO, lowest priority), which needs CAP_SYS_NICE, so ticks stay
    /// on time when the cores are full.
    #[arg(long)]
    pub no_realtime_rooms: bool,

    /// Send every snapshot in full instead of as a delta (for comparison and debugging).
    #[arg(long)]
    pub no_deltas: bool,

    /// Seconds spectators (`/?room=ID&spectate=1`) watch behind the room's present, so
    /// what they see is no use to a player in the match. At most 60.
    #[arg(long, default_value_t = 2.0)]
    pub spectator_delay_secs: f64,

    /// Spectators one room admits at once; they take no seats. Past it a spectator is
    /// refused with close code 4010; 0 turns spectating off.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub max_spectators_per_room: u16,

    /// Seconds a client may go without acknowledging snapshots before it is closed.
    #[arg(long, default_value_t = 10.0)]
    pub stall_timeout_secs: f64,

    /// Map file (JSON) the rooms play on; without it, the built-in copy of
    /// `assets/maps/arena.json`.
    #[arg(long)]
    pub map: Option<PathBuf>,

    /// Seconds a client may take to send an HTTP request's headers (slow-loris guard).
    #[arg(long, default_value_t = 5.0)]
    pub header_timeout_secs: f64,

    /// Seconds between the server's WebSocket pings to each player.
    #[arg(long, default_value_t = 5.0)]
    pub ping_interval_secs: f64,

    /// Seconds without any frame from a player (input, pong, anything) before the
    /// connection is closed as dead; must exceed the ping interval.
    #[arg(long, default_value_t = 10.0)]
    pub idle_timeout_secs: f64,

    /// Kills that win a match.
    #[arg(long, default_value_t = DEFAULT_MATCH_SCORE_LIMIT, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub match_score_limit: u16,

    /// Seconds a match lasts when nobody reaches the score limit.
    #[arg(long, default_value_t = DEFAULT_MATCH_TIME_LIMIT_SECS)]
    pub match_time_limit_secs: f64,

    /// Seconds a match's results stand before the next match starts.
    #[arg(long, default_value_t = DEFAULT_MATCH_RESULTS_SECS)]
    pub match_results_secs: f64,

    /// Folder for the match database and the identity key; made if missing.
    #[arg(long, default_value = "data", env = "SKIRMISH_DATA_DIR")]
    pub data_dir: PathBuf,

    /// PostgreSQL to keep finished matches, players and ratings in, shared by every
    /// server process given the same URL: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    /// Without it they are kept in SQLite in the data directory. While the database is
    /// down, finished matches wait in `<data-dir>/spool/` and are sent on when it is back.
    #[arg(
        long,
        value_name = "URL",
        env = "SKIRMISH_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<DatabaseUrl>,

    /// PEM file of certificate authorities to trust for the `--database`'s certificate,
    /// besides the public ones (a cloud provider's database CA, or your own). TLS is
    /// used as the URL's `sslmode` says: `prefer` (the default) uses it when the
    /// database offers it, `require` refuses to go on without it, `disable` never uses
    /// it. Whenever TLS is used, the certificate must be valid for the URL's host.
    #[arg(long, value_name = "FILE", requires = "database")]
    pub database_ca_file: Option<PathBuf>,

    /// The most disk, in MiB, the spool of finished matches may use while the
    /// `--database` is down; past it, finished matches are dropped and counted.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub spool_max_mib: u32,

    /// File holding the key (at least 32 bytes) that signs players' identity tokens.
    /// Without it, a key is made on first start and kept in the data directory.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,

    /// Rooms open at once, server-wide. A player whose request needs a new room past it
    /// is refused (close code 4004).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_rooms: u32,

    /// New rooms one address (an IPv4 address or an IPv6 /64) may open by name per
    /// minute, in a burst or spread out; past it, 4005. Quick play is not counted: it
    /// opens a room only when every other is full.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub new_rooms_per_minute: u32,

    /// WebSocket connections (game and lobby feed) open at once, server-wide; past it the
    /// upgrade gets 503.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// WebSocket connections (game and lobby feed) open at once from one IP address; past
    /// it, 429.
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_ip: usize,

    /// A reverse proxy (a CIDR, like `10.0.0.0/8`, or one address) whose `Forwarded` or
    /// `X-Forwarded-For` header names the client; repeatable. The connection caps, the
    /// new-room limit and the logs then count the client, not the proxy. Headers from
    /// any other peer are ignored.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = crate::net::client_addr::parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// An extra origin (like `https://play.example.com`) allowed to open the game
    /// WebSocket; repeatable. Same-origin and localhost pages are always allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,

    /// Messages per second one connection may send, sustained; past the burst it is
    /// closed with 1008. Default: twice the tick rate plus room for pings and chat.
    #[arg(long)]
    pub msg_rate: Option<f64>,

    /// Messages one connection may send in a burst above its rate.
    #[arg(long, default_value_t = 120)]
    pub msg_burst: u32,

    /// Payload bytes per second one connection may send, sustained.
    #[arg(long, default_value_t = 16 * 1024)]
    pub byte_rate: u32,

    /// Payload bytes one connection may send in a burst above its rate.
    #[arg(long, default_value_t = 32 * 1024)]
    pub byte_burst: u32,

    /// Serve a WebSocket echo at `/echo` for protocol-compliance runs. Never in production.
    #[arg(long, hide = true)]
    pub echo_route: bool,

    /// Address of the admin listener: `/metrics` and, with `--admin-token-file`, the
    /// operations console at `/admin`. Keep it on loopback or a private network; port 0
    /// picks a free port (the second stdout line names it).
    #[arg(long, default_value = "127.0.0.1:9090", env = "SKIRMISH_ADMIN_ADDR")]
    pub admin_addr: SocketAddr,

    /// File holding the operators' token (at least 16 characters; surrounding
    /// whitespace is ignored). Without it the console and its API are off.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,

    /// Serve `/metrics` on the public port too, as well as on the admin listener.
    #[arg(long)]
    pub public_metrics: bool,

    /// Certificate chain (PEM, the server's certificate first) to serve HTTPS and WSS on
    /// `--addr`. Reread, with the key, on SIGHUP.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "SKIRMISH_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of the `--tls-cert` certificate.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "SKIRMISH_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Seconds a client has to finish the TLS handshake before its socket is dropped.
    #[arg(long, default_value_t = 10.0)]
    pub tls_handshake_timeout_secs: f64,

    /// Also listen on this address for plain HTTP, and answer every request there with
    /// a 301 to the same path over HTTPS (needs `--tls-cert`).
    #[arg(long, value_name = "ADDR", requires = "tls_cert")]
    pub redirect_http: Option<SocketAddr>,

    /// Redis shared by the processes of a cluster: `redis://[:PASSWORD@]HOST:PORT/[DB]`.
    /// With it this process joins the cluster: its rooms are listed in every process's
    /// lobby, and players who join here are sent on to the process whose room they
    /// belong in. Redis unreachable at start stops the server.
    #[arg(
        long,
        value_name = "URL",
        env = "SKIRMISH_REDIS_URL",
        hide_env_values = true
    )]
    pub redis: Option<RedisUrl>,

    /// The address players reach this process's page at (`http(s)://host:port`), which
    /// other processes of the cluster send players to. Default: the address it listens
    /// on, which must then not be 0.0.0.0 or [::].
    #[arg(long, value_name = "URL", requires = "redis")]
    pub public_url: Option<String>,

    /// Folder with the built browser bundle (index.html and friends), served at `/`.
    /// Without one, `/` serves a page that says how to build it.
    #[arg(long, env = "SKIRMISH_WEB_ROOT")]
    pub web_root: Option<PathBuf>,

    /// The port of the Agones SDK server's HTTP gateway, which Agones sets in every game
    /// server's container. With it the process tells Agones when it is ready, that it is
    /// healthy and how many players it holds, drains when its GameServer shuts down, and
    /// calls Shutdown once drained; with `--redis` and no `--public-url`, the
    /// GameServer's address and port are the public URL.
    #[arg(long, value_name = "PORT", env = "AGONES_SDK_HTTP_PORT")]
    pub agones_sdk_http_port: Option<u16>,

    /// Seconds between health pings to Agones; the Fleet's `health.periodSeconds` must be
    /// longer.
    #[arg(long, default_value_t = 2.0)]
    pub agones_health_secs: f64,
}

/// A database URL, which may hold a password: shown only as `user@host:port/name`
/// (parsed no further here; the store does that and says what is wrong).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<DatabaseUrl, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl(url.to_owned()))
        } else {
            Err("expected a postgres:// URL".into())
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Everything between the scheme and the '@' may be a password.
        match self.0.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => write!(f, "{scheme}://…@{host}"),
                None => write!(f, "{scheme}://{rest}"),
            },
            None => f.write_str("…"),
        }
    }
}

/// A Redis URL, which may hold a password: shown only as `redis://…@host:port/db`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<RedisUrl, String> {
        if url.starts_with("redis://") {
            Ok(RedisUrl(url.to_owned()))
        } else {
            Err("expected a redis:// URL".into())
        }
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.strip_prefix("redis://") {
            Some(rest) => match rest.rsplit_once('@') {
                Some((_, host)) => write!(f, "redis://…@{host}"),
                None => write!(f, "redis://{rest}"),
            },
            None => f.write_str("…"),
        }
    }
}

/// The longest any flag in seconds may be: a day. Longer is a typo, and far longer does
/// not fit a `Duration`.
const MAX_SECONDS: f64 = 86_400.0;
/// The most messages per second a connection may be allowed.
const MAX_MSG_RATE: f64 = 1e6;

/// `value` seconds, at least `min`; `validate` has checked the range, and anything
/// unrepresentable falls back to the longest duration rather than a panic.
fn seconds(value: f64, min: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(min)).unwrap_or(Duration::MAX)
}

impl Config {
    /// The configuration with every default, listening on `addr`. The default data
    /// directory, `./data`, is relative to the working directory: a server embedded in
    /// tests or tools should be given a folder of its own.
    pub fn for_addr(addr: SocketAddr) -> Config {
        let mut config = Config::parse_from(["server"]);
        config.addr = addr;
        // A fixed admin port would clash between servers that tests run side by side.
        config.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// The spool's bound in bytes.
    pub fn spool_max_bytes(&self) -> u64 {
        u64::from(self.spool_max_mib) << 20
    }

    pub fn room_grace(&self) -> Duration {
        seconds(self.room_grace_secs, 0.0)
    }

    pub fn room_threads(&self) -> usize {
        self.room_threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            usize::from,
        )
    }

    pub fn resume_grace(&self) -> Duration {
        seconds(self.resume_grace_secs, 0.0)
    }

    /// Ticks of input each client gathers into one message. By default one snapshot
    /// interval's worth: an input gathered meanwhile could not show in a snapshot
    /// sooner than the next one anyway, so waiting for it adds little latency.
    pub fn input_batch(&self) -> u8 {
        self.input_batch.unwrap_or_else(|| {
            let ticks_per_snapshot = self.tick_hz / self.snapshot_hz.max(1);
            u8::try_from(ticks_per_snapshot)
                .unwrap_or(MAX_INPUT_BATCH)
                .clamp(1, MAX_INPUT_BATCH)
        })
    }

    /// How far behind spectators watch.
    pub fn spectator_delay(&self) -> Duration {
        seconds(self.spectator_delay_secs, 0.0)
    }

    pub fn stall_timeout(&self) -> Duration {
        seconds(self.stall_timeout_secs, 0.5)
    }

    pub fn join_timeout(&self) -> Duration {
        seconds(self.join_timeout_secs, 0.1)
    }

    pub fn header_timeout(&self) -> Duration {
        seconds(self.header_timeout_secs, 0.1)
    }

    pub fn ping_interval(&self) -> Duration {
        seconds(self.ping_interval_secs, 0.05)
    }

    pub fn agones_health(&self) -> Duration {
        seconds(self.agones_health_secs, 0.1)
    }

    pub fn idle_timeout(&self) -> Duration {
        seconds(self.idle_timeout_secs, 0.1)
    }

    pub fn tls_handshake_timeout(&self) -> Duration {
        seconds(self.tls_handshake_timeout_secs, 0.1)
    }

    /// The most a shot is rewound, in whole ticks.
    pub fn max_rewind_ticks(&self) -> u32 {
        (u32::from(self.max_rewind_ms) * u32::from(self.tick_hz)).div_ceil(1000)
    }

    /// The rules every room's matches follow.
    pub fn match_rules(&self) -> shared::game::MatchRules {
        shared::game::MatchRules::new(
            self.match_score_limit,
            self.match_time_limit_secs,
            self.match_results_secs,
            self.tick_hz,
        )
    }

    /// Every flag given in seconds, with the least it may be.
    fn durations(&self) -> [(&'static str, f64, f64); 12] {
        [
            ("--spectator-delay-secs", self.spectator_delay_secs, 0.0),
            ("--match-time-limit-secs", self.match_time_limit_secs, 5.0),
            ("--match-results-secs", self.match_results_secs, 1.0),
            ("--room-grace-secs", self.room_grace_secs, 0.0),
            ("--resume-grace-secs", self.resume_grace_secs, 0.0),
            ("--join-timeout-secs", self.join_timeout_secs, 0.1),
            ("--stall-timeout-secs", self.stall_timeout_secs, 0.5),
            ("--header-timeout-secs", self.header_timeout_secs, 0.1),
            ("--ping-interval-secs", self.ping_interval_secs, 0.05),
            ("--idle-timeout-secs", self.idle_timeout_secs, 0.1),
            ("--agones-health-secs", self.agones_health_secs, 0.1),
            (
                "--tls-handshake-timeout-secs",
                self.tls_handshake_timeout_secs,
                0.1,
            ),
        ]
    }

    /// The sustained message rate per connection: one input per tick, twice over for
    /// jitter and catch-up, plus pings and chat.
    pub fn msg_rate(&self) -> f64 {
        self.msg_rate
            .unwrap_or(2.0 * f64::from(self.tick_hz) + 20.0)
    }

    /// Checks what clap's parsers cannot see alone.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.spectator_delay_secs <= MAX_SPECTATOR_DELAY_SECS,
            "--spectator-delay-secs ({}) may be at most {MAX_SPECTATOR_DELAY_SECS}: spectators' rooms hold that much of the past",
            self.spectator_delay_secs
        );
        if let Some(url) = &self.public_url {
            anyhow::ensure!(
                (url.starts_with("http://") || url.starts_with("https://"))
                    && url.len() > "https://".len(),
                "--public-url must be an http:// or https:// address, not {url:?}"
            );
        } else {
            // Under Agones the GameServer's address is the public URL.
            anyhow::ensure!(
                self.redis.is_none()
                    || self.agones_sdk_http_port.is_some()
                    || !self.addr.ip().is_unspecified(),
                "--redis needs --public-url when listening on {} (all interfaces): other processes must know where to send players",
                self.addr
            );
        }
        anyhow::ensure!(
            self.snapshot_hz <= self.tick_hz,
            "--snapshot-hz ({}) must not exceed --tick-hz ({})",
            self.snapshot_hz,
            self.tick_hz
        );
        for (flag, value, min) in self.durations() {
            anyhow::ensure!(
                value.is_finite() && (min..=MAX_SECONDS).contains(&value),
                "{flag} must be a number of seconds from {min} to {MAX_SECONDS}, not {value}"
            );
        }
        let msg_rate = self.msg_rate();
        anyhow::ensure!(
            msg_rate.is_finite() && msg_rate > 0.0 && msg_rate <= MAX_MSG_RATE,
            "--msg-rate must be a positive number up to {MAX_MSG_RATE}, not {msg_rate}"
        );
        anyhow::ensure!(
            self.idle_timeout_secs > self.ping_interval_secs,
            "--idle-timeout-secs ({}) must exceed --ping-interval-secs ({}), or live players would be dropped",
            self.idle_timeout_secs,
            self.ping_interval_secs
        );
        anyhow::ensure!(
            self.msg_rate() >= f64::from(self.tick_hz) * 1.5,
            "--msg-rate ({}) must leave room for one input per tick at --tick-hz {}",
            self.msg_rate(),
            self.tick_hz
        );
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "--tls-cert and --tls-key go together"
        );
        anyhow::ensure!(
            self.redirect_http.is_none() || self.tls_cert.is_some(),
            "--redirect-http redirects to HTTPS, which needs --tls-cert and --tls-key"
        );
        anyhow::ensure!(
            self.byte_burst as usize >= shared::consts::MAX_CLIENT_MSG_BYTES,
            "--byte-burst must allow at least one largest message"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        Config::parse_from(std::iter::once("server").chain(args.iter().copied()))
    }

    #[test]
    fn clients_batch_one_snapshot_interval_of_input_unless_told_otherwise() {
        assert_eq!(config(&[]).input_batch(), 2, "60 Hz ticks, 30 Hz snapshots");
        assert_eq!(config(&["--snapshot-hz", "20"]).input_batch(), 3);
        assert_eq!(config(&["--snapshot-hz", "60"]).input_batch(), 1);
        assert_eq!(
            config(&["--tick-hz", "240", "--snapshot-hz", "1"]).input_batch(),
            MAX_INPUT_BATCH,
            "never more than a message may carry"
        );
        assert_eq!(
            config(&["--snapshot-hz", "20", "--input-batch", "1"]).input_batch(),
            1,
            "the flag wins"
        );
    }

    #[test]
    fn defaults_are_valid_and_leave_room_for_one_input_per_tick() {
        let defaults = config(&[]);
        defaults.validate().expect("the defaults are valid");
        assert!(defaults.msg_rate() >= 2.0 * f64::from(defaults.tick_hz));
        assert!(defaults.idle_timeout() > defaults.ping_interval());
    }

    #[test]
    fn limits_that_would_drop_honest_players_are_refused() {
        let idle_below_ping = config(&["--ping-interval-secs", "5", "--idle-timeout-secs", "4"]);
        assert!(idle_below_ping.validate().is_err());
        let rate_below_ticks = config(&["--tick-hz", "120", "--msg-rate", "100"]);
        assert!(rate_below_ticks.validate().is_err());
        let tiny_byte_burst = config(&["--byte-burst", "100"]);
        assert!(tiny_byte_burst.validate().is_err());
    }

    #[test]
    fn the_spectator_delay_is_bounded_and_zero_spectators_is_allowed() {
        let fine = config(&[
            "--spectator-delay-secs",
            "0.5",
            "--max-spectators-per-room",
            "0",
        ]);
        assert!(fine.validate().is_ok());
        assert_eq!(fine.spectator_delay(), Duration::from_millis(500));
        let err = config(&["--spectator-delay-secs", "61"])
            .validate()
            .expect_err("a delay past a minute is refused");
        assert!(err.to_string().contains("--spectator-delay-secs"), "{err}");
        assert!(
            Config::try_parse_from(["server", "--max-spectators-per-room", "1025"]).is_err(),
            "the cap is bounded"
        );
    }

    #[test]
    fn huge_or_odd_durations_are_refused_not_panicked_on() {
        for flag in [
            "--match-time-limit-secs",
            "--match-results-secs",
            "--room-grace-secs",
            "--join-timeout-secs",
            "--stall-timeout-secs",
            "--header-timeout-secs",
            "--ping-interval-secs",
            "--idle-timeout-secs",
            "--tls-handshake-timeout-secs",
            "--spectator-delay-secs",
        ] {
            for value in ["1e300", "inf", "NaN", "-1"] {
                let odd = config(&[&format!("{flag}={value}")]);
                let err = odd
                    .validate()
                    .expect_err("an out-of-range duration is refused");
                assert!(
                    err.to_string().contains(flag),
                    "{flag} {value}: the error names the flag: {err}"
                );
                // What a caller might still ask for does not panic either.
                let _ = (odd.room_grace(), odd.join_timeout(), odd.stall_timeout());
                let _ = (
                    odd.header_timeout(),
                    odd.ping_interval(),
                    odd.idle_timeout(),
                    odd.tls_handshake_timeout(),
                );
            }
        }
        let huge_rate = config(&["--msg-rate", "1e300"]);
        assert!(huge_rate.validate().is_err());
        assert!(config(&["--room-grace-secs", "86400"]).validate().is_ok());
    }

    #[test]
    fn trusted_proxies_repeat_and_bad_ones_are_refused() {
        let two = config(&["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1"]);
        assert_eq!(
            two.trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.0.0.0/8", "::1/128"]
        );
        assert!(config(&[]).trusted_proxies.is_empty(), "none by default");
        assert!(Config::try_parse_from(["server", "--trusted-proxy", "10.0.0.0/40"]).is_err());
    }

    #[test]
    fn tls_needs_both_files_and_a_redirect_needs_tls() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
        };
        assert!(parse(&["--tls-cert", "cert.pem"]).is_err());
        assert!(parse(&["--tls-key", "key.pem"]).is_err());
        assert!(parse(&["--redirect-http", "127.0.0.1:8081"]).is_err());
        let tls = parse(&[
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--redirect-http",
            "127.0.0.1:8081",
        ])
        .expect("a certificate, its key and a redirect");
        assert_eq!(tls.tls_handshake_timeout(), Duration::from_secs(10));
    }

    #[test]
    fn a_database_url_is_read_and_never_shows_its_password() {
        assert!(config(&[]).database.is_none(), "SQLite unless asked");
        let flagged = config(&[
            "--database",
            "postgres://game:s3cret@db.internal:5433/skirmish",
        ]);
        let url = flagged.database.clone().expect("the flag is read");
        assert_eq!(
            url.as_str(),
            "postgres://game:s3cret@db.internal:5433/skirmish"
        );
        let shown = format!("{url:?} {flagged:?}");
        assert!(
            !shown.contains("s3cret"),
            "the password is never shown: {shown}"
        );
        assert!(shown.contains("db.internal:5433/skirmish"), "{shown}");
        assert!(Config::try_parse_from(["server", "--database", "mysql://x@y/z"]).is_err());
        assert_eq!(config(&["--spool-max-mib", "2"]).spool_max_bytes(), 2 << 20);
        assert!(Config::try_parse_from(["server", "--spool-max-mib", "0"]).is_err());
    }

    #[test]
    fn room_limits_must_be_positive() {
        assert!(Config::try_parse_from(["server", "--max-rooms", "0"]).is_err());
        assert!(Config::try_parse_from(["server", "--new-rooms-per-minute", "0"]).is_err());
        let defaults = config(&[]);
        assert!(
            defaults.max_rooms >= 100,
            "room for a busy server by default"
        );
    }
}
