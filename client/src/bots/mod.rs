//! Headless bots that play over real WebSockets, many to one runtime, and the report
//! they print: the numbers a load or soak run is judged by.

pub mod brain;
mod failure;
mod input_latency;
mod reconnect;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::Seq;
use shared::game::InputFrame;
use shared::protocol::{ClientMsg, CloseReason, ServerMsg};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use crate::core::{RoomView, SnapshotStats};
use crate::native::{Connection, Hello, NetError, Traffic, Trust};
use brain::Brain;
use failure::LastWord;
use input_latency::InputLatency;

/// How often each bot measures its round trip.
const PING_EVERY: Duration = Duration::from_secs(1);
/// A bot that hears nothing from the server for this long (snapshots come many times a
/// second) takes its connection for dead and reconnects: a connection that died
/// silently may not fail for minutes.
const SERVER_SILENCE: Duration = Duration::from_secs(2);

/// Bots that played less than this are left out of the lowest per-bot snapshot rate:
/// over a shorter time one snapshot more or less moves a bot's rate by more than the 2%
/// a load step's delivery bar allows (at 30 Hz, one snapshot in 2 s is 1.7%).
const MIN_PLAYED_FOR_RATE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct BotsConfig {
    pub url: String,
    /// The certificate authorities a `wss://` server is verified against.
    pub trust: Trust,
    pub count: usize,
    pub duration: Duration,
    pub room: Option<String>,
    pub name_prefix: String,
    pub seed: u64,
    /// Bots join spread over this long, so a big swarm does not arrive in one burst.
    pub ramp: Duration,
    /// Send no input: only acknowledge snapshots and ping, like an idle player.
    pub idle: bool,
}

/// What one bot saw.
#[derive(Debug, Default)]
struct BotStats {
    joined: bool,
    /// The bot could not join, or lost its connection before its time was up.
    failed: bool,
    disconnected: bool,
    /// From the welcome to the end of the bot's time, or to its failure.
    played: Duration,
    snapshots: u64,
    down_bytes: u64,
    up_bytes: u64,
    decode_errors: u64,
    rtts_ms: Vec<f64>,
    /// From each input leaving the bot to the first snapshot that showed it.
    input_latencies_ms: Vec<f32>,
    /// Payload bytes of every snapshot received.
    snapshot_sizes: Vec<u32>,
    snapshot_stats: SnapshotStats,
    error: Option<String>,
    /// Why the bot failed, as a stable snake_case cause.
    failure: Option<String>,
    /// Times the bot took its held seat back after losing its connection.
    resumed: u64,
    /// Times a resume was refused and the bot joined afresh.
    resume_failed: u64,
    /// Times the bot lost its seat (and its score) to a lost connection.
    seats_lost: u64,
    /// Times the bot's server shut down (a drain) and the bot joined again through the
    /// address it was given.
    rejoined: u64,
    /// From the last snapshot before a lost connection to the first after the resume:
    /// after the socket failed or closed, and after the server went quiet.
    resume_gaps_after_reset_ms: Vec<f64>,
    resume_gaps_after_silence_ms: Vec<f64>,
}

