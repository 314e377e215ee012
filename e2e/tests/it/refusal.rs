//! A player who cannot get in is told why in plain words: here, because the room is full.

use e2e::{Driver, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn a_full_room_is_refused_in_plain_words() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup
        .start_server_with(|config| config.room_capacity = 1)
        .await?;
    let driver = Driver::start(&setup).await?;
    let base = server.http_url();
    let first = driver
        .open("seated", &format!("{base}/?room=tiny&name=first"))
        .await?;
    let seated = first
        .wait_for_probe("the first player seated", |probe| {
            probe["phase"] == "playing"
        })
        .await;
    if let Err(err) = seated {
        // Close the browser before failing, so none outlives the test.
        first.close().await?;
        return Err(err);
    }
    let late = driver
        .open("refused", &format!("{base}/?room=tiny&name=late"))
        .await?;
    let told = late
        .wait_for_texts("#overlay-text", "the refusal", |texts| {
            texts.iter().any(|text| text.contains("Room tiny is full"))
        })
        .await;
    late.screenshot(&setup.artifacts).await?;
    let phase = late.probe().await?["phase"].clone();
    let errors = [first.errors().await?, late.errors().await?];
    first.close().await?;
    late.close().await?;
    told?;
    assert_eq!(phase, "refused", "a full room is not retried by itself");
    assert_eq!(
        errors,
        [Vec::<String>::new(), Vec::new()],
        "a refusal is shown, not logged as an error"
    );
    Ok(())
}
