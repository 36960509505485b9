//! The sans-IO protocol core: no sockets, no clocks, no async. Every input carries `now`;
//! outputs are polled. The engine (or a test's virtual network) moves the datagrams.
//!
//! The contract for both state machines, [`sender::Sender`] and [`receiver::Receiver`]:
//! 1. feed each arriving datagram with `handle(now, ..)`;
//! 2. when `poll_timeout()` passes, call `handle_timeout(now)`;
//! 3. after either, drain `poll_transmit(now, ..)` until it returns nothing, then `poll_event()`;
//! 4. sleep until `poll_timeout()` or the next datagram, whichever is first.

pub mod crypto;
pub mod fec;
pub mod login;
pub mod pacing;
pub mod ranges;
pub mod rate;
pub mod receiver;
pub mod rtt;
pub mod sender;
pub mod stats;
pub mod wire;

/// Default largest UDP payload: fits the common 1280-byte IPv6 minimum MTU with room to spare.
pub const DEFAULT_MAX_DATAGRAM: usize = 1200;
/// Longest the receiver holds an acknowledgement, so the sender's timers can count on it.
pub const MAX_ACK_DELAY: std::time::Duration = std::time::Duration::from_millis(5);
/// Files of one session in flight at once, at most: offered and not yet given a verdict.
/// Deep enough that small files keep the path full while earlier ones wait for their DONE
/// (a round trip each), shallow enough to bound both sides' memory.
pub const MAX_FILES_IN_FLIGHT: usize = 4;
