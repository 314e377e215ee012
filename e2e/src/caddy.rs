//! Caddy in front of a server, configured by the `caddy` block of docs/DEPLOY.md: the
//! configuration the docs give is the one the tests run, so the two cannot drift.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::{Instant, sleep};

use crate::PATIENCE;

/// What the tests add to the documented site: no admin endpoint (one per machine would
/// collide) and no listening beyond loopback.
const TEST_GLOBALS: &str = "{\n\tadmin off\n\tdefault_bind 127.0.0.1\n}\n\n";

/// A `caddy run` on a free loopback port, proxying to one server; killed when dropped.
#[derive(Debug)]
pub struct Caddy {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

/// The one fenced block of docs/DEPLOY.md whose info string is `caddy`.
pub fn documented_caddyfile() -> anyhow::Result<String> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DEPLOY.md");
    let text = std::fs::read_to_string(&doc).with_context(|| format!("read {}", doc.display()))?;
    fenced_block(&text, "caddy")
        .with_context(|| format!("find the caddy block in {}", doc.display()))
}

/// The body of the only block fenced as ```` ```info ````.
fn fenced_block(markdown: &str, info: &str) -> anyhow::Result<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() == format!("```{info}") {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|line| line.trim_end() != "```")
                .collect();
            blocks.push(body.join("\n") + "\n");
        }
    }
    match <[String; 1]>::try_from(blocks) {
        Ok([block]) => Ok(block),
        Err(blocks) => bail!("expected one ```{info} block, found {}", blocks.len()),
    }
}

impl Caddy {
    /// The `caddy` binary `cargo xtask test` found or installed. Unset only when the
    /// ignored tests are run some other way, and then the test fails rather than skips.
    pub fn program_from_env() -> PathBuf {
        std::env::var_os("SKIRMISH_E2E_CADDY")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!("SKIRMISH_E2E_CADDY is not set: run the proxy test with `cargo xtask test`, which installs Caddy")
            })
    }

    /// Runs `program` with the documented site in front of `upstream`. Its config,
    /// data and log stay in `work_dir`, so it writes nothing outside the target folder.
    pub async fn start(
        program: &Path,
        work_dir: &Path,
        upstream: SocketAddr,
    ) -> anyhow::Result<Caddy> {
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("create {}", work_dir.display()))?;
        let config = work_dir.join("Caddyfile");
        std::fs::write(
            &config,
            format!("{TEST_GLOBALS}{}", documented_caddyfile()?),
        )
        .with_context(|| format!("write {}", config.display()))?;
        let log = work_dir.join("caddy.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(program)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            .env("SKIRMISH_SITE", format!("http://{addr}"))
            .env("SKIRMISH_UPSTREAM", upstream.to_string())
            .env("HOME", work_dir)
            .env("XDG_CONFIG_HOME", work_dir.join("config"))
            .env("XDG_DATA_HOME", work_dir.join("data"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("start {}", program.display()))?;
        let mut caddy = Caddy { child, addr, log };
        caddy.wait_until_listening().await?;
        Ok(caddy)
    }

    async fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            if let Some(status) = self.child.try_wait()? {
                bail!("caddy exited with {status}:\n{}", self.log_text());
            }
            if Instant::now() > deadline {
                bail!(
                    "caddy did not listen on {}:\n{}",
                    self.addr,
                    self.log_text()
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// What caddy has logged, for a failure's message.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_doc_has_exactly_one_caddyfile() {
        let caddyfile = documented_caddyfile().expect("one caddy block");
        assert!(
            caddyfile.contains("reverse_proxy {$SKIRMISH_UPSTREAM"),
            "the block proxies to the server's address: {caddyfile}"
        );
    }

    #[test]
    fn only_blocks_fenced_with_the_info_string_are_taken() {
        let doc = "```sh\nls\n```\n```caddy\na {\n}\n```\ntext\n";
        assert_eq!(fenced_block(doc, "caddy").expect("one block"), "a {\n}\n");
        assert!(fenced_block(doc, "nginx").is_err());
        assert!(fenced_block(&format!("{doc}{doc}"), "caddy").is_err());
    }
}
