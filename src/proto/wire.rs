//! The udpix v1 wire format: one datagram is one packet, a fixed header then a typed body.
//!
//! Every multi-byte integer is big-endian. Decoding never panics: truncated, oversized or
//! garbage input yields a [`WireError`], which the state machines count and drop.
//! `docs/PROTOCOL.md` is the normative description, with test vectors that the unit tests
//! below reproduce byte for byte.

use thiserror::Error;

/// The only protocol version this build speaks; a datagram with another is dropped.
pub const VERSION: u8 = 1;
/// Bytes of the common header: version, type, session id, packet number.
pub const HEADER_LEN: usize = 14;
/// Bytes of the CRC-32 trailer that ends every v1 datagram.
pub const TRAILER_LEN: usize = 4;
/// Bytes a DATA packet spends besides its payload (header, chunk index, trailer).
pub const DATA_OVERHEAD: usize = HEADER_LEN + 4 + TRAILER_LEN;
/// Longest file name an OFFER may carry, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;
/// Longest free-text reason in REFUSE, DONE or CLOSE.
pub const MAX_REASON_LEN: usize = 512;
/// Longest image format tag in an OFFER ("png", "jpeg", ...).
pub const MAX_FORMAT_LEN: usize = 16;
/// Most extra ranges one ACK carries; keeps an ACK well under any datagram limit.
pub const MAX_ACK_RANGES: usize = 64;
/// Most chunks a REPAIR block covers (its length takes 10 bits).
pub const MAX_REPAIR_BLOCK: u16 = 1024;
/// Most symbols a REPAIR block has (its count takes 7 bits).
pub const MAX_REPAIR_COUNT: u8 = 128;
/// Bytes of a SPAKE2 message.
pub const PAKE_LEN: usize = 33;
/// Bytes of a key confirmation.
pub const CONFIRM_LEN: usize = 32;
/// Longest address-validation cookie.
pub const MAX_COOKIE_LEN: usize = 64;
/// Longest login token (HELLO_REPLY, echoed in CONFIRM).
pub const MAX_TOKEN_LEN: usize = 128;
/// A HELLO datagram is padded to at least this size, so a receiver may answer it with up to
/// three times as much before the address is validated, and no more.
pub const MIN_HELLO_DATAGRAM: usize = 1200;
/// Largest UDP payload udpix will ever build or accept.
pub const MAX_DATAGRAM: usize = 65_507;

/// Why a datagram could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The datagram ended before a field it announced.
    #[error("datagram truncated")]
    Truncated,
    /// The first byte names a version this build does not speak.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// The packet type byte is unknown or reserved for a later version.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A field holds a value the format forbids (the text says which).
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    /// Bytes remain after a packet whose length is fixed by its fields.
    #[error("trailing bytes after packet")]
    Trailing,
    /// The datagram is larger than any UDP payload.
    #[error("datagram too large")]
    TooLarge,
    /// The CRC-32 trailer does not match: the datagram was damaged in transit.
    #[error("checksum mismatch")]
    Checksum,
    /// A sealed datagram failed authentication: forged, corrupted, or another session's.
    #[error("authentication failed")]
    Unauthentic,
    /// A sealed datagram's packet number was already accepted (or is too old to tell).
    #[error("replayed packet")]
    Replayed,
    /// A packet that must be sealed arrived in clear.
    #[error("unprotected packet in a protected session")]
    Unprotected,
}

/// Packet type codes (byte 1 of the header).
pub mod kind {
    /// Sender offers an image: metadata before any data.
    pub const OFFER: u8 = 0x01;
    /// Receiver takes the offer; data may flow.
    pub const ACCEPT: u8 = 0x02;
    /// Receiver declines the offer, with a reason.
    pub const REFUSE: u8 = 0x03;
    /// One chunk of the image, first transmission.
    pub const DATA: u8 = 0x04;
    /// One chunk of the image, sent again after a loss.
    pub const DATA_RETX: u8 = 0x05;
    /// Receiver reports the packet numbers it has seen.
    pub const ACK: u8 = 0x06;
    /// Receiver's verdict after checking the content hash.
    pub const DONE: u8 = 0x07;
    /// Elicits an ACK or DONE; the sender's probe when it has no chunk to resend.
    pub const PING: u8 = 0x08;
    /// Either side ends the session early, with a reason.
    pub const CLOSE: u8 = 0x09;
    /// A forward-error-correction repair symbol over the last chunks of a file.
    pub const REPAIR: u8 = 0x0a;
    /// Sender gives up one file of the session (its user cancelled it); the others go on.
    pub const ABANDON: u8 = 0x0b;
    /// Sender starts the passphrase handshake (SPAKE2 message, padded to 1200 bytes).
    pub const HELLO: u8 = 0x10;
    /// Receiver asks the sender to prove its address: repeat HELLO with this cookie.
    pub const RETRY: u8 = 0x11;
    /// Receiver's SPAKE2 message and a login token to echo.
    pub const HELLO_REPLY: u8 = 0x12;
    /// Sender's key confirmation and the echoed token; sealed packets follow at once.
    pub const CONFIRM: u8 = 0x13;
}

