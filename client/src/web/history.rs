//! The pages about old data: a finished match (`/?match=ID`) and a player
//! (`/?player=PROFILE`), each read once from the server's API, linked to each other and
//! back to the lobby. Names come from players, so they only ever become text, never markup.

use shared::ProfileId;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, HtmlElement};

use super::api::{self, FetchError, MatchId, MatchRecord, PlayerRecord};
use super::dom::{by_id, document, element, query_param, show};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A page about old data, as the address names it; the text is checked when it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    Match(String),
    Player(String),
}

impl Page {
    /// The page the address asks for, if it asks for one of these.
    pub fn from_address() -> Option<Page> {
        query_param("match")
            .map(Page::Match)
            .or_else(|| query_param("player").map(Page::Player))
    }
}

pub fn show_page(page: Page) {
    match page {
        Page::Match(id) => {
            show(&by_id::<HtmlElement>("match-page"), true);
            spawn_local(fill_match_page(parse_match_id(&id)));
        }
        Page::Player(profile) => {
            show(&by_id::<HtmlElement>("player-page"), true);
            spawn_local(fill_player_page(ProfileId::from_hex(&profile)));
        }
    }
}

/// A match id as the server writes them: a positive number in plain digits. Anything
/// else names no match, and is not worth a request.
fn parse_match_id(text: &str) -> Option<MatchId> {
    let plain = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    plain
        .then(|| text.parse::<MatchId>().ok())
        .flatten()
        .filter(|id| *id > 0)
}

async fn fill_match_page(id: Option<MatchId>) {
    let answer = match id {
        Some(id) => api::match_by_id(id).await,
        None => Err(FetchError::NotFound),
    };
    let status: HtmlElement = by_id("match-status");
    match answer {
        Ok(record) => {
            show(&status, false);
            show_match(&record);
            show(&by_id::<HtmlElement>("match-body"), true);
        }
        Err(FetchError::NotFound) => {
            by_id::<HtmlElement>("match-title").set_text_content(Some("No such match"));
            status.set_text_content(Some("This address names no match the server has saved."));
        }
        Err(FetchError::Unavailable) => status.set_text_content(Some(UNAVAILABLE)),
    }
}

fn show_match(record: &MatchRecord) {
    let title = format!("Match {}", record.id);
    let replay: HtmlElement = by_id("match-replay");
    let _ = replay.set_attribute("href", &format!("/replay/{}", record.id));
    show(&replay, true);
    document().set_title(&format!("{title} · Skirmish"));
    by_id::<HtmlElement>("match-title").set_text_content(Some(&title));
    let duration_secs = (record.ended_at - record.started_at).max(0) / 1000;
    facts(
        "match-facts",
        &[
            ("Room", record.room.clone()),
            ("Map", record.map.clone()),
            ("Ended", full_time(record.ended_at)),
            (
                "Lasted",
                format!("{}:{:02}", duration_secs / 60, duration_secs % 60),
            ),
            ("Why", record.end_reason.in_words().to_owned()),
        ],
    );
    let rows = js_sys::Array::new();
    rows.push(&heading_row(&[
        ("#", ""),
        ("player", "text"),
        ("kills", ""),
        ("deaths", ""),
        ("accuracy", ""),
        ("score", ""),
    ]));
    for line in &record.players {
        rows.push(&row(
            if line.placing == 1 { "best" } else { "" },
            [
                cell("", &line.placing.to_string()),
                cell_with("text", &player_link(line.profile, &line.name)),
                cell("", &line.kills.to_string()),
                cell("", &line.deaths.to_string()),
                cell("accuracy", &accuracy(line.hits.into(), line.shots.into())),
                cell("", &line.score.to_string()),
            ],
        ));
    }
    by_id::<HtmlElement>("match-table").replace_children_with_node(&rows);
}

async fn fill_player_page(profile: Option<ProfileId>) {
    let answer = match profile {
        Some(profile) => api::player(profile).await,
        None => Err(FetchError::NotFound),
    };
    let status: HtmlElement = by_id("player-status");
    match answer {
        Ok(record) => {
            show(&status, false);
            show_player(&record);
            show(&by_id::<HtmlElement>("player-body"), true);
        }
        Err(FetchError::NotFound) => {
            by_id::<HtmlElement>("player-title").set_text_content(Some("No such player"));
            status.set_text_content(Some("Nobody with this id has a saved match yet."));
        }
        Err(FetchError::Unavailable) => status.set_text_content(Some(UNAVAILABLE)),
    }
}

