//! The decision one client (an SDK instance) makes for a request that matched a rule:
//! take from its reservoir quota, borrow, or fall back to the fixed rate.
//!
//! This is the X-Ray SDKs' algorithm (Python SDK `core/sampling/reservoir.py` and
//! `sampler.py`), so that Roentgen's quota assignment can be tested against clients that
//! behave as the real ones do, and so that anything in Roentgen that samples decides the
//! same way:
//!
//! 1. With a quota whose TTL has not passed (`TTL >= now`, whole seconds), take one of
//!    this second's `quota` requests; when they are used up the reservoir says no.
//! 2. With no quota, or an expired one, and a rule whose `ReservoirSize` is above 0,
//!    borrow: at most one request per second.
//! 3. Otherwise trace with probability `FixedRate`.

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Traced from the reservoir quota.
    Take,
    /// Traced by borrowing from the reservoir (no valid quota).
    Borrow,
    /// Traced at the fixed rate.
    FixedRate,
    /// Not traced.
    NotSampled,
}

impl Decision {
    /// Whether the request is traced.
    pub fn sampled(self) -> bool {
        !matches!(self, Self::NotSampled)
    }
}

/// One client's reservoir for one rule.
#[derive(Debug, Clone, Default)]
pub struct Reservoir {
    quota: Option<u32>,
    quota_ttl: Option<u64>,
    second: u64,
    taken: u32,
    borrowed: u32,
}

impl Reservoir {
    /// A reservoir without a quota (it borrows until it gets one).
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads what `GetSamplingTargets` assigned. A missing value keeps the previous one,
    /// as the SDKs do.
    pub fn load(&mut self, quota: Option<u32>, quota_ttl: Option<u64>) {
        if quota.is_some() {
            self.quota = quota;
        }
        if quota_ttl.is_some() {
            self.quota_ttl = quota_ttl;
        }
    }

    /// The decision for a request at `now` (epoch seconds) under a rule that can borrow
    /// (`ReservoirSize` > 0) or not, with `fixed_rate`; `draw` is a uniform random number
    /// in `[0, 1)` (traced at the fixed rate when `draw < fixed_rate`).
    pub fn decide(&mut self, now: u64, can_borrow: bool, fixed_rate: f64, draw: f64) -> Decision {
        if now != self.second {
            self.second = now;
            self.taken = 0;
            self.borrowed = 0;
        }
        match (self.quota, self.quota_ttl) {
            (Some(quota), Some(ttl)) if ttl >= now && self.taken < quota => {
                self.taken += 1;
                return Decision::Take;
            }
            // Used up: no borrowing while a quota holds.
            (Some(_), Some(ttl)) if ttl >= now => {}
            _ if can_borrow && self.borrowed < 1 => {
                self.borrowed += 1;
                return Decision::Borrow;
            }
            _ => {}
        }
        if draw < fixed_rate {
            Decision::FixedRate
        } else {
            Decision::NotSampled
        }
    }
}

/// What a client counts per rule between two `GetSamplingTargets` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests that matched the rule.
    pub requests: u64,
    /// Requests traced (from the quota or at the fixed rate).
    pub sampled: u64,
    /// Requests traced by borrowing.
    pub borrowed: u64,
}

impl Counts {
    /// Counts one decision.
    pub fn count(&mut self, d: Decision) {
        self.requests += 1;
        match d {
            Decision::Take | Decision::FixedRate => self.sampled += 1,
            Decision::Borrow => self.borrowed += 1,
            Decision::NotSampled => {}
        }
    }

    /// The counts so far, starting over from zero.
    pub fn take(&mut self) -> Self {
        std::mem::take(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_one_per_second_without_a_quota() {
        let mut r = Reservoir::new();
        assert_eq!(r.decide(10, true, 0.0, 0.5), Decision::Borrow);
        assert_eq!(r.decide(10, true, 0.0, 0.5), Decision::NotSampled);
        assert_eq!(r.decide(10, true, 1.0, 0.5), Decision::FixedRate);
        assert_eq!(r.decide(11, true, 0.0, 0.5), Decision::Borrow);
        // A rule with no reservoir never borrows.
        assert_eq!(r.decide(12, false, 0.0, 0.5), Decision::NotSampled);
    }

    #[test]
    fn takes_its_quota_until_the_ttl() {
        let mut r = Reservoir::new();
        r.load(Some(2), Some(20));
        assert_eq!(r.decide(20, true, 0.0, 0.9), Decision::Take);
        assert_eq!(r.decide(20, true, 0.0, 0.9), Decision::Take);
        // Used up: no borrowing while the quota holds.
        assert_eq!(r.decide(20, true, 0.0, 0.9), Decision::NotSampled);
        // Past the TTL it borrows again.
        assert_eq!(r.decide(21, true, 0.0, 0.9), Decision::Borrow);
        // A zero quota that holds stops borrowing; one that lapsed does not.
        r.load(Some(0), Some(30));
        assert_eq!(r.decide(25, true, 0.0, 0.9), Decision::NotSampled);
        r.load(Some(0), Some(25));
        assert_eq!(r.decide(26, true, 0.0, 0.9), Decision::Borrow);
        // Missing values keep the previous ones.
        r.load(None, None);
        assert_eq!(r.decide(27, true, 0.0, 0.9), Decision::Borrow);
    }

    #[test]
    fn counts_reset_when_taken() {
        let mut c = Counts::default();
        for d in [
            Decision::Take,
            Decision::Borrow,
            Decision::FixedRate,
            Decision::NotSampled,
        ] {
            c.count(d);
        }
        assert_eq!(
            c.take(),
            Counts {
                requests: 4,
                sampled: 2,
                borrowed: 1
            }
        );
        assert_eq!(c, Counts::default());
    }
}
