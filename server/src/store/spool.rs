//! The spool: finished matches waiting on local disk while the shared database cannot
//! take them. One append-only file of length-prefixed, checksummed records, fsync'd on
//! every append, bounded in bytes, and emptied only once every record in it is saved.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use shared::ProfileId;

use crate::store::{EndReason, MatchResult, PlayerResult, StoreError};

/// The spool's folder inside the data directory.
pub const SPOOL_DIR: &str = "spool";
/// The records, in the order they were spooled.
const RECORDS_FILE: &str = "results.spool";
/// Held locked (`flock`) by the one process that owns the spool.
const LOCK_FILE: &str = "lock";
/// The first bytes of a spool file, with the format's version in its last byte.
const MAGIC: &[u8; 8] = b"SKSPOOL1";
const MAGIC_LEN: u64 = MAGIC.len() as u64;
/// Each record starts with its payload's length and CRC-32, both little-endian `u32`.
const RECORD_HEAD: u64 = 8;
/// A payload longer than this is damage, not a match: a full room's result is a few KiB.
const MAX_PAYLOAD: u32 = 1 << 20;

/// A result's identity, drawn at random when a room hands it over. The database keeps
/// it in a unique column, so a result sent twice (after a crash between its commit and
/// the spool's truncation, or a commit whose answer was lost) is saved once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ResultKey(pub(crate) [u8; 16]);

impl ResultKey {
    pub(crate) fn random() -> ResultKey {
        let mut bytes = [0u8; 16];
        // Invariant: the OS provides random bytes (the identity keys need them too).
        getrandom::fill(&mut bytes).expect("the OS provides random bytes");
        ResultKey(bytes)
    }

    fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    fn from_hex(text: &str) -> Option<ResultKey> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(ResultKey(bytes))
    }
}

/// A record read back from the spool, and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Spooled {
    pub(crate) key: ResultKey,
    pub(crate) result: MatchResult,
    /// The file offset just past this record.
    pub(crate) end: u64,
}

/// The gauges the spool keeps up to date.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpoolGauges {
    /// Records waiting to be saved.
    pub(crate) depth: Gauge,
    /// Bytes the spool file holds on disk.
    pub(crate) bytes: Gauge,
}

/// The spool of one data directory, locked for this process while it is open.
#[derive(Debug)]
pub(crate) struct Spool {
    path: PathBuf,
    file: File,
    /// Locked for as long as the spool is open; unlocked by the OS when closed.
    _lock: File,
    /// The first record not yet saved.
    head: u64,
    /// The file's length: where the next record goes.
    end: u64,
    /// Records from `head` to `end`.
    depth: usize,
    max_bytes: u64,
    gauges: SpoolGauges,
}

impl Spool {
    /// Opens (creating it if missing) `<data_dir>/spool/`, takes its lock, and reads
    /// every record to count them. A torn last record (a crash mid-append) is cut off;
    /// damage before the end is copied aside for the operator and cut off too, with an
    /// error in the log. A file that is not a spool is refused and left untouched.
    pub(crate) fn open(
        data_dir: &Path,
        max_bytes: u64,
        gauges: SpoolGauges,
    ) -> Result<Spool, StoreError> {
        let dir = data_dir.join(SPOOL_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let lock = take_lock(&dir.join(LOCK_FILE))?;
        let path = dir.join(RECORDS_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|err| io_error(&path, "open", err))?;
        let mut spool = Spool {
            path,
            file,
            _lock: lock,
            head: MAGIC_LEN,
            end: MAGIC_LEN,
            depth: 0,
            max_bytes: max_bytes.max(MAGIC_LEN),
            gauges,
        };
        spool.recover()?;
        spool.publish();
        if spool.depth > 0 {
            tracing::info!(
                path = %spool.path.display(),
                records = spool.depth,
                "finished matches are waiting in the spool; they go to the database once it answers"
            );
        }
        Ok(spool)
    }

    /// Records waiting to be saved.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.depth == 0
    }

    /// Appends `results` in order and syncs them to disk. Returns how many were
    /// written: all of them, or the first few that fit under the bound, the rest
    /// being the caller's to drop. Nothing is half-written: a failed write is cut
    /// off again.
    pub(crate) fn append(&mut self, results: &[(ResultKey, &MatchResult)]) -> io::Result<usize> {
        let mut bytes = Vec::new();
        let mut n_fit = 0;
        for (key, result) in results {
            let record = encode(*key, result)?;
            if self.end + bytes.len() as u64 + record.len() as u64 > self.max_bytes {
                break;
            }
            bytes.extend_from_slice(&record);
            n_fit += 1;
        }
        if n_fit == 0 {
            return Ok(0);
        }
        let written = self
            .file
            .write_all_at(&bytes, self.end)
            .and_then(|()| self.file.sync_data());
        if let Err(err) = written {
            // Best effort: whatever reached the file is not a record anyone was told of.
            let _ = self.file.set_len(self.end);
            return Err(err);
        }
        self.end += bytes.len() as u64;
        self.depth += n_fit;
        self.publish();
        Ok(n_fit)
    }

