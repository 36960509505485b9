//! Passphrase login and datagram protection.
//!
//! - Key agreement: SPAKE2 (Ed25519 group, symmetric mode) from the shared passphrase. A
//!   passive listener learns nothing; an active attacker gets one guess per handshake; a
//!   recorded handshake allows no offline dictionary attack.
//! - Key schedule: HKDF-SHA256 over the SPAKE2 key, bound to the session id and both SPAKE2
//!   messages, gives one AEAD key and IV per direction and one confirmation key per side.
//! - Key confirmation: each side proves it holds the key with an HMAC over the transcript
//!   before any metadata or image data flows.
//! - Protection: AES-256-GCM; the 14-byte header is authenticated (AAD) and the packet
//!   number, XORed into the per-direction IV, is the nonce, so a nonce is never reused.
//!   A sliding window drops replayed packet numbers.
//! - Address validation: stateless cookies (HMAC of address, session id and time), and
//!   login tokens: the receiver keeps no state for a login until the sender proves it
//!   received HELLO_REPLY by echoing the token, which carries the receiver's half of the
//!   exchange sealed under a key only the receiver knows.

use std::net::SocketAddr;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{digest, hkdf, hmac};
use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::wire::{self, Body, HEADER_LEN, Header, Packet, WireError, kind};

/// Bytes of the AEAD tag that ends a sealed datagram.
pub const TAG_LEN: usize = 16;
/// Bytes of a SPAKE2 message (Ed25519 group).
pub const PAKE_MSG_LEN: usize = 33;
/// Bytes of a key confirmation.
pub const CONFIRM_LEN: usize = 32;
/// Bytes of an address-validation cookie: 4 of time, 32 of MAC.
pub const COOKIE_LEN: usize = 36;
/// How long a cookie stays valid, in seconds.
pub const COOKIE_LIFETIME_SECS: u32 = 10;
/// Packet numbers remembered behind the largest for replay detection.
pub const REPLAY_WINDOW: u32 = 4096;
/// Bytes of a login token: issue time, counter, sealed key material, AEAD tag.
pub const TOKEN_LEN: usize = 4 + 8 + 64 + TAG_LEN;
/// How long a login token stays valid, in seconds: the sender must confirm within this.
pub const TOKEN_LIFETIME_SECS: u32 = 10;

const IDENTITY: &[u8] = b"udpix/1";
const SALT: &[u8] = b"udpix v1 key schedule";

/// The shared secret both sides were given. Never printed or sent.
#[derive(Clone)]
pub struct Passphrase(Vec<u8>);

impl Passphrase {
    /// Wraps a passphrase in its normal form, so that what a person reads aloud and types
    /// matches: letters in lower case, and the words joined by single hyphens whatever
    /// separated them (spaces, hyphens, underscores, any number of them).
    pub fn new(text: &str) -> Self {
        Self(normalize(text).into_bytes())
    }
}

/// The normal form of a passphrase (docs/PROTOCOL.md, *Passphrase*).
pub fn normalize(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// One side's half-done SPAKE2 exchange.
pub struct Pake {
    state: Spake2<Ed25519Group>,
    msg: [u8; PAKE_MSG_LEN],
}

impl std::fmt::Debug for Pake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pake(..)")
    }
}

impl Pake {
    /// Starts an exchange (fresh randomness from the system).
    pub fn start(pass: &Passphrase) -> Self {
        let (state, msg) = Spake2::<Ed25519Group>::start_symmetric(
            &Password::new(&pass.0),
            &Identity::new(IDENTITY),
        );
        let mut m = [0u8; PAKE_MSG_LEN];
        let n = msg.len().min(PAKE_MSG_LEN);
        m[..n].copy_from_slice(&msg[..n]);
        Self { state, msg: m }
    }

    /// The message to send to the peer.
    pub fn message(&self) -> [u8; PAKE_MSG_LEN] {
        self.msg
    }

    /// Finishes with the peer's message; `None` if it is malformed. A wrong passphrase is not
    /// detected here (SPAKE2 then yields different keys): key confirmation catches it.
    pub fn finish(
        self,
        session: u64,
        peer_msg: &[u8; PAKE_MSG_LEN],
        client_msg: &[u8; PAKE_MSG_LEN],
        server_msg: &[u8; PAKE_MSG_LEN],
    ) -> Option<SessionKeys> {
        let key = self.finish_key(peer_msg)?;
        Some(SessionKeys::derive(&key, session, client_msg, server_msg))
    }

    /// Finishes with the peer's message and returns the raw 32-byte SPAKE2 key.
    pub fn finish_key(self, peer_msg: &[u8; PAKE_MSG_LEN]) -> Option<[u8; 32]> {
        let key = self.state.finish(peer_msg).ok()?;
        key.try_into().ok()
    }
}

/// The keys of one session, as both sides derive them.
#[derive(Debug)]
pub struct SessionKeys {
    /// Sender → receiver packets.
    pub client_to_server: DirectionKey,
    /// Receiver → sender packets.
    pub server_to_client: DirectionKey,
    confirm_client: hmac::Key,
    confirm_server: hmac::Key,
    transcript: [u8; 32],
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, label: &[u8], transcript: &[u8], out: &mut [u8]) {
    let info = [label, transcript];
    // Lengths here are fixed and far below HKDF's limit, so expansion cannot fail.
    if let Ok(okm) = prk.expand(&info, Len(out.len())) {
        let _ = okm.fill(out);
    }
}

impl SessionKeys {
    /// Derives every key from the SPAKE2 output and the handshake transcript.
    pub fn derive(
        pake_key: &[u8],
        session: u64,
        client_msg: &[u8; PAKE_MSG_LEN],
        server_msg: &[u8; PAKE_MSG_LEN],
    ) -> Self {
        Self::from_transcript(pake_key, &transcript(session, client_msg, server_msg))
    }

