//! The cluster's heartbeat, one task per process: each second it renews this process's
//! registry entry, writes the rooms that changed since the last beat (and only those),
//! and reads the other processes' entries and rooms into the view. Redis traffic so
//! grows with processes, rooms opening and seats changing, never with ticks. When Redis
//! is away it keeps trying; once back, everything is written afresh.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redis::AsyncCommands;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::cluster::view::{ClusterView, ListedRoom, Process, ProcessEntry, RoomEntry};
use crate::cluster::{Cluster, ENTRY_TTL, HEARTBEAT, keys};
use crate::ops::metrics::Metrics;
use crate::rooms::directory::Directory;

/// Beats until `shutdown`, then takes this process out of the registry and the
/// directory at once, rather than leaving its rooms listed until their TTL.
pub(crate) async fn run(
    cluster: Arc<Cluster>,
    directory: Arc<dyn Directory>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    // `None` until a beat has written the whole rooms hash: then it holds what Redis
    // holds, and each beat writes only the difference.
    let mut published: Option<BTreeMap<String, RoomEntry>> = None;
    let mut beats = tokio::time::interval(HEARTBEAT);
    beats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reachable = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = beats.tick() => {}
        }
        if cluster.withdrawn.load(Ordering::Relaxed) {
            return;
        }
        let beat = async {
            publish(&cluster, &*directory, &mut published).await?;
            refresh(&cluster).await
        };
        match beat.await {
            Ok(()) => {
                if !reachable {
                    tracing::info!("Redis answers again; this process is back in the directory");
                }
                reachable = true;
            }
            Err(err) => {
                if reachable {
                    tracing::warn!(%err, "Redis is unreachable; rooms play on, joins wait for it");
                }
                reachable = false;
                // Whatever Redis held may be gone: write it all again once it is back.
                published = None;
            }
        }
        cluster.reachable.store(reachable, Ordering::Relaxed);
        metrics.cluster_reachable.set(i64::from(reachable));
    }
    if !cluster.withdrawn.load(Ordering::Relaxed) {
        let rooms = published.unwrap_or_default();
        leave(&cluster, rooms.keys().map(String::as_str)).await;
    }
}

/// Renews the registry entry and writes the changed rooms, in one atomic round trip.
async fn publish(
    cluster: &Cluster,
    directory: &dyn Directory,
    published: &mut Option<BTreeMap<String, RoomEntry>>,
) -> redis::RedisResult<()> {
    let now: BTreeMap<String, RoomEntry> = directory
        .list()
        .into_iter()
        .map(|room| {
            let entry = RoomEntry {
                players: room.players,
                capacity: room.capacity,
                quick_play: room.quick_play,
                phase: room.phase,
            };
            (room.id, entry)
        })
        .collect();
    let rooms_key = keys::rooms(&cluster.id);
    let ttl_ms = ENTRY_TTL.as_millis() as u64;
    let mut pipe = redis::pipe();
    pipe.atomic();
    let whole = published.is_none();
    if whole {
        // Rooms that closed while Redis was away must not stay listed.
        pipe.del(&rooms_key).ignore();
    }
    let known = published.take().unwrap_or_default();
    for (room, entry) in &now {
        if known.get(room) != Some(entry) {
            pipe.hset(&rooms_key, room, json(entry)).ignore();
            if !known.contains_key(room) {
                pipe.set_nx(keys::claim(room), &cluster.id).ignore();
            }
        }
    }
    let closed: Vec<String> = known
        .keys()
        .filter(|room| !now.contains_key(*room))
        .cloned()
        .collect();
    for room in &closed {
        pipe.hdel(&rooms_key, room).ignore();
    }
    let redeemed = std::mem::take(&mut *cluster.redeemed.lock());
    for (room, token) in &redeemed {
        pipe.zrem(keys::pending(room), token).ignore();
    }
    let entry = ProcessEntry {
        url: cluster.public_url.clone(),
        players: now.values().map(|room| u32::from(room.players)).sum(),
        draining: directory.is_draining(),
    };
    pipe.cmd("SET")
        .arg(keys::process(&cluster.id))
        .arg(json(&entry))
        .arg("PX")
        .arg(ttl_ms)
        .ignore();
    pipe.sadd(keys::PROCESSES, &cluster.id).ignore();
    pipe.pexpire(&rooms_key, ttl_ms as i64);
    let mut redis = cluster.redis.clone();
    let (rooms_kept,): (bool,) = pipe.query_async(&mut redis).await?;
    for room in &closed {
        let _: i64 = keys::RELEASE
            .key(keys::claim(room))
            .arg(&cluster.id)
            .invoke_async(&mut redis)
            .await?;
    }
    // A rooms hash that is gone although it holds rooms means Redis lost it (it
    // restarted between two beats): write it all again at the next one.
    if rooms_kept || now.is_empty() {
        *published = Some(now);
    }
    Ok(())
}

