//! Losing the server: the page says so, tries again by itself, and plays again once the
//! server is back (as a fresh join of the same room).

use e2e::{Driver, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn a_restarted_server_is_rejoined_by_itself() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup.start_server().await?;
    let addr = server.addr;
    let driver = Driver::start(&setup).await?;
    let page = driver
        .open(
            "reconnect",
            &format!("{}/?room=again&name=dana", server.http_url()),
        )
        .await?;
    let outcome = async {
        page.wait_for_probe("dana playing", |probe| probe["phase"] == "playing")
            .await?;
        server.shutdown().await;
        page.wait_for_texts("#overlay-text", "the lost connection explained", |texts| {
            texts.iter().any(|text| text.contains("restarting"))
        })
        .await?;
        let _restarted = setup.start_server_with(|config| config.addr = addr).await?;
        page.wait_for_probe("dana playing again", |probe| {
            probe["phase"] == "playing" && probe["room"] == "again"
        })
        .await?;
        page.wait_for_texts(
            "#scoreboard .name",
            "dana back on the scoreboard",
            |names| names.iter().any(|name| name == "dana"),
        )
        .await
    }
    .await;
    // While the server is down, each try fails, and the browser logs that itself.
    let unexpected = page.close_after_cut_connections(&setup.artifacts).await?;
    outcome?;
    assert!(unexpected.is_empty(), "no other errors: {unexpected:?}");
    Ok(())
}
