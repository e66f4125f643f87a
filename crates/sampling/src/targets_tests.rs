use super::*;
use crate::reservoir::{Decision, Reservoir};

fn rule(reservoir: u32) -> Rule {
    let mut r = Rule::default_rule("arn:r".into());
    r.name = "r".into();
    r.priority = 1;
    r.reservoir_size = reservoir;
    r.fixed_rate = 0.25;
    r.created_at = 1.0;
    r
}

fn id(n: u32) -> ClientId {
    ClientId::parse(&format!("{n:024x}")).expect("24 hex digits")
}

fn asked(requests: u64) -> Counts {
    Counts {
        requests,
        sampled: 0,
        borrowed: 0,
    }
}

#[test]
fn client_ids_are_24_hex_digits() {
    assert!(ClientId::parse("0123456789abcdefABCDEF01").is_ok());
    assert_eq!(
        ClientId::parse("0123456789abcdef0123456"),
        Err(InvalidClientId)
    );
    assert_eq!(
        ClientId::parse("0123456789abcdef012345678"),
        Err(InvalidClientId)
    );
    assert_eq!(
        ClientId::parse("0123456789abcdef0123456g"),
        Err(InvalidClientId)
    );
    assert_eq!(ClientId::parse("ééééééééééé0"), Err(InvalidClientId));
    assert_eq!(id(255).to_string(), "0000000000000000000000ff");
}

#[test]
fn one_client_doubles_up_to_the_whole_reservoir() {
    let mut t = Targets::default();
    let r = rule(100);
    let mut quotas = Vec::new();
    for round in 0..9 {
        let now = 1000.5 + 10.0 * f64::from(round);
        let target = t.report(&r, id(1), asked(10_000), now);
        assert_eq!(target.interval, 10);
        assert_eq!(target.fixed_rate, 0.25);
        assert_eq!(target.quota_ttl, now as u64 + 20);
        quotas.push(target.quota);
    }
    assert_eq!(quotas, [2, 4, 8, 16, 32, 64, 100, 100, 100]);
}

#[test]
fn a_rule_without_reservoir_answers_zero_for_the_whole_ttl() {
    let mut t = Targets::default();
    let target = t.report(&rule(0), id(1), asked(50), 500.2);
    assert_eq!(target.grant, Grant::NoReservoir);
    assert_eq!((target.quota, target.quota_ttl), (0, 520));
}

/// Reports of `clients` (id, requests per report) at `phases` seconds into each
/// 10-second round; returns the quota of each client per round.
fn rounds(reservoir: u32, clients: &[(u32, u64)], n: usize) -> Vec<Vec<u32>> {
    let mut t = Targets::default();
    let r = rule(reservoir);
    (0..n)
        .map(|round| {
            clients
                .iter()
                .enumerate()
                .map(|(i, &(c, requests))| {
                    let now = 10_000.0 + 10.0 * round as f64 + 0.7 * i as f64;
                    t.report(&r, id(c), asked(requests), now).quota
                })
                .collect()
        })
        .collect()
}

#[test]
fn equal_clients_split_the_reservoir() {
    let all = rounds(10, &[(1, 500), (2, 500), (3, 500), (4, 500)], 600);
    assert_eq!(all[0], [2, 2, 2, 2], "slow start");
    let mut full = 0;
    for quotas in &all[2..] {
        let sum: u32 = quotas.iter().sum();
        assert!(sum <= 10, "{quotas:?}");
        full += usize::from(sum == 10);
        assert!(quotas.iter().all(|q| (2..=3).contains(q)), "{quotas:?}");
    }
    // Allocations change only when the rounding offset turns, once a minute.
    assert!(
        full * 10 >= 598 * 9,
        "the whole reservoir in {full} of 598 rounds"
    );
    for c in 0..4 {
        let mean = all[2..].iter().map(|q| f64::from(q[c])).sum::<f64>() / 598.0;
        assert!(
            (2.3..=2.7).contains(&mean),
            "client {c}: {mean} per second on average"
        );
    }
}

#[test]
fn quotas_follow_demand() {
    let all = rounds(12, &[(1, 1000), (2, 3000)], 20);
    assert_eq!(&all[..4], [[2, 2], [3, 4], [3, 8], [3, 9]], "slow start");
    assert!(all[4..].iter().all(|q| q == &[3, 9]), "{all:?}");
}