/// Reads every live process's entry and rooms into the view; forgets the dead.
async fn refresh(cluster: &Cluster) -> redis::RedisResult<()> {
    let mut redis = cluster.redis.clone();
    let mut ids: Vec<String> = redis.smembers(keys::PROCESSES).await?;
    ids.sort();
    let mut entries = redis::pipe();
    let mut rooms = redis::pipe();
    for id in &ids {
        entries.get(keys::process(id));
        rooms.hgetall(keys::rooms(id));
    }
    let entries: Vec<Option<String>> = entries.query_async(&mut redis).await?;
    let rooms: Vec<HashMap<String, String>> = rooms.query_async(&mut redis).await?;
    let mut view = ClusterView::default();
    let mut dead = Vec::new();
    for ((id, entry), rooms) in ids.into_iter().zip(entries).zip(rooms) {
        let Some(entry) = entry.and_then(|json| serde_json::from_str(&json).ok()) else {
            dead.push(id);
            continue;
        };
        for (room, json) in rooms {
            if let Ok(entry) = serde_json::from_str(&json) {
                view.rooms.push(ListedRoom {
                    id: room,
                    owner: id.clone(),
                    entry,
                });
            }
        }
        view.processes.push(Process { id, entry });
    }
    view.rooms.sort_by(|a, b| a.id.cmp(&b.id));
    if !dead.is_empty() {
        let _: i64 = redis.srem(keys::PROCESSES, &dead).await?;
    }
    let mut shown = cluster.view.lock();
    let others_changed = shown
        .rooms
        .iter()
        .filter(|room| room.owner != cluster.id)
        .ne(view.rooms.iter().filter(|room| room.owner != cluster.id));
    *shown = view;
    drop(shown);
    if others_changed {
        cluster
            .changed
            .send_modify(|version| *version = version.wrapping_add(1));
    }
    Ok(())
}

/// Removes this process's entry, rooms and claims, so the others stop listing it now.
pub(crate) async fn leave<'a>(cluster: &Cluster, rooms: impl Iterator<Item = &'a str>) {
    let mut redis = cluster.redis.clone();
    let mut pipe = redis::pipe();
    pipe.del(keys::process(&cluster.id)).ignore();
    pipe.del(keys::rooms(&cluster.id)).ignore();
    pipe.srem(keys::PROCESSES, &cluster.id).ignore();
    let left = async {
        pipe.query_async::<()>(&mut redis).await?;
        for room in rooms {
            let _: i64 = keys::RELEASE
                .key(keys::claim(room))
                .arg(&cluster.id)
                .invoke_async(&mut redis)
                .await?;
        }
        redis::RedisResult::Ok(())
    };
    if let Err(err) = left.await {
        tracing::warn!(%err, "could not leave the cluster directory; the entries expire by themselves");
    }
}

fn json(value: &impl serde::Serialize) -> String {
    // Plain structs of numbers, strings and booleans always serialize.
    serde_json::to_string(value).unwrap_or_default()
}
