//! Rate control: a model-based controller in the spirit of BBR, made loss-tolerant.
//!
//! It estimates the path's bottleneck rate from how fast acknowledged bytes come back and
//! its propagation delay from the smallest RTT, then paces at that rate and caps data in
//! flight at twice the bandwidth-delay product. Random loss (radio, a noisy link) is not
//! taken as congestion: the delivery rate is scaled up by the measured loss fraction, so
//! 20 % loss does not shrink the rate. Congestion shows as queueing delay instead: a round
//! in which even the smallest RTT sits well above the path minimum drops the estimate to the
//! raw delivery rate, which drains the queue.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Gain while searching for the bottleneck: doubles the delivery rate each round.
const STARTUP_GAIN: f64 = 2.885;
/// Rounds the bandwidth filter remembers.
const BW_WINDOW_ROUNDS: u64 = 10;
/// A minimum RTT older than this is replaced by the freshest round minimum.
const MIN_RTT_LIFETIME: Duration = Duration::from_secs(10);
/// ProbeBW gain cycle: probe up, drain what the probe queued, then cruise.
const CYCLE: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// Packets allowed in flight before the first estimate exists.
pub const INITIAL_WINDOW_PACKETS: u64 = 32;
/// Largest loss fraction the estimate compensates for; beyond it loss is taken at its word.
const MAX_COMPENSATED_LOSS: f64 = 0.5;
/// Pace of the first flight, before any estimate: a burst, so its ACKs come back spaced by
/// the bottleneck and show its rate after one round trip.
const FIRST_FLIGHT_RATE: f64 = 125e6;
/// Queueing delay that persists through a whole round and marks it congested: a quarter of
/// the path's RTT, within these bounds. The upper one matters on long paths with short
/// queues: 100 packets at 100 Mbit/s hold 10 ms, a twentieth of a satellite round trip.
const MIN_QUEUEING: Duration = Duration::from_millis(2);
const MAX_QUEUEING: Duration = Duration::from_millis(5);
/// Most packets a probe above the estimate may queue at the bottleneck.
const PROBE_PACKETS: f64 = 32.0;
/// Acknowledged packets the start-up dispersion measure spans.
const TRAIN_PACKETS: u32 = 16;
/// ACKs returning slower than this fraction of the rate the same packets left at: the path
/// is full, and their spacing is its bottleneck rate.
const SATURATED: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Startup,
    Drain,
    ProbeBw { index: usize, since: Instant },
}

/// One ACK as the start-up dispersion measure sees it.
#[derive(Debug, Clone, Copy)]
struct TrainPoint {
    /// When the newest packet it newly acknowledged was sent.
    sent: Instant,
    /// When the ACK arrived.
    acked_at: Instant,
    /// That packet's number.
    pn: u32,
    /// Bytes delivered in all, with this ACK.
    delivered: u64,
    /// Packets acknowledged in all, with this ACK.
    acked: u64,
}

/// What one acknowledged packet tells the controller.
#[derive(Debug, Clone, Copy)]
pub struct RateSample {
    /// Bytes per second delivered over the packet's flight interval.
    pub delivery_rate: f64,
    /// Total bytes delivered when the packet was sent.
    pub prior_delivered: u64,
    /// Total bytes delivered now.
    pub delivered: u64,
    /// RTT of this packet.
    pub rtt: Duration,
    /// The sender had nothing to send when the packet left, so the sample understates the path.
    pub app_limited: bool,
}

/// The controller's state; the sender reads `pacing_rate` and `window` from it.
#[derive(Debug, Clone)]
pub struct RateControl {
    mode: Mode,
    mss: usize,
    max_rate: f64,
    bw_filter: VecDeque<(u64, f64)>,
    btl_bw: f64,
    min_rtt: Option<(Duration, Instant)>,
    round: u64,
    next_round_delivered: u64,
    round_min_rtt: Option<Duration>,
    round_max_rate: f64,
    round_acked: u64,
    round_lost: u64,
    loss: f64,
    full_bw: f64,
    full_bw_rounds: u32,
    congested_rounds: u64,
    initial_rtt: Duration,
    /// Start-up only: the latest ACKs, for the dispersion measure.
    train: VecDeque<TrainPoint>,
}

