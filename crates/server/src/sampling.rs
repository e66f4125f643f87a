//! Centralized sampling over HTTP: rules kept in the store's configuration records (so
//! they survive restarts), `GetSamplingTargets` from `roentgen-sampling`'s quota
//! assignment, and the statistics clients report.
//!
//! Rule changes read the rules from the store and write them back one at a time. The
//! pollers' reads (`GetSamplingRules`, `GetSamplingTargets`) use a copy at most
//! [`RULES_CACHE`] old, which this process's own changes drop at once, so every
//! listener (HTTP and the daemon port) sees a change from its answer on, and a poll
//! seldom costs a store read. The quotas in force and the recent statistics live in
//! this process only; a restart forgets them and clients borrow until their next
//! report, as they do after any outage of the service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::response::Response;
use roentgen_api::groups::Tag;
use roentgen_api::sampling::{
    CreateSamplingRuleRequest, DeleteSamplingRuleRequest, GetSamplingRulesResult,
    GetSamplingStatisticSummariesResult, GetSamplingTargetsRequest, GetSamplingTargetsResult,
    PageRequest, SamplingRateBoost, SamplingRule, SamplingRuleRecord, SamplingRuleResult,
    SamplingStatisticSummary, SamplingTargetDocument, UnprocessedStatistics,
    UpdateSamplingRuleRequest,
};
use roentgen_api::{ApiError, EpochSeconds};
use roentgen_sampling::{
    ClientId, Counts, ErrorClass, Rule, RuleChanges, RuleDefinition, RuleRef, RuleSet,
    SamplingError, Targets, TargetsConfig,
};
use roentgen_store::ConfigKind;
use serde::{Deserialize, Serialize};

use crate::http::{AppState, AwsError, AwsJson, Scoped, json, now_seconds};

/// Region and account in the ARNs of a self-hosted deployment.
const ARN_PREFIX: &str = "arn:aws:xray:local:000000000000:sampling-rule";
/// Records per page of `GetSamplingRules` and `GetSamplingStatisticSummaries`. The SDKs
/// read only the first page of rules (the Python SDK does not follow `NextToken`), so a
/// page holds every rule an account can have (25 and `Default`).
pub const SAMPLING_PAGE: usize = 100;
/// `UnprocessedStatistics` code of a document naming no rule.
const UNKNOWN_RULE: &str = "UnknownRule";
/// `UnprocessedBoostStatistics` code: Roentgen does not boost rates.
const BOOST_NOT_SUPPORTED: &str = "BoostNotSupported";

/// How long the pollers' copy of the rules may be used before it is read again.
pub const RULES_CACHE: Duration = Duration::from_secs(1);
/// Sampling requests served at once; more are refused with `ThrottledException`, so a
/// flood of pollers cannot queue up without bound (the SDKs retry later).
pub const MAX_CONCURRENT_REQUESTS: usize = 64;

/// The [`Sampling`] state of each tenant other than the server's own (which is
/// [`AppState::sampling`]): quotas, statistics and cached rules never cross tenants.
/// Holds one entry per tenant that has called, at most as many as the key file names.
#[derive(Debug, Default)]
pub struct TenantSampling {
    by_tenant: Mutex<HashMap<roentgen_store::TenantId, Arc<Sampling>>>,
}

impl TenantSampling {
    /// The tenant's state, made on first use.
    pub fn of(&self, tenant: &roentgen_store::TenantId) -> Arc<Sampling> {
        let mut map = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(tenant.clone()).or_default())
    }
}

/// What sampling keeps in memory.
#[derive(Debug)]
pub struct Sampling {
    targets: Mutex<Targets>,
    permits: tokio::sync::Semaphore,
    /// Rule changes one at a time, so that the limit and unique names hold.
    writes: tokio::sync::Mutex<()>,
    /// The last deletion of a rule, or the start of this process (rules may have been
    /// deleted while it was down): part of `LastRuleModification`.
    changed_at: Mutex<f64>,
    /// The pollers' copy of the rules, when it was read, and the number of rule
    /// changes this process had made by then.
    cached: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    rules: Option<(Instant, Arc<RuleSet>)>,
    changes: u64,
}

