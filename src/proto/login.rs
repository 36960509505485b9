//! Who may log in to a receiver, and at what cost to everyone else.
//!
//! The receiver keeps no state for a login until the sender proves it receives our replies:
//! HELLO_REPLY hands out a sealed token holding the receiver's half of the key exchange, and
//! only a CONFIRM that echoes it is looked at (return routability). So nobody can fill a table
//! of half-open logins, and a blind attacker with a forged source address cannot make a
//! failed login count against someone else's address.
//!
//! What remains to budget is the key-exchange work: each address (an IPv4 address, or an IPv6
//! /64) may have a few HELLO_REPLYs outstanding, each released when its sender confirms or
//! after [`LoginConfig::hold`]; when many are outstanding in all, senders must first return a
//! stateless cookie. HELLOs that returned a cookie have a budget apart from those that did
//! not, so forged HELLOs in someone's name cannot use up that someone's budget. Addresses whose confirmations keep failing wait before they are
//! answered again, doubling up to [`MAX_THROTTLE`].

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::crypto::{
    self, COOKIE_LEN, CookieJar, LoginTokens, PAKE_MSG_LEN, Pake, Passphrase, Protection,
    SessionKeys, TOKEN_LEN, TOKEN_LIFETIME_SECS,
};

/// Failed logins count within this window against [`LoginConfig::max_failures`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Longest an address is made to wait after failed logins.
pub const MAX_THROTTLE: Duration = Duration::from_secs(600);
/// An address's failures are forgotten after this long without a new one.
const FAILURE_MEMORY: Duration = Duration::from_secs(900);
/// Addresses tracked at most with outstanding handshakes.
const MAX_ADDRESSES: usize = 4096;
/// Addresses whose failures are remembered, at most (about 5 MiB).
const MAX_FAILURE_RECORDS: usize = 65_536;
/// Confirmed logins waiting for their offer, at most.
const MAX_LOGINS: usize = 1024;
/// Logins remembered so a replayed CONFIRM cannot start a session twice, at most.
const MAX_SPENT: usize = 8192;
/// How long a token, and so a confirmed login without an offer, stays usable.
const TOKEN_LIFETIME: Duration = Duration::from_secs(TOKEN_LIFETIME_SECS as u64 + 1);

/// Knobs of the login desk (from [`super::receiver::ReceiverConfig`]).
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// HELLO_REPLYs one address may have outstanding (not confirmed, not expired).
    pub max_handshakes: usize,
    /// Outstanding HELLO_REPLYs in all past which a HELLO must carry a cookie.
    pub cookie_threshold: usize,
    /// An outstanding HELLO_REPLY is released after this long without a CONFIRM.
    pub hold: Duration,
    /// Failed logins one address may make within [`FAILURE_WINDOW`] before it must wait.
    pub max_failures: u32,
}

/// The address a budget is kept for: IPv4 addresses as they are, IPv6 by /64 (one host
/// usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
pub fn budget_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// What to do with a HELLO.
#[derive(Debug)]
pub enum HelloVerdict {
    /// Answer with HELLO_REPLY.
    Reply {
        /// The receiver's SPAKE2 message.
        pake: [u8; PAKE_MSG_LEN],
        /// The login token to echo.
        token: [u8; TOKEN_LEN],
    },
    /// Busy: the sender must first prove its address by returning this cookie.
    Retry([u8; COOKIE_LEN]),
    /// This address failed too often; it may try again after the wait.
    Throttled(Duration),
    /// This address has too many handshakes outstanding: dropped without work.
    OverBudget,
    /// The SPAKE2 message was malformed.
    Malformed,
}