#[test]
fn small_shares_take_turns() {
    let mut t = Targets::default();
    let r = rule(1);
    // Whether each client may trace one request per second from the next second on.
    let mut holding = [false; 3];
    let mut turns = [0; 3];
    for round in 0..360 {
        for i in 0..3 {
            let now = 10_000.0 + 10.0 * f64::from(round) + 3.0 * i as f64;
            let target = t.report(&r, id(i as u32), asked(100), now);
            holding[i] = match target.grant {
                Grant::Quota => {
                    assert_eq!(target.quota, 1);
                    true
                }
                Grant::Borrow => true,
                Grant::Zero => {
                    assert_eq!(target.quota_ttl, now as u64 + 20);
                    false
                }
                Grant::NoReservoir => panic!("the rule has a reservoir"),
            };
            turns[i] += usize::from(holding[i]);
            assert!(
                holding.iter().filter(|h| **h).count() <= 1,
                "two clients on a reservoir of 1"
            );
        }
    }
    assert!(turns.iter().all(|n| (70..=170).contains(n)), "{turns:?}");
}

#[test]
fn a_client_without_requests_borrows_when_they_come() {
    let mut t = Targets::default();
    let target = t.report(&rule(5), id(1), asked(0), 100.3);
    assert_eq!(target.grant, Grant::Borrow);
    // A quota of 0 that lapses this second: from the next one, no quota, so borrowing.
    assert_eq!((target.quota, target.quota_ttl), (0, 100));
}

#[test]
fn a_shrinking_quota_counts_until_the_end_of_its_second() {
    let mut t = Targets::default();
    let r = rule(4);
    // Client 1 works up to the whole reservoir.
    for round in 0..3 {
        t.report(&r, id(1), asked(1000), 100.0 + 10.0 * f64::from(round));
    }
    assert_eq!(t.report(&r, id(1), asked(1000), 130.0).quota, 4);
    // Client 2 appears while client 1 holds everything: a zero quota.
    assert_eq!(t.report(&r, id(2), asked(1000), 135.0).grant, Grant::Zero);
    // Client 1 shrinks to its share at 140.1; in that same second it may have used 4
    // already, so client 2 gets nothing this second, but borrows from the next.
    assert_eq!(t.report(&r, id(1), asked(1000), 140.1).quota, 2);
    let borrow = t.report(&r, id(2), asked(1000), 140.9);
    assert_eq!((borrow.grant, borrow.quota_ttl), (Grant::Borrow, 140));
    // At 141 it may have borrowed one already: 1 more this second, 2 from the next.
    assert_eq!(t.report(&r, id(2), asked(1000), 141.0).quota, 1);
    assert_eq!(t.report(&r, id(2), asked(1000), 142.0).quota, 2);
}

#[test]
fn clients_that_stop_reporting_are_forgotten() {
    let mut t = Targets::default();
    let r = rule(10);
    t.report(&r, id(1), asked(100), 100.0);
    t.report(&r, id(2), asked(100), 101.0);
    assert_eq!(t.active_clients("r"), 2);
    // 25 s later client 1's report and quota are 20 s old: only client 2 counts.
    t.report(&r, id(2), asked(100), 125.0);
    assert_eq!(t.active_clients("r"), 1);
}

#[test]
fn the_client_table_is_bounded() {
    let mut t = Targets::new(TargetsConfig {
        max_clients_per_rule: 3,
        ..TargetsConfig::default()
    });
    let r = rule(10);
    for c in 0..50 {
        t.report(&r, id(c), asked(10), 100.0 + f64::from(c) * 0.01);
        assert!(t.active_clients("r") <= 3);
    }
}

#[test]
fn statistics_add_up_per_ten_seconds_for_a_minute() {
    let mut t = Targets::default();
    let r = rule(10);
    let c = Counts {
        requests: 10,
        sampled: 2,
        borrowed: 1,
    };
    t.report(&r, id(1), c, 1001.0);
    t.report(&r, id(2), c, 1009.9);
    t.report(&r, id(1), c, 1011.0);
    let s = t.summaries(1012.0);
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].window_start, s[0].counts), (1010, c));
    assert_eq!(s[1].window_start, 1000);
    assert_eq!(
        s[1].counts,
        Counts {
            requests: 20,
            sampled: 4,
            borrowed: 2
        }
    );
    assert!(t.summaries(1080.0).is_empty(), "older than a minute");
}

