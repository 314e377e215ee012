//! Fuzzes what the server does with a client frame: decode under the size limit and
//! validate, as a first frame (hello), as a player's message and as a spectator's. Nothing may panic
//! or allocate without bound, and whatever is accepted must be within its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::inbound::{Inbound, read_hello, read_message, read_spectator_message};
use shared::consts::{CHAT_MAX_CHARS, MAX_INPUT_BATCH, NAME_MAX_CHARS, ROOM_NAME_MAX_CHARS};
use shared::game::buttons;

fuzz_target!(|frame: &[u8]| {
    if let Ok(hello) = read_hello(frame) {
        assert!(hello.name.chars().count() <= NAME_MAX_CHARS);
        assert!(hello.room.is_none_or(|room| room.chars().count() <= ROOM_NAME_MAX_CHARS));
    }
    // Either an ack or a ping, or a refusal: there is nothing else to check.
    let _ = read_spectator_message(frame);
    match read_message(frame) {
        Ok(Inbound::Input { frames, .. }) => {
            assert!(!frames.is_empty() && frames.len() <= usize::from(MAX_INPUT_BATCH));
            for input in frames {
                assert!(input.aim.is_finite() && input.aim.abs() <= core::f32::consts::PI);
                assert_eq!(input.buttons & !buttons::ALL, 0);
                assert!(input.view.is_none() || input.buttons & buttons::FIRE != 0);
            }
        }
        Ok(Inbound::Chat(Some(text))) => {
            assert!(!text.is_empty() && text.chars().count() <= CHAT_MAX_CHARS);
            assert!(!text.chars().any(char::is_control));
        }
        Ok(Inbound::Chat(None) | Inbound::Ping { .. } | Inbound::Ack(_)) | Err(_) => {}
    }
});
