//! The fuzz target's checks on stable: the committed corpus and random frames, decoded
//! and validated exactly as the server does, must never panic and must stay in bounds.

use proptest::prelude::*;
use server::inbound::{Inbound, read_hello, read_message, read_spectator_message};
use shared::Seq;
use shared::codec::encode_client;
use shared::consts::{
    CHAT_MAX_CHARS, MAX_CLIENT_MSG_BYTES, MAX_INPUT_BATCH, NAME_MAX_CHARS, ROOM_NAME_MAX_CHARS,
};
use shared::game::{InputFrame, ViewTime, buttons};
use shared::protocol::ClientMsg;
use shared::protocol::CloseReason;
use shared::snapshot::Fixed16;

/// What `fuzz/fuzz_targets/client_frame.rs` asserts for every input.
fn check_frame(frame: &[u8]) {
    if let Ok(hello) = read_hello(frame) {
        assert!(
            !hello.spectate || hello.room.is_some(),
            "a spectator names its room"
        );
        assert!(hello.name.chars().count() <= NAME_MAX_CHARS);
        assert!(
            hello
                .room
                .is_none_or(|room| room.chars().count() <= ROOM_NAME_MAX_CHARS)
        );
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
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/client_frame");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the committed fuzz corpus")
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read a corpus file"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_committed_fuzz_corpus_replays_cleanly() {
    let corpus = corpus();
    assert!(corpus.len() >= 10, "the corpus is committed");
    for (_, frame) in &corpus {
        check_frame(frame);
    }
    let frame = |name: &str| {
        corpus
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, bytes)| bytes.clone())
            .unwrap_or_else(|| panic!("corpus seed {name}"))
    };
    // The named seeds are what they say, so the corpus keeps covering each path.
    assert!(read_hello(&frame("hello")).is_ok());
    assert!(
        read_hello(&frame("hello_resume")).is_ok_and(|hello| hello.resume.is_some()),
        "the resume seed is a hello that asks for a seat back"
    );
    assert!(
        read_hello(&frame("hello_spectate")).is_ok_and(|hello| hello.spectate),
        "the spectator seed is a hello that watches a room"
    );
    assert!(matches!(
        read_message(&frame("input")),
        Ok(Inbound::Input { .. })
    ));
    assert!(
        matches!(read_message(&frame("input_batch")), Ok(Inbound::Input { frames, .. }) if frames.len() == 2),
        "the batch seed carries two ticks"
    );
    assert_eq!(
        read_message(&frame("input_batch_oversize")).map_err(|refusal| refusal.0),
        Err(CloseReason::TooBig)
    );
    assert_eq!(
        read_message(&frame("input_batch_empty")).map_err(|refusal| refusal.0),
        Err(CloseReason::Malformed)
    );
    assert!(matches!(read_message(&frame("ack")), Ok(Inbound::Ack(_))));
    assert!(matches!(
        read_message(&frame("ping")),
        Ok(Inbound::Ping { .. })
    ));
    assert_eq!(
        read_message(&frame("huge_length_prefix")).map_err(|refusal| refusal.0),
        Err(CloseReason::Malformed)
    );
    assert!(read_message(&frame("trailing_bytes")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_frames_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_frame(&frame);
    }

    #[test]
    fn corpus_frames_with_random_changes_never_panic(
        seed in 0usize..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let corpus = corpus();
        let mut frame = corpus[seed % corpus.len()].1.clone();
        for (at, byte) in edits {
            if !frame.is_empty() {
                let at = at % frame.len();
                frame[at] = byte;
            }
        }
        frame.extend_from_slice(&tail);
        check_frame(&frame);
    }

    #[test]
    fn input_batches_are_taken_whole_or_refused_with_their_reason(
        frames in proptest::collection::vec(
            (
                any::<u32>(),
                any::<u8>(),
                prop_oneof![any::<f32>(), Just(f32::NAN)],
                proptest::option::of(any::<(u16, u8, u8)>()),
            ),
            0..=usize::from(MAX_INPUT_BATCH) + 3,
        ),
        ack in proptest::option::of(any::<u16>()),
    ) {
        let frames: Vec<InputFrame> = frames
            .into_iter()
            .map(|(seq, held, aim, view)| InputFrame {
                seq: Seq(seq),
                buttons: held,
                aim,
                view: view.map(|(older_low, span, fraction)| ViewTime { older_low, span, fraction }),
            })
            .collect();
        let bytes = encode_client(&ClientMsg::Input { ack: ack.map(Fixed16), frames: frames.clone() });
        check_frame(&bytes);
        let read = read_message(&bytes);
        if bytes.len() > MAX_CLIENT_MSG_BYTES {
            prop_assert!(read.is_err());
        } else if frames.is_empty() {
            prop_assert_eq!(read.map_err(|r| r.0), Err(CloseReason::Malformed));
        } else if frames.len() > usize::from(MAX_INPUT_BATCH) {
            prop_assert_eq!(read.map_err(|r| r.0), Err(CloseReason::TooBig));
        } else if frames.iter().any(|f| !f.aim.is_finite()) {
            prop_assert_eq!(read.map_err(|r| r.0), Err(CloseReason::Malformed));
        } else {
            let Ok(Inbound::Input { ack: read_ack, frames: read_frames }) = read else {
                panic!("a good batch is accepted: {read:?}");
            };
            prop_assert_eq!(read_ack, ack);
            let seqs: Vec<Seq> = read_frames.iter().map(|f| f.seq).collect();
            let sent: Vec<Seq> = frames.iter().map(|f| f.seq).collect();
            prop_assert_eq!(seqs, sent, "every tick, in order");
        }
    }

    #[test]
    fn length_prefixes_of_any_size_are_refused_or_bounded(len in any::<u64>(), tag in 0u8..4) {
        let mut frame = vec![tag, 0xFD];
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&[b'a'; 10]);
        check_frame(&frame);
        prop_assert!(frame.len() <= MAX_CLIENT_MSG_BYTES);
    }
}