impl Sampling {
    /// Sampling with no clients known, serving at most `concurrent` requests at once.
    pub fn new(config: TargetsConfig, concurrent: usize) -> Self {
        Self {
            targets: Mutex::new(Targets::new(config)),
            permits: tokio::sync::Semaphore::new(concurrent),
            writes: tokio::sync::Mutex::new(()),
            changed_at: Mutex::new(now_seconds()),
            cached: Mutex::new(Cached::default()),
        }
    }

    /// The cached rules if fresh, else the count of changes to read them under.
    fn cached_rules(&self) -> Result<Arc<RuleSet>, u64> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        match &cached.rules {
            Some((at, rules)) if at.elapsed() < RULES_CACHE => Ok(Arc::clone(rules)),
            _ => Err(cached.changes),
        }
    }

    /// Keeps rules read when `changes` changes had been made, unless one was made since.
    fn cache(&self, rules: Arc<RuleSet>, changes: u64) {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.changes == changes {
            cached.rules = Some((Instant::now(), rules));
        }
    }

    fn forget_rules(&self) {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached.rules = None;
        cached.changes += 1;
    }

    /// A place among the requests served now, or `ThrottledException`.
    fn admit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AwsError> {
        self.permits.try_acquire().map_err(|_| {
            AwsError(ApiError::throttled(format!(
                "more than {MAX_CONCURRENT_REQUESTS} sampling requests at once; retry with backoff"
            )))
        })
    }

    fn changed_at(&self) -> f64 {
        *self
            .changed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self, at: f64) {
        let mut c = self
            .changed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *c = c.max(at);
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Self::new(TargetsConfig::default(), MAX_CONCURRENT_REQUESTS)
    }
}

impl From<SamplingError> for AwsError {
    fn from(e: SamplingError) -> Self {
        match e.class() {
            ErrorClass::RuleLimitExceeded => Self(ApiError::rule_limit_exceeded(e.to_string())),
            ErrorClass::InvalidRequest => Self(ApiError::invalid_request(e.to_string())),
        }
    }
}

/// A rule as stored: the rule and its tags.
#[derive(Debug, Serialize, Deserialize)]
struct StoredRule {
    #[serde(flatten)]
    rule: Rule,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag>,
}

struct Loaded {
    rules: RuleSet,
    tags: HashMap<String, Vec<Tag>>,
}

fn arn(name: &str) -> String {
    format!("{ARN_PREFIX}/{name}")
}

async fn load(state: &AppState) -> Result<Loaded, AwsError> {
    let records = state
        .store
        .list_config(&state.tenant, ConfigKind::SamplingRule)
        .await?;
    let mut rules = Vec::with_capacity(records.len());
    let mut tags = HashMap::new();
    for (name, value) in records {
        match serde_json::from_value::<StoredRule>(value) {
            Ok(s) => {
                tags.insert(s.rule.name.clone(), s.tags);
                rules.push(s.rule);
            }
            Err(e) => {
                tracing::error!(rule = %name, "skipping an unreadable sampling rule record: {e}")
            }
        }
    }
    Ok(Loaded {
        rules: RuleSet::new(
            rules,
            Rule::default_rule(arn(roentgen_sampling::rule::DEFAULT_RULE_NAME)),
        ),
        tags,
    })
}

/// The rules for the pollers: the cached copy, or a fresh read.
async fn current_rules(state: &AppState) -> Result<Arc<RuleSet>, AwsError> {
    let changes = match state.sampling.cached_rules() {
        Ok(rules) => return Ok(rules),
        Err(changes) => changes,
    };
    let rules = Arc::new(load(state).await?.rules);
    state.sampling.cache(Arc::clone(&rules), changes);
    Ok(rules)
}

