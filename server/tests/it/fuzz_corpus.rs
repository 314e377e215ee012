//! The fuzz target's checks on stable: the committed corpus and random frames, decoded
//! and validated exactly as the server does, must never panic and must stay in bounds.

use proptest::prelude::*;
use server::inbound::{Inbound, read_hello, read_message};
use shared::consts::{CHAT_MAX_CHARS, MAX_CLIENT_MSG_BYTES, NAME_MAX_CHARS, ROOM_NAME_MAX_CHARS};
use shared::game::buttons;
use shared::protocol::CloseReason;

/// What `fuzz/fuzz_targets/client_frame.rs` asserts for every input.
fn check_frame(frame: &[u8]) {
    if let Ok(hello) = read_hello(frame) {
        assert!(hello.name.chars().count() <= NAME_MAX_CHARS);
        assert!(
            hello
                .room
                .is_none_or(|room| room.chars().count() <= ROOM_NAME_MAX_CHARS)
        );
    }
    match read_message(frame) {
        Ok(Inbound::Input { frame: input, .. }) => {
            assert!(input.aim.is_finite() && input.aim.abs() <= core::f32::consts::PI);
            assert_eq!(input.buttons & !buttons::ALL, 0);
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
    assert!(matches!(
        read_message(&frame("input")),
        Ok(Inbound::Input { .. })
    ));
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
    fn length_prefixes_of_any_size_are_refused_or_bounded(len in any::<u64>(), tag in 0u8..4) {
        let mut frame = vec![tag, 0xFD];
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&[b'a'; 10]);
        check_frame(&frame);
        prop_assert!(frame.len() <= MAX_CLIENT_MSG_BYTES);
    }
}