#[test]
fn deleted_and_recreated_rules_start_afresh() {
    let mut t = Targets::default();
    let r = rule(10);
    t.report(&r, id(1), asked(10), 100.0);
    let set = RuleSet::new([r.clone()], Rule::default_rule(String::new()));
    t.retain_rules(&set);
    assert_eq!(t.active_clients("r"), 1);
    let mut again = r.clone();
    again.created_at = 50.0;
    t.retain_rules(&RuleSet::new([again], Rule::default_rule(String::new())));
    assert_eq!(t.active_clients("r"), 0);
    t.report(&r, id(1), asked(10), 101.0);
    t.retain_rules(&RuleSet::new([], Rule::default_rule(String::new())));
    assert_eq!(t.active_clients("r"), 0);
    assert!(t.summaries(101.0).is_empty());
}

/// SDK instances that decide as the X-Ray SDKs do, report every 10 s at their own
/// phase, and send `rate` requests per second spread over tenths of a second. Returns
/// what the reservoir gave out (taken + borrowed) in each second, and the second after
/// the last client reported for the first time (until then, clients the service does
/// not know of yet borrow on their own).
fn simulate(reservoir: u32, clients: &[(u32, f64)], seconds: u64) -> (Vec<u64>, u64) {
    struct Sim {
        rate: u32,
        next_report: f64,
        reservoir: Reservoir,
        counts: Counts,
        reported: Option<u64>,
    }
    let start = 1_000_000u64;
    let r = rule(reservoir);
    let mut targets = Targets::default();
    let mut sims: Vec<Sim> = clients
        .iter()
        .map(|&(rate, phase)| Sim {
            rate,
            next_report: start as f64 + 10.0 + phase,
            reservoir: Reservoir::new(),
            counts: Counts::default(),
            reported: None,
        })
        .collect();
    let mut used = vec![0u64; seconds as usize];
    for s in 0..seconds {
        let sec = start + s;
        for tenth in 0..10u32 {
            let now = sec as f64 + f64::from(tenth) / 10.0;
            for (i, sim) in sims.iter_mut().enumerate() {
                let n = sim.rate * (tenth + 1) / 10 - sim.rate * tenth / 10;
                for _ in 0..n {
                    let d = sim.reservoir.decide(sec, reservoir > 0, 0.0, 0.5);
                    if matches!(d, Decision::Take | Decision::Borrow) {
                        used[s as usize] += 1;
                    }
                    sim.counts.count(d);
                }
                if now >= sim.next_report {
                    sim.next_report += 10.0;
                    if sim.counts.requests > 0 {
                        let got = targets.report(&r, id(i as u32), sim.counts.take(), now);
                        sim.reservoir.load(Some(got.quota), Some(got.quota_ttl));
                        sim.reported.get_or_insert(s);
                    }
                }
            }
        }
    }
    let all_reported = sims
        .iter()
        .map(|s| s.reported.unwrap_or(seconds))
        .max()
        .unwrap_or(0);
    (used, all_reported + 1)
}

#[test]
fn several_sdk_clients_never_exceed_the_reservoir() {
    let (used, from) = simulate(10, &[(50, 0.05), (50, 0.4), (50, 0.41), (50, 7.3)], 90);
    for (s, u) in used.iter().enumerate() {
        assert!(*u <= 10, "second {s}: {u} traced: {used:?}");
    }
    // Before the first reports each borrows one per second; later the quotas are used.
    assert_eq!(used[3], 4);
    let steady: u64 = used[from as usize + 15..].iter().sum();
    let seconds = (used.len() - from as usize - 15) as u64;
    assert!(steady >= 9 * seconds, "{steady} over {seconds} s: {used:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(24))]

    /// Once every client has reported, what the reservoir gives out in any second is at
    /// most its size, whatever the demands, phases and number of clients.
    #[test]
    fn the_reservoir_is_never_exceeded(
        reservoir in 0u32..25,
        clients in proptest::collection::vec((0u32..60, 0.0f64..10.0), 1..12),
    ) {
        let (used, from) = simulate(reservoir, &clients, 70);
        for (s, u) in used.iter().enumerate().skip(from as usize) {
            proptest::prop_assert!(
                *u <= u64::from(reservoir),
                "second {}: {} traced of {}: {:?}", s, u, reservoir, used
            );
        }
    }
}