async fn save(state: &AppState, rule: Rule, tags: Vec<Tag>) -> Result<Rule, AwsError> {
    let name = rule.name.clone();
    let stored = StoredRule { rule, tags };
    let value = serde_json::to_value(&stored)
        .map_err(|e| ApiError::internal_failure(format!("encode sampling rule: {e}")))?;
    let saved = state
        .store
        .put_config(&state.tenant, ConfigKind::SamplingRule, &name, value)
        .await;
    // Stored or not, the next poll reads the rules again.
    state.sampling.forget_rules();
    saved?;
    Ok(stored.rule)
}

fn definition(r: SamplingRule) -> RuleDefinition {
    RuleDefinition {
        name: r.rule_name,
        resource_arn: r.resource_arn,
        priority: r.priority,
        fixed_rate: r.fixed_rate,
        reservoir_size: r.reservoir_size,
        service_name: r.service_name,
        service_type: r.service_type,
        host: r.host,
        http_method: r.http_method,
        url_path: r.url_path,
        version: r.version,
        attributes: r.attributes,
        rate_boost: r
            .sampling_rate_boost
            .map(|b| (b.max_rate, b.cooldown_window_minutes)),
    }
}

fn record(r: &Rule) -> SamplingRuleRecord {
    SamplingRuleRecord {
        sampling_rule: Some(SamplingRule {
            rule_name: Some(r.name.clone()),
            rule_arn: Some(r.arn.clone()),
            resource_arn: r.resource_arn.clone(),
            priority: i64::from(r.priority),
            fixed_rate: r.fixed_rate,
            reservoir_size: i64::from(r.reservoir_size),
            service_name: r.service_name.clone(),
            service_type: r.service_type.clone(),
            host: r.host.clone(),
            http_method: r.http_method.clone(),
            url_path: r.url_path.clone(),
            version: i64::from(r.version),
            attributes: r.attributes.clone(),
            sampling_rate_boost: r.rate_boost.map(|b| SamplingRateBoost {
                max_rate: b.max_rate,
                cooldown_window_minutes: i64::from(b.cooldown_window_minutes),
            }),
        }),
        created_at: Some(EpochSeconds(r.created_at)),
        modified_at: Some(EpochSeconds(r.modified_at)),
    }
}

fn rule_result(r: &Rule) -> Response {
    json(&SamplingRuleResult {
        sampling_rule_record: Some(record(r)),
    })
}

/// One page of `items` from the offset a `NextToken` holds, and the token of the next.
fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    size: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match token {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= items.len())
            .ok_or_else(|| {
                ApiError::invalid_request(format!("NextToken {t:?} is not one this service issued"))
            })?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

/// `POST /CreateSamplingRule`.
pub(crate) async fn create_sampling_rule(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<CreateSamplingRuleRequest>,
) -> Result<Response, AwsError> {
    let _served = state.sampling.admit()?;
    req.validate()?;
    let _one_at_a_time = state.sampling.writes.lock().await;
    let loaded = load(&state).await?;
    let rule = loaded
        .rules
        .create(definition(req.sampling_rule), arn, now_seconds())?;
    let rule = save(&state, rule, req.tags).await?;
    Ok(rule_result(&rule))
}

/// `POST /UpdateSamplingRule`.
pub(crate) async fn update_sampling_rule(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<UpdateSamplingRuleRequest>,
) -> Result<Response, AwsError> {
    let _served = state.sampling.admit()?;
    let u = req.sampling_rule_update;
    let target = RuleRef::from_parts(u.rule_name.as_deref(), u.rule_arn.as_deref())?;
    let changes = RuleChanges {
        resource_arn: u.resource_arn,
        priority: u.priority,
        fixed_rate: u.fixed_rate,
        reservoir_size: u.reservoir_size,
        service_name: u.service_name,
        service_type: u.service_type,
        host: u.host,
        http_method: u.http_method,
        url_path: u.url_path,
        attributes: u.attributes,
        rate_boost: u
            .sampling_rate_boost
            .map(|b| (b.max_rate, b.cooldown_window_minutes)),
    };
    let _one_at_a_time = state.sampling.writes.lock().await;
    let mut loaded = load(&state).await?;
    let rule = loaded.rules.update(target, changes, now_seconds())?;
    let tags = loaded.tags.remove(&rule.name).unwrap_or_default();
    let rule = save(&state, rule, tags).await?;
    Ok(rule_result(&rule))
}

