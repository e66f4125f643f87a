//! Reservoir quotas: what `GetSamplingTargets` hands each client that reports
//! statistics for a rule.
//!
//! A rule's `ReservoirSize` is a budget of traced requests per second for the whole
//! fleet. Clients (SDK instances, one `ClientID` each) report every `Interval` seconds
//! how many requests matched the rule; each report is answered with that client's
//! `ReservoirQuota` (requests per second it may take), valid until
//! `ReservoirQuotaTTL`. How a client uses the answer is in [`crate::reservoir`].
//!
//! # The algorithm
//!
//! Per rule, for the clients that reported within the last `quota_ttl` seconds (the
//! *active* clients; older ones are forgotten):
//!
//! 1. **Demand.** A report's `RequestCount` divided by the seconds since that client's
//!    previous report (the interval for its first) is its demand, requests per second.
//! 2. **Share.** The client's share is `ReservoirSize × demand / Σ demand` over the
//!    active clients (an equal split when nobody has demand). Shares add up to the
//!    reservoir.
//! 3. **Whole requests.** A quota is a whole number of requests per second. Once per
//!    second the shares are rounded together by systematic rounding: lay the shares end
//!    to end on `[0, ReservoirSize)` in the order the clients first reported, shift by
//!    an offset θ in `[0, 1)`, and give each client the number of integers that fall in
//!    its stretch. Every client gets its share rounded down or up, the allocations add
//!    up to exactly the reservoir, and they stay put while demand does (no client
//!    alternates between 2 and 3 from one report to the next). θ changes every minute,
//!    so over time each client gets the extra request in proportion to the fraction of
//!    its share, and clients whose share is below one request per second take turns.
//! 4. **Never more than the reservoir.** An SDK counts per second what it takes from its
//!    quota and what it borrows, separately: in one second it can trace the largest
//!    quota it held in that second, plus one if it borrowed. A ledger keeps that bound
//!    per client for the current second and for the seconds after, from the answers
//!    given (a quota holds until its TTL), and a client gets its allocation only as far
//!    as the others leave room in both: the reservoir is never exceeded by the clients
//!    the service knows of. So a quota that shrinks still counts at its old size until
//!    the end of the second it shrank in, and a client that borrowed in the second of
//!    its report counts that one too (a client whose allocation grows before the others
//!    have reported their smaller ones gets the rest at its next report).
//! 5. **Slow start.** A quota is at most twice the client's previous one (at least 2), so
//!    the first client to report after a restart cannot take the whole reservoir while
//!    the others, not yet known, are still borrowing.
//! 6. **Clients that get nothing.** A client that gets no quota is left to borrow, as
//!    the SDKs do, whenever one request per second from the next second on fits: it gets
//!    `ReservoirQuota` 0 with a TTL that lapses at the end of the current second, so it
//!    holds no quota and borrows, and the ledger counts that one. That is the answer for
//!    a client whose allocation the current second cannot hold yet (it gets its quota at
//!    its next report), for a client without allocation when part of the reservoir is
//!    claimed by nobody's allocation nor quota, and always for a client that reported
//!    no requests (without counting: it borrows only if requests come, until its next
//!    report gives it a share). Otherwise, when the allocations take the whole
//!    reservoir, a client whose allocation is 0 this minute gets `ReservoirQuota` 0
//!    until the TTL and traces at the fixed rate until its turn: letting it borrow would
//!    trace up to one request per second per such client on top of the reservoir, which
//!    AWS documents as applying to all services using the rule collectively (with the
//!    `Default` rule, 1 per second, a fleet of 100 instances would trace 100 per second).
//! 7. **Rules without a reservoir** (`ReservoirSize` 0) answer quota 0 with a full TTL,
//!    as AWS does.
//!
//! What is not bounded by this: a client borrows one request per second before its first
//! report, after a report of no requests, and whenever its quota lapses without a new
//! one (for example, when it cannot reach the service); the SDKs do this on their own.
//!
//! Memory is bounded: at most `max_clients_per_rule` clients per rule (a new client past
//! that evicts the one that reported longest ago), per-rule statistics for the last
//! minute only, and state only for rules that exist. Each report costs O(1); once per
//! second per rule, the first report recomputes the allocations in O(clients).