/// What a CONFIRM established.
#[derive(Debug)]
pub enum ConfirmVerdict {
    /// Logged in: seal with this protection, answer with this confirmation.
    LoggedIn(Box<Login>),
    /// The token is not one of ours for this address (or expired): not even a failed attempt.
    BadToken,
    /// This login was already used.
    Replayed,
    /// The sender's confirmation did not verify: a failed login, counted for its address
    /// the first time for this token.
    Failed {
        /// False for a repeat of a CONFIRM already counted.
        counted: bool,
    },
    /// Too many logins waiting for their offers.
    Busy,
    /// The address failed too often meanwhile: the guess is not even looked at.
    Throttled(Duration),
}

/// A confirmed login, until its offer arrives.
#[derive(Debug)]
pub struct Login {
    /// Seals what the receiver sends, opens what the sender sends.
    pub protection: Protection,
    /// The receiver's key confirmation, carried in ACCEPT.
    pub confirm: [u8; crypto::CONFIRM_LEN],
    /// The receiver's next packet number in this session.
    pub next_pn: u32,
    expires: Instant,
}

impl Login {
    /// Takes the next packet number to send under.
    pub fn take_pn(&mut self) -> u32 {
        let pn = self.next_pn;
        self.next_pn = self.next_pn.wrapping_add(1);
        pn
    }
}

#[derive(Debug)]
struct Failures {
    count: u32,
    window_start: Instant,
    strikes: u32,
    blocked_until: Option<Instant>,
    last: Instant,
}

/// A login that was tried with a valid token, remembered while the token could be reused.
#[derive(Debug, Clone, Copy)]
struct Spent {
    expires: Instant,
    logged_in: bool,
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    session: u64,
    expires: Instant,
    /// The HELLO carried a valid cookie: its address is proven, so giving up on the reply
    /// may count against it.
    proven: bool,
}

/// Counters the desk keeps; the receiver reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeskStats {
    /// Outstanding handshakes that expired from a proven address, counted as failures.
    pub abandoned: u64,
}

/// Admits logins: tokens, budgets, throttling, replay protection.
#[derive(Debug)]
pub struct LoginDesk {
    config: LoginConfig,
    cookies: CookieJar,
    tokens: LoginTokens,
    outstanding: HashMap<IpAddr, VecDeque<Outstanding>>,
    failures: HashMap<IpAddr, Failures>,
    logins: HashMap<super::receiver::SessionKey, Login>,
    spent: HashMap<super::receiver::SessionKey, Spent>,
    /// Failures counted when proven handshakes were abandoned.
    pub stats: DeskStats,
}

type Key = super::receiver::SessionKey;

impl LoginDesk {
    /// A desk whose cookies and tokens are keyed from `secret`.
    pub fn new(config: LoginConfig, secret: &[u8; 32]) -> Self {
        Self {
            config,
            cookies: CookieJar::new(secret),
            tokens: LoginTokens::new(secret),
            outstanding: HashMap::new(),
            failures: HashMap::new(),
            logins: HashMap::new(),
            spent: HashMap::new(),
            stats: DeskStats::default(),
        }
    }

    /// Failures counted for abandoned handshakes since the last call.
    pub fn take_abandoned(&mut self) -> u64 {
        std::mem::take(&mut self.stats.abandoned)
    }

    /// Handshakes answered and neither confirmed nor expired, in all.
    pub fn outstanding(&self) -> usize {
        self.outstanding.values().map(VecDeque::len).sum()
    }

    /// True if this session logged in and its offer has not arrived yet.
    pub fn has_login(&self, key: &Key) -> bool {
        self.logins.contains_key(key)
    }

    /// The login of `key`, for its offer.
    pub fn login_mut(&mut self, key: &Key) -> Option<&mut Login> {
        self.logins.get_mut(key)
    }

    /// Takes the login of `key` once its offer was accepted.
    pub fn take_login(&mut self, key: &Key) -> Option<Login> {
        self.logins.remove(key)
    }

