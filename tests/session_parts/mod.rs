//! Pieces the session tests share: content, hand-built offers and datagrams, decoding.

use bytes::Bytes;
use udpix::proto::wire::{self, Body, Header, Offer};

/// `n` bytes of content, different per `seed`.
pub fn data(n: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect::<Vec<_>>(),
    )
}

/// The body of a clear datagram, if it decodes.
pub fn decode(d: &[u8]) -> Option<Body<'_>> {
    wire::decode(d).ok().map(|p| p.body)
}

/// File `file` of a session, of `size` bytes in 1000-byte chunks numbered from `first_chunk`.
pub fn offer(file: u32, first_chunk: u32, size: u64) -> Offer {
    let chunk_size = 1000u16;
    Offer {
        name: format!("x{file}"),
        size,
        chunk_size,
        chunk_count: size.div_ceil(u64::from(chunk_size)) as u32,
        blake3: [0; 32],
        format: String::new(),
        width: 0,
        height: 0,
        file,
        first_chunk,
    }
}

/// A clear datagram of session 5.
pub fn dgram(pn: u32, body: &Body<'_>) -> Vec<u8> {
    dgram_in(5, pn, body)
}

/// A clear datagram of `session`.
pub fn dgram_in(session: u64, pn: u32, body: &Body<'_>) -> Vec<u8> {
    wire::encode_vec(
        &Header {
            kind: body.kind(),
            session,
            pn,
        },
        body,
    )
}