use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::reservoir::Counts;
use crate::rule::Rule;
use crate::rules::RuleSet;

/// How often clients should report, seconds (the `Interval` answered; the SDKs poll
/// every 10 seconds and report every `Interval / 10` polls).
pub const DEFAULT_INTERVAL_SECS: u32 = 10;
/// How long a quota holds, seconds: two intervals, so one lost report does not make the
/// client fall back to borrowing.
pub const DEFAULT_QUOTA_TTL_SECS: u32 = 2 * DEFAULT_INTERVAL_SECS;
/// Clients remembered per rule.
pub const DEFAULT_MAX_CLIENTS_PER_RULE: usize = 10_000;
/// Statistic summaries add reports up per this many seconds.
pub const SUMMARY_WINDOW_SECS: u64 = 10;
/// Statistic summaries cover this many windows (one minute).
pub const SUMMARY_WINDOWS: usize = 6;
/// The rounding offset θ changes this often, seconds.
pub const ROTATION_SECS: u64 = 60;

/// Settings of the quota assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetsConfig {
    /// `Interval` answered, seconds.
    pub interval_secs: u32,
    /// How long a quota holds and how long a client counts as active, seconds.
    pub quota_ttl_secs: u32,
    /// Clients remembered per rule.
    pub max_clients_per_rule: usize,
}

impl Default for TargetsConfig {
    fn default() -> Self {
        Self {
            interval_secs: DEFAULT_INTERVAL_SECS,
            quota_ttl_secs: DEFAULT_QUOTA_TTL_SECS,
            max_clients_per_rule: DEFAULT_MAX_CLIENTS_PER_RULE,
        }
    }
}

/// A client's `ClientID`: 24 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId([u8; 24]);

/// A `ClientID` that is not 24 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ClientID must be 24 hexadecimal digits")]
pub struct InvalidClientId;

impl ClientId {
    /// Reads a `ClientID`.
    pub fn parse(text: &str) -> Result<Self, InvalidClientId> {
        let bytes: [u8; 24] = text.as_bytes().try_into().map_err(|_| InvalidClientId)?;
        if bytes.iter().all(u8::is_ascii_hexdigit) {
            Ok(Self(bytes))
        } else {
            Err(InvalidClientId)
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII hex digits get in.
        f.write_str(std::str::from_utf8(&self.0).unwrap_or_default())
    }
}

/// What kind of answer a report got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// A quota of one or more requests per second.
    Quota,
    /// No quota (a zero one that lapses this second): the client borrows one request
    /// per second, as the SDKs do without a quota.
    Borrow,
    /// A zero quota until the TTL: the other clients' quotas take the whole reservoir.
    Zero,
    /// A zero quota: the rule has no reservoir.
    NoReservoir,
}

impl Grant {
    /// Every kind, for metrics.
    pub const ALL: [Grant; 4] = [Self::Quota, Self::Borrow, Self::Zero, Self::NoReservoir];

    /// A label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quota => "quota",
            Self::Borrow => "borrow",
            Self::Zero => "zero",
            Self::NoReservoir => "no_reservoir",
        }
    }
}

/// The answer to one client's report for one rule (`SamplingTargetDocument`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The rule's fixed rate.
    pub fixed_rate: f64,
    /// `ReservoirQuota`: requests per second.
    pub quota: u32,
    /// `ReservoirQuotaTTL`: the last second (epoch) the quota holds.
    pub quota_ttl: u64,
    /// `Interval`: seconds until the next report.
    pub interval: u32,
    /// Why the quota is what it is.
    pub grant: Grant,
}

/// One rule's reports added up over one window (`SamplingStatisticSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticSummary {
    /// The rule.
    pub rule_name: String,
    /// Start of the window, epoch seconds.
    pub window_start: u64,
    /// What the reports counted.
    pub counts: Counts,
}

/// The quota assignment of every rule, with what it needs to remember.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    config: TargetsConfig,
    rules: HashMap<String, RuleQuotas>,
}

