//! One player's time in a room, platform-free: what arrives updates the room view, the
//! prediction and the interpolation buffer; each tick's input is numbered, predicted and
//! turned into a message. The browser shell and the native tests both drive it.

use shared::codec::{decode_server, encode_client};
use shared::consts::tick_dt;
use shared::game::{InputFrame, buttons};
use shared::protocol::{ClientMsg, ServerMsg, Watching, Welcome};
use shared::snapshot::DeltaError;
use shared::{Map, PlayerId, Seq, Tick};

use crate::core::{ApplyError, RoomView};
use crate::interp::Interpolator;
use crate::netstats::{PingTracker, RateMeter};
use crate::predict::Predictor;

/// Per-second rates for the net graph.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rates {
    pub frames: RateMeter,
    pub snapshots: RateMeter,
    pub down_bytes: RateMeter,
    pub up_bytes: RateMeter,
}

#[derive(Debug)]
pub struct Session {
    pub view: RoomView,
    pub predictor: Predictor,
    pub interp: Interpolator,
    pub ping: PingTracker,
    pub rates: Rates,
    me: PlayerId,
    map: Map,
    dt: f32,
    last_seq: Seq,
    last_snapshot_tick: Option<Tick>,
}

impl Session {
    pub fn new(welcome: Welcome) -> Session {
        let (me, map, tick_hz, snapshot_hz) = (
            welcome.player_id,
            welcome.map.clone(),
            welcome.tick_hz,
            welcome.snapshot_hz,
        );
        Session::greeted(
            &ServerMsg::Welcome(Box::new(welcome)),
            me,
            map,
            tick_hz,
            snapshot_hz,
        )
    }

    /// A spectator's time in a room: the same view and interpolation, and nobody of
    /// its own to predict (`me` is id 0, which no player is given).
    pub fn watching(watching: Watching) -> Session {
        let (map, tick_hz, snapshot_hz) =
            (watching.map.clone(), watching.tick_hz, watching.snapshot_hz);
        Session::greeted(
            &ServerMsg::Watching(Box::new(watching)),
            PlayerId(0),
            map,
            tick_hz,
            snapshot_hz,
        )
    }

    /// A session begun by `greeting`, the server's first word (a welcome or a
    /// spectator's greeting).
    fn greeted(
        greeting: &ServerMsg,
        me: PlayerId,
        map: Map,
        tick_hz: u16,
        snapshot_hz: u16,
    ) -> Session {
        let mut view = RoomView::default();
        // A greeting carries no delta, so applying it cannot fail.
        let _ = view.apply(greeting);
        Session {
            view,
            predictor: Predictor::default(),
            interp: Interpolator::new(tick_hz, snapshot_hz),
            ping: PingTracker::default(),
            rates: Rates::default(),
            me,
            map,
            dt: tick_dt(tick_hz),
            last_seq: Seq(0),
            last_snapshot_tick: None,
        }
    }

    pub fn me(&self) -> PlayerId {
        self.me
    }

    pub fn map(&self) -> &Map {
        &self.map
    }

    /// Seconds per tick; inputs are sampled and sent once per tick.
    pub fn tick_secs(&self) -> f32 {
        self.dt
    }

    /// Decodes and takes in one frame that arrived at local time `now` (seconds).
    pub fn receive_bytes(&mut self, bytes: &[u8], now: f64) -> Result<ServerMsg, ApplyError> {
        self.rates.down_bytes.add(bytes.len() as f64, now);
        let msg = decode_server(bytes)?;
        self.receive(&msg, now)?;
        Ok(msg)
    }

    /// Takes in one message that arrived at local time `now` (seconds). A snapshot
    /// that does not fit the view's baselines is refused, and changes nothing.
    pub fn receive(&mut self, msg: &ServerMsg, now: f64) -> Result<(), DeltaError> {
        self.view.apply(msg)?;
        if let ServerMsg::Pong { nonce } = msg {
            self.ping.pong(*nonce, now);
        }
        // Work from the view's reconstructed snapshot, not the message: what the wire
        // carries (a full state or a delta) is the view's business.
        let Some(snapshot) = &self.view.snapshot else {
            return Ok(());
        };
        if self.last_snapshot_tick == Some(snapshot.tick) {
            return Ok(());
        }
        self.last_snapshot_tick = Some(snapshot.tick);
        self.rates.snapshots.add(1.0, now);
        let ack = snapshot.ack_input;
        if let Some(mine) = snapshot.players.iter().find(|p| p.id == self.me) {
            self.predictor.reconcile(mine, ack, self.dt, &self.map);
        }
        self.interp.push(snapshot.clone(), now);
        Ok(())
    }

    /// Numbers and predicts this tick's input; returns the message that sends it with
    /// the ticks before it once the welcome's batch is full.
    pub fn input(&mut self, held: u8, aim: f32) -> Option<ClientMsg> {
        self.last_seq = self.last_seq.next();
        let frame = InputFrame {
            seq: self.last_seq,
            buttons: held,
            aim,
            // A shot says what it was aimed at, so the server can judge it there.
            view: (held & buttons::FIRE != 0)
                .then(|| self.interp.drawn())
                .flatten(),
        };
        self.predictor.apply_input(frame, self.dt, &self.map);
        self.view.queue_input(frame)
    }

    /// The message that sends the inputs gathered so far without waiting for the
    /// batch to fill; `None` if there are none.
    pub fn flush_inputs(&mut self) -> Option<ClientMsg> {
        self.view.flush_inputs()
    }

    /// Encodes a message for sending at `now` and counts its bytes.
    pub fn encode(&mut self, msg: &ClientMsg, now: f64) -> Vec<u8> {
        let bytes = encode_client(msg);
        self.rates.up_bytes.add(bytes.len() as f64, now);
        bytes
    }
}