    /// Derives every key from the SPAKE2 output and a transcript hash (the receiver keeps
    /// only these two in its login token).
    pub fn from_transcript(pake_key: &[u8], transcript: &[u8; 32]) -> Self {
        let transcript = *transcript;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(pake_key);
        let dir = |key_label: &[u8], iv_label: &[u8]| {
            let mut key = [0u8; 32];
            let mut iv = [0u8; 12];
            expand(&prk, key_label, &transcript, &mut key);
            expand(&prk, iv_label, &transcript, &mut iv);
            DirectionKey::new(&key, iv)
        };
        let mut cc = [0u8; 32];
        let mut cs = [0u8; 32];
        expand(&prk, b"confirm client", &transcript, &mut cc);
        expand(&prk, b"confirm server", &transcript, &mut cs);
        Self {
            client_to_server: dir(b"c2s key", b"c2s iv"),
            server_to_client: dir(b"s2c key", b"s2c iv"),
            confirm_client: hmac::Key::new(hmac::HMAC_SHA256, &cc),
            confirm_server: hmac::Key::new(hmac::HMAC_SHA256, &cs),
            transcript,
        }
    }

    fn tag(key: &hmac::Key, role: &[u8], transcript: &[u8; 32]) -> [u8; CONFIRM_LEN] {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(role);
        ctx.update(transcript);
        let mut out = [0u8; CONFIRM_LEN];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The receiver's proof that it holds the key.
    pub fn server_confirm(&self) -> [u8; CONFIRM_LEN] {
        Self::tag(&self.confirm_server, b"server", &self.transcript)
    }

    /// The sender's proof that it holds the key.
    pub fn client_confirm(&self) -> [u8; CONFIRM_LEN] {
        Self::tag(&self.confirm_client, b"client", &self.transcript)
    }

    /// Checks the receiver's proof in constant time.
    pub fn verify_server(&self, tag: &[u8; CONFIRM_LEN]) -> bool {
        let mut msg = b"server".to_vec();
        msg.extend_from_slice(&self.transcript);
        hmac::verify(&self.confirm_server, &msg, tag).is_ok()
    }

    /// Checks the sender's proof in constant time.
    pub fn verify_client(&self, tag: &[u8; CONFIRM_LEN]) -> bool {
        let mut msg = b"client".to_vec();
        msg.extend_from_slice(&self.transcript);
        hmac::verify(&self.confirm_client, &msg, tag).is_ok()
    }
}

/// `SHA-256("udpix/1 transcript" ‖ session ‖ pake_S ‖ pake_R)`: what both confirmations and
/// every key are bound to.
pub fn transcript(
    session: u64,
    client_msg: &[u8; PAKE_MSG_LEN],
    server_msg: &[u8; PAKE_MSG_LEN],
) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"udpix/1 transcript");
    ctx.update(&session.to_be_bytes());
    ctx.update(client_msg);
    ctx.update(server_msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// AEAD key and IV of one direction.
pub struct DirectionKey {
    key: LessSafeKey,
    iv: [u8; 12],
}

impl std::fmt::Debug for DirectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectionKey(..)")
    }
}

impl DirectionKey {
    /// A key from raw material (used by the key schedule and by test vectors).
    pub fn new(key: &[u8; 32], iv: [u8; 12]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, key);
        // AES-256 takes exactly 32 bytes, which the type guarantees.
        let key = LessSafeKey::new(unbound.unwrap_or_else(|_| unreachable!("32-byte AES key")));
        Self { key, iv }
    }

    fn nonce(&self, pn: u32) -> Nonce {
        let mut n = self.iv;
        for (i, b) in pn.to_be_bytes().iter().enumerate() {
            n[8 + i] ^= b;
        }
        Nonce::assume_unique_for_key(n)
    }

    /// Seals the packet that starts at `out[start]`: encrypts what follows its header in
    /// place (the header is authenticated, not hidden) and appends the tag. `pn` must be the
    /// packet number in the header.
    pub fn seal(&self, pn: u32, out: &mut Vec<u8>, start: usize) {
        if out.len() < start + HEADER_LEN {
            return;
        }
        let (header, body) = out[start..].split_at_mut(HEADER_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(pn), Aad::from(&*header), body);
        if let Ok(tag) = tag {
            out.extend_from_slice(tag.as_ref());
        }
    }

    /// Authenticates and decrypts a sealed datagram in place; returns the plaintext body.
    pub fn open<'a>(&self, pn: u32, datagram: &'a mut [u8]) -> Option<&'a [u8]> {
        if datagram.len() < HEADER_LEN + TAG_LEN {
            return None;
        }
        let (header, body) = datagram.split_at_mut(HEADER_LEN);
        let plain = self
            .key
            .open_in_place(self.nonce(pn), Aad::from(&*header), body)
            .ok()?;
        Some(&*plain)
    }
}

/// How one end of a session protects what it sends and checks what it receives.
#[derive(Debug)]
pub enum Protection {
    /// CRC-32 only (`--insecure`, or before the handshake completes).
    Plain,
    /// AES-256-GCM with a key per direction and a replay window.
    Sealed(Box<SealedKeys>),
}

/// The keys and replay state of a protected session end.
#[derive(Debug)]
pub struct SealedKeys {
    /// Key for what this end sends.
    pub send: DirectionKey,
    /// Key for what this end receives.
    pub recv: DirectionKey,
    /// Packet numbers already accepted.
    pub replay: ReplayWindow,
}