    /// Up to `limit` records from the oldest waiting one, left in the spool until
    /// `consume` says they are saved.
    pub(crate) fn peek(&self, limit: usize) -> io::Result<Vec<Spooled>> {
        let mut records = Vec::new();
        let mut at = self.head;
        while records.len() < limit && at < self.end {
            let record = read_record(&self.file, at, self.end)
                .map_err(|damage| io::Error::new(io::ErrorKind::InvalidData, damage.reason))?;
            at = record.end;
            records.push(record);
        }
        Ok(records)
    }

    /// The `n` oldest records, which end at `end`, are saved. Once none is left the
    /// file is emptied and synced; until then a crash sends the saved ones again, and
    /// the database knows them by their keys.
    pub(crate) fn consume(&mut self, n: usize, end: u64) -> io::Result<()> {
        self.head = end.min(self.end);
        self.depth = self.depth.saturating_sub(n);
        if self.depth == 0 {
            self.file.set_len(MAGIC_LEN)?;
            self.file.sync_data()?;
            self.head = MAGIC_LEN;
            self.end = MAGIC_LEN;
        }
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        self.gauges
            .depth
            .set(i64::try_from(self.depth).unwrap_or(i64::MAX));
        self.gauges
            .bytes
            .set(i64::try_from(self.end).unwrap_or(i64::MAX));
    }

    /// Reads the file from the start: checks the magic, counts the records, and cuts
    /// off whatever follows the last good one.
    fn recover(&mut self) -> Result<(), StoreError> {
        let len = self
            .file
            .metadata()
            .map_err(|err| io_error(&self.path, "read", err))?
            .len();
        let mut magic = vec![0u8; len.min(MAGIC_LEN) as usize];
        self.file
            .read_exact_at(&mut magic, 0)
            .map_err(|err| io_error(&self.path, "read", err))?;
        if magic.as_slice() != &MAGIC[..magic.len()] {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: "it does not start as a Skirmish spool does".into(),
            });
        }
        if len < MAGIC_LEN {
            // New, or a first start that stopped mid-write.
            self.file
                .set_len(0)
                .and_then(|()| self.file.write_all_at(MAGIC, 0))
                .and_then(|()| self.file.sync_all())
                .map_err(|err| io_error(&self.path, "write", err))?;
            return Ok(());
        }
        let mut at = MAGIC_LEN;
        while at < len {
            match read_record(&self.file, at, len) {
                Ok(record) => {
                    at = record.end;
                    self.depth += 1;
                }
                Err(damage) => {
                    self.cut_off(at, len, damage)?;
                    break;
                }
            }
        }
        self.end = at;
        Ok(())
    }

    /// Cuts the file at `at`, the end of its last good record. A torn append is
    /// expected after a crash; anything else is copied aside first.
    fn cut_off(&mut self, at: u64, len: u64, damage: Damage) -> Result<(), StoreError> {
        if damage.torn {
            tracing::warn!(
                path = %self.path.display(),
                bytes = len - at,
                "the spool ends in a record that was being written when the server stopped; it was never reported saved and is cut off"
            );
        } else {
            let aside = self.path.with_extension(format!(
                "damaged-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis())
            ));
            std::fs::copy(&self.path, &aside).map_err(|err| io_error(&aside, "write", err))?;
            tracing::error!(
                path = %self.path.display(),
                copy = %aside.display(),
                offset = at,
                reason = %damage.reason,
                "the spool is damaged; the records before the damage are kept, the file as found was copied aside"
            );
        }
        self.file
            .set_len(at)
            .and_then(|()| self.file.sync_all())
            .map_err(|err| io_error(&self.path, "cut", err))
    }
}

/// Takes the spool's lock, so two processes never spool into, or flush from, one file.
fn take_lock(path: &Path) -> Result<File, StoreError> {
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|err| io_error(path, "open", err))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Backend {
            what: format!("lock {}", path.display()),
            source: "another server process uses this data directory's spool; give each process a data directory of its own".into(),
        }),
        Err(std::fs::TryLockError::Error(err)) => Err(io_error(path, "lock", err)),
    }
}

