//! Where the cluster keeps what in Redis: every key name and every script, in one place.

use std::sync::LazyLock;

use redis::Script;

/// The set of process ids that registered; an id whose process key expired is dead, and
/// whoever reads the registry next removes it.
pub(crate) const PROCESSES: &str = "skirmish:processes";

/// What every process key starts with, so a script can test whether an owner lives.
pub(crate) const PROCESS_PREFIX: &str = "skirmish:process:";

/// A process's registry entry (`ProcessEntry` as JSON), with a TTL its heartbeat renews.
pub(crate) fn process(id: &str) -> String {
    format!("{PROCESS_PREFIX}{id}")
}

/// A process's rooms: a hash of room name to `RoomEntry` as JSON, with the same TTL as
/// its registry entry, so a dead process's rooms leave the directory with it.
pub(crate) fn rooms(id: &str) -> String {
    format!("skirmish:rooms:{id}")
}

/// The id of the process that owns (or is to open) the room of this name.
pub(crate) fn claim(room: &str) -> String {
    format!("skirmish:claim:{room}")
}

/// The seats reserved in a room and not yet counted in its directory entry: a sorted
/// set of tokens scored by when they expire.
pub(crate) fn pending(room: &str) -> String {
    format!("skirmish:pending:{room}")
}

/// One seat reservation: its token's key, holding the room it is for.
pub(crate) fn reservation(token: &str) -> String {
    format!("skirmish:reservation:{token}")
}

/// Takes the claim on a room name unless a live process holds it; answers the owner.
/// KEYS[1] the claim; ARGV[1] the claimant; ARGV[2] `PROCESS_PREFIX`.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. owner) == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
",
    )
});

/// Lets go of a claim only if it is still this process's.
/// KEYS[1] the claim; ARGV[1] the process.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Reserves a seat if the room's published players and its unexpired reservations
/// leave one free: 1 if reserved, 0 if full. Time is Redis's own, so processes whose
/// clocks differ agree on what expired.
/// KEYS[1] the owner's rooms hash; KEYS[2] the room's pending set; KEYS[3] the
/// reservation. ARGV[1] the room; ARGV[2] its capacity; ARGV[3] the reservation's
/// lifetime in ms; ARGV[4] the token; ARGV[5] what the reservation holds.
pub(crate) static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local players = 0
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if entry then players = cjson.decode(entry).players end
if players + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[3])
return 1
",
    )
});