/// The run's summary; printed as one JSON line.
///
/// Rates are over the time bots actually played, from their welcome to the end of
/// their time or their failure, and weighted by it: a total count over the total
/// seconds played. A bot that failed a millisecond after its welcome adds a millisecond,
/// not a rate of its own.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub bots: usize,
    pub connected: usize,
    pub failed: usize,
    /// Seconds each bot was to play.
    pub duration_s: f64,
    /// Seconds played, summed over the bots that joined.
    pub played_s: f64,
    /// Snapshots received (or skipped for a newer one), summed over the bots.
    pub snapshots: u64,
    pub snapshots_per_bot_per_s: f64,
    /// The lowest rate of one bot, among those that played at least 2 s; `None` if none did.
    pub min_snapshots_per_bot_per_s: Option<f64>,
    pub down_bytes_per_bot_per_s: f64,
    pub up_bytes_per_bot_per_s: f64,
    pub rtt_ms_p50: f64,
    pub rtt_ms_p99: f64,
    /// From an input leaving a bot to the first snapshot whose input acknowledgement
    /// includes it, over every input of the run.
    pub input_latency_ms_p50: f64,
    pub input_latency_ms_p99: f64,
    pub decode_errors: u64,
    pub disconnects: usize,
    pub snapshot_bytes_mean: f64,
    pub snapshot_bytes_p50: f64,
    pub snapshot_bytes_p99: f64,
    pub full_snapshots: u64,
    pub delta_snapshots: u64,
    /// Bits each moving player took in delta snapshots (its delta plus its share of
    /// the changed-players bitmap).
    pub bits_per_moving_player: f64,
    /// Failed bots by cause (`connect_refused`, `closed_1008_too_slow`, ...); the
    /// counts add up to `failed`.
    pub failures: BTreeMap<String, u64>,
    /// The first few distinct error messages, for the detail the causes leave out.
    pub errors: Vec<String>,
    /// Lost connections taken back into their held seat.
    pub resumed: u64,
    /// Resumes the server refused; each such bot joined afresh.
    pub resume_failed: u64,
    /// Seats (with their scores) lost to lost connections.
    pub seats_lost: u64,
    /// Bots whose server shut down under them and who joined again, as a player told
    /// to does: in a cluster, on another process.
    #[serde(default)]
    pub rejoined: u64,
    /// From the last snapshot before a lost connection to the first after its resume,
    /// when the socket failed or closed.
    pub resume_gap_after_reset_ms: Gap,
    /// The same, when the connection went silent (found by `SERVER_SILENCE`).
    pub resume_gap_after_silence_ms: Gap,
}

/// How long resumes took, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Gap {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Gap {
    fn of(stats: &[BotStats], gaps: fn(&BotStats) -> &[f64]) -> Gap {
        let mut all: Vec<f64> = stats.iter().flat_map(|s| gaps(s).iter().copied()).collect();
        all.sort_by(f64::total_cmp);
        Gap {
            count: all.len(),
            p50: percentile(&all, 0.50),
            p99: percentile(&all, 0.99),
            max: all.last().copied().unwrap_or(0.0),
        }
    }
}

pub async fn run(config: BotsConfig) -> Report {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(config.count);
    for bot_idx in 0..config.count {
        let join_at = start
            + config
                .ramp
                .mul_f64(bot_idx as f64 / config.count.max(1) as f64);
        let config = config.clone();
        tasks.push(tokio::spawn(async move {
            sleep_until(join_at).await;
            play(bot_idx, &config).await
        }));
    }
    let mut stats = Vec::with_capacity(tasks.len());
    for task in tasks {
        stats.push(task.await.unwrap_or_else(|err| BotStats {
            failed: true,
            error: Some(format!("bot task died: {err}")),
            failure: Some("bot_task_died".into()),
            ..BotStats::default()
        }));
    }
    summarize(&config, &stats)
}