fn io_error(path: &Path, doing: &str, err: io::Error) -> StoreError {
    StoreError::Backend {
        what: format!("{doing} {}", path.display()),
        source: Box::new(err),
    }
}

/// Why a record could not be read.
#[derive(Debug)]
struct Damage {
    /// The file ends inside the record, or in zeros: an append the crash interrupted.
    torn: bool,
    reason: String,
}

/// The record at `at` in a file of `len` bytes.
fn read_record(file: &File, at: u64, len: u64) -> Result<Spooled, Damage> {
    let unreadable = |err: io::Error| Damage {
        torn: false,
        reason: format!("read at {at}: {err}"),
    };
    let left = len - at;
    if left < RECORD_HEAD {
        return Err(Damage {
            torn: true,
            reason: "a record's head is cut short".into(),
        });
    }
    let mut head = [0u8; RECORD_HEAD as usize];
    file.read_exact_at(&mut head, at).map_err(unreadable)?;
    let payload_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let checksum = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if u64::from(payload_len) > left - RECORD_HEAD {
        return Err(Damage {
            torn: true,
            reason: "a record is cut short".into(),
        });
    }
    if payload_len == 0 || payload_len > MAX_PAYLOAD {
        return Err(Damage {
            torn: all_zeros(file, at, len),
            reason: format!("a record claims {payload_len} bytes"),
        });
    }
    let mut payload = vec![0u8; payload_len as usize];
    file.read_exact_at(&mut payload, at + RECORD_HEAD)
        .map_err(unreadable)?;
    if crc32fast::hash(&payload) != checksum {
        return Err(Damage {
            torn: false,
            reason: "a record fails its checksum".into(),
        });
    }
    let (key, result) = decode(&payload).map_err(|reason| Damage {
        torn: false,
        reason,
    })?;
    Ok(Spooled {
        key,
        result,
        end: at + RECORD_HEAD + u64::from(payload_len),
    })
}

/// Whether everything from `at` to `len` is zero: what some file systems leave where
/// an append had grown the file but its data had not reached the disk.
fn all_zeros(file: &File, at: u64, len: u64) -> bool {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut offset = at;
    while offset < len {
        let n = (len - offset).min(chunk.len() as u64) as usize;
        if file.read_exact_at(&mut chunk[..n], offset).is_err()
            || chunk[..n].iter().any(|&b| b != 0)
        {
            return false;
        }
        offset += n as u64;
    }
    true
}

/// A result as the spool keeps it: JSON, so an operator can read a spool with `strings`.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    key: String,
    room: String,
    map: String,
    started_at_ms: i64,
    ended_at_ms: i64,
    end_reason: String,
    players: Vec<Line>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    profile: String,
    name: String,
    kills: u32,
    deaths: u32,
    shots: u32,
    hits: u32,
    score: u32,
    placing: u32,
}