#[derive(Debug, Clone)]
struct RuleQuotas {
    /// Tells a rule from a later one of the same name.
    created_at: f64,
    /// Seeds the rounding offset of this rule.
    seed: u64,
    /// The active clients in the order they first reported, which is also the order
    /// their shares are laid out in.
    clients: Vec<(ClientId, Client)>,
    /// Where each client is in `clients`.
    index: HashMap<ClientId, usize>,
    /// Σ demand of `clients`.
    demand: f64,
    /// Σ `counted_now` of `clients`: the most they may trace in the current second.
    committed_now: u64,
    /// Σ `counted_next` of `clients`: the most they may trace in any later second, as
    /// things stand.
    committed_next: u64,
    /// Σ `claimed` of `clients`.
    claimed: u64,
    /// The second allocations and the sums were last computed for.
    swept: Option<u64>,
    windows: VecDeque<Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    counts: Counts,
}

/// One client of one rule. An SDK counts what it takes from its quota and what it
/// borrows separately, per second, so the most it can trace in a second is the largest
/// quota it held during that second plus one if it borrowed in it.
#[derive(Debug, Clone, Copy)]
struct Client {
    last_report: f64,
    /// Requests per second.
    demand: f64,
    /// Its rounded share, computed for second `allocated_in`.
    allocation: u32,
    allocated_in: Option<u64>,
    /// The quota last answered (0 for the zero and borrowing answers), which the SDK
    /// keeps before second `quota_until`; from then on it borrows.
    quota: u32,
    quota_until: u64,
    /// Whether the last answer let it borrow one per second, counted in the ledger
    /// before second `borrow_until`.
    borrows: bool,
    borrow_until: u64,
    /// In second `reported_in`, the second of its last report: the most it can have
    /// taken from quotas and whether it can have borrowed.
    reported_in: u64,
    took: u32,
    borrowed: u32,
    /// Its parts of `committed_now` and `committed_next`.
    counted_now: u32,
    counted_next: u32,
    /// Its part of the reservoir that others may not borrow: the larger of
    /// `counted_next` and its allocation.
    claimed: u32,
}

impl Client {
    fn new() -> Self {
        Self {
            last_report: f64::NAN,
            demand: 0.0,
            allocation: 0,
            allocated_in: None,
            quota: 0,
            quota_until: 0,
            borrows: false,
            borrow_until: 0,
            reported_in: 0,
            took: 0,
            borrowed: 0,
            counted_now: 0,
            counted_next: 0,
            claimed: 0,
        }
    }

    /// The most its answers let it trace in second `s` (at or after its last report).
    fn allowance(&self, s: u64) -> u32 {
        if s == self.reported_in {
            return self.took + self.borrowed;
        }
        let quota = if s < self.quota_until { self.quota } else { 0 };
        let borrow = u32::from(self.borrows && s < self.borrow_until);
        quota + borrow
    }

    fn recount(&mut self, s: u64) {
        self.counted_now = self.allowance(s);
        self.counted_next = self.allowance(s + 1);
    }
}

/// A well-mixed 64-bit value (SplitMix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a, to seed a rule's offsets from its name.
fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

impl RuleQuotas {
    fn new(name: &str, created_at: f64) -> Self {
        Self {
            created_at,
            seed: seed_of(name),
            clients: Vec::new(),
            index: HashMap::new(),
            demand: 0.0,
            committed_now: 0,
            committed_next: 0,
            claimed: 0,
            swept: None,
            windows: VecDeque::with_capacity(SUMMARY_WINDOWS + 1),
        }
    }

    /// Once per second: forgets clients that stopped reporting and whose quota lapsed,
    /// recomputes the sums exactly for second `s`, and rounds the shares of
    /// `reservoir` to whole allocations.
    fn sweep(&mut self, s: u64, now: f64, ttl: u32, reservoir: u64) {
        if self.swept == Some(s) {
            return;
        }
        self.swept = Some(s);
        let active_after = now - f64::from(ttl);
        let before = self.clients.len();
        self.clients.retain(|(_, c)| {
            c.last_report > active_after || c.allowance(s) > 0 || c.allowance(s + 1) > 0
        });
        if self.clients.len() != before {
            self.reindex();
        }
        let (mut demand, mut now_sum, mut next_sum) = (0.0, 0, 0);
        for (_, c) in &mut self.clients {
            c.recount(s);
            now_sum += u64::from(c.counted_now);
            next_sum += u64::from(c.counted_next);
            demand += c.demand;
        }
        self.demand = demand;
        self.committed_now = now_sum;
        self.committed_next = next_sum;

        // Systematic rounding: the integers of [θ, θ + reservoir) fall into the shares
        // laid end to end.
        let theta = (mix(self.seed ^ mix(s / ROTATION_SECS)) >> 11) as f64 / (1u64 << 53) as f64;
        let n = self.clients.len().max(1) as f64;
        let mut end = theta;
        for (_, c) in &mut self.clients {
            let share = if demand > 0.0 {
                reservoir as f64 * c.demand / demand
            } else {
                reservoir as f64 / n
            };
            let start = end;
            end += share;
            c.allocation = (end.floor() - start.floor()).max(0.0) as u32;
            c.allocated_in = Some(s);
            c.claimed = c.counted_next.max(c.allocation);
        }
        self.claimed = self.clients.iter().map(|(_, c)| u64::from(c.claimed)).sum();
    }

