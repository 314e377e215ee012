//! The operations console in real Chromium: an operator logs in with the token, sees
//! the figures and the charts move while bots play, kicks a bot from the room inspector
//! (and the bot reports why it was closed), and broadcasts a message that a player's
//! page shows. Screenshots of both pages are saved.

use std::time::Duration;

use client::bots::{BotsConfig, Report};
use e2e::{Driver, Page, Setup, close_pages};
use fantoccini::Locator;
use serde_json::Value;
use tokio::task::JoinHandle;

const TOKEN: &str = "e2e-operators-token-0123456789";
const ROOM: &str = "arena";
const ANNOUNCEMENT: &str = "The server restarts at noon";
/// What the console page says about itself.
const CONSOLE: &str = "return window.skirmishConsole ? window.skirmishConsole() : null;";

fn bots(server: &server::Server, count: usize, prefix: &str) -> JoinHandle<Report> {
    tokio::spawn(client::bots::run(BotsConfig {
        url: server.ws_url(),
        count,
        duration: Duration::from_secs(90),
        room: Some(ROOM.into()),
        name_prefix: prefix.into(),
        seed: 7,
        ramp: Duration::from_millis(500),
        idle: false,
        trust: client::native::Trust::public(),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn an_operator_watches_kicks_a_bot_and_broadcasts_from_the_console() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    std::fs::create_dir_all(&setup.artifacts)?;
    let token_file = setup
        .artifacts
        .join(format!("console-{}.token", std::process::id()));
    std::fs::write(&token_file, TOKEN)?;
    let server = setup
        .start_server_with(|config| config.admin_token_file = Some(token_file))
        .await?;
    let crowd = bots(&server, 3, "bot");
    let victim = bots(&server, 1, "victim");
    let driver = Driver::start(&setup).await?;
    let player = driver
        .open(
            "console-player",
            &format!("{}/?room={ROOM}&name=watcher", server.http_url()),
        )
        .await?;
    let console = driver
        .open("console", &format!("{}/admin", server.admin_url()))
        .await?;

    let outcome = operate(&console, &player, victim).await;
    // Screenshots and errors are collected whatever happened, so a failure can be seen.
    // The console's window is made tall enough to show every panel at once.
    console.client.set_window_size(1280, 2200).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let closed = close_pages(vec![console, player], &setup.artifacts, outcome).await;
    crowd.abort();
    closed
}

async fn operate(console: &Page, player: &Page, victim: JoinHandle<Report>) -> anyhow::Result<()> {
    player
        .wait_for_probe("the player's page in the room", |probe| {
            probe["phase"] == "playing"
        })
        .await?;
    log_in(console).await?;
    watch_figures_move(console).await?;
    kick_the_victim(console, victim).await?;
    broadcast(console, player).await
}

async fn log_in(console: &Page) -> anyhow::Result<()> {
    let client = &console.client;
    client
        .find(Locator::Css("#token"))
        .await?
        .send_keys(TOKEN)
        .await?;
    client
        .find(Locator::Css("#name"))
        .await?
        .send_keys("e2e")
        .await?;
    client.find(Locator::Css("#login")).await?.click().await?;
    console
        .wait_for_eval("the console's socket", CONSOLE, |state| {
            state["connected"] == true && state["samples"].as_u64() >= Some(1)
        })
        .await?;
    Ok(())
}

async fn watch_figures_move(console: &Page) -> anyhow::Result<()> {
    let first = console.eval(CONSOLE).await?;
    let samples = first["samples"].as_u64().unwrap_or(0);
    let uptime = first["last"]["uptime_s"].as_f64().unwrap_or(0.0);
    let points = first["chartPoints"][0].as_u64().unwrap_or(0);
    let later = console
        .wait_for_eval(
            "new samples, a later uptime and longer charts",
            CONSOLE,
            |state| {
                state["samples"].as_u64() >= Some(samples + 3)
                    && state["last"]["uptime_s"].as_f64() > Some(uptime + 2.0)
                    && state["chartPoints"][0].as_u64() > Some(points)
                    && state["last"]["players"].as_i64() == Some(5)
            },
        )
        .await?;
    let last = &later["last"];
    anyhow::ensure!(
        last["bytes_out_per_s"].as_f64() > Some(0.0),
        "snapshots flow to the players: {last}"
    );
    anyhow::ensure!(
        last["threads"]
            .as_array()
            .is_some_and(|threads| threads.iter().any(|t| t["duration_p99_ms"].is_number())),
        "a room thread's tick times show: {last}"
    );
    let tiles = console.texts("#stat-players").await?;
    anyhow::ensure!(tiles == ["5"], "the players tile shows 5, not {tiles:?}");
    let charts = console.texts(".chart h3").await?;
    anyhow::ensure!(charts.len() >= 6, "the charts are drawn: {charts:?}");
    Ok(())
}

async fn kick_the_victim(console: &Page, victim: JoinHandle<Report>) -> anyhow::Result<()> {
    console
        .wait_for_eval("the arena in the rooms table", CONSOLE, |state| {
            state["rooms"]
                .as_array()
                .is_some_and(|rooms| rooms.iter().any(|room| room["id"] == ROOM))
        })
        .await?;
    console
        .client
        .find(Locator::Css(&format!(
            "#rooms tr[data-room='{ROOM}'] button.inspect"
        )))
        .await?
        .click()
        .await?;
    let inspected = console
        .wait_for_eval("the victim's ping in the inspector", CONSOLE, |state| {
            victim_row(state).is_some_and(|row| row["ping_ms"].is_number())
        })
        .await?;
    let row = victim_row(&inspected).cloned().unwrap_or_default();
    for field in [
        "bytes_in_per_s",
        "bytes_out_per_s",
        "inputs_per_s",
        "ack_lag_ms",
    ] {
        anyhow::ensure!(row[field].is_number(), "the inspector shows {field}: {row}");
    }
    console
        .client
        .find(Locator::Css("#kick-reason"))
        .await?
        .send_keys("e2e test")
        .await?;
    console
        .client
        .find(Locator::Css(
            "#inspector-players tr[data-name='victim0'] button.kick",
        ))
        .await?
        .click()
        .await?;
    let report = tokio::time::timeout(e2e::PATIENCE, victim).await??;
    eprintln!("the kicked bot reported: {:?}", report.errors);
    anyhow::ensure!(
        report.failures.get("closed_4008_kicked") == Some(&1),
        "the bot was closed with 4008: {:?}",
        report.failures
    );
    anyhow::ensure!(
        report
            .errors
            .iter()
            .any(|error| error.contains("kicked by an operator: e2e test")),
        "the bot reports the close reason: {:?}",
        report.errors
    );
    console
        .wait_for_eval(
            "the kick in the audit log, the victim gone",
            CONSOLE,
            |state| {
                victim_row(state).is_none()
                    && state["audit"].as_array().is_some_and(|audit| {
                        audit.iter().any(|entry| {
                            entry["action"] == "kick"
                                && entry["who"]
                                    .as_str()
                                    .is_some_and(|who| who.starts_with("e2e"))
                        })
                    })
            },
        )
        .await?;
    Ok(())
}

fn victim_row(state: &Value) -> Option<&Value> {
    state["inspect"]["players"]
        .as_array()?
        .iter()
        .find(|player| player["name"] == "victim0")
}

async fn broadcast(console: &Page, player: &Page) -> anyhow::Result<()> {
    console
        .client
        .find(Locator::Css("#broadcast-text"))
        .await?
        .send_keys(ANNOUNCEMENT)
        .await?;
    console
        .client
        .find(Locator::Css("#broadcast-send"))
        .await?
        .click()
        .await?;
    player
        .wait_for_texts(
            "#announcement",
            "the announcement on the player's page",
            |texts| texts.iter().any(|text| text == ANNOUNCEMENT),
        )
        .await?;
    player
        .wait_for_probe("the announcement in the probe", |probe| {
            probe["announcements"]
                .as_array()
                .is_some_and(|all| all.iter().any(|text| text == ANNOUNCEMENT))
        })
        .await?;
    console
        .wait_for_eval("the broadcast in the audit log", CONSOLE, |state| {
            state["audit"].as_array().is_some_and(|audit| {
                audit
                    .iter()
                    .any(|entry| entry["action"] == "broadcast" && entry["detail"] == ANNOUNCEMENT)
            })
        })
        .await?;
    Ok(())
}