async fn play(bot_idx: usize, config: &BotsConfig) -> BotStats {
    let mut stats = BotStats::default();
    let mut hello = Hello::new(format!("{}{bot_idx}", config.name_prefix));
    hello.room = config.room.clone();
    let mut conn = match reconnect::attempt(&config.url, hello.clone(), &config.trust).await {
        Ok(conn) => conn,
        Err(err) => {
            stats.failed = true;
            stats.failure = Some(failure::join_failure(&err));
            stats.error = Some(err.to_string());
            return stats;
        }
    };
    stats.joined = true;
    let joined_at = Instant::now();
    let deadline = joined_at + config.duration;
    let mut player = Player::new(config.seed.wrapping_add(bot_idx as u64), &conn);
    let mut traffic = Traffic::default();
    // What connections and seats before the current ones counted.
    let mut skipped = 0;
    let mut earlier = Earlier::default();
    let outcome = loop {
        let lost = match player.play(&mut conn, config, deadline, &mut stats).await {
            Ok(()) => break Ok(()),
            Err(lost) => lost,
        };
        // A connection that dropped (not one the server closed for cause) is taken
        // back into its held seat, as the browser does; a server that shut down says
        // to join again, which through the address given finds a live process.
        let rejoin = lost.last_word.server_said == Some(CloseReason::ServerShutdown);
        if !(rejoin || lost.last_word.is_resumable()) || Instant::now() >= deadline {
            break Err(lost);
        }
        add_traffic(&mut traffic, &conn);
        skipped += conn.skipped_snapshots;
        let seat = player
            .view
            .resume_token
            .clone()
            .filter(|_| !rejoin)
            .map(|token| hello.clone().resuming(token, player.view.newest_tick()));
        match reconnect::back_into_seat(&config.url, &config.trust, seat, hello.clone(), deadline)
            .await
        {
            Ok((next, how)) => {
                conn = next;
                if rejoin {
                    stats.rejoined += 1;
                    earlier.absorb(&player.view);
                    player = Player::new(player.seed, &conn);
                } else if how == reconnect::How::Resumed && conn.welcome.player_id == player.me {
                    stats.resumed += 1;
                    player.resumed(&conn, lost);
                } else {
                    stats.resume_failed += 1;
                    stats.seats_lost += 1;
                    earlier.absorb(&player.view);
                    player = Player::new(player.seed, &conn);
                }
            }
            Err(err) => {
                break Err(Lost { err, ..lost });
            }
        }
    };
    stats.played = joined_at.elapsed().min(config.duration);
    earlier.absorb(&player.view);
    stats.snapshots = earlier.snapshots + skipped + conn.skipped_snapshots;
    stats.snapshot_stats = earlier.stats;
    if let Err(lost) = outcome {
        stats.failed = true;
        stats.disconnected = true;
        let mut last_word = lost.last_word;
        last_word.close_code = last_word
            .close_code
            .or(conn.close.as_ref().map(|(code, _)| *code));
        stats.failure = Some(failure::cause(&lost.err, last_word));
        stats.error.get_or_insert_with(|| lost.err.to_string());
    }
    add_traffic(&mut traffic, &conn);
    stats.down_bytes = traffic.down_bytes;
    stats.up_bytes = traffic.up_bytes;
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
    stats
}

/// Snapshot counts of the seats a bot held before its current one.
#[derive(Debug, Default)]
struct Earlier {
    snapshots: u64,
    stats: SnapshotStats,
}

impl Earlier {
    fn absorb(&mut self, view: &RoomView) {
        self.snapshots += view.snapshots_received;
        let (total, seat) = (&mut self.stats, &view.snapshot_stats);
        total.full += seat.full;
        total.deltas += seat.deltas;
        total.moving_players += seat.moving_players;
        total.moving_player_bytes += seat.moving_player_bytes;
    }
}

fn add_traffic(total: &mut Traffic, conn: &Connection) {
    total.down_bytes += conn.traffic.down_bytes;
    total.up_bytes += conn.traffic.up_bytes;
}

/// How a connection was lost, and what the server said before it went.
#[derive(Debug)]
struct Lost {
    err: NetError,
    last_word: LastWord,
    /// When the last snapshot arrived before the loss.
    last_snapshot_at: Instant,
    /// The server went quiet, rather than the socket failing or closing.
    silent: bool,
}

/// One bot's play across its connections: the room as it knows it and its brain.
struct Player {
    me: shared::PlayerId,
    seed: u64,
    view: RoomView,
    brain: Brain,
    seq: Seq,
    input_latency: InputLatency,
    /// Set after a resume until its first snapshot: when the snapshot before the loss
    /// arrived, and whether the loss was silence.
    resuming: Option<(Instant, bool)>,
}

impl Player {
    fn new(seed: u64, conn: &Connection) -> Player {
        let mut view = RoomView::default();
        // A welcome carries no delta, so applying it cannot fail.
        let _ = view.apply(&ServerMsg::Welcome(Box::new(conn.welcome.clone())));
        Player {
            me: conn.welcome.player_id,
            seed,
            view,
            brain: Brain::new(seed),
            seq: Seq(0),
            input_latency: InputLatency::default(),
            resuming: None,
        }
    }

    /// Carries on in the same seat on a new connection.
    fn resumed(&mut self, conn: &Connection, lost: Lost) {
        let _ = self
            .view
            .apply(&ServerMsg::Welcome(Box::new(conn.welcome.clone())));
        self.resuming = Some((lost.last_snapshot_at, lost.silent));
    }

