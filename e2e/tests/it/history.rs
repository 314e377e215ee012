//! Old data in the browser. Two pages play five-second matches until one with both of them
//! is saved; then the lobby lists it and ranks them, its match page shows its table, and
//! the player pages show ratings and stats, each linked to the next. Every figure is
//! checked against what the server's API says; unknown ids are answered in plain words.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use e2e::{Driver, PATIENCE, Page, Setup};
use fantoccini::Locator;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

const ROOM: &str = "history";
/// Time for both pages to join and for a match with both in it to end and be saved: a
/// few matches of five seconds, on a machine that may be busy building.
const MATCH_PATIENCE: Duration = Duration::from_secs(90);
/// How long the fire button is held, so the saved lines have shots to take accuracy from.
const FIRING: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the browser bundle and Chromium: `cargo xtask test` prepares both and runs it"]
async fn finished_matches_show_in_the_lobby_and_on_match_and_player_pages() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup
        .start_server_with(|config| {
            config.match_time_limit_secs = 5.0;
            config.match_results_secs = 1.0;
            // A page that leaves for the lobby closes with 1001, which holds its seat for
            // a resume; the test waits for the room to empty, so the hold is short.
            config.resume_grace_secs = 1.0;
        })
        .await?;
    let api = Api {
        addr: server.http_url().trim_start_matches("http://").to_owned(),
    };
    let driver = Driver::start(&setup).await?;
    let base = server.http_url();
    // The visitor comes first, while nothing has been played.
    let visitor = driver.open("history-visitor", &format!("{base}/")).await?;
    let ann = driver
        .open("history-ann", &format!("{base}/?room={ROOM}&name=ann"))
        .await?;
    let bob = driver
        .open("history-bob", &format!("{base}/?room={ROOM}&name=bob"))
        .await?;

    let scene = Scene {
        artifacts: &setup.artifacts,
        api: &api,
        server: &server,
        base: &base,
        ann: &ann,
        bob: &bob,
        visitor: &visitor,
    };
    let checked = scene.check().await;
    // The players' pages are asked for errors whatever happened, and every page is
    // closed before the verdict, so no browser outlives the test.
    let errors = [ann.errors().await?, bob.errors().await?];
    for page in [ann, bob, visitor] {
        page.close().await?;
    }
    checked?;
    assert_eq!(
        errors,
        [Vec::<String>::new(), Vec::new()],
        "no console errors or uncaught exceptions on the players' pages, in the game or after"
    );
    Ok(())
}

struct Scene<'a> {
    artifacts: &'a Path,
    api: &'a Api,
    server: &'a server::Server,
    base: &'a str,
    ann: &'a Page,
    bob: &'a Page,
    visitor: &'a Page,
}

