//! What the end-to-end tests share: the real server serving the real browser bundle, and
//! real headless Chromium pages driven through chromedriver (WebDriver), with their
//! console errors collected and their screenshots saved; and Caddy in front of the
//! server, as docs/DEPLOY.md configures it.

pub mod caddy;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

/// How long a page may take to show what a test waits for. Generous: the machine may be
/// busy building or running other tests.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where the tests find what `cargo xtask test` prepared for them.
#[derive(Clone, Debug)]
pub struct Setup {
    pub web_root: PathBuf,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    /// Screenshots and other artifacts go here.
    pub artifacts: PathBuf,
}

impl Setup {
    /// Reads the paths `cargo xtask test` passes in the environment.
    pub fn from_env() -> Setup {
        let path = |var: &str, default: Option<&str>| -> PathBuf {
            std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| default.map(PathBuf::from))
                .unwrap_or_else(|| {
                    panic!("{var} is not set: run the browser tests with `cargo xtask test`, which builds the bundle and installs Chromium")
                })
        };
        Setup {
            web_root: path("SKIRMISH_E2E_WEB_ROOT", None),
            chromium: path("SKIRMISH_E2E_CHROMIUM", Some("/usr/bin/chromium")),
            chromedriver: path("SKIRMISH_E2E_CHROMEDRIVER", Some("/usr/bin/chromedriver")),
            artifacts: path("SKIRMISH_E2E_ARTIFACTS", Some("target/e2e")),
        }
    }

    /// Starts the real server on a free port, serving the bundle at `/`.
    pub async fn start_server(&self) -> anyhow::Result<server::Server> {
        self.start_server_with(|_| {}).await
    }

    /// Starts the server as `start_server` does, with some flags changed.
    pub async fn start_server_with(
        &self,
        tweak: impl FnOnce(&mut server::Config),
    ) -> anyhow::Result<server::Server> {
        anyhow::ensure!(
            self.web_root.join("index.html").is_file(),
            "no bundle in {}: run `cargo xtask build`",
            self.web_root.display()
        );
        let mut config = server::Config::for_addr("127.0.0.1:0".parse()?);
        config.web_root = Some(self.web_root.clone());
        // Each server remembers nothing from another test's.
        config.data_dir = test_scratch::fresh_folder(&self.artifacts.join("servers"));
        tweak(&mut config);
        server::start(config).await
    }
}

/// A chromedriver process on a free port; killed when dropped.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    url: String,
    setup: Setup,
}

impl Driver {
    pub async fn start(setup: &Setup) -> anyhow::Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&setup.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", setup.chromedriver.display()))?;
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            setup: setup.clone(),
        };
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("chromedriver did not listen on port {port}");
            }
            sleep(Duration::from_millis(50)).await;
        }
        Ok(driver)
    }

    /// A fresh headless Chromium (its own profile) showing `url`.
    pub async fn open(&self, label: &str, url: &str) -> anyhow::Result<Page> {
        self.open_as_with(label, url, Device::Desktop, &[]).await
    }

    /// As `open`, with `extra_args` added to Chromium's command line.
    pub async fn open_with(
        &self,
        label: &str,
        url: &str,
        extra_args: &[String],
    ) -> anyhow::Result<Page> {
        self.open_as_with(label, url, Device::Desktop, extra_args)
            .await
    }

    /// A fresh headless Chromium (its own profile), as `device`, showing `url`.
    pub async fn open_as(&self, label: &str, url: &str, device: Device) -> anyhow::Result<Page> {
        self.open_as_with(label, url, device, &[]).await
    }

    /// As `open_as`, with `extra_args` added to Chromium's command line.
    pub async fn open_as_with(
        &self,
        label: &str,
        url: &str,
        device: Device,
        extra_args: &[String],
    ) -> anyhow::Result<Page> {
        let profile =
            std::env::temp_dir().join(format!("skirmish-e2e-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-background-timer-throttling".to_owned(),
            "--disable-renderer-backgrounding".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend_from_slice(extra_args);
        let mut capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.setup.chromium,
                "args": args,
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        if let Device::Phone = device {
            capabilities["goog:chromeOptions"]["mobileEmulation"] = phone();
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal");
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .context("open a Chromium session through chromedriver")?;
        client
            .goto(url)
            .await
            .with_context(|| format!("load {url}"))?;
        Ok(Page {
            client,
            label: label.to_owned(),
            profile,
        })
    }
}

/// What the browser pretends to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// A 1280×800 window with a mouse.
    Desktop,
    /// A phone held sideways: 844×390 CSS pixels at 3× density, touch events, a mobile
    /// user agent (chromedriver's mobile emulation).
    Phone,
}

/// chromedriver's `mobileEmulation` for `Device::Phone`.
fn phone() -> Value {
    json!({
        "deviceMetrics": { "width": 844, "height": 390, "pixelRatio": 3.0, "touch": true, "mobile": true },
        "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
    })
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser page.
#[derive(Debug)]
pub struct Page {
    pub client: Client,
    pub label: String,
    profile: PathBuf,
}

/// chromedriver's log command: the browser's console and network errors since last asked.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// A DevTools protocol command, sent through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    body: String,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.clone()))
    }
}

