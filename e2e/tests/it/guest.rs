//! Quick play with the nickname box empty: the page plays at once under a guest name,
//! remembers it like a chosen one, and the lobby shows it to be changed.

use e2e::{Driver, Page, Setup};
use fantoccini::Locator;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn quick_play_without_a_name_plays_as_a_guest() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let driver = Driver::start(&setup).await?;
    let page = driver
        .open("guest", &format!("{}/", server.http_url()))
        .await?;
    let played = play_as_guest(&page, &server.http_url()).await;
    page.screenshot(&setup.artifacts).await?;
    let errors = page.errors().await?;
    page.close().await?;
    let name = played?;
    eprintln!("played as {name}");
    assert!(errors.is_empty(), "no console errors: {errors:?}");
    Ok(())
}

/// Presses Quick play with no name typed; returns the name the page played under.
async fn play_as_guest(page: &Page, base: &str) -> anyhow::Result<String> {
    let typed = page.client.find(Locator::Id("nickname")).await?;
    assert_eq!(
        typed.prop("value").await?.unwrap_or_default(),
        "",
        "a fresh browser has no nickname"
    );
    page.client
        .find(Locator::Id("quick-play"))
        .await?
        .click()
        .await?;
    let probe = page
        .wait_for_probe("a seat under a guest name", |probe| {
            probe["phase"] == "playing" && my_name(probe).is_some_and(is_guest_name)
        })
        .await?;
    let name = my_name(&probe).unwrap_or_default().to_owned();
    assert_eq!(
        probe["touch"], false,
        "a desktop page keeps its desktop layout"
    );
    let kept = page
        .client
        .execute("return localStorage.getItem('skirmish.nickname');", vec![])
        .await?;
    assert_eq!(
        kept,
        Value::from(name.as_str()),
        "the guest name is remembered"
    );

    // Back in the lobby, the name is in the box, to keep or to change.
    page.client.goto(&format!("{base}/")).await?;
    let typed = page.client.find(Locator::Id("nickname")).await?;
    assert_eq!(typed.prop("value").await?.as_deref(), Some(name.as_str()));
    Ok(name)
}

/// The local player's name, as the probe shows it.
fn my_name(probe: &Value) -> Option<&str> {
    probe["players"]
        .as_array()?
        .iter()
        .find(|player| player["id"] == probe["me"])?["name"]
        .as_str()
}

/// "Guest-" and four digits.
fn is_guest_name(name: &str) -> bool {
    name.strip_prefix("Guest-")
        .is_some_and(|digits| digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
}