/// The fields every packet starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet type code, one of [`kind`].
    pub kind: u8,
    /// Picked at random by the sender; names one session (one login, one or more files) together with the peer address.
    pub session: u64,
    /// Per direction, starts at 0 and grows by one per datagram: never reused.
    pub pn: u32,
}

/// What an OFFER describes: everything the receiver needs before the first chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// File name as the sender calls it; the receiver sanitises it before use.
    pub name: String,
    /// Exact content length in bytes.
    pub size: u64,
    /// Bytes per chunk; every chunk but the last is this long.
    pub chunk_size: u16,
    /// Number of chunks, `ceil(size / chunk_size)`.
    pub chunk_count: u32,
    /// BLAKE3 of the whole content, checked before the file is kept.
    pub blake3: [u8; 32],
    /// Image format tag ("png", "jpeg", ...) or empty when unknown.
    pub format: String,
    /// Pixel width, 0 when unknown.
    pub width: u32,
    /// Pixel height, 0 when unknown.
    pub height: u32,
    /// Place of this file in its session: 0 for the first, one more for each next.
    pub file: u32,
    /// Session-wide index of this file's chunk 0: DATA names chunks by it, so one session
    /// carries many files with no file field in DATA.
    pub first_chunk: u32,
}

impl Offer {
    /// Checks that size, chunk size and chunk count agree, so a receiver can trust the geometry.
    pub fn check_geometry(&self) -> Result<(), WireError> {
        if self.chunk_size == 0 {
            return Err(WireError::Invalid("chunk size is zero"));
        }
        if self.name.is_empty() {
            return Err(WireError::Invalid("empty file name"));
        }
        let expect = self.size.div_ceil(u64::from(self.chunk_size));
        if expect != u64::from(self.chunk_count) {
            return Err(WireError::Invalid("chunk count does not match size"));
        }
        if self.first_chunk.checked_add(self.chunk_count).is_none() {
            return Err(WireError::Invalid("chunk numbers past 2^32"));
        }
        Ok(())
    }

    /// The session-wide chunk numbers this file's chunks take.
    pub fn chunk_range(&self) -> std::ops::Range<u32> {
        self.first_chunk..self.first_chunk.saturating_add(self.chunk_count)
    }

    /// Length of chunk `index`, or `None` when the index is out of range.
    pub fn chunk_len(&self, index: u32) -> Option<usize> {
        if index >= self.chunk_count {
            return None;
        }
        let start = u64::from(index) * u64::from(self.chunk_size);
        // Checked: an offer built by hand (not decoded, so never checked) may disagree.
        let len = self
            .size
            .checked_sub(start)?
            .min(u64::from(self.chunk_size));
        (len > 0 || self.size == 0).then_some(len as usize)
    }
}

/// One acknowledged range of packet numbers, inclusive on both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PnRange {
    /// Smallest packet number in the range.
    pub start: u32,
    /// Largest packet number in the range.
    pub end: u32,
}

/// Receiver's report: which sender packets arrived, and how far the image got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Time the receiver held the largest packet before acknowledging it, in microseconds.
    pub ack_delay_us: u32,
    /// Every session-wide chunk below this one is settled: held, or part of a file the
    /// receiver has given its verdict on. Tells the sender to stop resending chunks that
    /// repair symbols rebuilt (their packets are never acknowledged).
    pub settled_below: u32,
    /// Received packet numbers, largest range first, disjoint and descending.
    pub ranges: Vec<PnRange>,
}

/// Status codes of a DONE packet.
pub mod done {
    /// The content hash verified and the file was written.
    pub const OK: u8 = 0;
    /// All chunks arrived but the hash did not match; nothing was kept.
    pub const HASH_MISMATCH: u8 = 1;
    /// The receiver could not store the file (disk full, permissions...).
    pub const STORE_FAILED: u8 = 2;
    /// The receiver refused this file's offer (a later file of a session; the first one's
    /// refusal is a REFUSE): the message says why.
    pub const REFUSED: u8 = 3;
    /// The sender abandoned the file (ABANDON); nothing was kept.
    pub const ABANDONED: u8 = 4;
}

/// Reason codes of REFUSE and CLOSE packets.
pub mod reason {
    /// Anything else; the text says what.
    pub const OTHER: u8 = 0;
    /// The image is larger than the receiver accepts.
    pub const TOO_LARGE: u8 = 1;
    /// The receiver serves too many sessions already.
    pub const BUSY: u8 = 2;
    /// The offer is malformed (bad name, inconsistent geometry).
    pub const BAD_OFFER: u8 = 3;
    /// The receiver knows no such session (it timed out or restarted).
    pub const UNKNOWN_SESSION: u8 = 4;
    /// The sender gave up (cancelled by the user).
    pub const CANCELLED: u8 = 5;
    /// The receiver could not store the file.
    pub const STORE_FAILED: u8 = 6;
    /// One side wants a passphrase and the other runs `--insecure`.
    pub const MODE_MISMATCH: u8 = 7;
    /// Too many failed logins from this address; wait and retry.
    pub const THROTTLED: u8 = 8;
    /// The sender's key confirmation did not verify: the passphrases differ.
    pub const AUTH_FAILED: u8 = 9;
    /// The sender made too little progress and was dropped to make room for others.
    pub const TOO_SLOW: u8 = 10;

