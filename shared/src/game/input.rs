//! What a player sends the simulation each tick: held buttons and an aim. Shared by the
//! server's tick and the client's prediction, so both apply the same validated input.

use serde::{Deserialize, Serialize};

use crate::ids::Seq;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputFrame {
    /// Increases by one per frame; the server applies frames in this order, once each.
    pub seq: Seq,
    /// Bit set of `buttons`.
    pub buttons: u8,
    /// Aim angle in radians, 0 along +x, counter-clockwise towards +y.
    pub aim: f32,
}

/// Why an input frame cannot be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// The aim is NaN or infinite; no honest client produces one.
    #[error("aim is not a finite number")]
    NonFiniteAim,
}

impl InputFrame {
    /// The frame as the server applies it: unknown button bits cleared and the aim wrapped
    /// into (-pi, pi]. A frame no honest client could send is an error.
    pub fn validated(self) -> Result<InputFrame, InvalidInput> {
        if !self.aim.is_finite() {
            return Err(InvalidInput::NonFiniteAim);
        }
        Ok(InputFrame {
            seq: self.seq,
            buttons: self.buttons & buttons::ALL,
            aim: crate::quant::wrap_angle(self.aim),
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
}
