//! Prediction against the real server: exact on a lossless link, immediate and only gently
//! corrected behind 100 ms of latency.

use std::time::Duration;

use client::native::{Connection, Hello};
use client::session::Session;
use glam::Vec2;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shared::game::buttons;
use shared::protocol::ServerMsg;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};

use crate::delay_proxy;

/// Latency added in each direction by the proxy.
const ONE_WAY_DELAY: Duration = Duration::from_millis(100);

/// The largest correction allowed behind latency, in world units (a player is 40 wide).
const CORRECTION_BOUND: f32 = 2.0;

/// Generous: the tests play for seconds, and a busy machine may slow them.
const TEST_DEADLINE: Duration = Duration::from_secs(90);

async fn start_server() -> server::Server {
    let mut config = server::Config::for_addr("127.0.0.1:0".parse().expect("a valid address"));
    config.data_dir = test_scratch::fresh_folder(
        &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("client-servers"),
    );
    server::start(config).await.expect("server starts")
}

/// Random held keys (any of the five buttons) that change every few ticks, and a random aim.
struct RandomPlayer {
    rng: SmallRng,
    held: u8,
    ticks_left: u32,
}

impl RandomPlayer {
    fn new(seed: u64) -> RandomPlayer {
        RandomPlayer {
            rng: SmallRng::seed_from_u64(seed),
            held: 0,
            ticks_left: 0,
        }
    }

    fn next(&mut self) -> (u8, f32) {
        if self.ticks_left == 0 {
            self.held = self.rng.random_range(0..=buttons::ALL) & buttons::ALL;
            self.ticks_left = self.rng.random_range(5..40);
        }
        self.ticks_left -= 1;
        (self.held, self.rng.random_range(-3.0..3.0))
    }
}

/// Plays random inputs at the tick rate for `duration`, then waits until the server has
/// acknowledged every input, so each one was checked against a snapshot. Returns how far
/// the predicted player travelled.
async fn play_randomly(
    conn: &mut Connection,
    session: &mut Session,
    duration: Duration,
    seed: u64,
) -> f32 {
    let start = Instant::now();
    let mut player = RandomPlayer::new(seed);
    let mut ticker = interval(Duration::from_secs_f32(session.tick_secs()));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut travelled = 0.0;
    let mut last_pos = session.predictor.position();
    loop {
        let playing = start.elapsed() < duration;
        let now = start.elapsed().as_secs_f64();
        if !playing {
            // The last ticks may wait for a batch that will not fill.
            if let Some(rest) = session.flush_inputs() {
                let bytes = session.encode(&rest, now);
                conn.send_raw(bytes).await.expect("send the last inputs");
            }
            if session.predictor.unacked() == 0 {
                return travelled;
            }
        }
        tokio::select! {
            _ = ticker.tick(), if playing => {
                let (held, aim) = player.next();
                if let Some(inputs) = session.input(held, aim) {
                    let bytes = session.encode(&inputs, now);
                    conn.send_raw(bytes).await.expect("send input");
                }
                let pos = session.predictor.position();
                if let (Some(a), Some(b)) = (last_pos, pos) {
                    travelled += a.distance(b);
                }
                last_pos = pos;
            }
            received = conn.recv() => {
                let msg = received.expect("receive").expect("the server keeps the connection open");
                session
                    .receive(&msg, start.elapsed().as_secs_f64())
                    .expect("every snapshot applies");
            }
        }
    }
}

/// Receives until the session has placed the local player.
async fn wait_for_first_snapshot(conn: &mut Connection, session: &mut Session) -> Vec2 {
    loop {
        let msg = conn.recv().await.expect("receive").expect("open");
        session.receive(&msg, 0.0).expect("every snapshot applies");
        if let Some(pos) = session.predictor.position() {
            return pos;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossless_link_has_no_mispredictions_over_ten_seconds_of_random_input() {
    let server = start_server().await;
    let run = async {
        let mut conn = Connection::join(&server.ws_url(), Hello::new("solo").in_room("solo"))
            .await
            .expect("join");
        let mut session = Session::new(conn.welcome.clone());
        wait_for_first_snapshot(&mut conn, &mut session).await;
        let travelled = play_randomly(&mut conn, &mut session, Duration::from_secs(10), 11).await;
        (session, travelled)
    };
    let (session, travelled) = timeout(TEST_DEADLINE, run)
        .await
        .expect("test finishes in time");
    let stats = session.predictor.stats;
    eprintln!("lossless: travelled {travelled:.0} units, {stats:?}");
    assert!(
        travelled > 1000.0,
        "random inputs should move the player around, travelled {travelled}"
    );
    assert!(
        stats.reconciliations >= 250,
        "about 30 snapshots a second for 10 s should re-base the prediction: {stats:?}"
    );
    assert_eq!(
        stats.mispredictions, 0,
        "prediction should match the server: {stats:?}"
    );
    assert_eq!(stats.max_correction, 0.0, "nothing to correct: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_latency_the_player_moves_at_once_and_corrections_stay_small() {
    let server = start_server().await;
    let proxy = delay_proxy::start(server.addr, ONE_WAY_DELAY).await;
    let url = format!("ws://{proxy}/ws");
    let run = async {
        let mut conn = Connection::join(&url, Hello::new("far").in_room("far"))
            .await
            .expect("join through the proxy");
        let mut session = Session::new(conn.welcome.clone());
        let start_pos = wait_for_first_snapshot(&mut conn, &mut session).await;

        // One input: the player moves in the very same frame, long before any answer.
        let held = if start_pos.x < session.map().size.x / 2.0 {
            buttons::RIGHT
        } else {
            buttons::LEFT
        };
        let sent_at = Instant::now();
        let gathered = session.input(held, 0.0);
        let input = gathered
            .or_else(|| session.flush_inputs())
            .expect("the one input is sent at once");
        let bytes = session.encode(&input, 0.0);
        conn.send_raw(bytes).await.expect("send input");
        let moved = session.predictor.position().expect("placed");
        let acked_after = loop {
            let msg = conn.recv().await.expect("receive").expect("open");
            session
                .receive(&msg, sent_at.elapsed().as_secs_f64())
                .expect("every snapshot applies");
            let acked = matches!(msg, ServerMsg::Snapshot(_))
                && session
                    .view
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| s.ack_input.0 >= 1);
            if acked {
                break sent_at.elapsed();
            }
        };
        let travelled = play_randomly(&mut conn, &mut session, Duration::from_secs(6), 29).await;
        (session, start_pos, moved, held, acked_after, travelled)
    };
    let (session, start_pos, moved, held, acked_after, travelled) = timeout(TEST_DEADLINE, run)
        .await
        .expect("test finishes in time");
    let stats = session.predictor.stats;
    eprintln!(
        "latency {ONE_WAY_DELAY:?} each way: first ack after {acked_after:?}, travelled {travelled:.0} units, {stats:?}"
    );
    let step = moved.x - start_pos.x;
    let toward = if held == buttons::RIGHT { 1.0 } else { -1.0 };
    assert!(
        step * toward > 0.0,
        "the first input moves the player before the server answers (moved {step})"
    );
    assert!(
        acked_after >= ONE_WAY_DELAY * 2,
        "the proxy should delay the answer by a round trip, it took {acked_after:?}"
    );
    assert!(travelled > 500.0, "the player moved around: {travelled}");
    assert!(
        stats.max_correction < CORRECTION_BOUND,
        "every correction should stay under {CORRECTION_BOUND} units: {stats:?}"
    );
}
