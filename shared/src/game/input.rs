//! What a player sends the simulation each tick: held buttons and an aim. Shared by the
//! server's tick and the client's prediction, so both apply the same validated input.

use serde::{Deserialize, Serialize};

use crate::ids::{Seq, Tick};

/// Buttons held during one client tick.
pub mod buttons {
    pub const UP: u8 = 1 << 0;
    pub const DOWN: u8 = 1 << 1;
    pub const LEFT: u8 = 1 << 2;
    pub const RIGHT: u8 = 1 << 3;
    pub const FIRE: u8 = 1 << 4;
    /// Every bit that means something; the server masks off the rest.
    pub const ALL: u8 = UP | DOWN | LEFT | RIGHT | FIRE;
}

/// The input for one simulation tick of the sending player. Carries no position: the
/// server simulates movement itself and never trusts a client's idea of where it is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InputFrame {
    /// Increases by one per frame; the server applies frames in this order, once each.
    pub seq: Seq,
    /// Bit set of `buttons`.
    pub buttons: u8,
    /// Aim angle in radians, 0 along +x, counter-clockwise towards +y.
    pub aim: f32,
    /// What the player was looking at when firing, so the server can judge the shot
    /// against it (lag compensation). Only frames holding `FIRE` carry one.
    pub view: Option<ViewTime>,
}

/// The moment of the room a client was drawing: between two snapshots, a fraction of
/// the way from the older to the newer. A claim, which the server checks and clamps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewTime {
    /// Low 16 bits of the older snapshot's tick (the server knows the rest: it is recent).
    pub older_low: u16,
    /// Ticks from the older snapshot to the newer one; 0 when the newest one is held.
    pub span: u8,
    /// How far between the two, in 255ths.
    pub fraction: u8,
}

impl ViewTime {
    /// A client drawing `fraction` (0 to 1) of the way from `older` to `newer`.
    pub fn between(older: Tick, newer: Tick, fraction: f32) -> ViewTime {
        let span = newer.since(older).clamp(0, i32::from(u8::MAX)) as u8;
        ViewTime {
            older_low: older.0 as u16,
            span,
            fraction: (fraction.clamp(0.0, 1.0) * 255.0).round() as u8,
        }
    }

    /// The view `ticks_ago` ticks before `now`, as the server restates a clamped claim.
    pub fn ticks_before(now: Tick, ticks_ago: f32) -> ViewTime {
        let ticks_ago = ticks_ago.max(0.0);
        let whole = libm::ceilf(ticks_ago);
        let older = Tick(now.0.wrapping_sub(whole as u32));
        ViewTime::between(older, older.next(), whole - ticks_ago)
    }

    /// How many ticks before `now` this view was, in fractions of a tick. The older
    /// tick is taken as the latest one with these low bits at or before `now`, so a
    /// claim from the future reads as about 18 minutes old, and is clamped as such.
    pub fn ticks_ago(self, now: Tick) -> f32 {
        let older_ago = (now.0 as u16).wrapping_sub(self.older_low);
        f32::from(older_ago) - f32::from(self.span) * f32::from(self.fraction) / 255.0
    }
}

/// On the wire the buttons byte carries one more bit, which says a `ViewTime` follows:
/// a frame without one costs nothing extra.
const VIEW_FOLLOWS: u8 = 1 << 7;

const _: () = assert!(
    buttons::ALL & VIEW_FOLLOWS == 0,
    "a button took the view bit"
);