fn show_player(record: &PlayerRecord) {
    document().set_title(&format!("{} · Skirmish", record.name));
    by_id::<HtmlElement>("player-title").set_text_content(Some(&record.name));
    facts(
        "player-facts",
        &[
            ("Rating", rating(record.rating)),
            ("Rank", record.rank.to_string()),
            ("Matches", record.matches.to_string()),
            ("Wins", record.wins.to_string()),
            ("Kills", record.kills.to_string()),
            ("Deaths", record.deaths.to_string()),
            ("Accuracy", accuracy(record.hits, record.shots)),
        ],
    );
    let rows = js_sys::Array::new();
    rows.push(&heading_row(&[
        ("ended", "text"),
        ("room", "text"),
        ("placing", ""),
        ("kills", ""),
        ("deaths", ""),
        ("score", ""),
    ]));
    for played in &record.recent_matches {
        rows.push(&row(
            if played.placing == 1 { "best" } else { "" },
            [
                cell("text", &clock_time(played.ended_at)),
                cell_with("text", &match_link(played.id, &played.room)),
                cell("", &format!("{} of {}", played.placing, played.n_players)),
                cell("", &played.kills.to_string()),
                cell("", &played.deaths.to_string()),
                cell("", &played.score.to_string()),
            ],
        ));
    }
    by_id::<HtmlElement>("player-matches").replace_children_with_node(&rows);
}

const UNAVAILABLE: &str =
    "The match history cannot be read right now. Reload the page to try again.";

/// Fills the `<dl>` with `id` with label and value pairs.
fn facts(id: &str, pairs: &[(&str, String)]) {
    let items = js_sys::Array::new();
    for (label, value) in pairs {
        let pair = element("div", "", "");
        let _ = pair.append_child(&element("dt", "", label));
        let _ = pair.append_child(&element("dd", "", value));
        items.push(&pair);
    }
    by_id::<HtmlElement>(id).replace_children_with_node(&items);
}

/// A table row of `<th>`s, each with its class (`text` aligns left, numbers right).
pub fn heading_row(titles: &[(&str, &str)]) -> Element {
    let head = element("tr", "", "");
    for (title, class) in titles {
        let _ = head.append_child(&element("th", class, title));
    }
    head
}

pub fn row(class: &str, cells: impl IntoIterator<Item = Element>) -> Element {
    let row = element("tr", class, "");
    for cell in cells {
        let _ = row.append_child(&cell);
    }
    row
}

pub fn cell(class: &str, text: &str) -> Element {
    element("td", class, text)
}

pub fn cell_with(class: &str, child: &Element) -> Element {
    let cell = element("td", class, "");
    let _ = cell.append_child(child);
    cell
}

/// A link whose text is `text`, whatever it contains.
fn link(href: &str, text: &str) -> Element {
    let anchor = element("a", "", text);
    let _ = anchor.set_attribute("href", href);
    anchor
}

pub fn player_link(profile: ProfileId, name: &str) -> Element {
    link(&format!("/?player={}", profile.to_hex()), name)
}

pub fn match_link(id: MatchId, text: &str) -> Element {
    link(&format!("/?match={id}"), text)
}

/// Hits per shot as a whole percentage; a dash for someone who never fired.
pub fn accuracy(hits: u64, shots: u64) -> String {
    if shots == 0 {
        return "–".to_owned();
    }
    format!("{:.0}%", 100.0 * hits as f64 / shots as f64)
}

/// A rating as the leaderboard shows it: one decimal is enough to tell players apart.
pub fn rating(rating: f64) -> String {
    format!("{rating:.1}")
}

/// The time of a match in the page's local time zone, as briefly as is still clear:
/// "14:31" today, "3 Mar 14:31" this year, "3 Mar 2025 14:31" before.
pub fn clock_time(unix_ms: i64) -> String {
    let then = local_date(unix_ms);
    let now = js_sys::Date::new_0();
    let hours_minutes = format!("{:02}:{:02}", then.get_hours(), then.get_minutes());
    let same_year = then.get_full_year() == now.get_full_year();
    let same_day =
        same_year && then.get_month() == now.get_month() && then.get_date() == now.get_date();
    if same_day {
        hours_minutes
    } else if same_year {
        format!("{} {hours_minutes}", day_month(&then))
    } else {
        format!(
            "{} {} {hours_minutes}",
            day_month(&then),
            then.get_full_year()
        )
    }
}

/// The full date and time, to the second: "3 Mar 2026, 14:31:07".
fn full_time(unix_ms: i64) -> String {
    let then = local_date(unix_ms);
    format!(
        "{} {}, {:02}:{:02}:{:02}",
        day_month(&then),
        then.get_full_year(),
        then.get_hours(),
        then.get_minutes(),
        then.get_seconds()
    )
}

fn local_date(unix_ms: i64) -> js_sys::Date {
    // Milliseconds since 1970 stay exact in an f64 for the next 285,000 years.
    js_sys::Date::new(&JsValue::from_f64(unix_ms as f64))
}

fn day_month(date: &js_sys::Date) -> String {
    let month = MONTHS
        .get(date.get_month() as usize)
        .copied()
        .unwrap_or("?");
    format!("{} {month}", date.get_date())
}