impl Scene<'_> {
    async fn check(&self) -> anyhow::Result<()> {
        self.lobby_says_nothing_was_played().await?;
        let record = self.play_until_a_match_is_saved().await?;
        self.lobby_lists_the_match_and_ranks_its_players(&record)
            .await?;
        self.match_page_shows_the_table(&record).await?;
        self.player_page_shows_rating_and_stats(&record, "bob")
            .await?;
        self.my_stats_leads_to_my_own_page(&record).await?;
        self.unknown_ids_are_answered_in_words().await
    }

    async fn lobby_says_nothing_was_played(&self) -> anyhow::Result<()> {
        self.visitor
            .wait_for_texts("#recent-matches td", "the empty match list", |cells| {
                cells == ["No matches played yet."]
            })
            .await?;
        self.visitor
            .wait_for_texts("#leaderboard td", "the empty leaderboard", |cells| {
                cells.len() == 1 && cells[0].starts_with("Nobody is ranked yet")
            })
            .await?;
        shot(self.visitor, self.artifacts, "history-lobby-empty").await
    }

    /// Plays (Ann fires for a while) until a match with both players in it is saved,
    /// then takes both pages out of the room and returns that match as the API serves it.
    async fn play_until_a_match_is_saved(&self) -> anyhow::Result<Value> {
        for page in [self.ann, self.bob] {
            page.wait_for_texts(
                "#scoreboard .name",
                "both names on the scoreboard",
                |names| names.iter().any(|n| n == "ann") && names.iter().any(|n| n == "bob"),
            )
            .await?;
        }
        self.ann.hold_key(' ', FIRING).await?;
        let deadline = Instant::now() + MATCH_PATIENCE;
        let id = loop {
            let list = self.api.get("/api/matches").await?;
            let with_both = list["matches"].as_array().and_then(|matches| {
                matches
                    .iter()
                    .find(|record| names_in(record) == ["ann", "bob"])
            });
            if let Some(record) = with_both {
                break record["id"].clone();
            }
            if Instant::now() > deadline {
                bail!("no match with ann and bob was saved in {MATCH_PATIENCE:?}: {list}");
            }
            sleep(Duration::from_millis(250)).await;
        };
        // Both leave for the lobby; the room then has nobody to record a match for.
        for page in [self.ann, self.bob] {
            page.client.goto(&format!("{}/", self.base)).await?;
        }
        self.room_is_empty().await?;
        self.api.settled("/api/matches").await?;
        self.api.get(&format!("/api/matches/{id}")).await
    }

    async fn room_is_empty(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while self
            .server
            .rooms()
            .iter()
            .any(|room| room.id == ROOM && room.players > 0)
        {
            if Instant::now() > deadline {
                bail!("room {ROOM} still has players after both pages left it");
            }
            sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn lobby_lists_the_match_and_ranks_its_players(
        &self,
        record: &Value,
    ) -> anyhow::Result<()> {
        // The visitor's lobby has been open all along: it shows the match once it refreshes.
        let id = &record["id"];
        let winners: Vec<&str> = lines(record)
            .filter(|line| line["placing"] == 1)
            .filter_map(|line| line["name"].as_str())
            .collect();
        let winner = match winners.as_slice() {
            [one] => (*one).to_owned(),
            several => format!("{} (tie)", several.join(", ")),
        };
        let link = format!("/?match={id}");
        let listed = self.api.get("/api/matches?limit=10").await?;
        let n_listed = listed["matches"].as_array().map_or(0, Vec::len);
        let rows = self
            .visitor
            .wait_for_texts("#recent-matches tr", "every saved match listed", |rows| {
                rows.len() == n_listed + 1
            })
            .await?;
        let row = row_linking_to(self.visitor, "#recent-matches tr", &link).await?;
        ensure!(
            row.starts_with(&format!("{ROOM}\t{winner}\t2\t")),
            "the match's row names its room, winner and two players; rows: {rows:?}, its row: {row:?}"
        );
        let board = self.api.get("/api/leaderboard?limit=10").await?;
        let expected: Vec<String> = board["players"]
            .as_array()
            .context("a leaderboard lists players")?
            .iter()
            .map(|entry| {
                format!(
                    "{}\t{}\t{}\t{}",
                    entry["rank"],
                    entry["name"].as_str().unwrap_or_default(),
                    rating(&entry["rating"]),
                    entry["kills"]
                )
            })
            .collect();
        ensure!(
            names_in_board(&board) == ["ann", "bob"],
            "only ann and bob are ranked: {board}"
        );
        self.visitor
            .wait_for_texts(
                "#leaderboard tr",
                "rank, name, rating and kills as the API has them",
                |shown| shown.get(1..) == Some(&expected[..]),
            )
            .await?;
        let my_stats_hidden = self
            .visitor
            .client
            .execute("return document.getElementById('my-stats').hidden;", vec![])
            .await?;
        assert_eq!(
            my_stats_hidden,
            Value::Bool(true),
            "a browser that never played has no stats to link to"
        );
        shot(self.visitor, self.artifacts, "history-lobby").await?;
        self.visitor
            .client
            .find(Locator::Css(&format!("#recent-matches a[href='{link}']")))
            .await?
            .click()
            .await?;
        Ok(())
    }

    async fn match_page_shows_the_table(&self, record: &Value) -> anyhow::Result<()> {
        let expected: Vec<String> = lines(record)
            .map(|line| {
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    line["placing"],
                    line["name"].as_str().unwrap_or_default(),
                    line["kills"],
                    line["deaths"],
                    accuracy(&line["hits"], &line["shots"]),
                    line["score"]
                )
            })
            .collect();
        let rows = self
            .visitor
            .wait_for_texts("#match-table tr", "the match's table", |rows| {
                rows.len() == expected.len() + 1
            })
            .await?;
        assert_eq!(
            rows[0], "#\tplayer\tkills\tdeaths\taccuracy\tscore",
            "the table's heading"
        );
        assert_eq!(
            rows[1..],
            expected[..],
            "one row per player: placing, name, kills, deaths, accuracy, score"
        );
        let title = self.visitor.texts("#match-title").await?;
        assert_eq!(title, [format!("Match {}", record["id"])]);
        let facts = self.visitor.texts("#match-facts dd").await?;
        let reason = match record["end_reason"].as_str() {
            Some("score_limit") => "A player reached the score limit.",
            Some("time_limit") => "Time ran out.",
            _ => "The server stopped during the match.",
        };
        ensure!(
            facts.len() == 5
                && facts[0] == ROOM
                && Some(facts[1].as_str()) == record["map"].as_str()
                && facts[4] == reason,
            "the facts name the room, the map and why it ended: {facts:?}"
        );
        let back = hrefs(self.visitor, "#match-page a.back").await?;
        assert_eq!(back, ["/"], "a link back to the lobby");
        shot(self.visitor, self.artifacts, "history-match").await
    }

    /// Follows `name`'s link from the match page to their player page.
    async fn player_page_shows_rating_and_stats(
        &self,
        record: &Value,
        name: &str,
    ) -> anyhow::Result<()> {
        let profile = profile_of(record, name)?;
        let link = format!("/?player={profile}");
        self.visitor
            .client
            .find(Locator::Css(&format!("#match-table a[href='{link}']")))
            .await?
            .click()
            .await?;
        self.shows_player(self.visitor, &profile, name).await?;
        let recent = hrefs(self.visitor, "#player-matches a").await?;
        ensure!(
            recent.contains(&format!("/?match={}", record["id"])),
            "the player's recent matches link to the match: {recent:?}"
        );
        shot(self.visitor, self.artifacts, "history-player").await?;
        self.visitor
            .client
            .find(Locator::Css("#player-page a.back"))
            .await?
            .click()
            .await?;
        self.visitor
            .wait_for_texts("#leaderboard td.text a", "the lobby again", |names| {
                names.iter().any(|n| n == name)
            })
            .await?;
        Ok(())
    }

    /// Ann played in this browser, so her lobby links to her own page.
    async fn my_stats_leads_to_my_own_page(&self, record: &Value) -> anyhow::Result<()> {
        let profile = profile_of(record, "ann")?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let shown = self
                .ann
                .client
                .execute(
                    "const link = document.getElementById('my-stats'); \
                     return link.hidden ? null : link.getAttribute('href');",
                    vec![],
                )
                .await?;
            if shown.as_str() == Some(format!("/?player={profile}").as_str()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("ann's lobby does not link to her own page; #my-stats is {shown}");
            }
            sleep(Duration::from_millis(100)).await;
        }
        shot(self.ann, self.artifacts, "history-lobby-after-playing").await?;
        self.ann
            .client
            .find(Locator::Id("my-stats"))
            .await?
            .click()
            .await?;
        self.shows_player(self.ann, &profile, "ann").await?;
        shot(self.ann, self.artifacts, "history-my-stats").await
    }

    /// The player page of `profile` shows what the API says of them.
    async fn shows_player(&self, page: &Page, profile: &str, name: &str) -> anyhow::Result<()> {
        let player = self.api.get(&format!("/api/players/{profile}")).await?;
        let expected: Vec<String> = vec![
            rating(&player["rating"]),
            player["rank"].to_string(),
            player["matches"].to_string(),
            player["wins"].to_string(),
            player["kills"].to_string(),
            player["deaths"].to_string(),
            accuracy(&player["hits"], &player["shots"]),
        ];
        let facts = page
            .wait_for_texts("#player-facts dd", "the player's stats", |facts| {
                !facts.is_empty()
            })
            .await?;
        assert_eq!(
            facts, expected,
            "{name}'s rating, rank, matches, wins, kills, deaths and accuracy"
        );
        let labels = page.texts("#player-facts dt").await?;
        assert_eq!(
            labels,
            [
                "Rating", "Rank", "Matches", "Wins", "Kills", "Deaths", "Accuracy"
            ]
        );
        assert_eq!(page.texts("#player-title").await?, [name]);
        Ok(())
    }

    async fn unknown_ids_are_answered_in_words(&self) -> anyhow::Result<()> {
        let errors = self.visitor.errors().await?;
        assert_eq!(
            errors,
            Vec::<String>::new(),
            "no console errors on the visitor's page while it browsed old data"
        );
        let unknown = [
            ("/?match=999999", "#match-title", "No such match"),
            ("/?match=abc", "#match-title", "No such match"),
            (
                "/?player=0000000000000000",
                "#player-title",
                "No such player",
            ),
            ("/?player=nobody", "#player-title", "No such player"),
        ];
        for (path, css, words) in unknown {
            self.visitor
                .client
                .goto(&format!("{}{path}", self.base))
                .await?;
            self.visitor
                .wait_for_texts(css, words, |texts| texts == [words])
                .await
                .with_context(|| format!("{path} says {words}"))?;
            if path == "/?match=999999" {
                shot(self.visitor, self.artifacts, "history-no-such-match").await?;
            }
        }
        // Chromium logs every 404 as a failed load; the pages themselves log nothing.
        let errors = self.visitor.errors().await?;
        ensure!(
            errors.iter().all(|error| error.contains("404")),
            "only the server's 404s for the unknown ids are logged: {errors:?}"
        );
        Ok(())
    }
}

