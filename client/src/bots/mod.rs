//! Headless bots that play over real WebSockets, many to one runtime, and the report
//! they print: the numbers a load or soak run is judged by.

pub mod brain;

use std::time::Duration;

use serde::Serialize;
use shared::Seq;
use shared::protocol::{ClientMsg, InputFrame, ServerMsg};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use crate::core::{RoomView, SnapshotStats};
use crate::native::{Connection, Hello, NetError};
use brain::Brain;

/// How often each bot measures its round trip.
const PING_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct BotsConfig {
    pub url: String,
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
    played: Duration,
    snapshots: u64,
    down_bytes: u64,
    up_bytes: u64,
    decode_errors: u64,
    rtts_ms: Vec<f64>,
    /// Payload bytes of every snapshot received.
    snapshot_sizes: Vec<u32>,
    snapshot_stats: SnapshotStats,
    error: Option<String>,
}

/// The run's summary; printed as one JSON line.
#[derive(Debug, Serialize)]
pub struct Report {
    pub bots: usize,
    pub connected: usize,
    pub failed: usize,
    pub duration_s: f64,
    pub snapshots_per_bot_per_s: f64,
    pub min_snapshots_per_bot_per_s: f64,
    pub down_bytes_per_bot_per_s: f64,
    pub up_bytes_per_bot_per_s: f64,
    pub rtt_ms_p50: f64,
    pub rtt_ms_p99: f64,
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
    /// The first few distinct errors, to say why bots failed.
    pub errors: Vec<String>,
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
            ..BotStats::default()
        }));
    }
    summarize(&config, &stats)
}

async fn play(bot_idx: usize, config: &BotsConfig) -> BotStats {
    let mut stats = BotStats::default();
    let mut hello = Hello::new(format!("{}{bot_idx}", config.name_prefix));
    hello.room = config.room.clone();
    let mut conn = match Connection::join(&config.url, hello).await {
        Ok(conn) => conn,
        Err(err) => {
            stats.failed = true;
            stats.error = Some(err.to_string());
            return stats;
        }
    };
    stats.joined = true;
    let joined_at = Instant::now();
    let deadline = joined_at + config.duration;
    let me = conn.welcome.player_id;
    let mut view = RoomView::default();
    let welcome = ServerMsg::Welcome(Box::new(conn.welcome.clone()));
    if view.apply(&welcome).is_err() {
        stats.decode_errors += 1;
    }
    let mut brain = Brain::new(config.seed.wrapping_add(bot_idx as u64));
    let mut ticker = interval(Duration::from_secs_f64(
        1.0 / f64::from(conn.welcome.tick_hz.max(1)),
    ));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut seq = Seq(0);
    let mut next_ping = joined_at;
    let mut ping_sent: Option<(u32, Instant)> = None;

    let outcome: Result<(), NetError> = loop {
        tokio::select! {
            () = sleep_until(deadline) => break Ok(()),
            _ = ticker.tick() => {
                if !config.idle {
                    seq = seq.next();
                    let (held, aim) = brain.decide(me, view.snapshot.as_ref());
                    let input = view.input_message(InputFrame { seq, buttons: held, aim });
                    if let Err(err) = conn.send(&input).await {
                        break Err(err);
                    }
                }
                let now = Instant::now();
                if now >= next_ping && ping_sent.is_none() {
                    let nonce = seq.0;
                    if let Err(err) = conn.send(&ClientMsg::Ping { nonce }).await {
                        break Err(err);
                    }
                    ping_sent = Some((nonce, now));
                    next_ping = now + PING_EVERY;
                }
            }
            received = conn.recv() => match received {
                Ok(Some(msg)) => {
                    if let (ServerMsg::Pong { nonce }, Some((sent_nonce, sent_at))) = (&msg, ping_sent)
                        && *nonce == sent_nonce
                    {
                        stats.rtts_ms.push(sent_at.elapsed().as_secs_f64() * 1e3);
                        ping_sent = None;
                    }
                    if let ServerMsg::Disconnect { reason, detail } = &msg {
                        stats.error = Some(format!("server closed us ({reason:?}): {detail}"));
                    }
                    if view.apply(&msg).is_err() {
                        stats.decode_errors += 1;
                    }
                    if matches!(msg, ServerMsg::Snapshot(_)) {
                        stats.snapshot_sizes.push(conn.last_message_len as u32);
                        // An idle bot acknowledges each snapshot on its own; a playing
                        // one does so on its next input.
                        if config.idle
                            && let Some(ack) = view.ack_message()
                            && let Err(err) = conn.send(&ack).await
                        {
                            break Err(err);
                        }
                    }
                    view.events.clear();
                }
                Ok(None) => break Err(NetError::Closed),
                Err(NetError::Decode(_)) => stats.decode_errors += 1,
                Err(err) => break Err(err),
            },
        }
    };
    stats.played = joined_at.elapsed().min(config.duration);
    stats.snapshots = view.snapshots_received + conn.skipped_snapshots;
    stats.snapshot_stats = view.snapshot_stats;
    if let Err(err) = outcome {
        stats.failed = true;
        stats.disconnected = true;
        stats.error.get_or_insert_with(|| err.to_string());
    }
    stats.down_bytes = conn.traffic.down_bytes;
    stats.up_bytes = conn.traffic.up_bytes;
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
    stats
}

fn summarize(config: &BotsConfig, stats: &[BotStats]) -> Report {
    let joined: Vec<&BotStats> = stats.iter().filter(|s| s.joined).collect();
    let per_s = |value: &dyn Fn(&BotStats) -> f64| -> Vec<f64> {
        joined
            .iter()
            .map(|s| value(s) / s.played.as_secs_f64().max(1e-3))
            .collect()
    };
    let snapshot_rates = per_s(&|s| s.snapshots as f64);
    let mut rtts: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.rtts_ms.iter().copied())
        .collect();
    rtts.sort_by(f64::total_cmp);
    let mut sizes: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.snapshot_sizes.iter().map(|&n| f64::from(n)))
        .collect();
    sizes.sort_by(f64::total_cmp);
    let total = |field: fn(&SnapshotStats) -> u64| -> u64 {
        stats.iter().map(|s| field(&s.snapshot_stats)).sum()
    };
    let moving_players = total(|s| s.moving_players);
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
        snapshots_per_bot_per_s: mean(&snapshot_rates),
        min_snapshots_per_bot_per_s: snapshot_rates.iter().copied().fold(f64::NAN, f64::min),
        down_bytes_per_bot_per_s: mean(&per_s(&|s| s.down_bytes as f64)),
        up_bytes_per_bot_per_s: mean(&per_s(&|s| s.up_bytes as f64)),
        rtt_ms_p50: percentile(&rtts, 0.50),
        rtt_ms_p99: percentile(&rtts, 0.99),
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
        errors,
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

    #[test]
    fn percentile_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
