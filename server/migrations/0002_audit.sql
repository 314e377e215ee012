-- The operators' audit log: each action taken from the console or its API (kick, close
-- a room, broadcast, drain), who took it and when. Applied once, in one transaction, by
-- server/src/store/sqlite/schema.rs. Rows are only ever added.

CREATE TABLE audit_log (
    -- AUTOINCREMENT: ids only grow, so the log reads back in the order it was written.
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Milliseconds since the Unix epoch.
    at_ms  INTEGER NOT NULL,
    -- The operator as the console knows them: a name given at login, or the API's
    -- token, with the address the request came from.
    who    TEXT    NOT NULL,
    action TEXT    NOT NULL CHECK (action IN ('kick', 'close_room', 'broadcast', 'drain')),
    -- What the action was taken on: `room/player`, a room, or empty for the server.
    target TEXT    NOT NULL,
    detail TEXT    NOT NULL
) STRICT;
