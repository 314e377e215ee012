//! Tick rates, protocol limits and game tuning in one place, so no number is written twice.

/// Bumped whenever the wire format changes; checked in the handshake.
pub const PROTOCOL_VERSION: u16 = 7;

/// A match's default score limit: kills by one player.
pub const DEFAULT_MATCH_SCORE_LIMIT: u16 = 20;
/// A match's default time limit, in seconds.
pub const DEFAULT_MATCH_TIME_LIMIT_SECS: f64 = 300.0;
/// How long a match's results stand by default, in seconds.
pub const DEFAULT_MATCH_RESULTS_SECS: f64 = 10.0;

/// Default simulation rate of a room, in ticks per second.
pub const DEFAULT_TICK_HZ: u16 = 60;
/// Default rate at which a room sends snapshots, per second.
pub const DEFAULT_SNAPSHOT_HZ: u16 = 30;
/// Bounds accepted for either rate.
pub const MIN_RATE_HZ: u16 = 1;
pub const MAX_RATE_HZ: u16 = 240;

/// The simulated time of one tick. Server and client both take it from here, so the
/// step they run is bit-for-bit the same.
pub fn tick_dt(tick_hz: u16) -> f32 {
    1.0 / f32::from(tick_hz.max(1))
}

/// Ticks of input one message may carry. No larger than `MAX_QUEUED_INPUTS`, so a whole
/// batch fits in the room's queue.
pub const MAX_INPUT_BATCH: u8 = 8;

/// Seats in a room.
pub const DEFAULT_ROOM_CAPACITY: u16 = 16;
/// Hard upper bound on seats, which keeps player ids and snapshot lists small.
pub const MAX_ROOM_CAPACITY: u16 = 64;

/// Largest client message the server reads; anything bigger closes the connection (1009).
pub const MAX_CLIENT_MSG_BYTES: usize = 2 * 1024;
/// Largest server message a client decodes (the welcome carries the map).
pub const MAX_SERVER_MSG_BYTES: usize = 256 * 1024;

/// Largest lobby feed message a client decodes: a whole list of `LOBBY_ROOMS_LISTED`
/// rooms with the longest names fits with room to spare.
pub const MAX_LOBBY_MSG_BYTES: usize = 64 * 1024;
/// Rooms the lobby feed lists at most, the first by name; quick play and a room's deep
/// link reach any room, listed or not.
pub const LOBBY_ROOMS_LISTED: usize = 1000;

/// Nickname length in characters, after trimming.
pub const NAME_MIN_CHARS: usize = 1;
pub const NAME_MAX_CHARS: usize = 16;
/// Room name length in characters.
pub const ROOM_NAME_MAX_CHARS: usize = 24;
/// Chat line length in characters, after sanitising.
pub const CHAT_MAX_CHARS: usize = 160;

/// Inputs a player may have applied in one tick; the rest of a burst waits or is dropped.
pub const MAX_INPUTS_PER_TICK: u32 = 3;
/// Unused input credit a player may bank (one credit per tick), so jitter is absorbed
/// but a client that sends faster than the tick rate cannot move faster.
pub const MAX_INPUT_CREDIT: u32 = 4;

/// Inputs that may wait in a player's queue; older extras are dropped so a client whose
/// clock runs fast gains neither speed nor latency.
pub const MAX_QUEUED_INPUTS: usize = 8;
/// An input more than this many sequence numbers ahead of the last one is ignored.
pub const MAX_SEQ_JUMP: i32 = 1024;

/// Chat lines a player may send in a burst, and the refill rate after it.
pub const CHAT_BURST: u32 = 5;
pub const CHAT_PER_SECOND: f32 = 0.5;

/// Seconds a dropped connection's seat is held by default, for a resume.
pub const DEFAULT_RESUME_GRACE_SECS: f64 = 20.0;

/// Snapshots a room remembers as possible baselines (about a second at 30 Hz). A client
/// whose newest acknowledged snapshot is older gets a full snapshot instead of a delta.
pub const SNAPSHOT_RING: usize = 32;

/// Seconds between a replay's keyframes: how far a seek has to replay deltas at most.
pub const REPLAY_KEYFRAME_SECS: u16 = 3;
/// Largest frame in a replay file: a keyframe of a full room, or a long match's index.
pub const MAX_REPLAY_FRAME_BYTES: usize = 1024 * 1024;

/// How far back a shot is judged by default, in milliseconds (lag compensation): enough
/// for a round trip of about 150 ms plus the interpolation delay.
pub const DEFAULT_MAX_REWIND_MS: u16 = 250;
/// The most any server may be set to rewind: every millisecond is more of the past a
/// shooter may claim to have seen, and history to keep.
pub const MAX_REWIND_MS_LIMIT: u16 = 1000;
/// How far a shooter's claimed view may stray from the server's estimate (the measured
/// round trip plus the interpolation delay) before it is clamped and counted.
pub const REWIND_CLAIM_TOLERANCE_MS: u16 = 200;

/// Projectiles alive in one room at most; a shot past this is not fired.
pub const MAX_PROJECTILES: usize = 200;

/// Game tuning: units are world units and seconds.
pub mod tuning {
    pub const PLAYER_RADIUS: f32 = 20.0;
    /// Acceleration while a direction key is held.
    pub const PLAYER_ACCEL: f32 = 2400.0;
    /// Fraction of velocity lost per second (linear damping); top speed is ACCEL / FRICTION.
    pub const PLAYER_FRICTION: f32 = 8.0;
    pub const PLAYER_MAX_SPEED: f32 = 320.0;
    pub const MAX_HEALTH: u8 = 100;
    pub const RESPAWN_DELAY_S: f32 = 2.0;
    pub const FIRE_COOLDOWN_S: f32 = 0.25;
    pub const PROJECTILE_SPEED: f32 = 900.0;
    pub const PROJECTILE_RADIUS: f32 = 4.0;
    pub const PROJECTILE_TTL_S: f32 = 1.2;
    pub const PROJECTILE_DAMAGE: u8 = 25;
}

const _: () = assert!(
    MAX_INPUT_BATCH as usize <= MAX_QUEUED_INPUTS,
    "a whole input batch must fit in the room's queue"
);