    /// Decides on a HELLO carrying `pake` and `cookie`, sent at `now_secs` of our clock.
    pub fn hello(
        &mut self,
        now: Instant,
        now_secs: u32,
        key: Key,
        pass: &Passphrase,
        pake: &[u8; PAKE_MSG_LEN],
        cookie: &[u8],
    ) -> HelloVerdict {
        let ip = budget_key(key.peer.ip());
        // First what expired: a reply this address never confirmed may block it now.
        self.release_expired(ip, now);
        if let Some(wait) = self.throttled(ip, now) {
            return HelloVerdict::Throttled(wait);
        }
        let proven = self.cookies.check(cookie, key.peer, key.session, now_secs);
        if !proven && self.outstanding() >= self.config.cookie_threshold {
            return HelloVerdict::Retry(self.cookies.mint(key.peer, key.session, now_secs));
        }
        let full = self.outstanding.len() >= MAX_ADDRESSES && !self.outstanding.contains_key(&ip);
        let held = self
            .outstanding
            .get(&ip)
            .map_or(0, |q| q.iter().filter(|o| o.proven == proven).count());
        if full || held >= self.config.max_handshakes {
            if proven {
                return HelloVerdict::OverBudget;
            }
            // Someone may be filling this address's budget with forged HELLOs: the real
            // owner of the address returns the cookie and gets a budget of its own.
            return HelloVerdict::Retry(self.cookies.mint(key.peer, key.session, now_secs));
        }
        // The slot is taken before the work is done, so a HELLO whose SPAKE2 message turns
        // out malformed still costs its address (and the count in all) what a good one does.
        self.outstanding
            .entry(ip)
            .or_default()
            .push_back(Outstanding {
                session: key.session,
                expires: now + self.config.hold,
                proven,
            });
        let server = Pake::start(pass);
        let server_msg = server.message();
        let Some(pake_key) = server.finish_key(pake) else {
            return HelloVerdict::Malformed;
        };
        let transcript = crypto::transcript(key.session, pake, &server_msg);
        let token = self
            .tokens
            .mint(key.peer, key.session, now_secs, &pake_key, &transcript);
        HelloVerdict::Reply {
            pake: server_msg,
            token,
        }
    }

    /// Decides on a CONFIRM carrying `confirm` and `token`.
    pub fn confirm(
        &mut self,
        now: Instant,
        now_secs: u32,
        key: Key,
        confirm: &[u8; crypto::CONFIRM_LEN],
        token: &[u8],
    ) -> ConfirmVerdict {
        let Some(content) = self.tokens.open(token, key.peer, key.session, now_secs) else {
            return ConfirmVerdict::BadToken;
        };
        let failed_before = match self.spent.get(&key) {
            Some(s) if s.logged_in => return ConfirmVerdict::Replayed,
            Some(_) => true,
            None => false,
        };
        let ip = budget_key(key.peer.ip());
        if let Some(q) = self.outstanding.get_mut(&ip) {
            // This session's reply is answered (a repeated HELLO may have left several).
            q.retain(|o| o.session != key.session);
            if q.is_empty() {
                self.outstanding.remove(&ip);
            }
        }
        if let Some(wait) = self.throttled(ip, now) {
            // Replies handed out before the address was throttled do not buy more guesses.
            return ConfirmVerdict::Throttled(wait);
        }
        let keys = SessionKeys::from_transcript(&content.pake_key, &content.transcript);
        self.expire(now);
        if self.logins.len() >= MAX_LOGINS || self.spent.len() >= MAX_SPENT {
            return ConfirmVerdict::Busy;
        }
        let expires = now + TOKEN_LIFETIME;
        if !keys.verify_client(confirm) {
            // One guess per token, however often its CONFIRM is repeated; the token is not
            // spent, so the honest sender's own CONFIRM still gets through after a junk one
            // from someone who copied the token off the wire.
            if !failed_before {
                self.record_failure(ip, now);
                self.spent.insert(
                    key,
                    Spent {
                        expires,
                        logged_in: false,
                    },
                );
            }
            return ConfirmVerdict::Failed {
                counted: !failed_before,
            };
        }
        self.spent.insert(
            key,
            Spent {
                expires,
                logged_in: true,
            },
        );
        let login = Login {
            confirm: keys.server_confirm(),
            protection: Protection::sealed(keys.server_to_client, keys.client_to_server),
            next_pn: 0,
            expires: now + TOKEN_LIFETIME,
        };
        ConfirmVerdict::LoggedIn(Box::new(login))
    }

