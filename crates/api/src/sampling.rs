//! Centralized sampling: `CreateSamplingRule`, `UpdateSamplingRule`,
//! `DeleteSamplingRule`, `GetSamplingRules`, `GetSamplingTargets`,
//! `GetSamplingStatisticSummaries`.
//!
//! Numbers that have a range in the model are read as `i64`/`f64` so that a value out of
//! range reaches validation and gets a message naming its constraint, instead of a
//! deserialization error. The rule constraints themselves are checked by the sampling
//! logic; `validate()` here checks the rest of each request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::groups::Tag;
use crate::timestamp::EpochSeconds;

/// Statistics documents per `GetSamplingTargets` call (both kinds).
pub const MAX_STATISTICS_DOCUMENTS: usize = 25;
/// Tags on a sampling rule ("Maximum number of user-applied tags per resource: 50").
pub const MAX_RULE_TAGS: usize = 50;

/// `SamplingRule`: the rule in `CreateSamplingRule` and in every `SamplingRuleRecord`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingRule {
    /// 1–32 characters; required when creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// The rule's ARN (set by the service).
    #[serde(rename = "RuleARN", default, skip_serializing_if = "Option::is_none")]
    pub rule_arn: Option<String>,
    /// Matches the ARN of the resource the service runs on (≤ 500).
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    /// 1–9999.
    pub priority: i64,
    /// 0–1.
    pub fixed_rate: f64,
    /// ≥ 0.
    pub reservoir_size: i64,
    /// ≤ 64.
    pub service_name: String,
    /// ≤ 64.
    pub service_type: String,
    /// ≤ 64.
    pub host: String,
    /// ≤ 10.
    #[serde(rename = "HTTPMethod")]
    pub http_method: String,
    /// ≤ 128.
    #[serde(rename = "URLPath")]
    pub url_path: String,
    /// 1.
    pub version: i64,
    /// At most 5; keys and values 1–32.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Adaptive sampling settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate_boost: Option<SamplingRateBoost>,
}

/// `SamplingRateBoost`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingRateBoost {
    /// 0–1.
    pub max_rate: f64,
    /// ≥ 0.
    pub cooldown_window_minutes: i64,
}

/// `SamplingRuleUpdate`: the fields to change, the rule named by `RuleName` or `RuleARN`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingRuleUpdate {
    /// Names the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Names the rule.
    #[serde(rename = "RuleARN", default, skip_serializing_if = "Option::is_none")]
    pub rule_arn: Option<String>,
    /// New `ResourceARN`.
    #[serde(
        rename = "ResourceARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_arn: Option<String>,
    /// New `Priority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// New `FixedRate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_rate: Option<f64>,
    /// New `ReservoirSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservoir_size: Option<i64>,
    /// New `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// New `ServiceName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// New `ServiceType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// New `HTTPMethod`.
    #[serde(
        rename = "HTTPMethod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_method: Option<String>,
    /// New `URLPath`.
    #[serde(rename = "URLPath", default, skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    /// New `Attributes` (all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    /// New `SamplingRateBoost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate_boost: Option<SamplingRateBoost>,
}

/// `SamplingRuleRecord`: a rule with its times.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingRuleRecord {
    /// The rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rule: Option<SamplingRule>,
    /// When it was created (`Default`: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochSeconds>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<EpochSeconds>,
}