    /// What a code means, for a peer that sent no reason text.
    pub fn describe(code: u8) -> &'static str {
        match code {
            TOO_LARGE => "the image is larger than the receiver accepts",
            BUSY => "the receiver is busy; try again later",
            BAD_OFFER => "the receiver found the offer malformed",
            UNKNOWN_SESSION => "the receiver no longer knows this transfer",
            CANCELLED => "cancelled by the other side",
            STORE_FAILED => "the receiver could not store the file",
            MODE_MISMATCH => "one side runs --insecure and the other does not",
            THROTTLED => "too many failed logins from this address; wait and retry",
            AUTH_FAILED => "wrong passphrase",
            TOO_SLOW => "the transfer made too little progress",
            _ => "no reason given",
        }
    }
}

/// A packet body, borrowing chunk payloads from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// See [`kind::OFFER`].
    Offer(Offer),
    /// See [`kind::ACCEPT`]; echoes the packet number of the OFFER it answers (an RTT sample)
    /// and carries the receiver's key confirmation (zeros in clear mode).
    Accept {
        /// Packet number of the OFFER being answered.
        offer_pn: u32,
        /// The receiver's key confirmation.
        confirm: [u8; CONFIRM_LEN],
    },
    /// See [`kind::REFUSE`].
    Refuse {
        /// One of [`reason`].
        code: u8,
        /// Human-readable explanation.
        reason: String,
    },
    /// See [`kind::DATA`] and [`kind::DATA_RETX`].
    Data {
        /// Chunk index within the image.
        chunk: u32,
        /// True for a retransmission ([`kind::DATA_RETX`]).
        retransmit: bool,
        /// The chunk's bytes.
        payload: &'a [u8],
    },
    /// See [`kind::REPAIR`]: Reed-Solomon symbol `index` of the block of the file's last
    /// `len` chunks, one of `count` made for it (see `proto::fec`). As long as a DATA
    /// packet, so it fits wherever DATA does.
    Repair {
        /// The low 8 bits of the file's place ([`Offer::file`]) whose last chunks the block
        /// covers: a receiver keeps far fewer than 256 files of a session at once.
        file: u8,
        /// Chunks in the block: the file's last ones.
        len: u16,
        /// Symbols made for the block.
        count: u8,
        /// This symbol's index, below `count`.
        index: u8,
        /// The symbol, as long as a chunk.
        symbol: &'a [u8],
    },
    /// See [`kind::ACK`].
    Ack(Ack),
    /// See [`kind::DONE`].
    Done {
        /// The file the verdict is on (its [`Offer::file`]).
        file: u32,
        /// One of [`done`].
        status: u8,
        /// BLAKE3 of what the receiver assembled.
        blake3: [u8; 32],
        /// Human-readable detail (where the file went, or what failed).
        message: String,
    },
    /// See [`kind::PING`].
    Ping,
    /// See [`kind::ABANDON`]: names the file and its chunks, so a receiver that never saw
    /// its offer can still step past it to the next file.
    Abandon {
        /// The file's place in the session ([`Offer::file`]).
        file: u32,
        /// Its first session-wide chunk number ([`Offer::first_chunk`]).
        first_chunk: u32,
        /// Its chunk count ([`Offer::chunk_count`]).
        chunk_count: u32,
        /// Why, in the sender's user's words.
        reason: String,
    },
    /// See [`kind::CLOSE`].
    Close {
        /// One of [`reason`].
        code: u8,
        /// Human-readable explanation.
        reason: String,
    },
    /// See [`kind::HELLO`].
    Hello {
        /// The sender's SPAKE2 message.
        pake: [u8; PAKE_LEN],
        /// The cookie from a RETRY, or empty.
        cookie: Vec<u8>,
    },
    /// See [`kind::RETRY`].
    Retry {
        /// Echo this in the next HELLO.
        cookie: Vec<u8>,
    },
    /// See [`kind::HELLO_REPLY`].
    HelloReply {
        /// The receiver's SPAKE2 message.
        pake: [u8; PAKE_LEN],
        /// Opaque to the sender; echoed in CONFIRM.
        token: Vec<u8>,
    },
    /// See [`kind::CONFIRM`].
    Confirm {
        /// The sender's key confirmation.
        confirm: [u8; CONFIRM_LEN],
        /// The token from HELLO_REPLY.
        token: Vec<u8>,
    },
}

/// A decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The common header.
    pub header: Header,
    /// The typed body.
    pub body: Body<'a>,
}