/// One record: the payload's length and checksum, then the payload.
fn encode(key: ResultKey, result: &MatchResult) -> io::Result<Vec<u8>> {
    let record = Record {
        key: key.to_hex(),
        room: result.room.clone(),
        map: result.map.clone(),
        started_at_ms: result.started_at_ms,
        ended_at_ms: result.ended_at_ms,
        end_reason: result.end_reason.as_str().to_owned(),
        players: result
            .players
            .iter()
            .map(|player| Line {
                profile: player.profile.to_hex(),
                name: player.name.clone(),
                kills: player.kills,
                deaths: player.deaths,
                shots: player.shots,
                hits: player.hits,
                score: player.score,
                placing: player.placing,
            })
            .collect(),
    };
    let payload = serde_json::to_vec(&record)?;
    let payload_len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n <= MAX_PAYLOAD)
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a result too large to spool")
        })?;
    let mut bytes = Vec::with_capacity(RECORD_HEAD as usize + payload.len());
    bytes.extend_from_slice(&payload_len.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

/// The bytes one record takes in the spool, for tests that size a spool in records.
#[cfg(test)]
pub(crate) fn record_len(result: &MatchResult) -> u64 {
    encode(ResultKey([0; 16]), result).map_or(0, |record| record.len() as u64)
}

/// The bytes a spool file starts with, before any record.
#[cfg(test)]
pub(crate) const EMPTY_LEN: u64 = MAGIC_LEN;

fn decode(payload: &[u8]) -> Result<(ResultKey, MatchResult), String> {
    let record: Record =
        serde_json::from_slice(payload).map_err(|err| format!("a record does not parse: {err}"))?;
    let key = ResultKey::from_hex(&record.key)
        .ok_or_else(|| format!("{:?} is not a result key", record.key))?;
    let end_reason = EndReason::from_name(&record.end_reason)
        .ok_or_else(|| format!("{:?} is not an end reason", record.end_reason))?;
    let players = record
        .players
        .into_iter()
        .map(|line| {
            Ok(PlayerResult {
                profile: ProfileId::from_hex(&line.profile)
                    .ok_or_else(|| format!("{:?} is not a profile id", line.profile))?,
                name: line.name,
                kills: line.kills,
                deaths: line.deaths,
                shots: line.shots,
                hits: line.hits,
                score: line.score,
                placing: line.placing,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((
        key,
        MatchResult {
            room: record.room,
            map: record.map,
            started_at_ms: record.started_at_ms,
            ended_at_ms: record.ended_at_ms,
            end_reason,
            players,
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A data directory of its own under the system's temporary folder, removed when
    /// dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(what: &str) -> TempDir {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "skirmish-spool-{what}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            TempDir(path)
        }

        fn records(&self) -> PathBuf {
            self.0.join(SPOOL_DIR).join(RECORDS_FILE)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn result(room: &str) -> MatchResult {
        MatchResult {
            room: room.into(),
            map: "arena".into(),
            started_at_ms: 1_700_000_000_000,
            ended_at_ms: 1_700_000_300_000,
            end_reason: EndReason::TimeLimit,
            players: vec![
                PlayerResult {
                    profile: ProfileId(0xfeed_0000_0000_0001),
                    name: "ann \"quoted\" ünïcode".into(),
                    kills: 5,
                    deaths: 1,
                    shots: 20,
                    hits: 9,
                    score: 5,
                    placing: 1,
                },
                PlayerResult {
                    profile: ProfileId(2),
                    name: "bob".into(),
                    kills: 1,
                    deaths: 5,
                    shots: 7,
                    hits: 1,
                    score: 1,
                    placing: 2,
                },
            ],
        }
    }

    fn open(dir: &TempDir) -> Spool {
        Spool::open(&dir.0, 1 << 20, SpoolGauges::default()).expect("the spool opens")
    }

    fn append_all(spool: &mut Spool, rooms: &[&str]) -> Vec<(ResultKey, MatchResult)> {
        let results: Vec<(ResultKey, MatchResult)> = rooms
            .iter()
            .map(|room| (ResultKey::random(), result(room)))
            .collect();
        let borrowed: Vec<(ResultKey, &MatchResult)> =
            results.iter().map(|(key, result)| (*key, result)).collect();
        assert_eq!(spool.append(&borrowed).expect("append"), rooms.len());
        results
    }

    fn rooms(records: &[Spooled]) -> Vec<&str> {
        records
            .iter()
            .map(|record| record.result.room.as_str())
            .collect()
    }

    #[test]
    fn records_read_back_in_order_with_their_keys_and_survive_reopening() {
        let dir = TempDir::new("roundtrip");
        let gauges = SpoolGauges::default();
        let written = {
            let mut spool = Spool::open(&dir.0, 1 << 20, gauges.clone()).expect("opens");
            let written = append_all(&mut spool, &["a", "b", "c"]);
            assert_eq!(gauges.depth.get(), 3, "the gauge shows three waiting");
            written
        };
        let spool = open(&dir);
        assert_eq!(spool.depth(), 3, "the records outlive the process");
        let records = spool.peek(10).expect("peek");
        let read: Vec<(ResultKey, MatchResult)> = records
            .iter()
            .map(|record| (record.key, record.result.clone()))
            .collect();
        assert_eq!(read, written, "each result and key reads back as written");
        assert_eq!(rooms(&spool.peek(2).expect("peek")), ["a", "b"]);
    }

    #[test]
    fn consuming_everything_empties_the_file_and_a_reopen_finds_nothing() {
        let dir = TempDir::new("consume");
        let gauges = SpoolGauges::default();
        let mut spool = Spool::open(&dir.0, 1 << 20, gauges.clone()).expect("opens");
        append_all(&mut spool, &["a", "b", "c"]);
        let first_two = spool.peek(2).expect("peek");
        spool.consume(2, first_two[1].end).expect("consume");
        assert_eq!(
            rooms(&spool.peek(10).expect("peek")),
            ["c"],
            "the rest waits"
        );
        append_all(&mut spool, &["d"]);
        let rest = spool.peek(10).expect("peek");
        assert_eq!(rooms(&rest), ["c", "d"], "appends go after what waits");
        spool.consume(2, rest[1].end).expect("consume");
        assert!(spool.is_empty());
        assert_eq!(gauges.depth.get(), 0);
        assert_eq!(
            std::fs::metadata(dir.records())
                .expect("the file stays")
                .len(),
            MAGIC_LEN,
            "an empty spool is its magic alone"
        );
        drop(spool);
        assert!(open(&dir).is_empty());
    }

    #[test]
    fn a_full_spool_takes_only_what_fits() {
        let dir = TempDir::new("full");
        let one = encode(ResultKey::random(), &result("a"))
            .expect("encode")
            .len() as u64;
        let gauges = SpoolGauges::default();
        let mut spool = Spool::open(&dir.0, MAGIC_LEN + 2 * one, gauges.clone()).expect("opens");
        let results: Vec<(ResultKey, MatchResult)> = ["a", "b", "c"]
            .iter()
            .map(|room| (ResultKey::random(), result(room)))
            .collect();
        let borrowed: Vec<(ResultKey, &MatchResult)> =
            results.iter().map(|(key, result)| (*key, result)).collect();
        assert_eq!(spool.append(&borrowed).expect("append"), 2, "two fit");
        assert_eq!(
            spool.append(&borrowed[2..]).expect("append"),
            0,
            "none more"
        );
        assert_eq!(spool.depth(), 2);
        assert_eq!(gauges.bytes.get() as u64, MAGIC_LEN + 2 * one);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_the_rest_kept() {
        let dir = TempDir::new("torn");
        drop({
            let mut spool = open(&dir);
            append_all(&mut spool, &["a", "b"]);
            spool
        });
        let whole = std::fs::read(dir.records()).expect("read");
        // A crash in the middle of the second append.
        std::fs::write(dir.records(), &whole[..whole.len() - 7]).expect("tear");
        let spool = open(&dir);
        assert_eq!(rooms(&spool.peek(10).expect("peek")), ["a"]);
        drop(spool);
        // Zeros where a grown file's data never arrived are torn too.
        let mut zeroed = std::fs::read(dir.records()).expect("read");
        zeroed.extend_from_slice(&[0u8; 300]);
        std::fs::write(dir.records(), &zeroed).expect("zero tail");
        assert_eq!(rooms(&open(&dir).peek(10).expect("peek")), ["a"]);
        let copies = std::fs::read_dir(dir.0.join(SPOOL_DIR))
            .expect("list")
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|entry| entry.file_name().to_string_lossy().contains("damaged"))
            })
            .count();
        assert_eq!(copies, 0, "a torn tail is expected and needs no copy");
    }

    #[test]
    fn damage_before_the_end_keeps_the_good_records_and_copies_the_file_aside() {
        let dir = TempDir::new("damaged");
        let first_end = {
            let mut spool = open(&dir);
            append_all(&mut spool, &["a", "b", "c"]);
            spool.peek(1).expect("peek")[0].end
        };
        let mut bytes = std::fs::read(dir.records()).expect("read");
        // Flip a byte inside the second record's payload.
        let inside = first_end as usize + RECORD_HEAD as usize + 3;
        bytes[inside] ^= 0x55;
        std::fs::write(dir.records(), &bytes).expect("damage");
        let spool = open(&dir);
        assert_eq!(
            rooms(&spool.peek(10).expect("peek")),
            ["a"],
            "the good prefix stays"
        );
        let copies: Vec<PathBuf> = std::fs::read_dir(dir.0.join(SPOOL_DIR))
            .expect("list")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().contains("damaged"))
            })
            .collect();
        assert_eq!(copies.len(), 1, "the damaged file is copied aside");
        assert_eq!(
            std::fs::read(&copies[0]).expect("read the copy"),
            bytes,
            "the copy is the file as found"
        );
    }

    #[test]
    fn a_file_that_is_not_a_spool_is_refused_and_left_untouched() {
        let dir = TempDir::new("foreign");
        std::fs::create_dir_all(dir.0.join(SPOOL_DIR)).expect("mkdir");
        std::fs::write(dir.records(), b"some other program's notes").expect("write");
        let err = Spool::open(&dir.0, 1 << 20, SpoolGauges::default())
            .expect_err("a foreign file is refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.records()).expect("read"),
            b"some other program's notes"
        );
    }

    #[test]
    fn a_second_opener_of_one_spool_is_refused() {
        let dir = TempDir::new("locked");
        let _first = open(&dir);
        let err =
            Spool::open(&dir.0, 1 << 20, SpoolGauges::default()).expect_err("one spool, one owner");
        assert!(err.to_string().contains("another server process"), "{err}");
    }
}
