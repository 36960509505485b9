//! Round-trip time estimation (RFC 9002 §5): every timer in udpix derives from these figures.

use std::time::Duration;

/// RTT assumed before the first sample; fast enough to start, slow enough not to flood.
pub const INITIAL_RTT: Duration = Duration::from_millis(100);

/// Smoothed RTT, its variation and the minimum, updated from acknowledgement samples.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    latest: Duration,
    smoothed: Option<Duration>,
    var: Duration,
    min: Duration,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self {
            latest: INITIAL_RTT,
            smoothed: None,
            var: INITIAL_RTT / 2,
            min: INITIAL_RTT,
        }
    }
}

impl RttEstimator {
    /// Feeds one sample: time from sending a packet to its acknowledgement, and the delay
    /// the receiver says it held the acknowledgement.
    pub fn update(&mut self, sample: Duration, ack_delay: Duration) {
        self.latest = sample;
        let Some(smoothed) = self.smoothed else {
            self.smoothed = Some(sample);
            self.var = sample / 2;
            self.min = sample;
            return;
        };
        self.min = self.min.min(sample);
        // Subtract the receiver's delay only when that keeps the sample above the minimum.
        let adjusted = if sample >= self.min + ack_delay {
            sample - ack_delay
        } else {
            sample
        };
        let diff = smoothed.abs_diff(adjusted);
        self.var = (self.var * 3 + diff) / 4;
        self.smoothed = Some((smoothed * 7 + adjusted) / 8);
    }

    /// Smoothed RTT (the initial guess until a sample arrives).
    pub fn smoothed(&self) -> Duration {
        self.smoothed.unwrap_or(INITIAL_RTT)
    }

    /// Most recent raw sample.
    pub fn latest(&self) -> Duration {
        self.latest
    }

    /// Smallest sample seen: the path's propagation delay without queueing.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// True once a real sample has been taken.
    pub fn has_sample(&self) -> bool {
        self.smoothed.is_some()
    }

    /// Probe timeout before backoff: how long silence must last before the tail is probed.
    pub fn pto(&self, max_ack_delay: Duration) -> Duration {
        self.smoothed() + (self.var * 4).max(Duration::from_millis(1)) + max_ack_delay
    }

    /// Time after which an unacknowledged packet older than an acknowledged one counts as lost.
    pub fn loss_delay(&self) -> Duration {
        (self.smoothed().max(self.latest) * 9 / 8).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_steady_samples() {
        let mut r = RttEstimator::default();
        for _ in 0..50 {
            r.update(Duration::from_millis(40), Duration::ZERO);
        }
        assert!(r.smoothed().abs_diff(Duration::from_millis(40)) < Duration::from_micros(100));
        assert_eq!(r.min(), Duration::from_millis(40));
        assert!(r.pto(Duration::from_millis(5)) < Duration::from_millis(50));
    }

    #[test]
    fn ack_delay_is_subtracted_only_above_min() {
        let mut r = RttEstimator::default();
        r.update(Duration::from_millis(20), Duration::ZERO);
        r.update(Duration::from_millis(30), Duration::from_millis(10));
        assert_eq!(r.smoothed(), Duration::from_millis(20));
        r.update(Duration::from_millis(21), Duration::from_millis(10));
        assert!(r.smoothed() > Duration::from_millis(20));
    }
}
