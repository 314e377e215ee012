//! Lag compensation over real sockets: a shooter a 150 ms round trip away (through the
//! latency proxy) leads a target that crosses its view, aiming where it draws the target,
//! as a player would. Judged where the shooter saw the target, most shots hit; judged
//! where the target is now (`--max-rewind-ms 0`), most miss. A claim a second old is
//! clamped to the cap and counted.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use client::core::RoomView;
use client::native::{Connection, Hello};
use client::session::Session;
use glam::Vec2;
use harness::proxy::{Delay, Proxy};
use shared::consts::tuning::{PLAYER_RADIUS, PROJECTILE_RADIUS, PROJECTILE_SPEED};
use shared::game::{GameEvent, InputFrame, ViewTime, buttons};
use shared::protocol::{ServerMsg, Welcome};
use shared::{Seq, Tick};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, sleep_until, timeout};

use crate::support::*;

/// Half the round trip the proxy adds, each way.
const ONE_WAY: Duration = Duration::from_millis(75);
const JITTER: Duration = Duration::from_millis(5);
/// How long the shooter shoots; then it waits for its last shots to land.
const SHOOTING: Duration = Duration::from_secs(20);
const SETTLING: Duration = Duration::from_millis(1500);
/// The target runs one way this long, then back.
const LEG: Duration = Duration::from_secs(2);
/// Ticks between shots: longer than the fire cooldown, so every press fires.
const TICKS_BETWEEN_SHOTS: u32 = 20;
/// The drawn target must run at least this fast, and steadily, for the shooter to lead
/// it: a player does not fire into a turn.
const STEADY_SPEED: f32 = 240.0;
const STEADY_WOBBLE: f32 = 30.0;
/// Drawn positions the shooter watches to judge the target's speed: 6 ticks twice over.
const WATCH: usize = 13;
/// Generous: two runs of 20 s each on a busy machine.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
const METRIC: &str = "skirmish_rewind_claims_clamped_total";

/// An open arena, no walls: shooter and target spawn 350 units apart, one above the
/// other, and the target runs across the shooter's view.
fn open_range() -> PathBuf {
    let path = fresh_data_dir().with_extension("map.json");
    let map = r#"{"name":"range","size":[1400,700],"walls":[],"spawns":[[700,150],[700,500]]}"#;
    std::fs::write(&path, map).expect("write the map");
    path
}

#[derive(Debug, Default)]
struct Tally {
    shots: u32,
    hits: u32,
    clamped: f64,
}

impl Tally {
    fn rate(&self) -> f64 {
        f64::from(self.hits) / f64::from(self.shots.max(1))
    }
}

/// Runs left and right across the range, two seconds each way, until `until`.
async fn strafe(url: String, until: Instant) {
    let mut conn = Connection::join(&url, Hello::new("target").in_room("range"))
        .await
        .expect("the target joins");
    let mut view = RoomView::default();
    let _ = view.apply(&ServerMsg::Welcome(Box::new(conn.welcome.clone())));
    let mut ticker = interval(tick_period(&conn.welcome));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let started = Instant::now();
    let mut seq = Seq(0);
    loop {
        tokio::select! {
            () = sleep_until(until) => break,
            _ = ticker.tick() => {
                seq = seq.next();
                // Half a leg first, so the target swings about where it spawned.
                let legs = started.elapsed().as_secs_f64() / LEG.as_secs_f64() + 0.5;
                let held = if (legs as u64).is_multiple_of(2) { buttons::RIGHT } else { buttons::LEFT };
                let frame = InputFrame { seq, buttons: held, aim: 0.0, view: None };
                if let Some(msg) = view.queue_input(frame) {
                    conn.send(&msg).await.expect("the target sends its input");
                }
            }
            received = conn.recv() => {
                let msg = received.expect("the target receives").expect("the target stays");
                let _ = view.apply(&msg);
            }
        }
    }
    let _ = conn.close().await;
}

fn tick_period(welcome: &Welcome) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(welcome.tick_hz.max(1)))
}

