-- Finished matches, each player's line in them, and each player's lifetime stats and
-- rating, shared by every server process. Applied once, in one transaction, by
-- server/src/store/postgres/schema.rs, which records it in skirmish_migrations.

-- An identity column draws from a sequence: ids are never reused, even after a rolled
-- back insert, so a match's URL (served as immutable) always names the same match.
-- `result_key` is drawn at random by the process that played the match; it is unique,
-- so a result sent twice (replayed from a spool) is saved once.
CREATE TABLE matches (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    result_key    bytea  NOT NULL UNIQUE CHECK (octet_length(result_key) = 16),
    room          text   NOT NULL,
    map           text   NOT NULL,
    -- Milliseconds since the Unix epoch.
    started_at_ms bigint NOT NULL,
    ended_at_ms   bigint NOT NULL,
    end_reason    text   NOT NULL CHECK (end_reason IN ('score_limit', 'time_limit', 'shutdown'))
);

-- `line` is the player's position in the result as handed over (best placing first).
-- Profiles are their 16 lowercase hex digits under the "C" collation: text order is
-- numeric order, whatever the database's locale, and the rows read as the API does.
CREATE TABLE match_players (
    match_id bigint  NOT NULL REFERENCES matches (id),
    line     integer NOT NULL,
    profile  text    COLLATE "C" NOT NULL CHECK (length(profile) = 16),
    name     text    NOT NULL,
    kills    bigint  NOT NULL,
    deaths   bigint  NOT NULL,
    shots    bigint  NOT NULL,
    hits     bigint  NOT NULL,
    score    bigint  NOT NULL,
    -- Quoted: PLACING is one of PostgreSQL's reserved words.
    "placing" bigint NOT NULL,
    PRIMARY KEY (match_id, line)
);

-- A player's recent matches.
CREATE INDEX match_players_by_profile ON match_players (profile, match_id DESC);

-- One row per player with at least one saved match. `rating` is what the leaderboard
-- orders by (skill - 3 * uncertainty), kept in its own column so it can be indexed.
CREATE TABLE profiles (
    profile     text             COLLATE "C" PRIMARY KEY CHECK (length(profile) = 16),
    name        text             NOT NULL,
    matches     bigint           NOT NULL,
    wins        bigint           NOT NULL,
    kills       bigint           NOT NULL,
    deaths      bigint           NOT NULL,
    shots       bigint           NOT NULL,
    hits        bigint           NOT NULL,
    score       bigint           NOT NULL,
    skill       double precision NOT NULL,
    uncertainty double precision NOT NULL,
    rating      double precision NOT NULL
);

CREATE INDEX profiles_by_rating ON profiles (rating DESC, profile ASC);
