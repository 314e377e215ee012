//! Every client frame becomes a message here: decoded under the size limit, required
//! to fill the frame exactly, and validated field by field. Pure and synchronous, so
//! the fuzz target and the property tests exercise exactly what the server runs.

use shared::codec::{decode_client, peek_hello_version};
use shared::consts::{MAX_INPUT_BATCH, PROTOCOL_VERSION};
use shared::game::InputFrame;
use shared::protocol::{ClientMsg, CloseReason, Resume};
use shared::text::{sanitize_chat, validate_name, validate_room_name};

/// Why this end closes the connection, as it will be told to the client.
pub type Refusal = (CloseReason, String);

/// A validated hello: the nickname and the room asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub name: String,
    pub room: Option<String>,
    /// An identity token to verify; one that is too long to be ours is dropped here.
    pub token: Option<String>,
    /// A held seat to take back. Its token is only ever verified (and refused if it
    /// does not), so it needs no check here.
    pub resume: Option<Resume>,
    /// A seat another process of the cluster reserved here; its shape is checked, and
    /// only Redis can say whether it is real.
    pub reservation: Option<String>,
    /// Watch `room` (always named then) without a seat.
    pub spectate: bool,
}

/// Longer than any token this server issues (`net::identity`), with room to spare.
const MAX_TOKEN_CHARS: usize = 128;

/// A validated message from a seated player.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// One to `MAX_INPUT_BATCH` ticks of input, oldest first, each with unknown
    /// buttons masked and aim finite and wrapped; with the low 16 bits of the newest
    /// snapshot tick the client holds, once it holds one.
    Input {
        ack: Option<u16>,
        frames: Vec<InputFrame>,
    },
    /// Acknowledges a snapshot (low 16 tick bits) without input.
    Ack(u16),
    /// Sanitised chat; `None` when nothing printable was left, which is dropped quietly.
    Chat(Option<String>),
    Ping {
        nonce: u32,
    },
}

/// A validated message from a spectator: all a spectator may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpectatorInbound {
    /// Acknowledges a snapshot (low 16 tick bits).
    Ack(u16),
    Ping {
        nonce: u32,
    },
}

/// Reads the first frame of a connection, which must be a hello this server speaks.
pub fn read_hello(bytes: &[u8]) -> Result<Hello, Refusal> {
    let version = peek_hello_version(bytes).ok_or_else(|| {
        (
            CloseReason::Malformed,
            "the first message must be hello".to_owned(),
        )
    })?;
    if version != PROTOCOL_VERSION {
        return Err((
            CloseReason::VersionMismatch {
                server: PROTOCOL_VERSION,
            },
            format!("protocol {version} is not supported; this server speaks {PROTOCOL_VERSION}"),
        ));
    }
    let Ok(ClientMsg::Hello {
        name,
        room,
        token,
        resume,
        reservation,
        spectate,
        ..
    }) = decode_client(bytes)
    else {
        return Err((CloseReason::Malformed, "hello did not decode".into()));
    };
    let name =
        validate_name(&name).map_err(|err| (CloseReason::BadName, format!("nickname {err}")))?;
    let room = room
        .map(|room| validate_room_name(&room))
        .transpose()
        .map_err(|err| (CloseReason::BadName, format!("room name {err}")))?;
    // A token is only ever checked, never shown or stored, so an odd one costs nothing:
    // it fails verification and its bearer gets a fresh identity.
    let token = token.filter(|token| token.len() <= MAX_TOKEN_CHARS);
    if let Some(reservation) = &reservation
        && !crate::cluster::is_reservation_token(reservation)
    {
        return Err((
            CloseReason::Malformed,
            "the seat reservation is malformed".into(),
        ));
    }
    if spectate && (room.is_none() || resume.is_some() || reservation.is_some()) {
        return Err((
            CloseReason::Malformed,
            "a spectator names the room it watches, and takes no seat".into(),
        ));
    }
    Ok(Hello {
        name,
        room,
        token,
        resume,
        reservation,
        spectate,
    })
}

/// Reads a frame from a player who has already said hello.
pub fn read_message(bytes: &[u8]) -> Result<Inbound, Refusal> {
    let msg = decode_client(bytes).map_err(|err| (CloseReason::Malformed, err.to_string()))?;
    match msg {
        ClientMsg::Input { ack, frames } => Ok(Inbound::Input {
            ack: ack.map(|tick| tick.0),
            frames: validated_batch(frames)?,
        }),
        ClientMsg::Ack { tick } => Ok(Inbound::Ack(tick.0)),
        ClientMsg::Chat { text } => Ok(Inbound::Chat(sanitize_chat(&text))),
        ClientMsg::Ping { nonce } => Ok(Inbound::Ping { nonce }),
        ClientMsg::Hello { .. } => Err((CloseReason::Malformed, "hello sent twice".into())),
    }
}