    /// Plays on `conn` until the deadline (`Ok`) or until the connection is lost.
    async fn play(
        &mut self,
        conn: &mut Connection,
        config: &BotsConfig,
        deadline: Instant,
        stats: &mut BotStats,
    ) -> Result<(), Lost> {
        let mut ticker = interval(Duration::from_secs_f64(
            1.0 / f64::from(conn.welcome.tick_hz.max(1)),
        ));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut next_ping = Instant::now();
        let mut ping_sent: Option<(u32, Instant)> = None;
        let mut last_word = LastWord::default();
        let mut last_snapshot_at = Instant::now();
        let mut heard_at = Instant::now();
        let lost = |err, last_word, last_snapshot_at, silent| Lost {
            err,
            last_word,
            last_snapshot_at,
            silent,
        };
        loop {
            tokio::select! {
                () = sleep_until(deadline) => return Ok(()),
                () = sleep_until(heard_at + SERVER_SILENCE) => {
                    return Err(lost(NetError::Silent, last_word, last_snapshot_at, true));
                }
                _ = ticker.tick() => {
                    if !config.idle {
                        self.seq = self.seq.next();
                        let (held, aim) = self.brain.decide(self.me, self.view.snapshot.as_ref());
                        let frame = InputFrame {
                            seq: self.seq,
                            buttons: held,
                            aim,
                            view: self.view.seen_when_firing(held),
                        };
                        // An input leaves when its batch does; the latency counts from then.
                        if let Some(inputs) = self.view.queue_input(frame) {
                            if let Err(err) = conn.send(&inputs).await {
                                return Err(lost(err, last_word, last_snapshot_at, false));
                            }
                            let now = Instant::now();
                            if let ClientMsg::Input { frames, .. } = &inputs {
                                for frame in frames {
                                    self.input_latency.sent(frame.seq, now);
                                }
                            }
                        }
                    }
                    let now = Instant::now();
                    if now >= next_ping && ping_sent.is_none() {
                        let nonce = self.seq.0;
                        if let Err(err) = conn.send(&ClientMsg::Ping { nonce }).await {
                            return Err(lost(err, last_word, last_snapshot_at, false));
                        }
                        ping_sent = Some((nonce, now));
                        next_ping = now + PING_EVERY;
                    }
                }
                received = conn.recv() => match received {
                    Ok(Some(msg)) => {
                        heard_at = Instant::now();
                        if let (ServerMsg::Pong { nonce }, Some((sent_nonce, sent_at))) = (&msg, ping_sent)
                            && *nonce == sent_nonce
                        {
                            stats.rtts_ms.push(sent_at.elapsed().as_secs_f64() * 1e3);
                            ping_sent = None;
                        }
                        if let ServerMsg::Disconnect { reason, detail } = &msg {
                            last_word.server_said = Some(*reason);
                            stats.error = Some(format!("server closed us ({reason:?}): {detail}"));
                        }
                        if self.view.apply(&msg).is_err() {
                            stats.decode_errors += 1;
                        }
                        if matches!(msg, ServerMsg::Snapshot(_)) {
                            last_snapshot_at = heard_at;
                            if let Some(snapshot) = &self.view.snapshot {
                                self.input_latency.acknowledged(snapshot.ack_input, heard_at, &mut stats.input_latencies_ms);
                            }
                            if let Some((before, silent)) = self.resuming.take() {
                                let gap_ms = (heard_at - before).as_secs_f64() * 1e3;
                                if silent {
                                    stats.resume_gaps_after_silence_ms.push(gap_ms);
                                } else {
                                    stats.resume_gaps_after_reset_ms.push(gap_ms);
                                }
                            }
                            stats.snapshot_sizes.push(conn.last_message_len as u32);
                            // An idle bot acknowledges each snapshot on its own; a playing
                            // one does so on its next input.
                            if config.idle
                                && let Some(ack) = self.view.ack_message()
                                && let Err(err) = conn.send(&ack).await
                            {
                                return Err(lost(err, last_word, last_snapshot_at, false));
                            }
                        }
                        self.view.events.clear();
                    }
                    Ok(None) => {
                        last_word.close_code = conn.close.as_ref().map(|(code, _)| *code);
                        return Err(lost(NetError::Closed, last_word, last_snapshot_at, false));
                    }
                    Err(NetError::Decode(_)) => stats.decode_errors += 1,
                    Err(err) => return Err(lost(err, last_word, last_snapshot_at, false)),
                },
            }
        }
    }
}