impl Body<'_> {
    /// The type code this body is sent with.
    pub fn kind(&self) -> u8 {
        match self {
            Body::Offer(_) => kind::OFFER,
            Body::Accept { .. } => kind::ACCEPT,
            Body::Refuse { .. } => kind::REFUSE,
            Body::Data {
                retransmit: false, ..
            } => kind::DATA,
            Body::Data {
                retransmit: true, ..
            } => kind::DATA_RETX,
            Body::Repair { .. } => kind::REPAIR,
            Body::Ack(_) => kind::ACK,
            Body::Done { .. } => kind::DONE,
            Body::Ping => kind::PING,
            Body::Abandon { .. } => kind::ABANDON,
            Body::Close { .. } => kind::CLOSE,
            Body::Hello { .. } => kind::HELLO,
            Body::Retry { .. } => kind::RETRY,
            Body::HelloReply { .. } => kind::HELLO_REPLY,
            Body::Confirm { .. } => kind::CONFIRM,
        }
    }
}

/// Bounds-checked reader over a datagram.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn hash(&mut self) -> Result<[u8; 32], WireError> {
        self.array::<32>()
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn text(&mut self, len: usize, max: usize) -> Result<String, WireError> {
        if len > max {
            return Err(WireError::Invalid("text field too long"));
        }
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::Invalid("text is not UTF-8"))
    }
    fn token(&mut self) -> Result<Vec<u8>, WireError> {
        let len = usize::from(self.u8()?);
        if len > MAX_TOKEN_LEN {
            return Err(WireError::Invalid("token too long"));
        }
        Ok(self.take(len)?.to_vec())
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Trailing)
        }
    }
}

/// Decodes only the header; enough to route a datagram to its session.
pub fn decode_header(buf: &[u8]) -> Result<Header, WireError> {
    if buf.len() > MAX_DATAGRAM {
        return Err(WireError::TooLarge);
    }
    let mut r = Reader { buf };
    let version = r.u8()?;
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let kind = r.u8()?;
    let session = r.u64()?;
    let pn = r.u32()?;
    Ok(Header { kind, session, pn })
}

/// Decodes a whole datagram, checksum first. Never panics, whatever the input.
pub fn decode(buf: &[u8]) -> Result<Packet<'_>, WireError> {
    let header = decode_header(buf)?;
    if buf.len() < HEADER_LEN + TRAILER_LEN {
        return Err(WireError::Truncated);
    }
    let (content, trailer) = buf.split_at(buf.len() - TRAILER_LEN);
    let sum = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc32fast::hash(content) != sum {
        return Err(WireError::Checksum);
    }
    let body = decode_body(&header, &content[HEADER_LEN..])?;
    Ok(Packet { header, body })
}