/// The `href` of every element matching a CSS selector.
async fn hrefs(page: &Page, css: &str) -> anyhow::Result<Vec<String>> {
    let hrefs = page
        .client
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.getAttribute('href'));",
            vec![Value::from(css)],
        )
        .await?;
    Ok(serde_json::from_value(hrefs)?)
}

/// The text of the table row under `css` that holds a link to `href`.
async fn row_linking_to(page: &Page, css: &str, href: &str) -> anyhow::Result<String> {
    let row = page
        .client
        .execute(
            "const row = Array.from(document.querySelectorAll(arguments[0])) \
               .find(r => r.querySelector(`a[href='${arguments[1]}']`)); \
             return row ? row.innerText : null;",
            vec![Value::from(css), Value::from(href)],
        )
        .await?;
    row.as_str()
        .map(str::to_owned)
        .with_context(|| format!("no row under {css} links to {href}"))
}

/// The server's JSON API, asked directly, as the truth the pages are checked against.
struct Api {
    addr: String,
}

impl Api {
    /// `GET path`, which must answer 200 with JSON.
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut stream = TcpStream::connect(&self.addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        timeout(PATIENCE, stream.read_to_end(&mut raw))
            .await
            .with_context(|| format!("GET {path} answered within {PATIENCE:?}"))??;
        let text = String::from_utf8(raw)?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("GET {path}: an HTTP answer, not {text:?}"))?;
        ensure!(
            head.starts_with("HTTP/1.1 200"),
            "GET {path} answers 200: {head}\n{body}"
        );
        serde_json::from_str(body).with_context(|| format!("GET {path}: JSON, not {body:?}"))
    }

    /// Waits until `path` answers the same twice in a row, half a second apart: a match
    /// that ended just before its players left may still be on its way to the disk.
    async fn settled(&self, path: &str) -> anyhow::Result<Value> {
        let mut before = self.get(path).await?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            sleep(Duration::from_millis(500)).await;
            let now = self.get(path).await?;
            if now == before {
                return Ok(now);
            }
            if Instant::now() > deadline {
                bail!("{path} kept changing for {PATIENCE:?}");
            }
            before = now;
        }
    }
}