/// Types that always travel in clear: the handshake itself. Everything else is sealed once a
/// session has keys.
pub fn is_handshake(k: u8) -> bool {
    matches!(
        k,
        kind::HELLO | kind::RETRY | kind::HELLO_REPLY | kind::CONFIRM
    )
}

/// Types a protected session may also receive in clear, from a peer that has no keys for it:
/// a refusal of the login (wrong passphrase, throttled) and "unknown session" from a receiver
/// that restarted. The state machine decides whether to believe them.
pub fn may_arrive_in_clear(k: u8) -> bool {
    is_handshake(k) || matches!(k, kind::REFUSE | kind::CLOSE)
}

impl Protection {
    /// Sealed protection sending with `send` and receiving with `recv`.
    pub fn sealed(send: DirectionKey, recv: DirectionKey) -> Self {
        Protection::Sealed(Box::new(SealedKeys {
            send,
            recv,
            replay: ReplayWindow::default(),
        }))
    }

    /// True when packets are sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Protection::Sealed(_))
    }

    /// Appends the protected encoding of a packet to `out`.
    pub fn encode(&self, header: &Header, body: &Body<'_>, out: &mut Vec<u8>) {
        match self {
            Protection::Sealed(k) if !is_handshake(header.kind) => {
                let start = out.len();
                wire::encode_unsealed(header, body, out);
                k.send.seal(header.pn, out, start);
            }
            _ => wire::encode(header, body, out),
        }
    }

    /// Checks and decodes a datagram; the flag says whether it was sealed. Sealed sessions
    /// accept in clear only [`may_arrive_in_clear`] types (a REFUSE or CLOSE is tried sealed
    /// first); the caller decides what to trust.
    ///
    /// A sealed datagram that authenticates but whose body breaks a rule is
    /// [`WireError::Invalid`] (or another decoding error), never [`WireError::Unauthentic`]:
    /// the peer holds the keys and deserves an answer.
    pub fn decode<'a>(&mut self, datagram: &'a mut [u8]) -> Result<(Packet<'a>, bool), WireError> {
        let header = wire::decode_header(datagram)?;
        match self {
            Protection::Plain => Ok((wire::decode(datagram)?, false)),
            Protection::Sealed(_) if is_handshake(header.kind) => {
                Ok((wire::decode(datagram)?, false))
            }
            Protection::Sealed(k) => {
                if may_arrive_in_clear(header.kind) && wire::decode(datagram).is_ok() {
                    // A clear REFUSE or CLOSE (its CRC checks; a sealed one passes by chance
                    // once in 2^32). Its packet number is not ours to track.
                    return Ok((wire::decode(datagram)?, false));
                }
                if !k.replay.is_fresh(header.pn) {
                    return Err(WireError::Replayed);
                }
                let body = k
                    .recv
                    .open(header.pn, datagram)
                    .ok_or(WireError::Unauthentic)?;
                k.replay.mark(header.pn);
                let body = wire::decode_body(&header, body)?;
                Ok((Packet { header, body }, true))
            }
        }
    }
}

/// Remembers which packet numbers were accepted, to drop replays.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    largest: Option<u32>,
    bits: Vec<u64>,
}

impl ReplayWindow {
    fn slot(&self, pn: u32) -> Option<(usize, u64)> {
        let largest = self.largest?;
        let back = largest.checked_sub(pn)?;
        (back < REPLAY_WINDOW).then(|| ((pn % REPLAY_WINDOW) as usize / 64, 1u64 << (pn % 64)))
    }

    /// True if `pn` has not been accepted and is not too old to tell.
    pub fn is_fresh(&self, pn: u32) -> bool {
        match self.largest {
            None => true,
            Some(l) if pn > l => true,
            Some(_) => match self.slot(pn) {
                Some((w, bit)) => self.bits.get(w).is_some_and(|x| x & bit == 0),
                None => false,
            },
        }
    }

    /// Records `pn` as accepted (call only after authentication succeeded).
    pub fn mark(&mut self, pn: u32) {
        if self.bits.is_empty() {
            self.bits = vec![0; (REPLAY_WINDOW / 64) as usize];
        }
        match self.largest {
            Some(l) if pn <= l => {}
            Some(l) => {
                // Clear the slots the window slides past.
                let shift = (pn - l).min(REPLAY_WINDOW);
                for k in 1..=shift {
                    let p = l.wrapping_add(k);
                    let w = (p % REPLAY_WINDOW) as usize / 64;
                    self.bits[w] &= !(1u64 << (p % 64));
                }
                self.largest = Some(pn);
            }
            None => self.largest = Some(pn),
        }
        if let Some((w, bit)) = self.slot(pn) {
            self.bits[w] |= bit;
        }
    }
}

/// Mints and checks stateless address-validation cookies.
#[derive(Debug)]
pub struct CookieJar {
    key: hmac::Key,
}

impl CookieJar {
    /// A jar keyed by `secret` (random per receiver run).
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn input(peer: SocketAddr, session: u64, time: u32) -> Vec<u8> {
        let mut m = peer.to_string().into_bytes();
        m.extend_from_slice(&session.to_be_bytes());
        m.extend_from_slice(&time.to_be_bytes());
        m
    }

    /// A cookie for `peer` and `session` at `now_secs` (seconds on the receiver's clock).
    pub fn mint(&self, peer: SocketAddr, session: u64, now_secs: u32) -> [u8; COOKIE_LEN] {
        let mut c = [0u8; COOKIE_LEN];
        c[..4].copy_from_slice(&now_secs.to_be_bytes());
        let tag = hmac::sign(&self.key, &Self::input(peer, session, now_secs));
        c[4..].copy_from_slice(tag.as_ref());
        c
    }