/// Reads a frame from a spectator: an acknowledgement or a ping. Anything else a
/// client may send (input, chat, a second hello) is not a spectator's to send.
pub fn read_spectator_message(bytes: &[u8]) -> Result<SpectatorInbound, Refusal> {
    let msg = decode_client(bytes).map_err(|err| (CloseReason::Malformed, err.to_string()))?;
    match msg {
        ClientMsg::Ack { tick } => Ok(SpectatorInbound::Ack(tick.0)),
        ClientMsg::Ping { nonce } => Ok(SpectatorInbound::Ping { nonce }),
        ClientMsg::Input { .. } | ClientMsg::Chat { .. } | ClientMsg::Hello { .. } => Err((
            CloseReason::SpectatorOnly,
            "a spectator may send only acknowledgements and pings".into(),
        )),
    }
}

/// A batch the room can take: not empty, no more ticks than any client is asked for,
/// and every frame valid.
fn validated_batch(frames: Vec<InputFrame>) -> Result<Vec<InputFrame>, Refusal> {
    if frames.is_empty() {
        return Err((
            CloseReason::Malformed,
            "an input message with no input".into(),
        ));
    }
    if frames.len() > usize::from(MAX_INPUT_BATCH) {
        return Err((
            CloseReason::TooBig,
            format!(
                "{} ticks of input in one message; at most {MAX_INPUT_BATCH}",
                frames.len()
            ),
        ));
    }
    frames
        .into_iter()
        .map(|frame| {
            frame
                .validated()
                .map_err(|err| (CloseReason::Malformed, err.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use shared::codec::encode_client;
    use shared::consts::MAX_CLIENT_MSG_BYTES;
    use shared::game::buttons;

    use super::*;

    #[test]
    fn a_huge_length_prefix_in_a_twenty_byte_frame_is_refused_as_malformed() {
        // Chat (tag 2) whose string claims u64::MAX bytes: 1 + 9 + 10 = 20 bytes. Without
        // a decode limit bincode would try to allocate that much and abort the process.
        let mut frame = vec![2u8, 0xFD];
        frame.extend_from_slice(&u64::MAX.to_le_bytes());
        frame.extend_from_slice(&[b'a'; 10]);
        assert_eq!(frame.len(), 20);
        let refused = read_message(&frame).expect_err("a lying length prefix is refused");
        assert_eq!(refused.0, CloseReason::Malformed);
        // The same lie inside a hello's nickname.
        let mut hello = vec![0u8, PROTOCOL_VERSION as u8, 0xFD];
        hello.extend_from_slice(&u64::MAX.to_le_bytes());
        hello.extend_from_slice(&[b'a'; 9]);
        assert_eq!(
            read_hello(&hello).map_err(|r| r.0),
            Err(CloseReason::Malformed)
        );
    }

    fn batch(frames: &[(f32, u8)]) -> Vec<u8> {
        let frames = frames
            .iter()
            .zip(1..)
            .map(|(&(aim, held), seq)| InputFrame {
                seq: shared::Seq(seq),
                buttons: held,
                aim,
                view: None,
            })
            .collect();
        encode_client(&ClientMsg::Input { ack: None, frames })
    }

    #[test]
    fn every_field_is_checked() {
        let input = |aim: f32, held: u8| batch(&[(aim, held)]);
        assert!(read_message(&input(f32::NAN, 0)).is_err());
        assert!(read_message(&input(f32::INFINITY, 0)).is_err());
        let Ok(Inbound::Input { frames, .. }) = read_message(&input(10.0, 0xFF)) else {
            panic!("a finite aim with stray bits is accepted after cleaning");
        };
        assert_eq!(frames[0].buttons, buttons::ALL);
        assert!(frames[0].aim.abs() <= core::f32::consts::PI);
        let mut trailing = input(0.0, 0);
        trailing.push(7);
        assert!(
            read_message(&trailing).is_err(),
            "the frame must be consumed whole"
        );
        assert!(read_message(&vec![2u8; MAX_CLIENT_MSG_BYTES + 1]).is_err());
    }

    #[test]
    fn a_batch_is_refused_whole_when_empty_oversize_or_holding_one_bad_frame() {
        let good = (0.5, buttons::UP);
        let Ok(Inbound::Input { frames, .. }) = read_message(&batch(&[good; 2])) else {
            panic!("two good ticks are accepted");
        };
        assert_eq!(frames.len(), 2, "both ticks reach the room, oldest first");
        assert_eq!(frames[0].seq, shared::Seq(1));
        let most = usize::from(MAX_INPUT_BATCH);
        assert!(read_message(&batch(&vec![good; most])).is_ok());
        assert_eq!(
            read_message(&batch(&vec![good; most + 1])).map_err(|r| r.0),
            Err(CloseReason::TooBig),
            "more ticks than any client is asked to gather"
        );
        assert_eq!(
            read_message(&batch(&[])).map_err(|r| r.0),
            Err(CloseReason::Malformed),
            "an empty batch"
        );
        assert_eq!(
            read_message(&batch(&[good, (f32::NAN, 0), good])).map_err(|r| r.0),
            Err(CloseReason::Malformed),
            "one bad tick refuses the batch"
        );
    }

    #[test]
    fn chat_is_sanitised_and_a_second_hello_refused() {
        let chat = encode_client(&ClientMsg::Chat {
            text: "\u{202E}hi\u{0000}".into(),
        });
        assert_eq!(read_message(&chat), Ok(Inbound::Chat(Some("hi".into()))));
        let hello = |token: Option<String>| {
            encode_client(&ClientMsg::Hello {
                protocol: PROTOCOL_VERSION,
                name: "ann".into(),
                room: None,
                token,
                resume: None,
                reservation: None,
                spectate: false,
            })
        };
        assert!(read_message(&hello(None)).is_err());
        assert_eq!(
            read_hello(&hello(Some("v1.x.y".into()))),
            Ok(Hello {
                name: "ann".into(),
                room: None,
                token: Some("v1.x.y".into()),
                resume: None,
                reservation: None,
                spectate: false,
            })
        );
        let oversized = read_hello(&hello(Some("t".repeat(MAX_TOKEN_CHARS + 1))));
        assert_eq!(
            oversized.map(|hello| hello.token),
            Ok(None),
            "an oversized token is dropped, not trusted or refused"
        );
    }

    #[test]
    fn a_spectator_names_its_room_and_may_send_only_acks_and_pings() {
        let hello = |room: Option<&str>, reservation: Option<&str>| {
            encode_client(&ClientMsg::Hello {
                protocol: PROTOCOL_VERSION,
                name: "eve".into(),
                room: room.map(Into::into),
                token: None,
                resume: None,
                reservation: reservation.map(Into::into),
                spectate: true,
            })
        };
        let read = read_hello(&hello(Some("arena"), None)).expect("a spectator's hello");
        assert!(read.spectate);
        assert_eq!(read.room.as_deref(), Some("arena"));
        for bad in [
            hello(None, None),
            hello(Some("arena"), Some("0123456789abcdef0123456789abcdef")),
        ] {
            assert_eq!(
                read_hello(&bad).map_err(|refusal| refusal.0),
                Err(CloseReason::Malformed),
                "a spectator with no room, or with a seat reserved"
            );
        }
        let ack = encode_client(&ClientMsg::Ack {
            tick: shared::snapshot::Fixed16(7),
        });
        assert_eq!(read_spectator_message(&ack), Ok(SpectatorInbound::Ack(7)));
        let ping = encode_client(&ClientMsg::Ping { nonce: 9 });
        assert_eq!(
            read_spectator_message(&ping),
            Ok(SpectatorInbound::Ping { nonce: 9 })
        );
        let chat = encode_client(&ClientMsg::Chat { text: "hi".into() });
        for not_allowed in [batch(&[(0.0, 0)]), chat, hello(Some("arena"), None)] {
            assert_eq!(
                read_spectator_message(&not_allowed).map_err(|refusal| refusal.0),
                Err(CloseReason::SpectatorOnly)
            );
        }
        assert_eq!(
            read_spectator_message(&[9, 9, 9]).map_err(|refusal| refusal.0),
            Err(CloseReason::Malformed),
            "bytes that decode to nothing are malformed, as from a player"
        );
    }

    #[test]
    fn a_reservation_of_the_wrong_shape_is_refused_as_malformed() {
        let hello = |reservation: &str| {
            encode_client(&ClientMsg::Hello {
                protocol: PROTOCOL_VERSION,
                name: "ann".into(),
                room: None,
                token: None,
                resume: None,
                reservation: Some(reservation.into()),
                spectate: false,
            })
        };
        let good = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            read_hello(&hello(good)).map(|hello| hello.reservation),
            Ok(Some(good.to_owned()))
        );
        for bad in [
            "",
            "skirmish:processes",
            &"a".repeat(33),
            &good.to_uppercase(),
        ] {
            assert_eq!(
                read_hello(&hello(bad)).map_err(|refusal| refusal.0),
                Err(CloseReason::Malformed),
                "{bad:?} is no reservation"
            );
        }
    }
}
