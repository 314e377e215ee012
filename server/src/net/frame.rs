//! The header of the frames the server writes itself: unmasked and final. Rooms frame
//! their messages once, as they queue them; the wire frames the rest.

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// The longest header of an unmasked frame: two bytes and a 64-bit length.
pub(crate) const HEADER_MAX: usize = 10;

/// A WebSocket frame header for an unmasked, final binary frame of `len` bytes.
pub(crate) fn binary_header(len: usize) -> ([u8; HEADER_MAX], usize) {
    header(Data::Binary, len)
}

/// A WebSocket frame header for an unmasked, final data frame of `len` bytes.
pub(crate) fn header(data: Data, len: usize) -> ([u8; HEADER_MAX], usize) {
    opcode_header(OpCode::Data(data), len)
}

/// The header of a ping of `len` bytes (at most 125, as for every control frame).
pub(crate) fn ping_header(len: usize) -> ([u8; HEADER_MAX], usize) {
    opcode_header(OpCode::Control(Control::Ping), len)
}

fn opcode_header(opcode: OpCode, len: usize) -> ([u8; HEADER_MAX], usize) {
    let header = FrameHeader {
        is_final: true,
        opcode,
        ..FrameHeader::default()
    };
    let mut bytes = [0u8; HEADER_MAX];
    let mut out = &mut bytes[..];
    // The invariant: an unmasked header is at most ten bytes, which `bytes` holds.
    #[allow(clippy::expect_used)]
    header
        .format(len as u64, &mut out)
        .expect("an unmasked frame header fits in ten bytes");
    let written = HEADER_MAX - out.len();
    (bytes, written)
}

/// The payloads of whole, unmasked binary frames laid end to end, as a peer would read
/// them: for tests of what the server wrote.
#[cfg(test)]
pub(crate) fn binary_payloads(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(bytes[0], 0x82, "a final, unmasked binary frame");
        let (len, header) = match bytes[1] {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => panic!("no test frame is that long"),
            len => (usize::from(len), 2),
        };
        out.push(bytes[header..header + len].to_vec());
        bytes = &bytes[header + len..];
    }
    out
}