impl Serialize for InputFrame {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut held = self.buttons & !VIEW_FOLLOWS;
        if self.view.is_some() {
            held |= VIEW_FOLLOWS;
        }
        let mut tuple = serializer.serialize_tuple(6)?;
        tuple.serialize_element(&self.seq)?;
        tuple.serialize_element(&held)?;
        tuple.serialize_element(&self.aim)?;
        if let Some(view) = self.view {
            tuple.serialize_element(&view.older_low.to_le_bytes())?;
            tuple.serialize_element(&view.span)?;
            tuple.serialize_element(&view.fraction)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for InputFrame {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};
        struct FrameVisitor;
        fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
            seq.next_element()?
                .ok_or_else(|| A::Error::custom("input frame ended early"))
        }
        impl<'de> Visitor<'de> for FrameVisitor {
            type Value = InputFrame;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("an input frame")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InputFrame, A::Error> {
                let frame_seq: Seq = next(&mut seq)?;
                let held: u8 = next(&mut seq)?;
                let aim: f32 = next(&mut seq)?;
                let view = if held & VIEW_FOLLOWS != 0 {
                    Some(ViewTime {
                        older_low: u16::from_le_bytes(next(&mut seq)?),
                        span: next(&mut seq)?,
                        fraction: next(&mut seq)?,
                    })
                } else {
                    None
                };
                Ok(InputFrame {
                    seq: frame_seq,
                    buttons: held & !VIEW_FOLLOWS,
                    aim,
                    view,
                })
            }
        }
        deserializer.deserialize_tuple(6, FrameVisitor)
    }
}

/// Why an input frame cannot be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// The aim is NaN or infinite; no honest client produces one.
    #[error("aim is not a finite number")]
    NonFiniteAim,
}

impl InputFrame {
    /// The frame as the server applies it: unknown button bits cleared, the aim wrapped
    /// into (-pi, pi], and a view kept only on a frame that fires. A frame no honest
    /// client could send is an error.
    pub fn validated(self) -> Result<InputFrame, InvalidInput> {
        if !self.aim.is_finite() {
            return Err(InvalidInput::NonFiniteAim);
        }
        let held = self.buttons & buttons::ALL;
        Ok(InputFrame {
            seq: self.seq,
            buttons: held,
            aim: crate::quant::wrap_angle(self.aim),
            view: self.view.filter(|_| held & buttons::FIRE != 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_masks_unknown_buttons_and_wraps_aim() {
        let frame = InputFrame {
            seq: Seq(3),
            buttons: 0xFF,
            aim: 3.0 * core::f32::consts::PI,
            view: None,
        };
        let valid = frame.validated().expect("finite aim is valid");
        assert_eq!(valid.buttons, buttons::ALL);
        assert!(
            (valid.aim - core::f32::consts::PI).abs() < 1e-4,
            "aim {}",
            valid.aim
        );
        assert_eq!(valid.seq, Seq(3));
    }

    #[test]
    fn validation_refuses_non_finite_aim() {
        for aim in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let frame = InputFrame {
                aim,
                ..InputFrame::default()
            };
            assert_eq!(frame.validated(), Err(InvalidInput::NonFiniteAim));
        }
    }

    #[test]
    fn a_view_is_kept_only_on_a_frame_that_fires() {
        let view = Some(ViewTime::between(Tick(10), Tick(12), 0.5));
        let firing = InputFrame {
            buttons: buttons::FIRE,
            view,
            ..InputFrame::default()
        };
        assert_eq!(firing.validated().map(|f| f.view), Ok(view));
        let walking = InputFrame {
            buttons: buttons::UP,
            ..firing
        };
        assert_eq!(walking.validated().map(|f| f.view), Ok(None));
    }

    #[test]
    fn a_view_reads_back_as_ticks_before_now() {
        let view = ViewTime::between(Tick(100), Tick(102), 0.5);
        assert!(
            (view.ticks_ago(Tick(110)) - 9.0).abs() < 0.01,
            "tick 101 is 9 before 110"
        );
        let across_wrap = ViewTime::between(Tick(65_530), Tick(65_532), 0.0);
        assert_eq!(across_wrap.ticks_ago(Tick(65_540)), 10.0);
        for ticks_ago in [0.0, 0.25, 3.0, 14.6] {
            let restated = ViewTime::ticks_before(Tick(1_000), ticks_ago).ticks_ago(Tick(1_000));
            assert!(
                (restated - ticks_ago).abs() < 0.01,
                "{ticks_ago} ticks ago restated as {restated}"
            );
        }
        let future = ViewTime::between(Tick(1_005), Tick(1_007), 0.0);
        assert!(
            future.ticks_ago(Tick(1_000)) > 60_000.0,
            "a claim from the future reads as very old"
        );
    }
}