impl Page {
    /// Runs a DevTools protocol command on the page (`Network.emulateNetworkConditions`,
    /// `Input.dispatchTouchEvent`, ...) and returns its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({ "cmd": cmd, "params": params }).to_string();
        self.client
            .issue_cmd(Cdp { body })
            .await
            .with_context(|| format!("DevTools command {cmd}"))
    }

    /// What `window.skirmishProbe()` says the page shows.
    pub async fn probe(&self) -> anyhow::Result<Value> {
        Ok(self
            .client
            .execute(
                "return window.skirmishProbe ? window.skirmishProbe() : null;",
                vec![],
            )
            .await?)
    }

    /// Polls the probe until `ready` holds, and returns that probe.
    pub async fn wait_for_probe(
        &self,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let probe = self.probe().await?;
            if ready(&probe) {
                return Ok(probe);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: timed out waiting for {what}; last probe: {probe}",
                    self.label
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// What `script` (the body of a function) returns in the page.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Polls `script` until `ready` holds for what it returns, and returns that.
    pub async fn wait_for_eval(
        &self,
        what: &str,
        script: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.eval(script).await?;
            if ready(&value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: timed out waiting for {what}; last saw: {value}",
                    self.label
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// The rendered text of every element matching a CSS selector. Read in one script,
    /// because the HUD replaces its elements as it updates: element handles found by one
    /// command may be gone by the next.
    pub async fn texts(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let texts = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);",
                vec![Value::from(css)],
            )
            .await?;
        Ok(serde_json::from_value(texts)?)
    }

    /// Polls the texts under `css` until `ready` holds for them.
    pub async fn wait_for_texts(
        &self,
        css: &str,
        what: &str,
        ready: impl Fn(&[String]) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let texts = self.texts(css).await?;
            if ready(&texts) {
                return Ok(texts);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: timed out waiting for {what}; {css} shows {texts:?}",
                    self.label
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Holds a key down for `duration`, as a player would.
    pub async fn hold_key(&self, key: char, duration: Duration) -> anyhow::Result<()> {
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: key })
            .pause(duration)
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await?;
        Ok(())
    }

    /// Presses and releases a key (characters or `fantoccini::key::Key` codes).
    pub async fn press(&self, key: char) -> anyhow::Result<()> {
        self.hold_key(key, Duration::ZERO).await
    }

    /// Types text into whatever has the focus.
    pub async fn type_text(&self, text: &str) -> anyhow::Result<()> {
        self.client.active_element().await?.send_keys(text).await?;
        Ok(())
    }

    /// Console errors, uncaught exceptions and failed loads the browser logged since the
    /// last call.
    pub async fn errors(&self) -> anyhow::Result<Vec<String>> {
        let log = self.client.issue_cmd(BrowserLog).await?;
        let entries = log.as_array().cloned().unwrap_or_default();
        Ok(entries
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// Saves a PNG of the page as `<artifacts>/<label>.png` and returns its path.
    pub async fn screenshot(&self, artifacts: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(artifacts)?;
        let path = artifacts.join(format!("{}.png", self.label));
        std::fs::write(&path, self.client.screenshot().await?)
            .with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        let _ = std::fs::remove_dir_all(&self.profile);
        Ok(())
    }

    /// Ends a test whose page lost its connection on purpose: saves a screenshot,
    /// closes the page, and returns its console errors but the browser's own line for
    /// each WebSocket try that failed meanwhile.
    pub async fn close_after_cut_connections(
        self,
        artifacts: &Path,
    ) -> anyhow::Result<Vec<String>> {
        let shot = self.screenshot(artifacts).await?;
        eprintln!("screenshot: {}", shot.display());
        let errors = self.errors().await?;
        self.close().await?;
        Ok(errors
            .into_iter()
            .filter(|error| !error.contains("WebSocket connection to"))
            .collect())
    }
}

/// Ends a test's pages whatever its checks came to: a screenshot of each (so a failure
/// can be seen) and its console errors, then closes them. The checks' own failure comes
/// first; after it, any page that logged an error or an uncaught exception fails the
/// test.
pub async fn close_pages(
    pages: Vec<Page>,
    artifacts: &Path,
    checked: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut logged = Vec::new();
    for page in &pages {
        let shot = page.screenshot(artifacts).await?;
        eprintln!("screenshot: {}", shot.display());
        let errors = page.errors().await?;
        if !errors.is_empty() {
            logged.push((page.label.clone(), errors));
        }
    }
    for page in pages {
        page.close().await?;
    }
    checked?;
    anyhow::ensure!(
        logged.is_empty(),
        "console errors or uncaught exceptions, by page: {logged:?}"
    );
    Ok(())
}

/// The probe's entry for the player called `name`, as (x, y).
pub fn position_of(probe: &Value, name: &str) -> Option<(f64, f64)> {
    probe["players"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| {
            (
                p["x"].as_f64().unwrap_or(f64::NAN),
                p["y"].as_f64().unwrap_or(f64::NAN),
            )
        })
}
