//! The server's old data as the pages read it: typed copies of the JSON that
//! `/api/matches`, `/api/players/{profile}` and `/api/leaderboard` serve, and one fetch
//! that turns an answer into one of them or says, in a word, why it could not.

use shared::ProfileId;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use super::dom::window;

/// A saved match's number; the store assigns them in ascending order and never reuses one.
pub type MatchId = i64;

/// Why a match ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    ScoreLimit,
    TimeLimit,
    Shutdown,
    /// A reason added to the server after this page was built.
    Other,
}

impl EndReason {
    /// The reason in words, as a sentence.
    pub fn in_words(self) -> &'static str {
        match self {
            EndReason::ScoreLimit => "A player reached the score limit.",
            EndReason::TimeLimit => "Time ran out.",
            EndReason::Shutdown => "The server stopped during the match.",
            EndReason::Other => "The match ended.",
        }
    }
}

/// `GET /api/matches/{id}`, and each entry of `GET /api/matches`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchRecord {
    pub id: MatchId,
    pub room: String,
    pub map: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    pub ended_at: i64,
    pub end_reason: EndReason,
    /// Best placing first.
    pub players: Vec<PlayerLine>,
}

impl MatchRecord {
    /// The names placed first: one winner, or several who tied.
    pub fn winners(&self) -> Vec<&str> {
        self.players
            .iter()
            .filter(|line| line.placing == 1)
            .map(|line| line.name.as_str())
            .collect()
    }
}

/// One player's line in a saved match.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayerLine {
    pub profile: ProfileId,
    pub name: String,
    pub kills: u32,
    pub deaths: u32,
    pub shots: u32,
    pub hits: u32,
    pub score: u32,
    /// 1 for the winner; equal scores share a placing.
    pub placing: u32,
}

/// `GET /api/matches`: one page, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchList {
    pub matches: Vec<MatchRecord>,
}

/// `GET /api/leaderboard`: one page, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaderboard {
    pub players: Vec<LeaderboardEntry>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaderboardEntry {
    pub rank: u64,
    pub profile: ProfileId,
    pub name: String,
    /// What the leaderboard orders by (skill less three times its uncertainty).
    pub rating: f64,
    pub kills: u64,
}

/// `GET /api/players/{profile}`: lifetime stats, rating and the newest matches.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayerRecord {
    pub profile: ProfileId,
    /// The nickname of the player's latest match.
    pub name: String,
    pub rank: u64,
    pub rating: f64,
    pub matches: u64,
    pub wins: u64,
    pub kills: u64,
    pub deaths: u64,
    pub shots: u64,
    pub hits: u64,
    /// Newest first.
    pub recent_matches: Vec<PlayerMatch>,
}

/// One of a player's recent matches, with the player's own line.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayerMatch {
    pub id: MatchId,
    pub room: String,
    pub ended_at: i64,
    pub n_players: u32,
    pub kills: u32,
    pub deaths: u32,
    pub score: u32,
    pub placing: u32,
}

/// Why an answer is not the data asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The server does not know what was asked for (404), or the address cannot name
    /// anything (400): either way there is no such thing.
    #[error("no such thing")]
    NotFound,
    /// The server did not answer, failed, or answered with something unreadable.
    #[error("the match history cannot be read right now")]
    Unavailable,
}

/// `GET path` on this site, read as `T`.
async fn get<T: FromJson>(path: &str) -> Result<T, FetchError> {
    let response: Response = JsFuture::from(window().fetch_with_str(path))
        .await
        .ok()
        .and_then(|response| response.dyn_into().ok())
        .ok_or(FetchError::Unavailable)?;
    match response.status() {
        200..=299 => {}
        400 | 404 => return Err(FetchError::NotFound),
        _ => return Err(FetchError::Unavailable),
    }
    let parsed = JsFuture::from(response.json().map_err(|_| FetchError::Unavailable)?)
        .await
        .map_err(|_| FetchError::Unavailable)?;
    T::from_json(&Json(parsed))
}

pub async fn match_by_id(id: MatchId) -> Result<MatchRecord, FetchError> {
    get(&format!("/api/matches/{id}")).await
}

pub async fn player(profile: ProfileId) -> Result<PlayerRecord, FetchError> {
    get(&format!("/api/players/{}", profile.to_hex())).await
}

pub async fn recent_matches(limit: u32) -> Result<MatchList, FetchError> {
    get(&format!("/api/matches?limit={limit}")).await
}

pub async fn leaderboard(limit: u32) -> Result<Leaderboard, FetchError> {
    get(&format!("/api/leaderboard?limit={limit}")).await
}

/// A value read from the server's JSON; anything missing or of the wrong type makes the
/// whole answer unreadable, so the pages never show half a match.
trait FromJson: Sized {
    fn from_json(json: &Json) -> Result<Self, FetchError>;
}

/// JSON as the browser parsed it, read field by field.
// Not serde_json with derived readers: with them these pages cost the bundle 28 KB of
// gzipped wasm, and this way 10 KB (114.4 KB against 132.7 KB, from 104.5 KB without
// the pages; `cargo xtask build`, December 2026), and every game page loads it all.
#[derive(Debug)]
struct Json(JsValue);