/// Input of `CreateSamplingRule` (`POST /CreateSamplingRule`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSamplingRuleRequest {
    /// Required.
    pub sampling_rule: SamplingRule,
    /// Tags (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl CreateSamplingRuleRequest {
    /// Checks the tags as AWS documents them for sampling rules: at most 50, keys 1–128
    /// and values 0–256 characters of letters, digits, spaces and `_ . : / = + - @`,
    /// keys not starting with `aws:`. (The rule is checked by the sampling logic.)
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.tags.len() > MAX_RULE_TAGS {
            return Err(ApiError::invalid_request(format!(
                "{} Tags: a sampling rule takes at most {MAX_RULE_TAGS}",
                self.tags.len()
            )));
        }
        let allowed = |s: &str| {
            s.chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c))
        };
        for t in &self.tags {
            let k = t.key.chars().count();
            if k == 0 || k > 128 || t.value.chars().count() > 256 {
                return Err(ApiError::invalid_request(format!(
                    "tag {:?}: keys are 1 to 128 characters, values at most 256",
                    t.key
                )));
            }
            if !allowed(&t.key) || !allowed(&t.value) {
                return Err(ApiError::invalid_request(format!(
                    "tag {:?}: keys and values take letters, digits, spaces and _ . : / = + - @",
                    t.key
                )));
            }
            if t.key.to_ascii_lowercase().starts_with("aws:") {
                return Err(ApiError::invalid_request(format!(
                    "tag {:?}: the prefix aws: is reserved for AWS",
                    t.key
                )));
            }
        }
        Ok(())
    }
}

/// `{ "SamplingRuleRecord": … }`, the answer of create, update and delete.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingRuleResult {
    /// The rule as it is now (as it was, for delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rule_record: Option<SamplingRuleRecord>,
}

/// Input of `UpdateSamplingRule` (`POST /UpdateSamplingRule`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSamplingRuleRequest {
    /// Required.
    pub sampling_rule_update: SamplingRuleUpdate,
}

/// Input of `DeleteSamplingRule` (`POST /DeleteSamplingRule`): the rule by name or ARN.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSamplingRuleRequest {
    /// Names the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Names the rule.
    #[serde(rename = "RuleARN", default, skip_serializing_if = "Option::is_none")]
    pub rule_arn: Option<String>,
}

/// Input of `GetSamplingRules` and `GetSamplingStatisticSummaries`: a page token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PageRequest {
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Output of `GetSamplingRules`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSamplingRulesResult {
    /// The rules.
    #[serde(default)]
    pub sampling_rule_records: Vec<SamplingRuleRecord>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `SamplingStatisticsDocument`: one client's counts for one rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingStatisticsDocument {
    /// 1–32 characters.
    pub rule_name: String,
    /// 24 hexadecimal digits.
    #[serde(rename = "ClientID")]
    pub client_id: String,
    /// When the client reported.
    pub timestamp: EpochSeconds,
    /// ≥ 0.
    pub request_count: i64,
    /// ≥ 0.
    pub sampled_count: i64,
    /// ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrow_count: Option<i64>,
}

/// `SamplingBoostStatisticsDocument`: anomaly counts for adaptive sampling.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingBoostStatisticsDocument {
    /// 1–32 characters.
    pub rule_name: String,
    /// ≤ 64.
    pub service_name: String,
    /// When the client reported.
    pub timestamp: EpochSeconds,
    /// ≥ 0.
    pub anomaly_count: i64,
    /// ≥ 0.
    pub total_count: i64,
    /// ≥ 0.
    pub sampled_anomaly_count: i64,
}

/// Input of `GetSamplingTargets` (`POST /SamplingTargets`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSamplingTargetsRequest {
    /// Required, at most 25.
    pub sampling_statistics_documents: Vec<SamplingStatisticsDocument>,
    /// At most 25.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sampling_boost_statistics_documents: Vec<SamplingBoostStatisticsDocument>,
}

fn count_at_least_zero(what: &str, v: i64) -> Result<(), ApiError> {
    if v < 0 {
        return Err(ApiError::invalid_request(format!(
            "1 validation error detected: Value '{v}' at '{what}' failed to satisfy \
             constraint: Member must have value greater than or equal to 0"
        )));
    }
    Ok(())
}

fn rule_name_length(what: &str, name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if n == 0 || n > 32 {
        return Err(ApiError::invalid_request(format!(
            "{what} {name:?} must be 1 to 32 characters"
        )));
    }
    Ok(())
}