    /// Keeps a confirmed login until its offer arrives (or it expires).
    pub fn keep_login(&mut self, key: Key, login: Login) {
        self.logins.insert(key, login);
    }

    /// How long `ip` must still wait, if it is throttled.
    pub fn throttled(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.failures.get(&budget_key(ip))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failed login for `ip`; past the limit it waits 1 s, doubling per further
    /// failure up to [`MAX_THROTTLE`], and the doubling is remembered for
    /// `FAILURE_MEMORY` after the last failure.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let ip = budget_key(ip);
        if self.failures.len() >= MAX_FAILURE_RECORDS && !self.failures.contains_key(&ip) {
            // Forget an address that is not waiting, the longest quiet first; failing that,
            // the one whose wait ends soonest. A newcomer is always remembered.
            let evict = self
                .failures
                .iter()
                .min_by_key(|(_, f)| {
                    (
                        f.blocked_until.is_some_and(|t| t > now),
                        f.blocked_until,
                        f.last,
                    )
                })
                .map(|(ip, _)| *ip);
            if let Some(o) = evict {
                self.failures.remove(&o);
            }
        }
        let f = self.failures.entry(ip).or_insert(Failures {
            count: 0,
            window_start: now,
            strikes: 0,
            blocked_until: None,
            last: now,
        });
        if now.saturating_duration_since(f.window_start) > FAILURE_WINDOW {
            f.count = 0;
            f.window_start = now;
        }
        f.count += 1;
        f.last = now;
        // Past the limit once, every further failure waits: no fresh allowance each minute.
        if f.count >= self.config.max_failures || f.strikes > 0 {
            let wait = Duration::from_secs(1 << f.strikes.min(10)).min(MAX_THROTTLE);
            f.strikes += 1;
            f.blocked_until = Some(now + wait);
        }
    }

    fn release_expired(&mut self, ip: IpAddr, now: Instant) {
        let Some(q) = self.outstanding.get_mut(&ip) else {
            return;
        };
        let mut abandoned = 0;
        while q.front().is_some_and(|o| o.expires <= now) {
            if q.pop_front().is_some_and(|o| o.proven) {
                abandoned += 1;
            }
        }
        if q.is_empty() {
            self.outstanding.remove(&ip);
        }
        for _ in 0..abandoned {
            // A proven address that took our reply and never confirmed: a failed attempt,
            // unless it is waiting already (its CONFIRM would not have been looked at).
            if self.throttled(ip, now).is_none() {
                self.stats.abandoned += 1;
                self.record_failure(ip, now);
            }
        }
    }

    /// Earliest instant at which [`LoginDesk::expire`] has work to do.
    pub fn next_expiry(&self) -> Option<Instant> {
        let outstanding = self
            .outstanding
            .values()
            .filter_map(|q| q.front().map(|o| o.expires));
        let logins = self.logins.values().map(|l| l.expires);
        outstanding.chain(logins).min()
    }

