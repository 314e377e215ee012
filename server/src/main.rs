//! The `server` binary: parse flags, start, print the URL and the admin URL, run until
//! Ctrl-C, SIGTERM or a drain from the console, and reload the TLS certificate on every SIGHUP.

use std::io::Write;

use clap::Parser;
use server::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let running = server::start(config).await?;
    // Tools read this first line to learn the real port, and the next the admin port.
    // One write, so a reader that takes the first line finds the second with it.
    let mut stdout = std::io::stdout();
    let lines = format!(
        "listening on {}\nadmin on {}\n",
        running.http_url(),
        running.admin_url()
    );
    stdout.write_all(lines.as_bytes())?;
    stdout.flush()?;
    tokio::select! {
        () = serve_until_stopped(&running) => tracing::info!("shutting down"),
        () = running.drained() => tracing::info!("drained: every match is over; shutting down"),
    }
    running.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM, reloading the certificate at each SIGHUP meanwhile.
#[cfg(unix)]
async fn serve_until_stopped(running: &server::Server) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM and SIGHUP; stopping on Ctrl-C only");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = terminate.recv() => return,
            _ = hangup.recv() => match running.reload_certificate() {
                Ok(true) => {}
                Ok(false) => tracing::info!("SIGHUP: no TLS certificate to reload"),
                Err(err) => tracing::error!(
                    %err,
                    "SIGHUP: the TLS certificate was not reloaded; still serving the one before"
                ),
            },
        }
    }
}

#[cfg(not(unix))]
async fn serve_until_stopped(_running: &server::Server) {
    let _ = tokio::signal::ctrl_c().await;
}