impl RateControl {
    /// A controller for datagrams of `mss` bytes, never exceeding `max_rate` bytes per second.
    pub fn new(mss: usize, max_rate: Option<f64>) -> Self {
        Self {
            mode: Mode::Startup,
            mss,
            max_rate: max_rate.unwrap_or(f64::INFINITY),
            bw_filter: VecDeque::new(),
            btl_bw: 0.0,
            min_rtt: None,
            round: 0,
            next_round_delivered: 0,
            round_min_rtt: None,
            round_max_rate: 0.0,
            round_acked: 0,
            round_lost: 0,
            loss: 0.0,
            full_bw: 0.0,
            full_bw_rounds: 0,
            congested_rounds: 0,
            initial_rtt: super::rtt::INITIAL_RTT,
            train: VecDeque::new(),
        }
    }

    /// Seeds the RTT from the handshake so the first window is paced sensibly.
    pub fn set_initial_rtt(&mut self, now: Instant, rtt: Duration) {
        self.initial_rtt = rtt.max(Duration::from_micros(50));
        if self.min_rtt.is_none() {
            self.min_rtt = Some((self.initial_rtt, now));
        }
    }

    fn min_rtt(&self) -> Duration {
        self.min_rtt.map_or(self.initial_rtt, |(r, _)| r)
    }