    /// True if `cookie` was minted here for this address and session, recently.
    pub fn check(&self, cookie: &[u8], peer: SocketAddr, session: u64, now_secs: u32) -> bool {
        if cookie.len() != COOKIE_LEN {
            return false;
        }
        let time = u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
        if time > now_secs || now_secs - time > COOKIE_LIFETIME_SECS {
            return false;
        }
        hmac::verify(&self.key, &Self::input(peer, session, time), &cookie[4..]).is_ok()
    }
}

/// Mints and opens login tokens: the receiver's half of a handshake, sealed under a key only
/// this receiver run knows, handed to the sender in HELLO_REPLY and echoed in CONFIRM. The
/// receiver thus holds no state for a login until the sender proves it received the reply.
pub struct LoginTokens {
    key: LessSafeKey,
    next: u64,
}

impl std::fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginTokens(..)")
    }
}

/// What a login token carries back to the receiver.
pub struct TokenContent {
    /// The SPAKE2 key of this exchange.
    pub pake_key: [u8; 32],
    /// The handshake transcript hash.
    pub transcript: [u8; 32],
    /// When the token was issued (seconds on the receiver's clock).
    pub issued: u32,
}

impl LoginTokens {
    /// Tokens keyed from `secret` (random per receiver run), separately from the cookies.
    pub fn new(secret: &[u8; 32]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret);
        let mut key = [0u8; 32];
        expand(&prk, b"login token", &[], &mut key);
        let unbound = UnboundKey::new(&AES_256_GCM, &key);
        let key = LessSafeKey::new(unbound.unwrap_or_else(|_| unreachable!("32-byte AES key")));
        Self { key, next: 0 }
    }

    fn aad(peer: SocketAddr, session: u64, head: &[u8]) -> Vec<u8> {
        let mut a = b"udpix/1 login token".to_vec();
        a.extend_from_slice(head);
        a.extend_from_slice(peer.to_string().as_bytes());
        a.extend_from_slice(&session.to_be_bytes());
        a
    }

    fn nonce(counter: &[u8]) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(counter);
        Nonce::assume_unique_for_key(n)
    }

    /// A token for `peer` and `session`, issued at `now_secs`.
    pub fn mint(
        &mut self,
        peer: SocketAddr,
        session: u64,
        now_secs: u32,
        pake_key: &[u8; 32],
        transcript: &[u8; 32],
    ) -> [u8; TOKEN_LEN] {
        // A counter nonce never repeats within a run, and each run has a fresh key.
        let counter = self.next.to_be_bytes();
        self.next += 1;
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&now_secs.to_be_bytes());
        head[4..].copy_from_slice(&counter);
        let mut body = Vec::with_capacity(64 + TAG_LEN);
        body.extend_from_slice(pake_key);
        body.extend_from_slice(transcript);
        let aad = Self::aad(peer, session, &head);
        let mut out = [0u8; TOKEN_LEN];
        if let Ok(tag) =
            self.key
                .seal_in_place_separate_tag(Self::nonce(&counter), Aad::from(&aad), &mut body)
        {
            out[..12].copy_from_slice(&head);
            out[12..76].copy_from_slice(&body);
            out[76..].copy_from_slice(tag.as_ref());
        }
        out
    }

    /// The content of a token minted here for this address and session within
    /// [`TOKEN_LIFETIME_SECS`]; `None` for anything else.
    pub fn open(
        &self,
        token: &[u8],
        peer: SocketAddr,
        session: u64,
        now_secs: u32,
    ) -> Option<TokenContent> {
        if token.len() != TOKEN_LEN {
            return None;
        }
        let issued = u32::from_be_bytes([token[0], token[1], token[2], token[3]]);
        if issued > now_secs || now_secs - issued > TOKEN_LIFETIME_SECS {
            return None;
        }
        let aad = Self::aad(peer, session, &token[..12]);
        let mut body = token[12..].to_vec();
        let plain = self
            .key
            .open_in_place(Self::nonce(&token[4..12]), Aad::from(&aad), &mut body)
            .ok()?;
        let mut pake_key = [0u8; 32];
        let mut transcript = [0u8; 32];
        pake_key.copy_from_slice(&plain[..32]);
        transcript.copy_from_slice(&plain[32..64]);
        Some(TokenContent {
            pake_key,
            transcript,
            issued,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_match_whatever_the_case_and_separators() {
        let canonical = normalize("496-narrow-sentence-version");
        for typed in [
            "496 narrow sentence version",
            "496 Narrow  sentence_VERSION",
            " 496--narrow sentence version ",
            "496  Narrow--SENTENCE_version ",
            "\t496-narrow - sentence   version\n",
        ] {
            assert_eq!(normalize(typed), canonical, "{typed:?}");
        }
        assert_ne!(normalize("496 narrow sentence"), canonical);
        assert_ne!(normalize("496narrow sentence version"), canonical);
    }

    #[test]
    fn tokens_bind_address_session_time_and_this_receiver() {
        let mut tokens = LoginTokens::new(&[5; 32]);
        let a: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.2:5000".parse().expect("addr");
        let t = tokens.mint(a, 9, 100, &[1; 32], &[2; 32]);
        let c = tokens.open(&t, a, 9, 104).expect("opens");
        assert_eq!(
            (c.pake_key, c.transcript, c.issued),
            ([1; 32], [2; 32], 100)
        );
        assert!(tokens.open(&t, b, 9, 104).is_none(), "other address");
        assert!(tokens.open(&t, a, 8, 104).is_none(), "other session");
        assert!(
            tokens
                .open(&t, a, 9, 100 + TOKEN_LIFETIME_SECS + 1)
                .is_none(),
            "expired"
        );
        assert!(tokens.open(&t, a, 9, 99).is_none(), "from the future");
        assert!(
            LoginTokens::new(&[6; 32]).open(&t, a, 9, 104).is_none(),
            "other run"
        );
        for i in 0..TOKEN_LEN {
            let mut forged = t;
            forged[i] ^= 1;
            assert!(
                tokens.open(&forged, a, 9, 104).is_none(),
                "byte {i} flipped"
            );
        }
        assert_ne!(
            tokens.mint(a, 9, 100, &[1; 32], &[2; 32]),
            t,
            "fresh nonce each time"
        );
    }

    fn handshake(a: &str, b: &str) -> (SessionKeys, SessionKeys) {
        let client = Pake::start(&Passphrase::new(a));
        let server = Pake::start(&Passphrase::new(b));
        let (cm, sm) = (client.message(), server.message());
        let ck = client.finish(7, &sm, &cm, &sm).expect("client finishes");
        let sk = server.finish(7, &cm, &cm, &sm).expect("server finishes");
        (ck, sk)
    }

    #[test]
    fn same_passphrase_same_keys_and_confirmation() {
        let (c, s) = handshake("7-orbit-lantern-mosaic", "7-orbit-lantern-mosaic");
        assert!(c.verify_server(&s.server_confirm()));
        assert!(s.verify_client(&c.client_confirm()));
        let mut p = vec![1u8; HEADER_LEN];
        p.extend_from_slice(b"secret image bytes");
        c.client_to_server.seal(5, &mut p, 0);
        assert!(!p.windows(6).any(|w| w == b"secret"));
        let body = s.client_to_server.open(5, &mut p).expect("opens");
        assert_eq!(body, b"secret image bytes");
    }

    #[test]
    fn wrong_passphrase_fails_confirmation_both_ways() {
        let (c, s) = handshake("right", "wrong");
        assert!(!c.verify_server(&s.server_confirm()));
        assert!(!s.verify_client(&c.client_confirm()));
    }

    #[test]
    fn tampering_wrong_pn_and_wrong_direction_fail() {
        let (c, s) = handshake("pw", "pw");
        let mut p = vec![1u8; HEADER_LEN];
        p.extend_from_slice(b"hello");
        c.client_to_server.seal(9, &mut p, 0);
        let mut flipped = p.clone();
        flipped[3] ^= 1; // header is authenticated
        assert!(s.client_to_server.open(9, &mut flipped).is_none());
        let mut q = p.clone();
        assert!(s.client_to_server.open(10, &mut q).is_none());
        let mut r = p.clone();
        assert!(s.server_to_client.open(9, &mut r).is_none());
        let mut t = p.clone();
        let last = t.len() - 1;
        t[last] ^= 0x80;
        assert!(s.client_to_server.open(9, &mut t).is_none());
    }

    #[test]
    fn replay_window_drops_repeats_and_ancient() {
        let mut w = ReplayWindow::default();
        for pn in [0, 1, 5, 3, 2] {
            assert!(w.is_fresh(pn));
            w.mark(pn);
            assert!(!w.is_fresh(pn));
        }
        assert!(w.is_fresh(4));
        w.mark(10_000);
        assert!(!w.is_fresh(5), "older than the window counts as replayed");
        assert!(w.is_fresh(9_999));
        w.mark(9_999);
        assert!(!w.is_fresh(9_999));
        assert!(w.is_fresh(10_001));
    }

    #[test]
    fn cookies_bind_address_session_and_time() {
        let jar = CookieJar::new(&[3; 32]);
        let a: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:5001".parse().expect("addr");
        let c = jar.mint(a, 1, 100);
        assert!(jar.check(&c, a, 1, 105));
        assert!(!jar.check(&c, b, 1, 105));
        assert!(!jar.check(&c, a, 2, 105));
        assert!(!jar.check(&c, a, 1, 100 + COOKIE_LIFETIME_SECS + 1));
        let mut forged = c;
        forged[10] ^= 1;
        assert!(!jar.check(&forged, a, 1, 105));
    }

    /// Checks that `debug` names `type_name` and shows `secret` in none of the usual forms:
    /// as text, as hex, or as the list of byte values `{:?}` prints.
    fn assert_hides(debug: &str, type_name: &str, secret: &[u8]) {
        assert!(
            debug.contains(type_name),
            "{debug:?} does not name {type_name}"
        );
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let text = String::from_utf8_lossy(secret);
        let bytes = format!("{secret:?}");
        for shown in [&*text, &hex, bytes.trim_matches(|c| c == '[' || c == ']')] {
            assert!(
                !debug.contains(shown),
                "{debug:?} shows the secret as {shown:?}"
            );
        }
    }

    #[test]
    fn debug_output_of_secret_holders_names_the_type_and_never_shows_the_secret() {
        let words = "496-narrow-sentence-version";
        let pass = Passphrase::new(words);
        assert_hides(&format!("{pass:?}"), "Passphrase", words.as_bytes());
        assert_hides(
            &format!("{:?}", Pake::start(&pass)),
            "Pake",
            words.as_bytes(),
        );
        let (key, iv) = ([0xab; 32], [0xcd; 12]);
        let dir = DirectionKey::new(&key, iv);
        assert_hides(&format!("{dir:?}"), "DirectionKey", &key);
        assert_hides(&format!("{dir:?}"), "DirectionKey", &iv);
        let secret = [0xef; 32];
        assert_hides(
            &format!("{:?}", LoginTokens::new(&secret)),
            "LoginTokens",
            &secret,
        );
    }

    #[test]
    fn a_sealed_packet_with_an_empty_body_opens_and_anything_shorter_is_refused() {
        // A PING is a header and a tag, nothing between: the shortest sealed datagram.
        let key = DirectionKey::new(&[9; 32], [8; 12]);
        let mut ping = vec![1u8; HEADER_LEN];
        key.seal(3, &mut ping, 0);
        assert_eq!(ping.len(), HEADER_LEN + TAG_LEN);
        assert_eq!(key.open(3, &mut ping.clone()), Some(&[][..]));
        for len in 0..ping.len() {
            assert_eq!(key.open(3, &mut ping[..len].to_vec()), None, "{len} bytes");
        }
    }

    #[test]
    fn only_a_protection_with_keys_says_it_is_sealed() {
        assert!(!Protection::Plain.is_sealed());
        let keys = || DirectionKey::new(&[1; 32], [2; 12]);
        assert!(Protection::sealed(keys(), keys()).is_sealed());
    }

    #[test]
    fn a_sealed_end_reads_handshake_packets_in_clear_only() {
        let key = || DirectionKey::new(&[1; 32], [2; 12]);
        let mut end = Protection::sealed(key(), key());
        let h = Header {
            kind: kind::CONFIRM,
            session: 7,
            pn: 1,
        };
        let body = Body::Confirm {
            confirm: [3; CONFIRM_LEN],
            token: vec![4; 5],
        };
        let clear = wire::encode_vec(&h, &body);
        let mut copy = clear.clone();
        let (packet, sealed) = end.decode(&mut copy).expect("a clear CONFIRM");
        assert_eq!((packet.body, sealed), (body.clone(), false));
        // Damaged in transit, it is a checksum error, not a failed authentication.
        let mut damaged = clear.clone();
        damaged[HEADER_LEN] ^= 1;
        assert_eq!(
            end.decode(&mut damaged).map(|_| ()),
            Err(WireError::Checksum)
        );
        // Sealed under the session's keys, it is still read as clear, and so refused.
        let mut sealed_confirm = Vec::new();
        wire::encode_unsealed(&h, &body, &mut sealed_confirm);
        key().seal(h.pn, &mut sealed_confirm, 0);
        assert_eq!(
            end.decode(&mut sealed_confirm).map(|_| ()),
            Err(WireError::Checksum)
        );
    }

    #[test]
    fn a_cookie_is_accepted_through_its_last_second_and_refused_from_the_next() {
        let jar = CookieJar::new(&[3; 32]);
        let a: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let c = jar.mint(a, 1, 100);
        assert!(jar.check(&c, a, 1, 100), "fresh");
        assert!(
            jar.check(&c, a, 1, 100 + COOKIE_LIFETIME_SECS),
            "last second"
        );
        assert!(
            !jar.check(&c, a, 1, 100 + COOKIE_LIFETIME_SECS + 1),
            "expired"
        );
        assert!(!jar.check(&c, a, 1, 99), "from the future");
    }

    #[test]
    fn a_token_opens_through_its_last_second_and_not_from_the_next() {
        let mut tokens = LoginTokens::new(&[5; 32]);
        let a: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let t = tokens.mint(a, 9, 100, &[1; 32], &[2; 32]);
        assert!(tokens.open(&t, a, 9, 100).is_some(), "fresh");
        let last = 100 + TOKEN_LIFETIME_SECS;
        assert!(tokens.open(&t, a, 9, last).is_some(), "last second");
        assert!(tokens.open(&t, a, 9, last + 1).is_none(), "expired");
    }
}

/// `Protection::decode` itself: what a receiving end accepts, rejects, and how it says so.
#[cfg(test)]
mod decode {
    use super::*;

    const SESSION: u64 = 0x5e55;

    fn c2s() -> DirectionKey {
        DirectionKey::new(&[0x11; 32], [0x22; 12])
    }

    #[test]
    fn sealing_what_holds_no_whole_header_leaves_it_as_it_was() {
        // The packet may start past other data in the buffer: its header must fit after it.
        for (len, start) in [(0, 0), (HEADER_LEN - 1, 0), (HEADER_LEN + 3, 4), (10, 9)] {
            let mut out = vec![7u8; len];
            c2s().seal(1, &mut out, start);
            assert_eq!(out, vec![7u8; len], "len {len}, start {start}");
        }
        // A whole header gets a tag, and only the bytes after the header change.
        let mut out = vec![7u8; 4 + HEADER_LEN + 5];
        c2s().seal(1, &mut out, 4);
        assert_eq!(out.len(), 4 + HEADER_LEN + 5 + 16);
        assert_eq!(out[..4 + HEADER_LEN], vec![7u8; 4 + HEADER_LEN][..]);
        assert_ne!(out[4 + HEADER_LEN..4 + HEADER_LEN + 5], [7u8; 5]);
    }

    fn s2c() -> DirectionKey {
        DirectionKey::new(&[0x33; 32], [0x44; 12])
    }

    /// The sending end and the receiving end of one session.
    fn ends() -> (Protection, Protection) {
        (
            Protection::sealed(c2s(), s2c()),
            Protection::sealed(s2c(), c2s()),
        )
    }

    /// A sealed DATA packet numbered `pn` whose payload names it.
    fn data(p: &Protection, pn: u32) -> Vec<u8> {
        let h = Header {
            kind: kind::DATA,
            session: SESSION,
            pn,
        };
        let payload = pn.to_be_bytes();
        let body = Body::Data {
            chunk: pn,
            retransmit: false,
            payload: &payload,
        };
        let mut out = Vec::new();
        p.encode(&h, &body, &mut out);
        out
    }

    /// Decodes a copy of `d`: the packet number and chunk of a sealed DATA, or the error.
    fn open(r: &mut Protection, d: &[u8]) -> Result<u32, WireError> {
        let mut d = d.to_vec();
        let (packet, sealed) = r.decode(&mut d)?;
        assert!(sealed, "a sealed session took a DATA in clear");
        match packet.body {
            Body::Data { chunk, payload, .. } => {
                assert_eq!(chunk, packet.header.pn);
                assert_eq!(payload, packet.header.pn.to_be_bytes());
                Ok(chunk)
            }
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn a_fresh_number_is_accepted_and_the_same_number_again_is_a_replay() {
        let (s, mut r) = ends();
        let d0 = data(&s, 0);
        assert_eq!(open(&mut r, &d0), Ok(0));
        assert_eq!(open(&mut r, &d0), Err(WireError::Replayed));
        assert_eq!(
            open(&mut r, &d0),
            Err(WireError::Replayed),
            "and every time after"
        );
        let d1 = data(&s, 1);
        assert_eq!(open(&mut r, &d1), Ok(1));
        assert_eq!(open(&mut r, &d1), Err(WireError::Replayed));
        assert_eq!(open(&mut r, &d0), Err(WireError::Replayed));
    }

    #[test]
    fn out_of_order_numbers_within_the_window_are_accepted_once() {
        let (s, mut r) = ends();
        assert_eq!(open(&mut r, &data(&s, 100)), Ok(100));
        for pn in [50, 99, 7, 60, 0] {
            assert_eq!(open(&mut r, &data(&s, pn)), Ok(pn), "late {pn}");
            assert_eq!(
                open(&mut r, &data(&s, pn)),
                Err(WireError::Replayed),
                "late {pn} again"
            );
        }
        assert_eq!(open(&mut r, &data(&s, 101)), Ok(101));
        assert_eq!(open(&mut r, &data(&s, 98)), Ok(98));
    }

    #[test]
    fn numbers_older_than_the_window_are_rejected_as_replays() {
        let (s, mut r) = ends();
        let top = 5000;
        assert_eq!(open(&mut r, &data(&s, top)), Ok(top));
        // `top - REPLAY_WINDOW` is just out of the window, the one after it just in.
        let oldest = top - REPLAY_WINDOW;
        assert_eq!(open(&mut r, &data(&s, oldest)), Err(WireError::Replayed));
        assert_eq!(open(&mut r, &data(&s, 0)), Err(WireError::Replayed));
        assert_eq!(open(&mut r, &data(&s, oldest + 1)), Ok(oldest + 1));
        assert_eq!(
            open(&mut r, &data(&s, oldest + 1)),
            Err(WireError::Replayed)
        );
    }

    #[test]
    fn the_window_slides_forgetting_only_what_it_leaves_behind() {
        let (s, mut r) = ends();
        for pn in 0..10 {
            assert_eq!(open(&mut r, &data(&s, pn)), Ok(pn));
        }
        // 4100 shares its slot with 4, and 4096..4099 with 0..3: sliding must clear those
        // slots, or new numbers would pass for replays of old ones.
        assert_eq!(open(&mut r, &data(&s, 4100)), Ok(4100));
        for pn in 4096..4100 {
            assert_eq!(open(&mut r, &data(&s, pn)), Ok(pn), "{pn} after the slide");
        }
        for pn in 0..=4 {
            assert_eq!(
                open(&mut r, &data(&s, pn)),
                Err(WireError::Replayed),
                "{pn} fell out of the window"
            );
        }
        // Still in the window and seen before: replays. Never seen: accepted once.
        for pn in 5..10 {
            assert_eq!(
                open(&mut r, &data(&s, pn)),
                Err(WireError::Replayed),
                "{pn}"
            );
        }
        assert_eq!(open(&mut r, &data(&s, 10)), Ok(10));
        assert_eq!(open(&mut r, &data(&s, 10)), Err(WireError::Replayed));
        // A jump past the whole window forgets everything before it.
        let far = 1_000_000;
        assert_eq!(open(&mut r, &data(&s, far)), Ok(far));
        assert_eq!(open(&mut r, &data(&s, 4100)), Err(WireError::Replayed));
        for pn in [far - 1, far - 64, far - REPLAY_WINDOW + 1] {
            assert_eq!(open(&mut r, &data(&s, pn)), Ok(pn), "{pn} after the jump");
        }
        assert_eq!(open(&mut r, &data(&s, far)), Err(WireError::Replayed));
    }

    #[test]
    fn a_replay_is_dropped_before_decryption() {
        let (s, mut r) = ends();
        assert_eq!(open(&mut r, &data(&s, 3)), Ok(3));
        // Any bytes under an accepted number are a replay, authentic or not.
        let mut junk = data(&s, 3);
        let last = junk.len() - 1;
        junk[last] ^= 1;
        assert_eq!(open(&mut r, &junk), Err(WireError::Replayed));
    }

    #[test]
    fn tampered_ciphertext_header_or_tag_is_rejected_and_burns_no_number() {
        let (s, mut r) = ends();
        let good = data(&s, 7);
        let tag_at = good.len() - TAG_LEN;
        // A body byte (ciphertext), a tag byte, and each header byte (the AAD): the version,
        // the type (DATA as DATA_RETX), the session id, the packet number.
        let mut spots = vec![HEADER_LEN, HEADER_LEN + 5, tag_at, good.len() - 1];
        spots.extend(1..HEADER_LEN);
        for i in spots {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let got = open(&mut r, &bad);
            assert!(
                matches!(got, Err(WireError::Unauthentic)),
                "byte {i} flipped: {got:?}"
            );
        }
        let mut version = good.clone();
        version[0] ^= 0x01;
        assert_eq!(open(&mut r, &version), Err(WireError::Version(0)));
        // Cut short, or cut to less than a tag.
        assert_eq!(
            open(&mut r, &good[..good.len() - 1]),
            Err(WireError::Unauthentic)
        );
        assert_eq!(
            open(&mut r, &good[..HEADER_LEN + 3]),
            Err(WireError::Unauthentic)
        );
        // None of that spent number 7 (nor 6, 8, ... that a flipped number named).
        assert_eq!(open(&mut r, &good), Ok(7));
        for pn in [6, 8, 7 ^ (1 << 8), 7 ^ (1 << 16), 7 ^ (1 << 24)] {
            assert_eq!(open(&mut r, &data(&s, pn)), Ok(pn), "{pn}");
        }
    }

    #[test]
    fn the_wrong_key_a_reflection_or_a_clear_packet_is_rejected() {
        let (s, mut r) = ends();
        // Another session's keys.
        let other = Protection::sealed(
            DirectionKey::new(&[0x55; 32], [0x22; 12]),
            DirectionKey::new(&[0x33; 32], [0x44; 12]),
        );
        assert_eq!(open(&mut r, &data(&other, 1)), Err(WireError::Unauthentic));
        // The right key with another IV (nonce).
        let other_iv = Protection::sealed(DirectionKey::new(&[0x11; 32], [0x23; 12]), s2c());
        assert_eq!(
            open(&mut r, &data(&other_iv, 1)),
            Err(WireError::Unauthentic)
        );
        // The receiving end's own datagram sent back to it: sealed for the other direction.
        let reflected = data(&r, 1);
        assert_eq!(open(&mut r, &reflected), Err(WireError::Unauthentic));
        // A DATA in clear (valid CRC) to a sealed end.
        let h = Header {
            kind: kind::DATA,
            session: SESSION,
            pn: 1,
        };
        let body = Body::Data {
            chunk: 1,
            retransmit: false,
            payload: &[0, 0, 0, 1],
        };
        let clear = wire::encode_vec(&h, &body);
        assert_eq!(open(&mut r, &clear), Err(WireError::Unauthentic));
        // None of it burnt number 1.
        assert_eq!(open(&mut r, &data(&s, 1)), Ok(1));
    }
}

#[cfg(test)]
mod vectors {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    const SESSION: u64 = 0x0102_0304_0506_0708;

    /// Test vectors printed in docs/PROTOCOL.md (checked independently with Python's
    /// `cryptography` and `hmac` modules).
    #[test]
    fn sealed_packet_vectors() {
        let p = Protection::sealed(
            DirectionKey::new(&[0x11; 32], [0x22; 12]),
            DirectionKey::new(&[0x11; 32], [0x22; 12]),
        );
        let mut out = Vec::new();
        let h = Header {
            kind: kind::PING,
            session: SESSION,
            pn: 1,
        };
        p.encode(&h, &Body::Ping, &mut out);
        assert_eq!(
            hex(&out),
            "0108010203040506070800000001a3984c051aea645ddbed73a6109fc563"
        );
        out.clear();
        let h = Header {
            kind: kind::ACCEPT,
            session: SESSION,
            pn: 2,
        };
        let accept = Body::Accept {
            offer_pn: 7,
            confirm: [0x33; wire::CONFIRM_LEN],
        };
        p.encode(&h, &accept, &mut out);
        assert_eq!(
            hex(&out),
            "0102010203040506070800000002ddc0108f605d4a1e6dbb80e45fea3d3f4c6db170ef66b07a8c28dd9395f16d2a200e5bfb2f5e646f8c5828a25f33c685156379b7"
        );
    }

    /// The login token vector in docs/PROTOCOL.md (also checked with Python's
    /// `cryptography`).
    #[test]
    fn login_token_vector() {
        let mut tokens = LoginTokens::new(&[0x77; 32]);
        let peer: SocketAddr = "192.0.2.1:7878".parse().expect("addr");
        let t = tokens.mint(peer, SESSION, 100, &[0x33; 32], &[0x66; 32]);
        assert_eq!(
            hex(&t),
            "000000640000000000000000db78bdcd798bf05d192e657ced046236754762a71e30259ecbe9a37ec99de0746c0d6d49e919dcabef5fab2a1b73e7dc588e28f55879c769eee8eded441920d5ad1d2ec1d056d91d99dcbd95683d6663"
        );
        let c = tokens.open(&t, peer, SESSION, 105).expect("opens");
        assert_eq!((c.pake_key, c.transcript), ([0x33; 32], [0x66; 32]));
    }

    #[test]
    fn key_schedule_vectors() {
        let keys = SessionKeys::derive(&[0x33; 32], SESSION, &[0x44; 33], &[0x55; 33]);
        assert_eq!(
            hex(&keys.server_confirm()),
            "9b8acec6a65fb4bf76fe40e586a24880e4e51b70f5ad83820d6ea1865ac83d4d"
        );
        let key: [u8; 32] =
            unhex("8b59cabbe2438da82599042bb64baac3df7eadd741a5897216b4c6b51d97f013")
                .try_into()
                .expect("32 bytes");
        let iv: [u8; 12] = unhex("f6346d906bc511cca90b64b7")
            .try_into()
            .expect("12 bytes");
        let expected = DirectionKey::new(&key, iv);
        let h = Header {
            kind: kind::PING,
            session: SESSION,
            pn: 0,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        wire::encode_unsealed(&h, &Body::Ping, &mut a);
        wire::encode_unsealed(&h, &Body::Ping, &mut b);
        keys.client_to_server.seal(0, &mut a, 0);
        expected.seal(0, &mut b, 0);
        assert_eq!(a, b, "c2s key and IV differ from the documented derivation");
    }
}