fn lines(record: &Value) -> impl Iterator<Item = &Value> {
    record["players"].as_array().into_iter().flatten()
}

/// The names on a leaderboard page, sorted.
fn names_in_board(board: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = board["players"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["name"].as_str())
        .collect();
    names.sort_unstable();
    names
}

/// The names in a saved match, sorted.
fn names_in(record: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = lines(record)
        .filter_map(|line| line["name"].as_str())
        .collect();
    names.sort_unstable();
    names
}

fn profile_of(record: &Value, name: &str) -> anyhow::Result<String> {
    lines(record)
        .find(|line| line["name"] == name)
        .and_then(|line| line["profile"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("{name} played in {record}"))
}

/// Accuracy as the pages show it: whole percent, or a dash for no shots.
fn accuracy(hits: &Value, shots: &Value) -> String {
    match (hits.as_f64(), shots.as_f64()) {
        (Some(hits), Some(shots)) if shots > 0.0 => format!("{:.0}%", 100.0 * hits / shots),
        _ => "–".to_owned(),
    }
}

/// A rating as the pages show it: one decimal.
fn rating(rating: &Value) -> String {
    format!("{:.1}", rating.as_f64().unwrap_or(f64::NAN))
}

/// Saves a PNG of what `page` shows now as `<artifacts>/<name>.png`.
async fn shot(page: &Page, artifacts: &Path, name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(artifacts)?;
    let path = artifacts.join(format!("{name}.png"));
    std::fs::write(&path, page.client.screenshot().await?)
        .with_context(|| format!("write {}", path.display()))?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}
