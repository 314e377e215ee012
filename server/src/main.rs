//! The `server` binary: parse flags, start, print the URL, run until Ctrl-C or SIGTERM.

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
        () = wait_for_stop_signal() => tracing::info!("shutting down"),
        () = running.drained() => tracing::info!("drained: every match is over; shutting down"),
    }
    running.shutdown().await;
    Ok(())
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