    fn reindex(&mut self) {
        self.index.clear();
        self.index
            .extend(self.clients.iter().enumerate().map(|(i, (id, _))| (*id, i)));
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .clients
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.1.last_report.total_cmp(&b.1.1.last_report))
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            let (_, c) = self.clients.remove(i);
            self.reindex();
            self.demand = (self.demand - c.demand).max(0.0);
            self.committed_now = self.committed_now.saturating_sub(u64::from(c.counted_now));
            self.committed_next = self
                .committed_next
                .saturating_sub(u64::from(c.counted_next));
            self.claimed = self.claimed.saturating_sub(u64::from(c.claimed));
        }
    }

    fn record(&mut self, s: u64, counts: Counts) {
        let start = s - s % SUMMARY_WINDOW_SECS;
        if let Some(w) = self.windows.iter_mut().find(|w| w.start == start) {
            w.counts.requests += counts.requests;
            w.counts.sampled += counts.sampled;
            w.counts.borrowed += counts.borrowed;
            return;
        }
        if self.windows.back().is_some_and(|w| w.start > start) {
            return; // older than the windows kept
        }
        self.windows.push_back(Window { start, counts });
        while self.windows.len() > SUMMARY_WINDOWS {
            self.windows.pop_front();
        }
    }
}

impl Targets {
    /// No clients known yet.
    pub fn new(config: TargetsConfig) -> Self {
        Self {
            config,
            rules: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> TargetsConfig {
        self.config
    }

    /// Takes one client's report for `rule` at `now` (epoch seconds) and answers its
    /// quota.
    pub fn report(&mut self, rule: &Rule, client: ClientId, counts: Counts, now: f64) -> Target {
        let TargetsConfig {
            interval_secs,
            quota_ttl_secs: ttl,
            max_clients_per_rule,
        } = self.config;
        let now = if now.is_finite() { now.max(0.0) } else { 0.0 };
        let s = now.floor() as u64;
        let reservoir = u64::from(rule.reservoir_size);
        let state = self
            .rules
            .entry(rule.name.clone())
            .or_insert_with(|| RuleQuotas::new(&rule.name, rule.created_at));
        if state.created_at != rule.created_at {
            *state = RuleQuotas::new(&rule.name, rule.created_at);
        }
        state.record(s, counts);
        state.sweep(s, now, ttl, reservoir);
        let at = match state.index.get(&client) {
            Some(&i) => i,
            None => {
                if state.clients.len() >= max_clients_per_rule.max(1) {
                    state.evict_oldest();
                }
                state.clients.push((client, Client::new()));
                state.index.insert(client, state.clients.len() - 1);
                state.clients.len() - 1
            }
        };
        let RuleQuotas {
            clients,
            demand: demand_sum,
            committed_now,
            committed_next,
            claimed,
            ..
        } = state;
        let c = &mut clients[at].1;

        let interval = f64::from(interval_secs.max(1));
        let elapsed = if c.last_report.is_finite() {
            (now - c.last_report).clamp(1.0, 4.0 * interval)
        } else {
            interval
        };
        let demand = counts.requests as f64 / elapsed;
        *demand_sum = (*demand_sum + demand - c.demand).max(0.0);
        c.demand = demand;
        c.last_report = now;

        // What it can have traced already this second: from the quota it held, and by
        // borrowing if it held none (a new client, or one whose quota lapsed).
        let same_second = c.reported_in == s;
        let took =
            if s < c.quota_until { c.quota } else { 0 }.max(if same_second { c.took } else { 0 });
        let borrowed = u32::from(reservoir > 0 && s >= c.quota_until).max(if same_second {
            c.borrowed
        } else {
            0
        });
        let others_now = committed_now.saturating_sub(u64::from(c.counted_now));
        let others_next = committed_next.saturating_sub(u64::from(c.counted_next));
        let others_claimed = claimed.saturating_sub(u64::from(c.claimed));
        // A client new since this second's rounding gets its share rounded down.
        let allocation = match c.allocated_in {
            Some(at) if at == s => u64::from(c.allocation),
            _ if *demand_sum > 0.0 && reservoir > 0 => {
                (reservoir as f64 * demand / *demand_sum) as u64
            }
            _ => 0,
        };
        let (quota, grant) = if reservoir == 0 {
            (0, Grant::NoReservoir)
        } else {
            let slow_start = (2 * u64::from(c.quota)).max(2);
            // This second it may already have borrowed one; a quota no larger than the one
            // it held adds nothing to this second.
            let room_now = reservoir
                .saturating_sub(others_now + u64::from(borrowed))
                .max(u64::from(took));
            let room_next = reservoir.saturating_sub(others_next);
            let quota = allocation.min(slow_start).min(room_now).min(room_next);
            // Borrowing from the next second on: a client whose allocation the current
            // second cannot hold yet, or one without allocation in room nobody claims.
            let entitled = allocation >= 1 && room_next >= 1;
            let spare = reservoir.saturating_sub(others_claimed) >= 1 && room_next >= 1;
            if quota >= 1 {
                // At most the reservoir, which is a u32.
                (u32::try_from(quota).unwrap_or(u32::MAX), Grant::Quota)
            } else if demand == 0.0 || entitled || spare {
                (0, Grant::Borrow)
            } else {
                (0, Grant::Zero)
            }
        };
        let ttl = u64::from(ttl);
        c.quota = quota;
        c.quota_until = match grant {
            // A quota of 0 that lapses at the end of this second: it borrows from the next.
            Grant::Borrow => s + 1,
            Grant::Quota | Grant::Zero | Grant::NoReservoir => s + ttl + 1,
        };
        // Borrowing without requests reserves nothing: only a client with demand takes
        // its one request per second out of the reservoir.
        c.borrows = grant == Grant::Borrow && demand > 0.0;
        c.borrow_until = s + ttl + 1;
        c.reported_in = s;
        c.took = took.max(quota);
        c.borrowed = borrowed;
        c.recount(s);
        c.claimed = c
            .counted_next
            .max(u32::try_from(allocation).unwrap_or(u32::MAX));
        *committed_now = others_now + u64::from(c.counted_now);
        *committed_next = others_next + u64::from(c.counted_next);
        *claimed = others_claimed + u64::from(c.claimed);

        Target {
            fixed_rate: rule.fixed_rate,
            quota,
            quota_ttl: c.quota_until - 1,
            interval: interval_secs,
            grant,
        }
    }

    /// Forgets the state of rules that are gone (or were deleted and created again).
    pub fn retain_rules(&mut self, rules: &RuleSet) {
        self.rules.retain(|name, state| {
            rules
                .get(name)
                .is_some_and(|r| r.created_at == state.created_at)
        });
    }

    /// Clients that count as active for a rule (as of its last report).
    pub fn active_clients(&self, rule: &str) -> usize {
        self.rules.get(rule).map_or(0, |r| r.clients.len())
    }

    /// What the reports of the last minute added up to, per rule (by name) and
    /// 10-second window (newest first).
    pub fn summaries(&self, now: f64) -> Vec<StatisticSummary> {
        let horizon = SUMMARY_WINDOW_SECS * SUMMARY_WINDOWS as u64;
        let since = (now.max(0.0) as u64).saturating_sub(horizon);
        let mut names: Vec<&String> = self.rules.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            for w in self.rules[name].windows.iter().rev() {
                if w.start + SUMMARY_WINDOW_SECS > since {
                    out.push(StatisticSummary {
                        rule_name: name.clone(),
                        window_start: w.start,
                        counts: w.counts,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
