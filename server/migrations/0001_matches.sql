-- Finished matches, each player's line in them, and each player's lifetime stats and
-- rating. Applied once, in one transaction, by server/src/store/sqlite/schema.rs.

-- Marks the file as Skirmish's ('SKRM'), so another program's database is refused.
PRAGMA application_id = 1397445197;

-- AUTOINCREMENT: an id is never reused, even after the newest match is deleted, so a
-- match's URL (served as immutable) always names the same match.
CREATE TABLE matches (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room          TEXT    NOT NULL,
    map           TEXT    NOT NULL,
    -- Milliseconds since the Unix epoch.
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER NOT NULL,
    end_reason    TEXT    NOT NULL CHECK (end_reason IN ('score_limit', 'time_limit', 'shutdown'))
) STRICT;

-- `line` is the player's position in the result as handed over (best placing first).
-- Profiles are their 16 lowercase hex digits: text order is numeric order, and the
-- file reads the same as the API.
CREATE TABLE match_players (
    match_id INTEGER NOT NULL REFERENCES matches (id),
    line     INTEGER NOT NULL,
    profile  TEXT    NOT NULL CHECK (length(profile) = 16),
    name     TEXT    NOT NULL,
    kills    INTEGER NOT NULL,
    deaths   INTEGER NOT NULL,
    shots    INTEGER NOT NULL,
    hits     INTEGER NOT NULL,
    score    INTEGER NOT NULL,
    placing  INTEGER NOT NULL,
    PRIMARY KEY (match_id, line)
) STRICT, WITHOUT ROWID;

-- A player's recent matches.
CREATE INDEX match_players_by_profile ON match_players (profile, match_id DESC);

-- One row per player with at least one saved match. `rating` is what the leaderboard
-- orders by (skill - 3 * uncertainty), kept in its own column so it can be indexed.
CREATE TABLE profiles (
    profile     TEXT    PRIMARY KEY CHECK (length(profile) = 16),
    name        TEXT    NOT NULL,
    matches     INTEGER NOT NULL,
    wins        INTEGER NOT NULL,
    kills       INTEGER NOT NULL,
    deaths      INTEGER NOT NULL,
    shots       INTEGER NOT NULL,
    hits        INTEGER NOT NULL,
    score       INTEGER NOT NULL,
    skill       REAL    NOT NULL,
    uncertainty REAL    NOT NULL,
    rating      REAL    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX profiles_by_rating ON profiles (rating DESC, profile ASC);