fn summarize(config: &BotsConfig, stats: &[BotStats]) -> Report {
    let joined: Vec<&BotStats> = stats.iter().filter(|s| s.joined).collect();
    // A fold from +0.0: an empty float `sum` is -0.0, which a report would print.
    let played_s = joined
        .iter()
        .fold(0.0, |total, s| total + s.played.as_secs_f64());
    let per_played_s = |count: u64| {
        if played_s > 0.0 {
            count as f64 / played_s
        } else {
            0.0
        }
    };
    let snapshots: u64 = joined.iter().map(|s| s.snapshots).sum();
    let min_snapshots_per_bot_per_s = joined
        .iter()
        .filter(|s| s.played >= MIN_PLAYED_FOR_RATE)
        .map(|s| s.snapshots as f64 / s.played.as_secs_f64())
        .min_by(f64::total_cmp);
    let mut rtts: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.rtts_ms.iter().copied())
        .collect();
    rtts.sort_by(f64::total_cmp);
    let mut input_latencies: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.input_latencies_ms.iter().map(|&ms| f64::from(ms)))
        .collect();
    input_latencies.sort_by(f64::total_cmp);
    let mut sizes: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.snapshot_sizes.iter().map(|&n| f64::from(n)))
        .collect();
    sizes.sort_by(f64::total_cmp);
    let total = |field: fn(&SnapshotStats) -> u64| -> u64 {
        stats.iter().map(|s| field(&s.snapshot_stats)).sum()
    };
    let moving_players = total(|s| s.moving_players);
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for bot in stats.iter().filter(|s| s.failed) {
        let cause = bot.failure.as_deref().unwrap_or("unknown");
        *failures.entry(cause.to_owned()).or_default() += 1;
    }
    let mut errors: Vec<String> = Vec::new();
    for error in stats.iter().filter_map(|s| s.error.clone()) {
        if errors.len() < 5 && !errors.contains(&error) {
            errors.push(error);
        }
    }
    Report {
        bots: config.count,
        connected: joined.len(),
        failed: stats.iter().filter(|s| s.failed).count(),
        duration_s: config.duration.as_secs_f64(),
        played_s,
        snapshots,
        snapshots_per_bot_per_s: per_played_s(snapshots),
        min_snapshots_per_bot_per_s,
        down_bytes_per_bot_per_s: per_played_s(joined.iter().map(|s| s.down_bytes).sum()),
        up_bytes_per_bot_per_s: per_played_s(joined.iter().map(|s| s.up_bytes).sum()),
        rtt_ms_p50: percentile(&rtts, 0.50),
        rtt_ms_p99: percentile(&rtts, 0.99),
        input_latency_ms_p50: percentile(&input_latencies, 0.50),
        input_latency_ms_p99: percentile(&input_latencies, 0.99),
        decode_errors: stats.iter().map(|s| s.decode_errors).sum(),
        disconnects: stats.iter().filter(|s| s.disconnected).count(),
        snapshot_bytes_mean: mean(&sizes),
        snapshot_bytes_p50: percentile(&sizes, 0.50),
        snapshot_bytes_p99: percentile(&sizes, 0.99),
        full_snapshots: total(|s| s.full),
        delta_snapshots: total(|s| s.deltas),
        bits_per_moving_player: if moving_players == 0 {
            0.0
        } else {
            total(|s| s.moving_player_bytes) as f64 * 8.0 / moving_players as f64
        },
        failures,
        errors,
        resumed: stats.iter().map(|s| s.resumed).sum(),
        resume_failed: stats.iter().map(|s| s.resume_failed).sum(),
        rejoined: stats.iter().map(|s| s.rejoined).sum(),
        seats_lost: stats.iter().map(|s| s.seats_lost).sum(),
        resume_gap_after_reset_ms: Gap::of(stats, |s| &s.resume_gaps_after_reset_ms),
        resume_gap_after_silence_ms: Gap::of(stats, |s| &s.resume_gaps_after_silence_ms),
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The nearest-rank percentile of sorted values; 0 when there are none.
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(count: usize, duration: Duration) -> BotsConfig {
        BotsConfig {
            url: "ws://127.0.0.1:1/ws".into(),
            trust: Trust::public(),
            count,
            duration,
            room: None,
            name_prefix: "bot".into(),
            seed: 1,
            ramp: Duration::ZERO,
            idle: false,
        }
    }

    /// The overloaded run that once reported 3,414 snapshots per bot per second: bots
    /// that failed right after their welcome each counted as a bot with a huge rate.
    #[test]
    fn rates_are_weighted_by_time_played_not_averaged_per_bot() {
        let played_ten_seconds = BotStats {
            joined: true,
            played: Duration::from_secs(10),
            snapshots: 300,
            down_bytes: 30_000,
            ..BotStats::default()
        };
        let failed_after_a_millisecond = BotStats {
            joined: true,
            failed: true,
            disconnected: true,
            played: Duration::from_millis(1),
            snapshots: 3,
            down_bytes: 3_000,
            failure: Some("closed_1008_too_slow".into()),
            ..BotStats::default()
        };
        let report = summarize(
            &config(2, Duration::from_secs(10)),
            &[played_ten_seconds, failed_after_a_millisecond],
        );
        // 303 snapshots over 10.001 s played; a mean of per-bot rates would say 1,515.
        assert!(
            (report.snapshots_per_bot_per_s - 303.0 / 10.001).abs() < 1e-9,
            "the rate should be total snapshots over total seconds played, got {}",
            report.snapshots_per_bot_per_s
        );
        assert!(
            (report.down_bytes_per_bot_per_s - 33_000.0 / 10.001).abs() < 1e-6,
            "bytes per second should be weighted the same way"
        );
        assert_eq!(
            report.min_snapshots_per_bot_per_s,
            Some(30.0),
            "a bot that played 1 ms has no meaningful rate of its own"
        );
        assert_eq!(report.snapshots, 303);
        assert!((report.played_s - 10.001).abs() < 1e-9);
    }

    #[test]
    fn failures_are_counted_by_cause() {
        let failed = |cause: &str| BotStats {
            failed: true,
            failure: Some(cause.into()),
            ..BotStats::default()
        };
        let stats = [
            failed("connect_refused"),
            failed("connect_refused"),
            failed("closed_1008_too_slow"),
            BotStats {
                joined: true,
                played: Duration::from_secs(5),
                snapshots: 150,
                ..BotStats::default()
            },
        ];
        let report = summarize(&config(4, Duration::from_secs(5)), &stats);
        assert_eq!(report.failed, 3);
        assert_eq!(
            report.failures,
            BTreeMap::from([
                ("closed_1008_too_slow".to_owned(), 1),
                ("connect_refused".to_owned(), 2),
            ]),
            "each failed bot should be counted once, under its cause"
        );
        assert_eq!(report.failures.values().sum::<u64>(), report.failed as u64);
    }

    #[test]
    fn a_run_where_no_bot_joined_reports_zero_rates() {
        let stats = [BotStats {
            failed: true,
            failure: Some("connect_refused".into()),
            ..BotStats::default()
        }];
        let report = summarize(&config(1, Duration::from_secs(5)), &stats);
        assert_eq!(report.snapshots_per_bot_per_s, 0.0);
        assert!(
            report.played_s == 0.0 && report.played_s.is_sign_positive(),
            "no bot played: 0 seconds, not -0"
        );
        assert_eq!(report.min_snapshots_per_bot_per_s, None);
        let json = serde_json::to_string(&report).expect("a report always serializes");
        let back: Report = serde_json::from_str(&json).expect("the harness reads it back");
        assert_eq!(back.failures, report.failures);
    }

    #[test]
    fn percentile_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