    fn pacing_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup => STARTUP_GAIN,
            Mode::Drain => 1.0 / STARTUP_GAIN,
            Mode::ProbeBw { index, .. } => CYCLE[index],
        }
    }

    /// Bytes per second the pacer should send at now.
    pub fn pacing_rate(&self) -> f64 {
        let rate = if self.btl_bw > 0.0 {
            self.btl_bw * self.pacing_gain()
        } else {
            FIRST_FLIGHT_RATE
        };
        rate.min(self.max_rate).max(self.mss as f64)
    }

    /// Bytes allowed in flight now.
    pub fn window(&self) -> u64 {
        let floor = 4 * self.mss as u64;
        if self.btl_bw <= 0.0 {
            return INITIAL_WINDOW_PACKETS * self.mss as u64;
        }
        let gain = match self.mode {
            Mode::Startup | Mode::Drain => STARTUP_GAIN,
            Mode::ProbeBw { .. } => 2.0,
        };
        let bdp = self.btl_bw * self.min_rtt().as_secs_f64();
        ((gain * bdp) as u64 + floor).max(floor)
    }

    /// Current bottleneck estimate in bytes per second (0 before the first round).
    pub fn bandwidth(&self) -> f64 {
        self.btl_bw
    }

    /// Smoothed fraction of packets lost, as the controller sees it.
    pub fn loss_fraction(&self) -> f64 {
        self.loss
    }

    /// Rounds in which queueing delay was taken as congestion.
    pub fn congested_rounds(&self) -> u64 {
        self.congested_rounds
    }

    /// Packets declared lost.
    pub fn on_loss(&mut self, packets: u64) {
        self.round_lost += packets;
    }

    /// An ACK arrived now whose newest newly acknowledged packet is `pn`, sent at `sent`,
    /// bringing the bytes delivered to `delivered` and the packets acknowledged to `acked`.
    /// In start-up, ACKs spanning [`TRAIN_PACKETS`] packets are compared with the spacing
    /// those packets left at: ACKs coming back slower than the packets left show the path is
    /// full, and their rate is the bottleneck's (scaled up for the packets of the span that
    /// were lost, as loss is not congestion). Start-up then ends at once, without the rounds
    /// of overshoot that waiting for the rate to stop growing costs. Measured ACK to ACK, each
    /// sent as a packet arrived, so the receiver's ACK-every-few-packets does not skew it.
    pub fn on_ack_point(
        &mut self,
        now: Instant,
        sent: Instant,
        pn: u32,
        delivered: u64,
        acked: u64,
    ) {
        if self.mode != Mode::Startup {
            return;
        }
        self.train.push_back(TrainPoint {
            sent,
            acked_at: now,
            pn,
            delivered,
            acked,
        });
        // The shortest span of at least TRAIN_PACKETS packets that ends at this ACK.
        while self.train.len() > 2 && self.train[1].pn.saturating_add(TRAIN_PACKETS) <= pn {
            self.train.pop_front();
        }
        let (Some(a), Some(b)) = (self.train.front(), self.train.back()) else {
            return;
        };
        if b.pn < a.pn.saturating_add(TRAIN_PACKETS) {
            return;
        }
        let ack_span = b
            .acked_at
            .saturating_duration_since(a.acked_at)
            .as_secs_f64();
        let send_span = b.sent.saturating_duration_since(a.sent).as_secs_f64();
        if ack_span <= 0.0 || ack_span * SATURATED <= send_span {
            return;
        }
        let got = b.acked.saturating_sub(a.acked) as f64;
        let loss = (1.0 - got / f64::from(b.pn - a.pn)).clamp(0.0, MAX_COMPENSATED_LOSS);
        let rate = b.delivered.saturating_sub(a.delivered) as f64 / ack_span / (1.0 - loss);
        let rate = rate.min(self.max_rate);
        self.bw_filter.push_back((self.round, rate));
        self.btl_bw = self.btl_bw.max(rate);
        self.mode = Mode::Drain;
        self.train.clear();
    }

    /// One acknowledged packet; `in_flight` is the bytes still unacknowledged after it.
    pub fn on_ack(&mut self, now: Instant, s: RateSample, in_flight: u64) {
        self.round_acked += 1;
        self.round_min_rtt = Some(self.round_min_rtt.map_or(s.rtt, |r| r.min(s.rtt)));
        match self.min_rtt {
            Some((r, _)) if s.rtt < r => self.min_rtt = Some((s.rtt, now)),
            None => self.min_rtt = Some((s.rtt, now)),
            _ => {}
        }
        if !s.app_limited || s.delivery_rate > self.btl_bw {
            self.round_max_rate = self.round_max_rate.max(s.delivery_rate);
        }
        if s.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = s.delivered;
            self.end_round(now);
        }
        self.advance_mode(now, in_flight);
    }

    fn end_round(&mut self, now: Instant) {
        self.round += 1;
        let min_rtt = self.min_rtt();
        let round_min = self.round_min_rtt.unwrap_or(min_rtt);
        if let Some((_, stamp)) = self.min_rtt
            && now.saturating_duration_since(stamp) > MIN_RTT_LIFETIME
        {
            self.min_rtt = Some((round_min, now));
        }
        let queueing = round_min.saturating_sub(min_rtt);
        let threshold = (min_rtt / 4).clamp(MIN_QUEUEING, MAX_QUEUEING);
        let total = self.round_acked + self.round_lost;
        // Losses of a round that kept a queue standing are the queue's own drops: counted
        // as random, they would raise the rate that overflows it.
        if total >= 4 && queueing <= threshold {
            let frac = self.round_lost as f64 / total as f64;
            self.loss = 0.75 * self.loss + 0.25 * frac;
        }
        let raw = self.round_max_rate;
        if raw > 0.0 {
            if queueing > threshold {
                // A standing queue: losses are congestion. Fall back to what really got through.
                self.congested_rounds += 1;
                self.bw_filter.clear();
                self.bw_filter.push_back((self.round, raw));
                if self.mode == Mode::Startup {
                    self.mode = Mode::Drain;
                }
            } else {
                let comp = raw / (1.0 - self.loss.min(MAX_COMPENSATED_LOSS));
                self.bw_filter.push_back((self.round, comp));
            }
            while let Some(&(r, _)) = self.bw_filter.front() {
                if self.round - r >= BW_WINDOW_ROUNDS {
                    self.bw_filter.pop_front();
                } else {
                    break;
                }
            }
            self.btl_bw = self
                .bw_filter
                .iter()
                .map(|&(_, b)| b)
                .fold(0.0, f64::max)
                .min(self.max_rate);
        }
        if self.mode == Mode::Startup && self.btl_bw > 0.0 {
            if self.btl_bw >= self.full_bw * 1.25 {
                self.full_bw = self.btl_bw;
                self.full_bw_rounds = 0;
            } else {
                self.full_bw_rounds += 1;
                if self.full_bw_rounds >= 3 {
                    self.mode = Mode::Drain;
                }
            }
        }
        self.round_min_rtt = None;
        self.round_max_rate = 0.0;
        self.round_acked = 0;
        self.round_lost = 0;
    }

    /// How long a ProbeBW phase lasts: a round trip, except that probing above the estimate
    /// (and draining after it) stops once it has queued [`PROBE_PACKETS`] more than the
    /// estimate allows. On a long path with a short queue a whole round trip at 1.25x would
    /// overflow it: 100 packets hold 10 ms at 100 Mbit/s, a twentieth of a 200 ms round trip.
    fn phase_length(&self, index: usize) -> Duration {
        let rtt = self.min_rtt();
        let excess = (CYCLE[index] - 1.0).abs() * self.btl_bw;
        if excess <= 0.0 {
            return rtt;
        }
        let bytes = PROBE_PACKETS * self.mss as f64;
        rtt.min(Duration::from_secs_f64(bytes / excess))
    }

    fn advance_mode(&mut self, now: Instant, in_flight: u64) {
        match self.mode {
            Mode::Startup => {}
            Mode::Drain => {
                let bdp = self.btl_bw * self.min_rtt().as_secs_f64();
                if (in_flight as f64) <= bdp {
                    self.mode = Mode::ProbeBw {
                        index: 2,
                        since: now,
                    };
                }
            }
            Mode::ProbeBw { index, since } => {
                if now.saturating_duration_since(since) >= self.phase_length(index) {
                    self.mode = Mode::ProbeBw {
                        index: (index + 1) % CYCLE.len(),
                        since: now,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the controller with an ideal path: rate `link` bytes/s, `rtt`, random `loss`.
    fn run(link: f64, rtt: Duration, loss: f64) -> RateControl {
        let mss = 1200usize;
        let mut rc = RateControl::new(mss, None);
        let start = Instant::now();
        rc.set_initial_rtt(start, rtt);
        let mut delivered = 0u64;
        let mut now = start;
        let mut lost_acc = 0.0;
        // One ack per packet the link carries; the sender is never app-limited.
        for _ in 0..20_000 {
            let send_rate = rc.pacing_rate().min(link);
            let dt = mss as f64 / link;
            now += Duration::from_secs_f64(dt);
            lost_acc += loss;
            if lost_acc >= 1.0 {
                lost_acc -= 1.0;
                rc.on_loss(1);
                continue;
            }
            let prior = delivered;
            delivered += mss as u64;
            let sample = RateSample {
                delivery_rate: send_rate * (1.0 - loss),
                prior_delivered: prior.saturating_sub((send_rate * rtt.as_secs_f64()) as u64),
                delivered,
                rtt,
                app_limited: false,
            };
            rc.on_ack(now, sample, 0);
        }
        rc
    }

    #[test]
    fn finds_the_link_rate_without_loss() {
        let link = 2_500_000.0;
        let rc = run(link, Duration::from_millis(40), 0.0);
        let bw = rc.bandwidth();
        assert!(bw > 0.9 * link && bw < 1.4 * link, "bw {bw}");
    }

    #[test]
    fn random_loss_does_not_collapse_the_estimate() {
        let link = 2_500_000.0;
        let rc = run(link, Duration::from_millis(40), 0.2);
        let bw = rc.bandwidth();
        assert!(rc.loss_fraction() > 0.15, "loss {}", rc.loss_fraction());
        assert!(bw > 0.85 * link, "bw {bw} collapsed under random loss");
    }

    /// Sends a 32-packet first flight as a burst at `start`; they reach the receiver one per
    /// `spacing`, every `lose_every`-th lost, and it acknowledges every fourth arrival.
    fn first_flight(spacing: Duration, lose_every: u32) -> RateControl {
        let mut rc = RateControl::new(1200, None);
        let start = Instant::now();
        let rtt = Duration::from_millis(40);
        rc.set_initial_rtt(start, rtt);
        let (mut delivered, mut acked) = (0, 0);
        for pn in 0..32u32 {
            if lose_every > 0 && pn % lose_every == lose_every - 1 {
                continue;
            }
            delivered += 1200;
            acked += 1;
            if acked % 4 == 0 {
                rc.on_ack_point(start + rtt + spacing * pn, start, pn, delivered, acked);
            }
        }
        rc
    }

    #[test]
    fn a_first_flight_acked_slower_than_sent_shows_the_bottleneck_and_ends_start_up() {
        // 1200 B every 480 us: 2.5 MB/s, where the burst left at once.
        let rc = first_flight(Duration::from_micros(480), 0);
        let bw = rc.bandwidth();
        assert!((bw - 2.5e6).abs() < 0.01 * 2.5e6, "bw {bw}");
        assert_eq!(rc.mode, Mode::Drain);
        // Every fifth packet lost after the bottleneck: the link still carried them, so the
        // estimate is its rate, not the 80 % that arrived.
        let rc = first_flight(Duration::from_micros(480), 5);
        let bw = rc.bandwidth();
        assert!((bw - 2.5e6).abs() < 0.05 * 2.5e6, "bw {bw}");
    }

    #[test]
    fn acks_as_fast_as_the_sends_keep_start_up_searching() {
        let mut rc = RateControl::new(1200, None);
        let start = Instant::now();
        let rtt = Duration::from_millis(40);
        rc.set_initial_rtt(start, rtt);
        for pn in (3..64u32).step_by(4) {
            let sent = start + Duration::from_micros(500) * pn;
            let n = u64::from(pn + 1);
            rc.on_ack_point(sent + rtt, sent, pn, n * 1200, n);
        }
        assert_eq!(rc.mode, Mode::Startup);
        assert_eq!(rc.bandwidth(), 0.0);
    }

    #[test]
    fn the_first_flight_leaves_as_a_burst() {
        let rc = RateControl::new(1200, None);
        assert_eq!(rc.pacing_rate(), FIRST_FLIGHT_RATE);
        assert_eq!(RateControl::new(1200, Some(1e6)).pacing_rate(), 1e6);
    }

    #[test]
    fn queueing_delay_pulls_the_estimate_down() {
        let mut rc = RateControl::new(1200, None);
        let start = Instant::now();
        rc.set_initial_rtt(start, Duration::from_millis(20));
        let mut delivered = 0u64;
        let mut now = start;
        // Inflated rate samples but RTT doubled: a queue. The estimate must not follow them.
        for i in 0..2000u64 {
            now += Duration::from_micros(500);
            let prior = delivered;
            delivered += 1200;
            let rtt = if i < 100 { 20 } else { 45 };
            rc.on_ack(
                now,
                RateSample {
                    delivery_rate: 1_000_000.0,
                    prior_delivered: prior.saturating_sub(40 * 1200),
                    delivered,
                    rtt: Duration::from_millis(rtt),
                    app_limited: false,
                },
                0,
            );
            rc.on_loss(1);
        }
        assert!(rc.congested_rounds() > 0);
        assert!(rc.bandwidth() <= 1_000_000.0 + 1.0, "bw {}", rc.bandwidth());
    }
}
