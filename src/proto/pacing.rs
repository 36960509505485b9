//! Token-bucket pacer: spreads datagrams over time at the rate the controller sets, so an
//! image never lands in the socket (or a router's queue) all at once.

use std::time::{Duration, Instant};

/// Tokens never pile up beyond this much send time, so an idle spell cannot become a burst.
const BURST_TIME: Duration = Duration::from_millis(2);
/// Fewest full datagrams a burst may hold (timers are coarse; a burst of one would stall).
const MIN_BURST_PACKETS: f64 = 2.0;
/// Most datagrams in one burst, whatever the rate.
const MAX_BURST_PACKETS: f64 = 256.0;

/// Paces sends; pure arithmetic over the times it is given.
#[derive(Debug, Clone)]
pub struct Pacer {
    tokens: f64,
    last: Option<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            tokens: 0.0,
            last: None,
        }
    }
}

impl Pacer {
    fn capacity(rate: f64, mss: usize) -> f64 {
        let mss = mss as f64;
        (rate * BURST_TIME.as_secs_f64()).clamp(MIN_BURST_PACKETS * mss, MAX_BURST_PACKETS * mss)
    }

    fn refill(&mut self, now: Instant, rate: f64, mss: usize) {
        let cap = Self::capacity(rate, mss);
        match self.last {
            None => self.tokens = cap,
            Some(last) => {
                let dt = now.saturating_duration_since(last).as_secs_f64();
                self.tokens = (self.tokens + dt * rate).min(cap);
            }
        }
        self.last = Some(now);
    }

    /// `None` when `size` bytes may go now; otherwise the instant they may.
    pub fn delay(&mut self, now: Instant, rate: f64, size: usize, mss: usize) -> Option<Instant> {
        self.refill(now, rate, mss);
        let need = size as f64 - self.tokens;
        if need <= 0.0 {
            return None;
        }
        let wait = Duration::from_secs_f64((need / rate.max(1.0)).min(1.0));
        Some(now + wait.max(Duration::from_micros(1)))
    }

    /// Takes the tokens for a datagram that was just sent.
    pub fn on_sent(&mut self, size: usize) {
        self.tokens -= size as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_to_the_rate() {
        let start = Instant::now();
        let mut p = Pacer::default();
        let rate = 1_000_000.0; // 1 MB/s
        let mut now = start;
        let mut sent = 0usize;
        while now < start + Duration::from_secs(1) {
            match p.delay(now, rate, 1000, 1000) {
                None => {
                    p.on_sent(1000);
                    sent += 1000;
                }
                Some(t) => now = t,
            }
        }
        // One second at 1 MB/s plus at most one initial burst.
        assert!((1_000_000..=1_004_000).contains(&sent), "sent {sent}");
    }
}