/// Numbers above this are not whole numbers in JSON as a browser reads it (2^53).
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

impl Json {
    fn field(&self, key: &str) -> Result<Json, FetchError> {
        // Reflect.get throws on anything that is not an object, and that is unreadable too.
        js_sys::Reflect::get(&self.0, &JsValue::from_str(key))
            .map(Json)
            .map_err(|_| FetchError::Unavailable)
    }

    fn text(&self, key: &str) -> Result<String, FetchError> {
        self.field(key)?
            .0
            .as_string()
            .ok_or(FetchError::Unavailable)
    }

    fn number(&self, key: &str) -> Result<f64, FetchError> {
        self.field(key)?
            .0
            .as_f64()
            .filter(|number| number.is_finite())
            .ok_or(FetchError::Unavailable)
    }

    /// A whole number from 0 up, as every count and id in the answers is.
    fn count<T: TryFrom<u64>>(&self, key: &str) -> Result<T, FetchError> {
        let number = self.number(key)?;
        if number < 0.0 || number.fract() != 0.0 || number > MAX_EXACT {
            return Err(FetchError::Unavailable);
        }
        // Exact: a whole number from 0 to 2^53 fits a u64 without rounding.
        T::try_from(number as u64).map_err(|_| FetchError::Unavailable)
    }

    /// Profiles travel as their 16 hex digits, so no malformed id ever reaches an
    /// address the page builds.
    fn profile(&self, key: &str) -> Result<ProfileId, FetchError> {
        ProfileId::from_hex(&self.text(key)?).ok_or(FetchError::Unavailable)
    }

    fn list<T: FromJson>(&self, key: &str) -> Result<Vec<T>, FetchError> {
        let list = self.field(key)?.0;
        if !js_sys::Array::is_array(&list) {
            return Err(FetchError::Unavailable);
        }
        js_sys::Array::from(&list)
            .iter()
            .map(|item| T::from_json(&Json(item)))
            .collect()
    }
}

impl FromJson for EndReason {
    fn from_json(json: &Json) -> Result<EndReason, FetchError> {
        Ok(match json.0.as_string().as_deref() {
            Some("score_limit") => EndReason::ScoreLimit,
            Some("time_limit") => EndReason::TimeLimit,
            Some("shutdown") => EndReason::Shutdown,
            Some(_) => EndReason::Other,
            None => return Err(FetchError::Unavailable),
        })
    }
}

impl FromJson for MatchRecord {
    fn from_json(json: &Json) -> Result<MatchRecord, FetchError> {
        Ok(MatchRecord {
            id: json.count("id")?,
            room: json.text("room")?,
            map: json.text("map")?,
            started_at: json.count("started_at")?,
            ended_at: json.count("ended_at")?,
            end_reason: EndReason::from_json(&json.field("end_reason")?)?,
            players: json.list("players")?,
        })
    }
}

impl FromJson for PlayerLine {
    fn from_json(json: &Json) -> Result<PlayerLine, FetchError> {
        Ok(PlayerLine {
            profile: json.profile("profile")?,
            name: json.text("name")?,
            kills: json.count("kills")?,
            deaths: json.count("deaths")?,
            shots: json.count("shots")?,
            hits: json.count("hits")?,
            score: json.count("score")?,
            placing: json.count("placing")?,
        })
    }
}

impl FromJson for MatchList {
    fn from_json(json: &Json) -> Result<MatchList, FetchError> {
        Ok(MatchList {
            matches: json.list("matches")?,
        })
    }
}

impl FromJson for Leaderboard {
    fn from_json(json: &Json) -> Result<Leaderboard, FetchError> {
        Ok(Leaderboard {
            players: json.list("players")?,
        })
    }
}

impl FromJson for LeaderboardEntry {
    fn from_json(json: &Json) -> Result<LeaderboardEntry, FetchError> {
        Ok(LeaderboardEntry {
            rank: json.count("rank")?,
            profile: json.profile("profile")?,
            name: json.text("name")?,
            rating: json.number("rating")?,
            kills: json.count("kills")?,
        })
    }
}

impl FromJson for PlayerRecord {
    fn from_json(json: &Json) -> Result<PlayerRecord, FetchError> {
        Ok(PlayerRecord {
            profile: json.profile("profile")?,
            name: json.text("name")?,
            rank: json.count("rank")?,
            rating: json.number("rating")?,
            matches: json.count("matches")?,
            wins: json.count("wins")?,
            kills: json.count("kills")?,
            deaths: json.count("deaths")?,
            shots: json.count("shots")?,
            hits: json.count("hits")?,
            recent_matches: json.list("recent_matches")?,
        })
    }
}

impl FromJson for PlayerMatch {
    fn from_json(json: &Json) -> Result<PlayerMatch, FetchError> {
        Ok(PlayerMatch {
            id: json.count("id")?,
            room: json.text("room")?,
            ended_at: json.count("ended_at")?,
            n_players: json.count("n_players")?,
            kills: json.count("kills")?,
            deaths: json.count("deaths")?,
            score: json.count("score")?,
            placing: json.count("placing")?,
        })
    }
}