impl GetSamplingTargetsRequest {
    /// Checks the model's constraints: at most 25 documents of each kind, rule names of
    /// 1–32 characters, `ClientID` of 24 hexadecimal digits, counts of at least 0.
    pub fn validate(&self) -> Result<(), ApiError> {
        for (what, n) in [
            (
                "SamplingStatisticsDocuments",
                self.sampling_statistics_documents.len(),
            ),
            (
                "SamplingBoostStatisticsDocuments",
                self.sampling_boost_statistics_documents.len(),
            ),
        ] {
            if n > MAX_STATISTICS_DOCUMENTS {
                return Err(ApiError::invalid_request(format!(
                    "{what} has {n} documents; at most {MAX_STATISTICS_DOCUMENTS} per call"
                )));
            }
        }
        for d in &self.sampling_statistics_documents {
            rule_name_length("RuleName", &d.rule_name)?;
            if d.client_id.len() != 24 || !d.client_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::invalid_request(format!(
                    "ClientID {:?} must be 24 hexadecimal digits",
                    d.client_id.chars().take(40).collect::<String>()
                )));
            }
            count_at_least_zero("RequestCount", d.request_count)?;
            count_at_least_zero("SampledCount", d.sampled_count)?;
            count_at_least_zero("BorrowCount", d.borrow_count.unwrap_or(0))?;
        }
        for d in &self.sampling_boost_statistics_documents {
            rule_name_length("RuleName", &d.rule_name)?;
            if d.service_name.chars().count() > 64 {
                return Err(ApiError::invalid_request(
                    "ServiceName must be at most 64 characters",
                ));
            }
            count_at_least_zero("AnomalyCount", d.anomaly_count)?;
            count_at_least_zero("TotalCount", d.total_count)?;
            count_at_least_zero("SampledAnomalyCount", d.sampled_anomaly_count)?;
        }
        Ok(())
    }
}

/// `SamplingTargetDocument`: the quota one client gets for one rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingTargetDocument {
    /// The rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// The rule's fixed rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_rate: Option<f64>,
    /// Requests per second this client may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservoir_quota: Option<i64>,
    /// Until when the quota holds.
    #[serde(
        rename = "ReservoirQuotaTTL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reservoir_quota_ttl: Option<EpochSeconds>,
    /// Seconds until the next report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
}

/// `UnprocessedStatistics`: a document the service did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnprocessedStatistics {
    /// The rule the document named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// A stable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Output of `GetSamplingTargets`. The lists are always present (empty when so), as AWS
/// answers; the Python SDK reads `LastRuleModification` unconditionally.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSamplingTargetsResult {
    /// One per processed statistics document.
    #[serde(default)]
    pub sampling_target_documents: Vec<SamplingTargetDocument>,
    /// The last change to the rules; a client whose rules are older fetches them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rule_modification: Option<EpochSeconds>,
    /// Documents not processed.
    #[serde(default)]
    pub unprocessed_statistics: Vec<UnprocessedStatistics>,
    /// Boost documents not processed.
    #[serde(default)]
    pub unprocessed_boost_statistics: Vec<UnprocessedStatistics>,
}

/// `SamplingStatisticSummary`: one rule's reports over one 10-second window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingStatisticSummary {
    /// The rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Start of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<EpochSeconds>,
    /// Requests that matched the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_count: Option<i64>,
    /// Requests traced by borrowing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrow_count: Option<i64>,
    /// Requests traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_count: Option<i64>,
}

