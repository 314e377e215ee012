//! Running as an Agones GameServer (`AGONES_SDK_HTTP_PORT` set): one task, owned by
//! the `Server`, tells the SDK server that the process is ready (once, after the game
//! port listens), pings its health on a timer, keeps the player count in a label and a
//! Counter, and watches the GameServer so a shutdown Agones starts drains the process.
//! The `Server` stops the task after its own shutdown and then calls Shutdown, so
//! Agones deletes the pod only once every player was told to go and every match saved.
//! An SDK server that fails or is away costs nothing but log lines: every duty is
//! retried with backoff and the game goes on.

mod game_server;
mod sdk;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

pub(crate) use self::sdk::Sdk;
use self::sdk::SdkError;
use crate::ops::backoff::Backoff;
use crate::rooms::directory::Directory;

/// The label (`agones.dev/sdk-players`) and the Counter that carry the player count.
pub(crate) const PLAYERS: &str = "players";
/// The label (`agones.dev/sdk-draining`) set to "true" once the process drains, which a
/// GameServerAllocation's selector excludes: Agones's SDK has no way back from Ready.
pub(crate) const DRAINING: &str = "draining";
/// How often the GameServer is read to see whether Agones is shutting it down.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long the start waits for Agones to give the GameServer an address and port.
const ADDRESS_PATIENCE: Duration = Duration::from_secs(30);
/// Tries of the final Shutdown before the process exits without it.
const SHUTDOWN_TRIES: u32 = 5;

/// The SDK client's task and what stops it.
#[derive(Debug)]
pub(crate) struct Agones {
    sdk: Sdk,
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl Agones {
    /// Starts the task; call once the game port is listening.
    pub(crate) fn start(sdk: Sdk, directory: Arc<dyn Directory>, health_every: Duration) -> Agones {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(sdk, directory, health_every, stop.clone()));
        Agones { sdk, task, stop }
    }

    /// Stops the task (and its health pings), then tells Agones the process is done.
    pub(crate) async fn finish(mut self) {
        self.stop.cancel();
        let _ = (&mut self.task).await;
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
        for attempt in 1..=SHUTDOWN_TRIES {
            match self.sdk.shutdown().await {
                Ok(()) => {
                    tracing::info!("told Agones the GameServer is done (Shutdown)");
                    return;
                }
                Err(err) if attempt == SHUTDOWN_TRIES => tracing::error!(
                    %err,
                    "Agones was not told of the shutdown; it deletes the pod once the process exits"
                ),
                Err(err) => {
                    tracing::warn!(%err, attempt, "Agones Shutdown failed; trying again");
                    sleep(backoff.next()).await;
                }
            }
        }
    }