/// `POST /DeleteSamplingRule`.
pub(crate) async fn delete_sampling_rule(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<DeleteSamplingRuleRequest>,
) -> Result<Response, AwsError> {
    let _served = state.sampling.admit()?;
    let target = RuleRef::from_parts(req.rule_name.as_deref(), req.rule_arn.as_deref())?;
    let _one_at_a_time = state.sampling.writes.lock().await;
    let loaded = load(&state).await?;
    let rule = loaded.rules.delete(target)?.clone();
    let deleted = state
        .store
        .delete_config(&state.tenant, ConfigKind::SamplingRule, &rule.name)
        .await;
    state.sampling.forget_rules();
    deleted?;
    state.sampling.changed(now_seconds());
    Ok(rule_result(&rule))
}

/// `POST /GetSamplingRules`: `Default` first, then the rules in the order they were
/// created.
pub(crate) async fn get_sampling_rules(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<PageRequest>,
) -> Result<Response, AwsError> {
    let _served = state.sampling.admit()?;
    let rules = current_rules(&state).await?;
    let records: Vec<SamplingRuleRecord> = rules.listing().into_iter().map(record).collect();
    let (records, next_token) = page(records, req.next_token.as_deref(), SAMPLING_PAGE)?;
    Ok(json(&GetSamplingRulesResult {
        sampling_rule_records: records,
        next_token,
    }))
}

/// `POST /SamplingTargets`: each client's quota for each rule it reports.
pub(crate) async fn get_sampling_targets(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<GetSamplingTargetsRequest>,
) -> Result<Response, AwsError> {
    let _served = state.sampling.admit()?;
    req.validate()?;
    let rules = current_rules(&state).await?;
    let now = now_seconds();
    let mut out = GetSamplingTargetsResult {
        // Rounded up: an SDK compares whole seconds with the time of its last fetch, and
        // a change in the second of that fetch must still look newer.
        last_rule_modification: Some(EpochSeconds(
            rules
                .last_modified()
                .max(state.sampling.changed_at())
                .ceil(),
        )),
        ..Default::default()
    };
    let m = &state.metrics;
    {
        let mut targets = state
            .sampling
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        targets.retain_rules(&rules);
        for d in req.sampling_statistics_documents {
            let Some(rule) = rules.get(&d.rule_name) else {
                m.sampling_target("unknown_rule");
                out.unprocessed_statistics.push(UnprocessedStatistics {
                    message: Some(format!("no sampling rule named {:?}", d.rule_name)),
                    rule_name: Some(d.rule_name),
                    error_code: Some(UNKNOWN_RULE.into()),
                });
                continue;
            };
            // `validate` has checked every ClientID already.
            let client = ClientId::parse(&d.client_id)
                .map_err(|e| ApiError::invalid_request(e.to_string()))?;
            let counts = Counts {
                requests: d.request_count.max(0) as u64,
                sampled: d.sampled_count.max(0) as u64,
                borrowed: d.borrow_count.unwrap_or(0).max(0) as u64,
            };
            let t = targets.report(rule, client, counts, now);
            m.sampling_target(t.grant.as_str());
            out.sampling_target_documents.push(SamplingTargetDocument {
                rule_name: Some(d.rule_name),
                fixed_rate: Some(t.fixed_rate),
                reservoir_quota: Some(i64::from(t.quota)),
                reservoir_quota_ttl: Some(EpochSeconds(t.quota_ttl as f64)),
                interval: Some(i64::from(t.interval)),
            });
        }
    }
    for d in req.sampling_boost_statistics_documents {
        out.unprocessed_boost_statistics
            .push(UnprocessedStatistics {
                rule_name: Some(d.rule_name),
                error_code: Some(BOOST_NOT_SUPPORTED.into()),
                message: Some("Roentgen does not boost sampling rates".into()),
            });
    }
    Ok(json(&out))
}