    /// Forgets what has expired: outstanding handshakes, unused logins, spent tokens, old
    /// failures.
    pub fn expire(&mut self, now: Instant) {
        let ips: Vec<IpAddr> = self
            .outstanding
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|o| o.expires <= now))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in ips {
            self.release_expired(ip, now);
        }
        self.logins.retain(|_, l| l.expires > now);
        self.spent.retain(|_, s| s.expires > now);
        self.failures.retain(|_, f| {
            now.saturating_duration_since(f.last) <= FAILURE_MEMORY
                || f.blocked_until.is_some_and(|t| t > now)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk(max_failures: u32) -> LoginDesk {
        LoginDesk::new(
            LoginConfig {
                max_handshakes: 2,
                cookie_threshold: 4,
                hold: Duration::from_secs(2),
                max_failures,
            },
            &[1; 32],
        )
    }

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn key(ip: IpAddr, session: u64) -> Key {
        Key {
            peer: std::net::SocketAddr::new(ip, 4000),
            session,
        }
    }

    /// A token as HELLO_REPLY would carry it for `key`, and the sender's correct key
    /// confirmation for it (no SPAKE2 run: the token holds what the exchange would give).
    fn token_for(d: &mut LoginDesk, key: Key, now_secs: u32) -> (Vec<u8>, [u8; 32]) {
        let pake_key = [key.session as u8; 32];
        let transcript = crypto::transcript(key.session, &[1; PAKE_MSG_LEN], &[2; PAKE_MSG_LEN]);
        let token = d
            .tokens
            .mint(key.peer, key.session, now_secs, &pake_key, &transcript);
        let keys = SessionKeys::from_transcript(&pake_key, &transcript);
        (token.to_vec(), keys.client_confirm())
    }

    #[test]
    fn failure_records_stop_at_their_cap_forgetting_the_longest_quiet_first() {
        assert_eq!(
            MAX_FAILURE_RECORDS, 65_536,
            "docs/PROTOCOL.md, Failed logins"
        );
        let mut d = desk(5);
        let t0 = Instant::now();
        let at = |n: u32| t0 + Duration::from_micros(u64::from(n));
        // The four quietest addresses are made to wait (five failures each): kept anyway.
        for n in 0..4 {
            for _ in 0..5 {
                d.record_failure(v4(n), at(n));
            }
        }
        // Every other address failed once, address n at t0 + n µs.
        for n in 4..MAX_FAILURE_RECORDS as u32 {
            d.record_failure(v4(n), at(n));
        }
        assert_eq!(d.failures.len(), MAX_FAILURE_RECORDS);
        let now = at(MAX_FAILURE_RECORDS as u32);
        for k in 0..20 {
            let newcomer = v4(1_000_000 + k);
            d.record_failure(newcomer, now);
            assert_eq!(d.failures.len(), MAX_FAILURE_RECORDS, "newcomer {k}");
            assert!(
                d.failures.contains_key(&newcomer),
                "a newcomer is remembered"
            );
        }
        // Forgotten: the 20 longest quiet that were not waiting, and no one else.
        for n in 4..24 {
            assert!(!d.failures.contains_key(&v4(n)), "{n} should be forgotten");
        }
        assert!(d.failures.contains_key(&v4(24)));
        for n in 0..4 {
            assert!(d.throttled(v4(n), now).is_some(), "{n} still waits");
        }
        // A known address failing again takes no one's place.
        d.record_failure(v4(30_000), now);
        assert_eq!(d.failures.len(), MAX_FAILURE_RECORDS);
        assert!(d.failures.contains_key(&v4(24)));
    }

    #[test]
    fn confirmed_logins_stop_at_their_cap_and_free_a_place_when_taken_or_expired() {
        assert_eq!(MAX_LOGINS, 1024);
        let mut d = desk(5);
        let now = Instant::now();
        let ip = v4(1);
        for s in 0..MAX_LOGINS as u64 {
            let k = key(ip, s);
            let (token, confirm) = token_for(&mut d, k, 0);
            match d.confirm(now, 0, k, &confirm, &token) {
                ConfirmVerdict::LoggedIn(login) => d.keep_login(k, *login),
                other => panic!("login {s}: {other:?}"),
            }
        }
        assert_eq!(d.logins.len(), MAX_LOGINS);
        // Past the cap a good confirmation is refused as busy, and nothing is kept for it.
        for s in 0..10 {
            let k = key(ip, 5000 + s);
            let (token, confirm) = token_for(&mut d, k, 0);
            assert!(matches!(
                d.confirm(now, 0, k, &confirm, &token),
                ConfirmVerdict::Busy
            ));
            assert!(!d.has_login(&k));
        }
        assert_eq!(d.logins.len(), MAX_LOGINS);
        assert_eq!(d.spent.len(), MAX_LOGINS, "a busy refusal spends no token");
        // One offer arrives: its place goes to the next login.
        assert!(d.take_login(&key(ip, 0)).is_some());
        let k = key(ip, 6000);
        let (token, confirm) = token_for(&mut d, k, 0);
        match d.confirm(now, 0, k, &confirm, &token) {
            ConfirmVerdict::LoggedIn(login) => d.keep_login(k, *login),
            other => panic!("after one was taken: {other:?}"),
        }
        assert_eq!(d.logins.len(), MAX_LOGINS);
        // Unused logins expire with their token, and take their places with them.
        let later = now + TOKEN_LIFETIME + Duration::from_secs(1);
        d.expire(later);
        assert_eq!((d.logins.len(), d.spent.len()), (0, 0));
    }

    #[test]
    fn spent_tokens_stop_at_their_cap_and_then_every_login_waits() {
        assert_eq!(MAX_SPENT, 8192);
        let mut d = desk(5);
        let now = Instant::now();
        // Each address fails once, under the failure limit: only the spent table fills.
        for n in 0..MAX_SPENT as u32 {
            let k = key(v4(n), u64::from(n));
            let (token, _) = token_for(&mut d, k, 0);
            assert!(matches!(
                d.confirm(now, 0, k, &[0; 32], &token),
                ConfirmVerdict::Failed { counted: true }
            ));
        }
        assert_eq!(d.spent.len(), MAX_SPENT);
        assert_eq!(d.failures.len(), MAX_SPENT);
        // Full: a good login is refused as busy (and a bad one is not even counted).
        let k = key(v4(100_000), 1);
        let (token, confirm) = token_for(&mut d, k, 0);
        assert!(matches!(
            d.confirm(now, 0, k, &confirm, &token),
            ConfirmVerdict::Busy
        ));
        let bad = key(v4(100_001), 2);
        let (bad_token, _) = token_for(&mut d, bad, 0);
        assert!(matches!(
            d.confirm(now, 0, bad, &[0; 32], &bad_token),
            ConfirmVerdict::Busy
        ));
        assert_eq!(d.spent.len(), MAX_SPENT);
        assert!(!d.failures.contains_key(&v4(100_001)));
        assert!(d.logins.is_empty());
        // A repeat of a failed login is answered busy too, and not counted again.
        let k0 = key(v4(0), 0);
        let (token0, _) = token_for(&mut d, k0, 0);
        assert!(matches!(
            d.confirm(now, 0, k0, &[0; 32], &token0),
            ConfirmVerdict::Busy
        ));
        assert_eq!(d.failures[&v4(0)].count, 1);
        // Once the tokens have expired, logins go through again.
        let later = now + TOKEN_LIFETIME + Duration::from_secs(1);
        let later_secs = later.duration_since(now).as_secs() as u32;
        let (token, confirm) = token_for(&mut d, k, later_secs);
        assert!(matches!(
            d.confirm(later, later_secs, k, &confirm, &token),
            ConfirmVerdict::LoggedIn(_)
        ));
        assert_eq!(d.spent.len(), 1);
    }

    #[test]
    fn ipv6_hosts_share_a_budget_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(budget_key(a), budget_key(b));
        assert_ne!(budget_key(a), budget_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(
            budget_key(mapped),
            "10.0.0.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn throttle_doubles_and_is_remembered_past_the_window() {
        let mut d = desk(2);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        d.record_failure(ip, t0);
        assert!(d.throttled(ip, t0).is_none(), "one failure is forgiven");
        d.record_failure(ip, t0);
        assert_eq!(d.throttled(ip, t0), Some(Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(2);
        d.record_failure(ip, t1);
        assert_eq!(d.throttled(ip, t1), Some(Duration::from_secs(2)));
        // Well past the one-minute window the doubling goes on, with no fresh allowance.
        let t2 = t1 + Duration::from_secs(120);
        d.expire(t2);
        d.record_failure(ip, t2);
        assert_eq!(d.throttled(ip, t2), Some(Duration::from_secs(4)));
        // Quiet for long enough, the address starts afresh.
        let t3 = t2 + Duration::from_secs(1000);
        d.expire(t3);
        d.record_failure(ip, t3);
        assert!(d.throttled(ip, t3).is_none());
        for i in 0..20 {
            d.record_failure(ip, t3 + Duration::from_secs(i));
        }
        assert_eq!(
            d.throttled(ip, t3 + Duration::from_secs(19)),
            Some(MAX_THROTTLE)
        );
    }

    #[test]
    fn every_packet_a_login_sends_has_a_fresh_number() {
        let mut d = desk(5);
        let k = key(v4(1), 3);
        let (token, confirm) = token_for(&mut d, k, 0);
        let ConfirmVerdict::LoggedIn(mut login) = d.confirm(Instant::now(), 0, k, &confirm, &token)
        else {
            panic!("a good confirmation logs in");
        };
        let pns: Vec<u32> = (0..3).map(|_| login.take_pn()).collect();
        assert_eq!(pns, [0, 1, 2]);
        assert_eq!(login.next_pn, 3, "the session goes on from the next one");
    }

    #[test]
    fn a_replayed_confirm_is_refused_for_as_long_as_its_token_opens() {
        let mut d = desk(5);
        // The receiver's clock in seconds starts at `epoch`; the token is issued in second 0.
        let epoch = Instant::now();
        let k = key(v4(1), 3);
        let (token, confirm) = token_for(&mut d, k, 0);
        assert!(matches!(
            d.confirm(epoch, 0, k, &confirm, &token),
            ConfirmVerdict::LoggedIn(_)
        ));
        // The last instant of second TOKEN_LIFETIME_SECS: the token still opens, so the
        // login must still be remembered, whatever was forgotten meanwhile.
        let last = epoch + Duration::from_secs(u64::from(TOKEN_LIFETIME_SECS) + 1)
            - Duration::from_millis(1);
        d.expire(last);
        assert!(matches!(
            d.confirm(last, TOKEN_LIFETIME_SECS, k, &confirm, &token),
            ConfirmVerdict::Replayed
        ));
        // From the next second on, the token is refused by itself.
        let next = TOKEN_LIFETIME_SECS + 1;
        assert!(matches!(
            d.confirm(last, next, k, &confirm, &token),
            ConfirmVerdict::BadToken
        ));
    }

    #[test]
    fn an_abandoned_proven_handshake_is_reported_once() {
        let mut d = desk(5);
        let t0 = Instant::now();
        let pass = Passphrase::new("pw");
        let pake = Pake::start(&pass).message();
        // One HELLO with a valid cookie, one without: only the proven address is counted.
        let proven = key(v4(1), 1);
        let cookie = d.cookies.mint(proven.peer, proven.session, 0);
        let unproven = key(v4(2), 2);
        for (k, cookie) in [(proven, &cookie[..]), (unproven, &[][..])] {
            assert!(matches!(
                d.hello(t0, 0, k, &pass, &pake, cookie),
                HelloVerdict::Reply { .. }
            ));
        }
        assert_eq!(d.take_abandoned(), 0, "nothing abandoned yet");
        d.expire(t0 + d.config.hold);
        assert_eq!(d.take_abandoned(), 1);
        assert_eq!(d.take_abandoned(), 0, "taken, so not reported again");
    }
}