/// Decodes a body that arrived as `header` says (after its checksum or AEAD tag was checked
/// and removed). Never panics, whatever the input.
pub fn decode_body<'a>(header: &Header, body: &'a [u8]) -> Result<Body<'a>, WireError> {
    let mut r = Reader { buf: body };
    let body = match header.kind {
        kind::OFFER => {
            let name_len = usize::from(r.u16()?);
            let name = r.text(name_len, MAX_NAME_LEN)?;
            let size = r.u64()?;
            let chunk_size = r.u16()?;
            let chunk_count = r.u32()?;
            let blake3 = r.hash()?;
            let format_len = usize::from(r.u8()?);
            let format = r.text(format_len, MAX_FORMAT_LEN)?;
            let width = r.u32()?;
            let height = r.u32()?;
            let file = r.u32()?;
            let first_chunk = r.u32()?;
            let offer = Offer {
                name,
                size,
                chunk_size,
                chunk_count,
                blake3,
                format,
                width,
                height,
                file,
                first_chunk,
            };
            offer.check_geometry()?;
            Body::Offer(offer)
        }
        kind::ACCEPT => Body::Accept {
            offer_pn: r.u32()?,
            confirm: r.array::<CONFIRM_LEN>()?,
        },
        kind::REFUSE | kind::CLOSE => {
            let code = r.u8()?;
            let len = usize::from(r.u16()?);
            let reason = r.text(len, MAX_REASON_LEN)?;
            if header.kind == kind::REFUSE {
                Body::Refuse { code, reason }
            } else {
                Body::Close { code, reason }
            }
        }
        kind::DATA | kind::DATA_RETX => {
            let chunk = r.u32()?;
            let payload = r.rest();
            if payload.is_empty() {
                return Err(WireError::Invalid("empty chunk"));
            }
            Body::Data {
                chunk,
                retransmit: header.kind == kind::DATA_RETX,
                payload,
            }
        }
        kind::REPAIR => {
            // Four bytes, as many as DATA's chunk number, so a symbol as long as a chunk
            // fits wherever a chunk does: file (8 bits), then len - 1 (10), count - 1 (7)
            // and index (7).
            let file = r.u8()?;
            let b = [r.u8()?, r.u8()?, r.u8()?];
            let packed = u32::from_be_bytes([0, b[0], b[1], b[2]]);
            let len = (packed >> 14) as u16 + 1;
            let count = ((packed >> 7) & 0x7f) as u8 + 1;
            let index = (packed & 0x7f) as u8;
            let symbol = r.rest();
            if index >= count {
                return Err(WireError::Invalid("repair symbol outside its block"));
            }
            if symbol.is_empty() || !symbol.len().is_multiple_of(2) {
                return Err(WireError::Invalid("repair symbol of odd length"));
            }
            Body::Repair {
                file,
                len,
                count,
                index,
                symbol,
            }
        }
        kind::ACK => {
            let largest = r.u32()?;
            let ack_delay_us = r.u32()?;
            let settled_below = r.u32()?;
            let first = r.u32()?;
            let count = usize::from(r.u8()?);
            if count > MAX_ACK_RANGES {
                return Err(WireError::Invalid("too many ACK ranges"));
            }
            let mut smallest = largest
                .checked_sub(first)
                .ok_or(WireError::Invalid("ACK range below zero"))?;
            let mut ranges = Vec::with_capacity(count + 1);
            ranges.push(PnRange {
                start: smallest,
                end: largest,
            });
            for _ in 0..count {
                let gap = r.u32()?;
                let len = r.u32()?;
                let end = smallest
                    .checked_sub(gap)
                    .and_then(|v| v.checked_sub(2))
                    .ok_or(WireError::Invalid("ACK gap below zero"))?;
                smallest = end
                    .checked_sub(len)
                    .ok_or(WireError::Invalid("ACK range below zero"))?;
                ranges.push(PnRange {
                    start: smallest,
                    end,
                });
            }
            Body::Ack(Ack {
                ack_delay_us,
                settled_below,
                ranges,
            })
        }
        kind::DONE => {
            let file = r.u32()?;
            let status = r.u8()?;
            let blake3 = r.hash()?;
            let len = usize::from(r.u16()?);
            let message = r.text(len, MAX_REASON_LEN)?;
            Body::Done {
                file,
                status,
                blake3,
                message,
            }
        }
        kind::PING => Body::Ping,
        kind::ABANDON => {
            let file = r.u32()?;
            let first_chunk = r.u32()?;
            let chunk_count = r.u32()?;
            if first_chunk.checked_add(chunk_count).is_none() {
                return Err(WireError::Invalid("chunk numbers past 2^32"));
            }
            let len = usize::from(r.u16()?);
            let reason = r.text(len, MAX_REASON_LEN)?;
            Body::Abandon {
                file,
                first_chunk,
                chunk_count,
                reason,
            }
        }
        kind::HELLO => {
            let pake = r.array::<PAKE_LEN>()?;
            let len = usize::from(r.u8()?);
            if len > MAX_COOKIE_LEN {
                return Err(WireError::Invalid("cookie too long"));
            }
            let cookie = r.take(len)?.to_vec();
            // The rest is padding, there to make the datagram large (address validation).
            let _ = r.rest();
            Body::Hello { pake, cookie }
        }
        kind::RETRY => {
            let len = usize::from(r.u8()?);
            if len > MAX_COOKIE_LEN {
                return Err(WireError::Invalid("cookie too long"));
            }
            Body::Retry {
                cookie: r.take(len)?.to_vec(),
            }
        }
        kind::HELLO_REPLY => Body::HelloReply {
            pake: r.array::<PAKE_LEN>()?,
            token: r.token()?,
        },
        kind::CONFIRM => Body::Confirm {
            confirm: r.array::<CONFIRM_LEN>()?,
            token: r.token()?,
        },
        other => return Err(WireError::UnknownType(other)),
    };
    r.finish()?;
    Ok(body)
}

fn put_text(out: &mut Vec<u8>, text: &str, max: usize, wide: bool) {
    // Encoders clip over-long text at a character boundary rather than fail: text is advisory.
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if wide {
        out.extend_from_slice(&(end as u16).to_be_bytes());
    } else {
        out.push(end as u8);
    }
    out.extend_from_slice(&text.as_bytes()[..end]);
}

/// Appends the encoding of a packet to `out`. ACK ranges past [`MAX_ACK_RANGES`] are
/// left out (the oldest); names and reasons are clipped to their limits.
pub fn encode(header: &Header, body: &Body<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    encode_unsealed(header, body, out);
    let sum = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&sum.to_be_bytes());
}