/// `POST /SamplingStatisticSummaries`: what clients reported per rule and 10-second
/// window over the last minute.
pub(crate) async fn get_sampling_statistic_summaries(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<PageRequest>,
) -> Result<Response, AwsError> {
    let _served = state.sampling.admit()?;
    let summaries: Vec<SamplingStatisticSummary> = state
        .sampling
        .targets
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .summaries(now_seconds())
        .into_iter()
        .map(|s| SamplingStatisticSummary {
            rule_name: Some(s.rule_name),
            timestamp: Some(EpochSeconds(s.window_start as f64)),
            request_count: Some(saturating_i64(s.counts.requests)),
            borrow_count: Some(saturating_i64(s.counts.borrowed)),
            sampled_count: Some(saturating_i64(s.counts.sampled)),
        })
        .collect();
    let (summaries, next_token) = page(summaries, req.next_token.as_deref(), SAMPLING_PAGE)?;
    Ok(json(&GetSamplingStatisticSummariesResult {
        sampling_statistic_summaries: summaries,
        next_token,
    }))
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_their_tokens() {
        let items: Vec<u32> = (0..7).collect();
        let (first, next) = page(items.clone(), None, 3).expect("first page");
        assert_eq!((first, next.as_deref()), (vec![0, 1, 2], Some("3")));
        let (second, next) = page(items.clone(), Some("3"), 3).expect("second page");
        assert_eq!((second, next.as_deref()), (vec![3, 4, 5], Some("6")));
        let (last, next) = page(items.clone(), Some("6"), 3).expect("last page");
        assert_eq!((last, next), (vec![6], None));
        assert_eq!(
            page(items.clone(), Some("7"), 3).expect("empty").0,
            Vec::<u32>::new()
        );
        for bad in ["8", "x", "-1"] {
            let err = page(items.clone(), Some(bad), 3).unwrap_err();
            assert_eq!(err.code(), "InvalidRequestException");
        }
    }

    #[test]
    fn rules_read_before_a_change_are_not_kept() {
        let sampling = Sampling::default();
        let rules = Arc::new(RuleSet::new([], Rule::default_rule(arn("Default"))));
        let Err(before) = sampling.cached_rules() else {
            panic!("nothing cached yet")
        };
        sampling.forget_rules(); // a change lands while the rules are being read
        sampling.cache(Arc::clone(&rules), before);
        let Err(now) = sampling.cached_rules() else {
            panic!("rules read before the change must not be kept")
        };
        sampling.cache(Arc::clone(&rules), now);
        assert!(sampling.cached_rules().is_ok());
    }

    #[test]
    fn requests_past_the_limit_are_throttled() {
        let sampling = Sampling::new(TargetsConfig::default(), 1);
        let first = sampling.admit().expect("room for one");
        let AwsError(e) = sampling.admit().expect_err("no room for two");
        assert_eq!((e.code(), e.status()), ("ThrottledException", 429));
        drop(first);
        assert!(sampling.admit().is_ok());
    }

    #[test]
    fn sampling_errors_become_aws_errors() {
        let AwsError(e) = SamplingError::LimitExceeded { limit: 25 }.into();
        assert_eq!((e.code(), e.status()), ("RuleLimitExceededException", 400));
        let AwsError(e) = SamplingError::DefaultNotDeletable.into();
        assert_eq!((e.code(), e.status()), ("InvalidRequestException", 400));
    }
}