/// Output of `GetSamplingStatisticSummaries`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSamplingStatisticSummariesResult {
    /// The summaries.
    #[serde(default)]
    pub sampling_statistic_summaries: Vec<SamplingStatisticSummary>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_request;

    const RULE: &str = r#"{"SamplingRule": {"RuleName": "base", "ResourceARN": "*",
        "Priority": 9000, "FixedRate": 0.1, "ReservoirSize": 2, "ServiceName": "Scorekeep",
        "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1}}"#;

    #[test]
    fn create_reads_the_model_names() {
        let req: CreateSamplingRuleRequest = decode_request(RULE.as_bytes()).expect("valid");
        let r = &req.sampling_rule;
        assert_eq!(r.rule_name.as_deref(), Some("base"));
        assert_eq!((r.priority, r.reservoir_size, r.version), (9000, 2, 1));
        assert_eq!((r.http_method.as_str(), r.url_path.as_str()), ("*", "*"));
        assert!(r.attributes.is_empty());
        req.validate().expect("no tags");
    }

    #[test]
    fn a_missing_rule_field_names_itself() {
        let body = RULE.replace(r#""Priority": 9000, "#, "");
        let err = decode_request::<CreateSamplingRuleRequest>(body.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "InvalidRequestException");
        assert!(err.message().contains("'Priority'"), "{}", err.message());
    }

    #[test]
    fn records_serialize_as_aws_answers() {
        let rule: CreateSamplingRuleRequest = decode_request(RULE.as_bytes()).expect("valid");
        let record = SamplingRuleRecord {
            sampling_rule: Some(rule.sampling_rule),
            created_at: Some(EpochSeconds(0.0)),
            modified_at: Some(EpochSeconds(1_530_558_121.0)),
        };
        let v = serde_json::to_value(&record).expect("encode");
        assert_eq!(v["SamplingRule"]["HTTPMethod"], "*");
        assert_eq!(v["SamplingRule"]["Attributes"], serde_json::json!({}));
        assert_eq!(v["ModifiedAt"], 1_530_558_121.0);
        let targets = serde_json::to_value(GetSamplingTargetsResult::default()).expect("encode");
        assert_eq!(targets["UnprocessedStatistics"], serde_json::json!([]));
    }

    fn targets(docs: serde_json::Value) -> Result<(), ApiError> {
        let body = serde_json::json!({ "SamplingStatisticsDocuments": docs }).to_string();
        decode_request::<GetSamplingTargetsRequest>(body.as_bytes())?.validate()
    }

    fn doc() -> serde_json::Value {
        serde_json::json!({"RuleName": "base", "ClientID": "ABCDEF1234567890ABCDEF10",
            "Timestamp": 1530922806, "RequestCount": 110, "SampledCount": 20, "BorrowCount": 10})
    }

    #[test]
    fn targets_validation() {
        targets(serde_json::json!([doc()])).expect("the AWS CLI example");
        targets(serde_json::json!(vec![doc(); 25])).expect("25 documents");
        let err = targets(serde_json::json!(vec![doc(); 26])).unwrap_err();
        assert!(err.message().contains("at most 25"), "{}", err.message());
        for (field, value, says) in [
            ("ClientID", serde_json::json!("abc"), "24 hexadecimal"),
            (
                "ClientID",
                serde_json::json!("ZZCDEF1234567890ABCDEF10"),
                "24 hexadecimal",
            ),
            ("RuleName", serde_json::json!(""), "1 to 32"),
            ("RuleName", serde_json::json!("r".repeat(33)), "1 to 32"),
            ("RequestCount", serde_json::json!(-1), "'RequestCount'"),
            ("SampledCount", serde_json::json!(-1), "'SampledCount'"),
            ("BorrowCount", serde_json::json!(-1), "'BorrowCount'"),
        ] {
            let mut d = doc();
            d[field] = value;
            let err = targets(serde_json::json!([d])).unwrap_err();
            assert_eq!(err.code(), "InvalidRequestException");
            assert!(err.message().contains(says), "{field}: {}", err.message());
        }
        let mut d = doc();
        d.as_object_mut().map(|o| o.remove("ClientID"));
        let err = targets(serde_json::json!([d])).unwrap_err();
        assert!(err.message().contains("'ClientID'"), "{}", err.message());
    }

    #[test]
    fn tag_rules() {
        let with = |key: &str, value: &str| CreateSamplingRuleRequest {
            tags: vec![Tag {
                key: key.into(),
                value: value.into(),
            }],
            ..Default::default()
        };
        with("team", "payments").validate().expect("plain tag");
        with("a b_c.d:e/f=g+h-i@j", "")
            .validate()
            .expect("every allowed character");
        assert!(with("", "v").validate().is_err());
        assert!(with("aws:owner", "v").validate().is_err());
        assert!(with("team", "pay$").validate().is_err());
        assert!(with(&"k".repeat(129), "v").validate().is_err());
        let many = CreateSamplingRuleRequest {
            tags: (0..51)
                .map(|i| Tag {
                    key: format!("k{i}"),
                    value: "v".into(),
                })
                .collect(),
            ..Default::default()
        };
        assert!(many.validate().is_err());
    }
}