/// Appends header and body without any trailer: the caller seals it with an AEAD key.
pub fn encode_unsealed(header: &Header, body: &Body<'_>, out: &mut Vec<u8>) {
    debug_assert_eq!(header.kind, body.kind());
    let start = out.len();
    out.push(VERSION);
    out.push(body.kind());
    out.extend_from_slice(&header.session.to_be_bytes());
    out.extend_from_slice(&header.pn.to_be_bytes());
    match body {
        Body::Offer(o) => {
            put_text(out, &o.name, MAX_NAME_LEN, true);
            out.extend_from_slice(&o.size.to_be_bytes());
            out.extend_from_slice(&o.chunk_size.to_be_bytes());
            out.extend_from_slice(&o.chunk_count.to_be_bytes());
            out.extend_from_slice(&o.blake3);
            put_text(out, &o.format, MAX_FORMAT_LEN, false);
            out.extend_from_slice(&o.width.to_be_bytes());
            out.extend_from_slice(&o.height.to_be_bytes());
            out.extend_from_slice(&o.file.to_be_bytes());
            out.extend_from_slice(&o.first_chunk.to_be_bytes());
        }
        Body::Accept { offer_pn, confirm } => {
            out.extend_from_slice(&offer_pn.to_be_bytes());
            out.extend_from_slice(confirm);
        }
        Body::Refuse { code, reason } | Body::Close { code, reason } => {
            out.push(*code);
            put_text(out, reason, MAX_REASON_LEN, true);
        }
        Body::Data { chunk, payload, .. } => {
            out.extend_from_slice(&chunk.to_be_bytes());
            out.extend_from_slice(payload);
        }
        Body::Repair {
            file,
            len,
            count,
            index,
            symbol,
        } => {
            // Out-of-range fields are clipped, never a panic; the sender keeps within them.
            let len = u32::from((*len).clamp(1, MAX_REPAIR_BLOCK) - 1);
            let count = u32::from((*count).clamp(1, MAX_REPAIR_COUNT) - 1);
            let index = u32::from(*index & 0x7f);
            let packed = (len << 14) | (count << 7) | index;
            out.push(*file);
            out.extend_from_slice(&packed.to_be_bytes()[1..]);
            out.extend_from_slice(symbol);
        }
        Body::Ack(a) => {
            let first = a
                .ranges
                .first()
                .copied()
                .unwrap_or(PnRange { start: 0, end: 0 });
            out.extend_from_slice(&first.end.to_be_bytes());
            out.extend_from_slice(&a.ack_delay_us.to_be_bytes());
            out.extend_from_slice(&a.settled_below.to_be_bytes());
            out.extend_from_slice(&first.end.saturating_sub(first.start).to_be_bytes());
            let extra = &a.ranges[1.min(a.ranges.len())..];
            let extra = &extra[..extra.len().min(MAX_ACK_RANGES)];
            out.push(extra.len() as u8);
            let mut smallest = first.start;
            for r in extra {
                // Saturating: malformed input ranges give a wrong ACK, never a panic.
                let gap = smallest.saturating_sub(r.end).saturating_sub(2);
                out.extend_from_slice(&gap.to_be_bytes());
                out.extend_from_slice(&r.end.saturating_sub(r.start).to_be_bytes());
                smallest = r.start;
            }
        }
        Body::Done {
            file,
            status,
            blake3,
            message,
        } => {
            out.extend_from_slice(&file.to_be_bytes());
            out.push(*status);
            out.extend_from_slice(blake3);
            put_text(out, message, MAX_REASON_LEN, true);
        }
        Body::Ping => {}
        Body::Abandon {
            file,
            first_chunk,
            chunk_count,
            reason,
        } => {
            out.extend_from_slice(&file.to_be_bytes());
            out.extend_from_slice(&first_chunk.to_be_bytes());
            out.extend_from_slice(&chunk_count.to_be_bytes());
            put_text(out, reason, MAX_REASON_LEN, true);
        }
        Body::Hello { pake, cookie } => {
            out.extend_from_slice(pake);
            let len = cookie.len().min(MAX_COOKIE_LEN);
            out.push(len as u8);
            out.extend_from_slice(&cookie[..len]);
            // Padding repeats the (random) SPAKE2 message rather than zeros, so no constant
            // run travels in clear.
            let target = start + MIN_HELLO_DATAGRAM - TRAILER_LEN;
            let mut i = 0;
            while out.len() < target {
                out.push(pake[i % PAKE_LEN]);
                i += 1;
            }
        }
        Body::Retry { cookie } => {
            let len = cookie.len().min(MAX_COOKIE_LEN);
            out.push(len as u8);
            out.extend_from_slice(&cookie[..len]);
        }
        Body::HelloReply { pake, token } => {
            out.extend_from_slice(pake);
            put_token(out, token);
        }
        Body::Confirm { confirm, token } => {
            out.extend_from_slice(confirm);
            put_token(out, token);
        }
    }
}

fn put_token(out: &mut Vec<u8>, token: &[u8]) {
    let len = token.len().min(MAX_TOKEN_LEN);
    out.push(len as u8);
    out.extend_from_slice(&token[..len]);
}

