//! Two pages play over HTTPS and WSS against the real server serving a test CA's
//! certificate. Chromium is told to accept that certificate alone (its key's hash), not
//! to ignore certificate errors in general.

use std::time::Duration;

use e2e::{Driver, Setup};
use harness::certs::Authority;

use crate::two_pages::play;

const VALIDITY: Duration = Duration::from_secs(86_400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn two_pages_play_over_wss() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let dir = setup
        .artifacts
        .join(format!("wss-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let authority = Authority::new("Skirmish e2e CA", VALIDITY)?;
    let leaf = authority.issue_localhost(1, VALIDITY)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &leaf.cert_pem)?;
    std::fs::write(&key, &leaf.key_pem)?;
    let server = setup
        .start_server_with(|config| {
            config.tls_cert = Some(cert);
            config.tls_key = Some(key);
        })
        .await?;
    let driver = Driver::start(&setup).await?;
    // The certificate names localhost, as a real one names its site.
    let base = format!("https://localhost:{}", server.addr.port());
    let pin = vec![format!(
        "--ignore-certificate-errors-spki-list={}",
        leaf.spki_sha256
    )];
    let ann = driver
        .open_with("wss-ann", &format!("{base}/?room=wss&name=ann"), &pin)
        .await?;
    let bob = driver
        .open_with("wss-bob", &format!("{base}/?room=wss&name=bob"), &pin)
        .await?;

    let played = play(&ann, &bob).await;
    for page in [&ann, &bob] {
        let shot = page.screenshot(&setup.artifacts).await?;
        eprintln!("screenshot: {}", shot.display());
    }
    let protocols = [
        ann.client
            .execute("return location.protocol;", vec![])
            .await?,
        bob.client
            .execute("return location.protocol;", vec![])
            .await?,
    ];
    let errors = [ann.errors().await?, bob.errors().await?];
    let players = server.metrics().players.get();
    ann.close().await?;
    bob.close().await?;
    played?;
    assert_eq!(
        protocols,
        ["https:", "https:"],
        "both pages were served over HTTPS"
    );
    assert_eq!(
        players, 2,
        "both pages played through the server's TLS port, so over wss"
    );
    assert_eq!(
        errors,
        [Vec::<String>::new(), Vec::new()],
        "no console errors, mixed-content or certificate warnings in either page"
    );
    server.shutdown().await;
    Ok(())
}