    /// Stops the task without telling Agones anything (a `Server` dropped unshut).
    pub(crate) fn abort(&self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// The GameServer's address and port as `http(s)://…`, the URL other processes of a
/// cluster send players to. Agones fills them in when it schedules the GameServer,
/// which may be a moment after the process starts, so this asks until they are there.
pub(crate) async fn public_url(sdk: &Sdk, tls: bool) -> anyhow::Result<String> {
    let deadline = Instant::now() + ADDRESS_PATIENCE;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let outcome = sdk.game_server().await;
        if let Ok(server) = &outcome
            && let Some(url) = server.public_url(tls)
        {
            tracing::info!(%url, "public URL from the Agones GameServer");
            return Ok(url);
        }
        if Instant::now() >= deadline {
            return match outcome {
                Ok(_) => Err(anyhow::anyhow!(
                    "the Agones GameServer has no address and port"
                )),
                Err(err) => Err(err).context("read the Agones GameServer"),
            }
            .with_context(|| {
                format!(
                    "no public URL for the cluster after {ADDRESS_PATIENCE:?}; give --public-url"
                )
            });
        }
        sleep(backoff.next()).await;
    }
}

/// The task: each duty on its own schedule, all in one loop.
async fn run(
    sdk: Sdk,
    directory: Arc<dyn Directory>,
    health_every: Duration,
    stop: CancellationToken,
) {
    let now = Instant::now();
    let mut changes = Some(directory.changes());
    let mut ready = Duty::new("Ready", now);
    let mut health = Duty::new("Health", now);
    let mut label = Published::new(Duty::new("the players label", now));
    let mut counter = Published::new(Duty::new("the players Counter", now));
    let mut draining = Duty::new("the draining label", now);
    let mut watch = Duty::new("reading the GameServer", now);
    let (mut is_ready, mut marked_draining) = (false, false);
    loop {
        let players = count_players(directory.as_ref());
        let mut wake = health.due.min(watch.due);
        if !is_ready {
            wake = wake.min(ready.due);
        }
        for published in [&label, &counter] {
            if published.sent != Some(players) {
                wake = wake.min(published.duty.due);
            }
        }
        if directory.is_draining() && !marked_draining {
            wake = wake.min(draining.due);
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            changed = next_change(&mut changes) => {
                if changed.is_err() {
                    changes = None;
                }
                continue;
            }
            () = sleep_until(wake) => {}
        }
        let now = Instant::now();
        if !is_ready && now >= ready.due {
            is_ready = ready.done(sdk.ready().await).is_some();
            if is_ready {
                tracing::info!("told Agones the GameServer is Ready");
            }
        }
        if now >= health.due {
            health.done(sdk.health().await);
            health.due = health.due.max(now + health_every);
        }
        let players = count_players(directory.as_ref());
        if label.sent != Some(players) && now >= label.duty.due {
            label.publish(players, sdk.set_label(PLAYERS, &players.to_string()).await);
        }
        if counter.sent != Some(players) && now >= counter.duty.due {
            counter.publish(players, sdk.set_counter(PLAYERS, players).await);
        }
        if directory.is_draining() && !marked_draining && now >= draining.due {
            marked_draining = draining
                .done(sdk.set_label(DRAINING, "true").await)
                .is_some();
        }
        if now >= watch.due {
            if let Some(server) = watch.done(sdk.game_server().await)
                && server.shutting_down()
                && !directory.is_draining()
            {
                tracing::info!(
                    state = %server.state,
                    "Agones is shutting the GameServer down: draining"
                );
                directory.drain();
            }
            watch.due = watch.due.max(now + WATCH_EVERY);
        }
    }
}

/// The next move of the directory's change counter; never, once its sender is gone.
async fn next_change(
    changes: &mut Option<watch::Receiver<u64>>,
) -> Result<(), watch::error::RecvError> {
    match changes {
        Some(changes) => changes.changed().await,
        None => std::future::pending().await,
    }
}

/// Players seated in this process's rooms.
fn count_players(directory: &dyn Directory) -> u64 {
    directory
        .list()
        .iter()
        .map(|room| u64::from(room.players))
        .sum()
}

/// One kind of call: when it is next due, and whether it is failing, so a failure is
/// logged when it starts and when it ends, not at every retry.
#[derive(Debug)]
struct Duty {
    name: &'static str,
    due: Instant,
    backoff: Backoff,
    failures: u32,
}

impl Duty {
    fn new(name: &'static str, now: Instant) -> Duty {
        Duty {
            name,
            due: now,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(10)),
            failures: 0,
        }
    }

    /// Records a call's outcome: after a failure the call is due again after the
    /// backoff; the value on success.
    fn done<T>(&mut self, outcome: Result<T, SdkError>) -> Option<T> {
        match outcome {
            Ok(value) => {
                if self.failures > 0 {
                    tracing::info!(
                        duty = self.name,
                        failures = self.failures,
                        "the Agones SDK server answers again"
                    );
                }
                self.failures = 0;
                self.backoff.reset();
                Some(value)
            }
            Err(err) => {
                self.failures += 1;
                let pause = self.backoff.next();
                // The first failure, then one line per 30, so an absent sidecar is plain
                // in the log without filling it.
                if self.failures % 30 == 1 {
                    tracing::warn!(
                        duty = self.name,
                        %err,
                        failures = self.failures,
                        retry_in = ?pause,
                        "an Agones SDK call failed; the game goes on and the call is retried"
                    );
                }
                self.due = Instant::now() + pause;
                None
            }
        }
    }
}

/// A value kept in Agones: the last one it accepted.
#[derive(Debug)]
struct Published {
    duty: Duty,
    sent: Option<u64>,
}

impl Published {
    fn new(duty: Duty) -> Published {
        Published { duty, sent: None }
    }

    fn publish(&mut self, value: u64, outcome: Result<(), SdkError>) {
        if self.duty.done(outcome).is_some() {
            self.sent = Some(value);
        }
    }
}