/// Encodes a packet into a fresh buffer.
pub fn encode_vec(header: &Header, body: &Body<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(header, body, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn hdr(kind: u8, pn: u32) -> Header {
        Header {
            kind,
            session: 0x0102_0304_0506_0708,
            pn,
        }
    }

    /// Replaces the trailer of hand-edited content with a correct checksum.
    fn reseal(mut content: Vec<u8>) -> Vec<u8> {
        let sum = crc32fast::hash(&content);
        content.extend_from_slice(&sum.to_be_bytes());
        content
    }

    fn roundtrip(body: Body<'_>) {
        let h = hdr(body.kind(), 42);
        let bytes = encode_vec(&h, &body);
        let p = decode(&bytes).expect("decodes");
        assert_eq!(p.header, h);
        assert_eq!(p.body, body);
    }

    #[test]
    fn an_abandon_past_the_chunk_numbers_is_refused() {
        let body = Body::Abandon {
            file: 1,
            first_chunk: u32::MAX - 3,
            chunk_count: 4,
            reason: String::new(),
        };
        let bytes = encode_vec(&hdr(kind::ABANDON, 1), &body);
        assert_eq!(
            decode(&bytes).map(|p| p.body),
            Err(WireError::Invalid("chunk numbers past 2^32"))
        );
        roundtrip(Body::Abandon {
            file: 1,
            first_chunk: u32::MAX - 3,
            chunk_count: 3,
            reason: String::new(),
        });
    }

    #[test]
    fn a_repair_symbol_roundtrips_and_one_outside_its_block_is_refused() {
        let symbol = [7u8; 16];
        roundtrip(Body::Repair {
            file: 2,
            len: 81,
            count: 15,
            index: 14,
            symbol: &symbol,
        });
        let bytes = |len: u16, count: u8, index: u8, symbol: &[u8]| {
            let body = Body::Repair {
                file: 0,
                len,
                count,
                index,
                symbol,
            };
            encode_vec(&hdr(kind::REPAIR, 3), &body)
        };
        let outside = Err(WireError::Invalid("repair symbol outside its block"));
        assert_eq!(decode(&bytes(81, 15, 15, &symbol)), outside);
        // The packed fields reach their limits both ways.
        for (len, count, index) in [(1, 1, 0), (MAX_REPAIR_BLOCK, MAX_REPAIR_COUNT, 127)] {
            roundtrip(Body::Repair {
                file: 255,
                len,
                count,
                index,
                symbol: &symbol,
            });
        }
        // Four bytes of fields, like DATA's chunk number: a symbol fits where a chunk does.
        let data = encode_vec(
            &hdr(kind::DATA, 3),
            &Body::Data {
                chunk: 1,
                retransmit: false,
                payload: &symbol,
            },
        );
        assert_eq!(bytes(81, 15, 1, &symbol).len(), data.len());
        let odd = Err(WireError::Invalid("repair symbol of odd length"));
        assert_eq!(decode(&bytes(81, 15, 1, &symbol[..15])), odd);
        assert_eq!(decode(&bytes(81, 15, 1, &[])), odd);
    }

    fn sample_offer() -> Offer {
        Offer {
            name: "cat.png".into(),
            size: 2500,
            chunk_size: 1000,
            chunk_count: 3,
            blake3: [0xab; 32],
            format: "png".into(),
            width: 451,
            height: 300,
            file: 1,
            first_chunk: 4,
        }
    }

    #[test]
    fn every_body_roundtrips() {
        roundtrip(Body::Offer(sample_offer()));
        roundtrip(Body::Accept {
            offer_pn: 7,
            confirm: [3; CONFIRM_LEN],
        });
        roundtrip(Body::Refuse {
            code: reason::TOO_LARGE,
            reason: "too big".into(),
        });
        roundtrip(Body::Data {
            chunk: 9,
            retransmit: false,
            payload: b"hello",
        });
        roundtrip(Body::Data {
            chunk: 9,
            retransmit: true,
            payload: b"hello",
        });
        roundtrip(Body::Ack(Ack {
            ack_delay_us: 250,
            settled_below: 17,
            ranges: vec![
                PnRange {
                    start: 90,
                    end: 100,
                },
                PnRange { start: 50, end: 80 },
                PnRange { start: 0, end: 10 },
            ],
        }));
        roundtrip(Body::Done {
            file: 3,
            status: done::OK,
            blake3: [1; 32],
            message: "saved".into(),
        });
        roundtrip(Body::Ping);
        roundtrip(Body::Abandon {
            file: 2,
            first_chunk: 700,
            chunk_count: 350,
            reason: "cancelled in the TUI".into(),
        });
        roundtrip(Body::Hello {
            pake: [4; PAKE_LEN],
            cookie: vec![9; 36],
        });
        roundtrip(Body::Retry {
            cookie: vec![1; 36],
        });
        roundtrip(Body::HelloReply {
            pake: [5; PAKE_LEN],
            token: vec![6; 92],
        });
        roundtrip(Body::Confirm {
            confirm: [7; CONFIRM_LEN],
            token: vec![8; 92],
        });
        roundtrip(Body::Close {
            code: reason::CANCELLED,
            reason: "bye".into(),
        });
    }

    /// Test vectors, also printed in docs/PROTOCOL.md.
    #[test]
    fn vectors() {
        let data = encode_vec(
            &hdr(kind::DATA, 5),
            &Body::Data {
                chunk: 2,
                retransmit: false,
                payload: &[0xde, 0xad],
            },
        );
        assert_eq!(
            hex(&data),
            "010401020304050607080000000500000002dead177d2fe9"
        );
        let repair = encode_vec(
            &hdr(kind::REPAIR, 7),
            &Body::Repair {
                file: 0,
                len: 81,
                count: 15,
                index: 3,
                symbol: &[0xbe, 0xef],
            },
        );
        assert_eq!(
            hex(&repair),
            "010a01020304050607080000000700140703beefe0c50081"
        );
        let abandon = encode_vec(
            &hdr(kind::ABANDON, 9),
            &Body::Abandon {
                file: 2,
                first_chunk: 700,
                chunk_count: 350,
                reason: "cancelled".into(),
            },
        );
        assert_eq!(
            hex(&abandon),
            "010b01020304050607080000000900000002000002bc0000015e000963616e63656c6c6564f3bd0cf9"
        );
        let ack = encode_vec(
            &hdr(kind::ACK, 3),
            &Body::Ack(Ack {
                ack_delay_us: 1000,
                settled_below: 12,
                ranges: vec![PnRange { start: 8, end: 10 }, PnRange { start: 2, end: 5 }],
            }),
        );
        assert_eq!(
            hex(&ack),
            "0106010203040506070800000003\
             0000000a000003e80000000c0000000201\
             0000000100000003\
             8c565491"
        );
        let offer = encode_vec(&hdr(kind::OFFER, 0), &Body::Offer(sample_offer()));
        assert_eq!(
            hex(&offer),
            "0101010203040506070800000000\
             0007636174 2e706e67"
                .replace(' ', "")
                + "00000000000009c4"
                + "03e8"
                + "00000003"
                + &"ab".repeat(32)
                + "03706e67"
                + "000001c3"
                + "0000012c"
                + "00000001"
                + "00000004"
                + "30ee233f"
        );
        let ping = encode_vec(&hdr(kind::PING, 1), &Body::Ping);
        assert_eq!(hex(&ping), "010801020304050607080000000112e724cc");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode(&[]), Err(WireError::Truncated));
        assert_eq!(decode(&[2; 20]), Err(WireError::Version(2)));
        let ping = encode_vec(&hdr(kind::PING, 1), &Body::Ping);
        let mut content = ping[..ping.len() - TRAILER_LEN].to_vec();
        content.push(0);
        assert_eq!(decode(&reseal(content.clone())), Err(WireError::Trailing));
        content.pop();
        content[1] = 0x0c;
        assert_eq!(decode(&reseal(content)), Err(WireError::UnknownType(0x0c)));
        let mut flipped = ping.clone();
        flipped[5] ^= 0x10;
        assert_eq!(decode(&flipped), Err(WireError::Checksum));
        let mut bad = sample_offer();
        bad.chunk_count = 2;
        let bytes = encode_vec(&hdr(kind::OFFER, 0), &Body::Offer(bad));
        assert!(matches!(decode(&bytes), Err(WireError::Invalid(_))));
        let empty = encode_vec(
            &hdr(kind::DATA, 0),
            &Body::Data {
                chunk: 0,
                retransmit: false,
                payload: &[],
            },
        );
        assert!(decode(&empty).is_err());
        assert_eq!(
            decode(&vec![1u8; MAX_DATAGRAM + 1]),
            Err(WireError::TooLarge)
        );
    }

    #[test]
    fn ack_encoding_caps_ranges() {
        let ranges: Vec<PnRange> = (0..200u32)
            .rev()
            .map(|i| PnRange {
                start: i * 3,
                end: i * 3,
            })
            .collect();
        let body = Body::Ack(Ack {
            ack_delay_us: 0,
            settled_below: 0,
            ranges,
        });
        let bytes = encode_vec(&hdr(kind::ACK, 0), &body);
        assert!(bytes.len() < 600);
        let Body::Ack(a) = decode(&bytes).expect("decodes").body else {
            panic!("not an ack")
        };
        assert_eq!(a.ranges.len(), MAX_ACK_RANGES + 1);
        assert_eq!(a.ranges[0].end, 597);
    }

    #[test]
    fn hello_is_padded_for_address_validation() {
        let bytes = encode_vec(
            &hdr(kind::HELLO, 0),
            &Body::Hello {
                pake: [0; PAKE_LEN],
                cookie: Vec::new(),
            },
        );
        assert_eq!(bytes.len(), MIN_HELLO_DATAGRAM);
    }

    #[test]
    fn chunk_len_is_exact() {
        let o = sample_offer();
        assert_eq!(o.chunk_len(0), Some(1000));
        assert_eq!(o.chunk_len(2), Some(500));
        assert_eq!(o.chunk_len(3), None);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn valid_header_random_body_never_panics(
            kind in 0u8..0x16,
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let ping = encode_vec(&hdr(kind::PING, 0), &Body::Ping);
            let mut content = ping[..HEADER_LEN].to_vec();
            content[1] = kind;
            content.extend_from_slice(&body);
            let _ = decode(&reseal(content));
        }

        #[test]
        fn truncations_are_errors(cut in 0usize..400) {
            let bytes = encode_vec(&hdr(kind::OFFER, 0), &Body::Offer(sample_offer()));
            if cut < bytes.len() {
                prop_assert!(decode(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn acks_roundtrip(mut pns in proptest::collection::btree_set(0u32..5000, 1..100)) {
            // Build descending disjoint ranges from a random set and check they survive.
            let mut ranges: Vec<PnRange> = Vec::new();
            while let Some(&last) = pns.iter().next_back() {
                pns.remove(&last);
                if let Some(r) = ranges.last_mut()
                    && r.start == last + 1
                {
                    r.start = last;
                    continue;
                }
                ranges.push(PnRange { start: last, end: last });
            }
            ranges.truncate(MAX_ACK_RANGES + 1);
            let body = Body::Ack(Ack { ack_delay_us: 5, settled_below: 1, ranges });
            let bytes = encode_vec(&hdr(kind::ACK, 0), &body);
            prop_assert_eq!(decode(&bytes).expect("decodes").body, body);
        }
    }
}