/// Where to aim to meet a target drawn along `track` (oldest first, one per tick), if
/// it runs steadily: its drawn position now, led by its drawn velocity over the flight.
fn lead(track: &VecDeque<Vec2>, from: Vec2, tick_secs: f32) -> Option<Vec2> {
    if track.len() < WATCH {
        return None;
    }
    let half = (WATCH - 1) / 2;
    let span = half as f32 * tick_secs;
    let recent = (track[WATCH - 1] - track[half]) / span;
    let before = (track[half] - track[0]) / span;
    if recent.length() < STEADY_SPEED || (recent - before).length() > STEADY_WOBBLE {
        return None;
    }
    let now = track[WATCH - 1];
    // The shot starts a player's and a projectile's radius out, then flies at its speed.
    let mut flight = 0.0;
    for _ in 0..8 {
        let meet = now + recent * flight;
        let gap = (meet - from).length() - (PLAYER_RADIUS + PROJECTILE_RADIUS + 1.0);
        flight = gap.max(0.0) / PROJECTILE_SPEED;
    }
    Some(now + recent * flight)
}

/// The shooter plays through the proxy for `SHOOTING` and counts its shots and the
/// hits the server reports, then reads how many claims the server clamped.
async fn shoot_at_a_runner(server: &TestServer) -> Tally {
    let proxy = Proxy::start(
        server.addr,
        Delay {
            latency: ONE_WAY,
            jitter: JITTER,
        },
    )
    .await
    .expect("the proxy starts");
    let url = format!("ws://{}/ws", proxy.addr());
    let mut conn = Connection::join(&url, Hello::new("shooter").in_room("range"))
        .await
        .expect("the shooter joins through the proxy");
    let mut session = Session::new(conn.welcome.clone());
    let me = session.me();
    let tick = tick_period(&conn.welcome);
    let start = Instant::now();
    let stop_shooting = start + SHOOTING;
    let target = tokio::spawn(strafe(server.ws_url(), stop_shooting + SETTLING));

    let mut ticker = interval(tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut tally = Tally::default();
    let mut track = VecDeque::with_capacity(WATCH + 1);
    let mut ticks_since_shot = TICKS_BETWEEN_SHOTS;
    let mut last_frame_at = 0.0;
    let mut aim = 0.0;
    // After a kill the target is dead though still drawn alive for a moment; the
    // shooter waits to see it die and come back.
    let mut killed_it = false;
    loop {
        tokio::select! {
            () = sleep_until(stop_shooting + SETTLING) => break,
            _ = ticker.tick() => {
                let now = start.elapsed().as_secs_f64();
                let frame = session.interp.frame(now, now - last_frame_at).unwrap_or_default();
                last_frame_at = now;
                match frame.players.iter().find(|p| p.id != me) {
                    Some(runner) if runner.alive => {
                        track.push_back(runner.pos);
                        if track.len() > WATCH {
                            track.pop_front();
                        }
                    }
                    _ => {
                        track.clear();
                        killed_it = false;
                    }
                }
                ticks_since_shot += 1;
                let mut held = 0;
                let shooting = Instant::now() < stop_shooting
                    && ticks_since_shot >= TICKS_BETWEEN_SHOTS
                    && !killed_it;
                if let Some(from) = session.predictor.position()
                    && let Some(meet) = lead(&track, from, tick.as_secs_f32())
                    && shooting
                {
                    let toward = meet - from;
                    aim = toward.y.atan2(toward.x);
                    held = buttons::FIRE;
                    ticks_since_shot = 0;
                    tally.shots += 1;
                }
                if let Some(msg) = session.input(held, aim) {
                    let bytes = session.encode(&msg, now);
                    conn.send_raw(bytes).await.expect("the shooter sends its input");
                }
            }
            received = conn.recv() => {
                let msg = received.expect("the shooter receives").expect("the shooter stays");
                session
                    .receive(&msg, start.elapsed().as_secs_f64())
                    .expect("every snapshot applies");
                match msg {
                    ServerMsg::Event(GameEvent::Hit { by, .. }) if by == me => tally.hits += 1,
                    ServerMsg::Event(GameEvent::Killed { by, .. }) if by == me => killed_it = true,
                    _ => {}
                }
            }
        }
    }
    target.await.expect("the target plays to the end");
    let _ = conn.close().await;
    tally.clamped = clamped_claims(server).await;
    tally
}

async fn clamped_claims(server: &TestServer) -> f64 {
    let (status, body) = http_get_at(server.admin_addr(), "/metrics").await;
    assert_eq!(status, 200, "the admin port serves metrics");
    harness::Metrics::parse(&body)
        .value(METRIC)
        .expect("the clamped-claims counter is exported")
}

async fn range_server(max_rewind_ms: u16) -> TestServer {
    let map = open_range();
    start_server(move |config| {
        config.map = Some(map);
        config.max_rewind_ms = max_rewind_ms;
        config.match_score_limit = 10_000;
        // The round trip is measured from the first pongs on, as it would be in a match.
        config.ping_interval_secs = 0.5;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_150_ms_shots_aimed_at_the_drawn_target_hit_only_with_lag_compensation() {
    let run = async {
        let compensated = {
            let server = range_server(shared::consts::DEFAULT_MAX_REWIND_MS).await;
            shoot_at_a_runner(&server).await
        };
        let uncompensated = {
            let server = range_server(0).await;
            shoot_at_a_runner(&server).await
        };
        (compensated, uncompensated)
    };
    let (compensated, uncompensated) = timeout(TEST_DEADLINE, run)
        .await
        .expect("both runs finish in time");
    println!(
        "lag compensation, {} ms round trip: with {:.0}% ({}/{} shots hit, {} claims clamped), \
         without {:.0}% ({}/{})",
        2 * ONE_WAY.as_millis(),
        100.0 * compensated.rate(),
        compensated.hits,
        compensated.shots,
        compensated.clamped,
        100.0 * uncompensated.rate(),
        uncompensated.hits,
        uncompensated.shots,
    );
    for tally in [&compensated, &uncompensated] {
        assert!(
            tally.shots >= 10,
            "the shooter found the target running steadily often enough: {tally:?}"
        );
    }
    assert!(
        compensated.rate() > 0.5,
        "most shots aimed at the drawn target hit when judged where it was drawn: {compensated:?}"
    );
    assert!(
        compensated.rate() > uncompensated.rate() + 0.25,
        "compensation should hit clearly more often: {compensated:?} vs {uncompensated:?}"
    );
    assert!(
        compensated.clamped <= f64::from(compensated.shots) / 4.0,
        "an honest shooter's claims are believed: {compensated:?}"
    );
}

#[tokio::test]
async fn a_claimed_view_a_second_old_is_clamped_to_the_cap_and_counted() {
    let server = range_server(shared::consts::DEFAULT_MAX_REWIND_MS).await;
    let mut forger = join_room(&server, "forger", "range").await;
    let me = forger.view.me.expect("seated");
    let seen = next_snapshot(&mut forger).await;
    let from = seen
        .players
        .iter()
        .find(|p| p.id == me)
        .expect("the forger is in the room")
        .pos;
    let a_second_before = Tick(seen.tick.0.wrapping_sub(60));
    let forged = InputFrame {
        seq: Seq(1),
        buttons: buttons::FIRE,
        aim: 0.0,
        view: Some(ViewTime::between(a_second_before, a_second_before, 0.0)),
    };
    forger
        .send_input(forged)
        .await
        .expect("send the forged shot");
    let (shot_at, shot) = recv_until(&mut forger, |_, view| {
        let snapshot = view.snapshot.as_ref()?;
        let shot = snapshot.projectiles.iter().find(|p| p.owner == me)?;
        Some((snapshot.tick, shot.pos))
    })
    .await;
    // A snapshot goes out every other tick, so the shot showed up at most two ticks
    // after it was fired, and it had flown the cap (15 ticks) plus those.
    let flown_ticks = ((shot - from).length() - (PLAYER_RADIUS + PROJECTILE_RADIUS + 1.0))
        / (PROJECTILE_SPEED / 60.0);
    assert!(
        (14.5..=18.5).contains(&flown_ticks),
        "the shot was judged 15 ticks back (the cap), not 60: it had flown {flown_ticks} ticks \
         by tick {shot_at:?}"
    );
    let counted = timeout(PATIENCE, async {
        loop {
            let clamped = clamped_claims(&server).await;
            if clamped >= 1.0 {
                return clamped;
            }
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the clamp is counted");
    assert_eq!(counted, 1.0, "one forged claim, one clamp");
}
