//! Sampling rules: what they hold, the constraints AWS documents for them, the built-in
//! `Default` rule, and how a request is matched against one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::SamplingError;
use crate::wildcard::wildcard_match;

/// The name of the rule every account has, which matches when no other rule does.
pub const DEFAULT_RULE_NAME: &str = "Default";
/// `Default`'s priority: after every other rule (those take 1 to 9999).
pub const DEFAULT_PRIORITY: u32 = 10_000;
/// `Default`'s reservoir out of the box: one request per second.
pub const DEFAULT_RESERVOIR_SIZE: u32 = 1;
/// `Default`'s fixed rate out of the box: 5 % of the requests beyond the reservoir.
pub const DEFAULT_FIXED_RATE: f64 = 0.05;

/// Rule names: 1 to 32 characters (`RuleName` in the X-Ray API reference).
pub const RULE_NAME_MAX_CHARS: usize = 32;
/// Priorities users may give: 1 to 9999.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = 1..=9999;
/// `ResourceARN`: at most 500 characters.
pub const RESOURCE_ARN_MAX_CHARS: usize = 500;
/// `ServiceName`, `ServiceType` and `Host`: at most 64 characters each.
pub const NAME_MAX_CHARS: usize = 64;
/// `HTTPMethod`: at most 10 characters.
pub const HTTP_METHOD_MAX_CHARS: usize = 10;
/// `URLPath`: at most 128 characters.
pub const URL_PATH_MAX_CHARS: usize = 128;
/// `Attributes`: at most 5 entries, keys and values of 1 to 32 characters.
pub const MAX_ATTRIBUTES: usize = 5;
/// Attribute keys and values: at most 32 characters.
pub const ATTRIBUTE_MAX_CHARS: usize = 32;
/// The one version of the rule format there is (`Version`); the SDKs ignore any other.
pub const RULE_VERSION: u32 = 1;
/// The largest value of the API's integer type (`ReservoirSize`, `CooldownWindowMinutes`).
pub const MAX_API_INTEGER: i64 = i32::MAX as i64;

/// A sampling rule as Roentgen keeps it.
///
/// Build one with [`crate::RuleSet::create`] (which checks every constraint) or
/// [`Rule::default_rule`]; read stored ones back with serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique name, 1 to 32 characters.
    pub name: String,
    /// The rule's ARN.
    pub arn: String,
    /// Matches the ARN of the resource the service runs on.
    pub resource_arn: String,
    /// Lower first; 1 to 9999 (`Default`: 10000).
    pub priority: u32,
    /// Share of the requests beyond the reservoir to trace, 0 to 1.
    pub fixed_rate: f64,
    /// Requests per second to trace before the fixed rate applies, across all clients.
    pub reservoir_size: u32,
    /// Matches the service's name.
    pub service_name: String,
    /// Matches the service's origin (`AWS::EC2::Instance`).
    pub service_type: String,
    /// Matches the request's host.
    pub host: String,
    /// Matches the request's method.
    pub http_method: String,
    /// Matches the request's path.
    pub url_path: String,
    /// Format version; always 1.
    pub version: u32,
    /// Each key must be among the request's attributes with a value the pattern matches.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Adaptive sampling settings, kept as given (Roentgen does not boost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_boost: Option<RateBoost>,
    /// Creation time, epoch seconds (`Default`: 0).
    pub created_at: f64,
    /// Last change, epoch seconds.
    pub modified_at: f64,
}

/// `SamplingRateBoost`: the most a boost may raise the rate, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateBoost {
    /// 0 to 1.
    pub max_rate: f64,
    /// At most one boost per this many minutes.
    pub cooldown_window_minutes: u32,
}

/// What `CreateSamplingRule` asks for, before any check. Numbers are as wide as JSON
/// allows, so that a value out of range gets a message naming its constraint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleDefinition {
    /// Required when creating.
    pub name: Option<String>,
    /// `ResourceARN`.
    pub resource_arn: String,
    /// `Priority`.
    pub priority: i64,
    /// `FixedRate`.
    pub fixed_rate: f64,
    /// `ReservoirSize`.
    pub reservoir_size: i64,
    /// `ServiceName`.
    pub service_name: String,
    /// `ServiceType`.
    pub service_type: String,
    /// `Host`.
    pub host: String,
    /// `HTTPMethod`.
    pub http_method: String,
    /// `URLPath`.
    pub url_path: String,
    /// `Version`.
    pub version: i64,
    /// `Attributes`.
    pub attributes: BTreeMap<String, String>,
    /// `SamplingRateBoost`: `MaxRate`, `CooldownWindowMinutes`.
    pub rate_boost: Option<(f64, i64)>,
}

/// What `UpdateSamplingRule` asks to change; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleChanges {
    /// `ResourceARN`.
    pub resource_arn: Option<String>,
    /// `Priority`.
    pub priority: Option<i64>,
    /// `FixedRate`.
    pub fixed_rate: Option<f64>,
    /// `ReservoirSize`.
    pub reservoir_size: Option<i64>,
    /// `ServiceName`.
    pub service_name: Option<String>,
    /// `ServiceType`.
    pub service_type: Option<String>,
    /// `Host`.
    pub host: Option<String>,
    /// `HTTPMethod`.
    pub http_method: Option<String>,
    /// `URLPath`.
    pub url_path: Option<String>,
    /// `Attributes` (replaces all of them; `{}` removes them).
    pub attributes: Option<BTreeMap<String, String>>,
    /// `SamplingRateBoost`: `MaxRate`, `CooldownWindowMinutes`.
    pub rate_boost: Option<(f64, i64)>,
}

/// What a request looks like to the rules. A field the caller does not know (`None`)
/// matches every pattern, as in the X-Ray SDKs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SamplingRequest<'a> {
    /// The service's name (the segment's name).
    pub service_name: Option<&'a str>,
    /// The service's origin.
    pub service_type: Option<&'a str>,
    /// The request's host.
    pub host: Option<&'a str>,
    /// The request's method.
    pub http_method: Option<&'a str>,
    /// The request's path.
    pub url_path: Option<&'a str>,
    /// The ARN of the resource the service runs on.
    pub resource_arn: Option<&'a str>,
    /// Request attributes, for rules with `Attributes`.
    pub attributes: &'a [(&'a str, &'a str)],
}

impl Rule {
    /// The built-in `Default` rule as it is until someone changes it: every request, one
    /// per second and 5 % of the rest.
    pub fn default_rule(arn: String) -> Self {
        Self {
            name: DEFAULT_RULE_NAME.to_string(),
            arn,
            resource_arn: "*".into(),
            priority: DEFAULT_PRIORITY,
            fixed_rate: DEFAULT_FIXED_RATE,
            reservoir_size: DEFAULT_RESERVOIR_SIZE,
            service_name: "*".into(),
            service_type: "*".into(),
            host: "*".into(),
            http_method: "*".into(),
            url_path: "*".into(),
            version: RULE_VERSION,
            attributes: BTreeMap::new(),
            rate_boost: None,
            created_at: 0.0,
            modified_at: 0.0,
        }
    }

    /// Whether this is the `Default` rule.
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_RULE_NAME
    }

    /// Checks a definition and turns it into a rule named `name`, created `now`.
    pub(crate) fn from_definition(
        name: String,
        arn: String,
        def: RuleDefinition,
        now: f64,
    ) -> Result<Self, SamplingError> {
        check_name(&name)?;
        if def.version != i64::from(RULE_VERSION) {
            return Err(SamplingError::invalid(
                "Version",
                def.version,
                "Member must have value 1, the only version of the rule format",
            ));
        }
        let mut rule = Self::default_rule(arn);
        rule.name = name;
        rule.created_at = now;
        rule.modified_at = now;
        rule.apply(RuleChanges {
            resource_arn: Some(def.resource_arn),
            priority: Some(def.priority),
            fixed_rate: Some(def.fixed_rate),
            reservoir_size: Some(def.reservoir_size),
            service_name: Some(def.service_name),
            service_type: Some(def.service_type),
            host: Some(def.host),
            http_method: Some(def.http_method),
            url_path: Some(def.url_path),
            attributes: Some(def.attributes),
            rate_boost: def.rate_boost,
        })?;
        Ok(rule)
    }

    /// This rule with `changes` applied at `now`. Every given field is checked; `Default`
    /// takes changes to `FixedRate` and `ReservoirSize` only (a field given with the value
    /// it has already is no change).
    pub fn updated(&self, changes: RuleChanges, now: f64) -> Result<Self, SamplingError> {
        let mut rule = self.clone();
        if rule.is_default() {
            rule.check_default_changes(&changes)?;
        }
        rule.apply(changes)?;
        rule.modified_at = now;
        Ok(rule)
    }

    fn check_default_changes(&self, c: &RuleChanges) -> Result<(), SamplingError> {
        let fixed = |field: &'static str, changed: bool| {
            if changed {
                Err(SamplingError::DefaultFieldFixed { field })
            } else {
                Ok(())
            }
        };
        let differs =
            |given: &Option<String>, have: &str| given.as_deref().is_some_and(|g| g != have);
        fixed("ResourceARN", differs(&c.resource_arn, &self.resource_arn))?;
        fixed(
            "Priority",
            c.priority.is_some_and(|p| p != i64::from(self.priority)),
        )?;
        fixed("ServiceName", differs(&c.service_name, &self.service_name))?;
        fixed("ServiceType", differs(&c.service_type, &self.service_type))?;
        fixed("Host", differs(&c.host, &self.host))?;
        fixed("HTTPMethod", differs(&c.http_method, &self.http_method))?;
        fixed("URLPath", differs(&c.url_path, &self.url_path))?;
        fixed(
            "Attributes",
            c.attributes.as_ref().is_some_and(|a| *a != self.attributes),
        )?;
        fixed("SamplingRateBoost", c.rate_boost.is_some())
    }

    /// Checks and applies every given field.
    fn apply(&mut self, c: RuleChanges) -> Result<(), SamplingError> {
        if let Some(v) = c.resource_arn {
            self.resource_arn = check_len("ResourceARN", v, 0, RESOURCE_ARN_MAX_CHARS)?;
        }
        if let Some(p) = c.priority {
            // Default keeps its 10000, outside the range users may give.
            let kept_by_default = self.is_default() && p == i64::from(self.priority);
            if !(PRIORITY_RANGE.contains(&p) || kept_by_default) {
                return Err(out_of_range("Priority", p, PRIORITY_RANGE));
            }
            self.priority =
                u32::try_from(p).map_err(|_| out_of_range("Priority", p, PRIORITY_RANGE))?;
        }
        if let Some(r) = c.fixed_rate {
            self.fixed_rate = check_rate("FixedRate", r)?;
        }
        if let Some(r) = c.reservoir_size {
            self.reservoir_size = check_count("ReservoirSize", r)?;
        }
        if let Some(v) = c.service_name {
            self.service_name = check_len("ServiceName", v, 0, NAME_MAX_CHARS)?;
        }
        if let Some(v) = c.service_type {
            self.service_type = check_len("ServiceType", v, 0, NAME_MAX_CHARS)?;
        }
        if let Some(v) = c.host {
            self.host = check_len("Host", v, 0, NAME_MAX_CHARS)?;
        }
        if let Some(v) = c.http_method {
            self.http_method = check_len("HTTPMethod", v, 0, HTTP_METHOD_MAX_CHARS)?;
        }
        if let Some(v) = c.url_path {
            self.url_path = check_len("URLPath", v, 0, URL_PATH_MAX_CHARS)?;
        }
        if let Some(a) = c.attributes {
            self.attributes = check_attributes(a)?;
        }
        if let Some((max_rate, cooldown)) = c.rate_boost {
            self.rate_boost = Some(RateBoost {
                max_rate: check_rate("MaxRate", max_rate)?,
                cooldown_window_minutes: check_count("CooldownWindowMinutes", cooldown)?,
            });
        }
        Ok(())
    }

    /// Whether `request` matches this rule: every field the request has matches the
    /// rule's pattern, and every attribute the rule names is among the request's
    /// attributes with a matching value. (`Default` matches every request.)
    pub fn matches(&self, request: &SamplingRequest<'_>) -> bool {
        let field =
            |pattern: &str, value: Option<&str>| value.is_none_or(|v| wildcard_match(pattern, v));
        field(&self.service_name, request.service_name)
            && field(&self.service_type, request.service_type)
            && field(&self.host, request.host)
            && field(&self.http_method, request.http_method)
            && field(&self.url_path, request.url_path)
            && field(&self.resource_arn, request.resource_arn)
            && self.attributes.iter().all(|(key, pattern)| {
                request
                    .attributes
                    .iter()
                    .any(|(k, v)| k == key && wildcard_match(pattern, v))
            })
    }
}

/// A rule name: 1 to 32 characters.
pub(crate) fn check_name(name: &str) -> Result<(), SamplingError> {
    check_len("RuleName", name, 1, RULE_NAME_MAX_CHARS).map(drop)
}

fn check_len<S: AsRef<str>>(
    field: &'static str,
    value: S,
    min: usize,
    max: usize,
) -> Result<S, SamplingError> {
    let n = value.as_ref().chars().count();
    if n < min {
        return Err(SamplingError::invalid(
            field,
            value.as_ref(),
            format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(SamplingError::invalid(
            field,
            value.as_ref(),
            format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(value)
}

fn out_of_range(
    field: &'static str,
    v: i64,
    range: std::ops::RangeInclusive<i64>,
) -> SamplingError {
    if v < *range.start() {
        SamplingError::invalid(
            field,
            v,
            format!(
                "Member must have value greater than or equal to {}",
                range.start()
            ),
        )
    } else {
        SamplingError::invalid(
            field,
            v,
            format!(
                "Member must have value less than or equal to {}",
                range.end()
            ),
        )
    }
}

/// A count: 0 up to the API's largest integer.
fn check_count(field: &'static str, v: i64) -> Result<u32, SamplingError> {
    u32::try_from(v)
        .ok()
        .filter(|_| v <= MAX_API_INTEGER)
        .ok_or_else(|| out_of_range(field, v, 0..=MAX_API_INTEGER))
}

/// A rate: a finite number from 0 to 1.
fn check_rate(field: &'static str, r: f64) -> Result<f64, SamplingError> {
    if !r.is_finite() || r < 0.0 {
        return Err(SamplingError::invalid(
            field,
            r,
            "Member must have value greater than or equal to 0",
        ));
    }
    if r > 1.0 {
        return Err(SamplingError::invalid(
            field,
            r,
            "Member must have value less than or equal to 1",
        ));
    }
    Ok(r)
}

fn check_attributes(
    a: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, SamplingError> {
    if a.len() > MAX_ATTRIBUTES {
        return Err(SamplingError::invalid(
            "Attributes",
            format!("{} entries", a.len()),
            format!("Map must have at most {MAX_ATTRIBUTES} entries"),
        ));
    }
    for (k, v) in &a {
        check_len("Attributes key", k, 1, ATTRIBUTE_MAX_CHARS)?;
        check_len("Attributes value", v, 1, ATTRIBUTE_MAX_CHARS)?;
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn definition() -> RuleDefinition {
        RuleDefinition {
            name: Some("base".into()),
            resource_arn: "*".into(),
            priority: 9000,
            fixed_rate: 0.1,
            reservoir_size: 2,
            service_name: "Score*".into(),
            service_type: "*".into(),
            host: "*".into(),
            http_method: "*".into(),
            url_path: "*".into(),
            version: 1,
            attributes: BTreeMap::new(),
            rate_boost: None,
        }
    }

    fn create(def: RuleDefinition) -> Result<Rule, SamplingError> {
        let name = def.name.clone().unwrap_or_default();
        Rule::from_definition(name, "arn".into(), def, 100.0)
    }

    /// `rejects!(field: value => "constraint text")`: the definition with that field set
    /// is refused, naming the field and the constraint.
    macro_rules! rejects {
        ($field:ident : $value:expr => $wire:literal, $constraint:literal) => {{
            let mut d = definition();
            d.$field = $value;
            let err = create(d).expect_err(concat!(stringify!($field), " should be refused"));
            let text = err.to_string();
            assert!(
                text.contains(concat!("at '", $wire, "'")) && text.contains($constraint),
                "{}: {text}",
                stringify!($field)
            );
        }};
    }

    #[test]
    fn every_documented_constraint_is_checked() {
        rejects!(name: Some(String::new()) => "RuleName", "length greater than or equal to 1");
        rejects!(name: Some("n".repeat(33)) => "RuleName", "less than or equal to 32");
        rejects!(resource_arn: "a".repeat(501) => "ResourceARN", "less than or equal to 500");
        rejects!(priority: 0 => "Priority", "greater than or equal to 1");
        rejects!(priority: 10_000 => "Priority", "less than or equal to 9999");
        rejects!(priority: -3 => "Priority", "greater than or equal to 1");
        rejects!(fixed_rate: -0.1 => "FixedRate", "greater than or equal to 0");
        rejects!(fixed_rate: 1.01 => "FixedRate", "less than or equal to 1");
        rejects!(fixed_rate: f64::NAN => "FixedRate", "greater than or equal to 0");
        rejects!(reservoir_size: -1 => "ReservoirSize", "greater than or equal to 0");
        rejects!(reservoir_size: 1 << 31 => "ReservoirSize", "less than or equal to 2147483647");
        rejects!(service_name: "s".repeat(65) => "ServiceName", "less than or equal to 64");
        rejects!(service_type: "s".repeat(65) => "ServiceType", "less than or equal to 64");
        rejects!(host: "h".repeat(65) => "Host", "less than or equal to 64");
        rejects!(http_method: "METHODSLONG".into() => "HTTPMethod", "less than or equal to 10");
        rejects!(url_path: "/".repeat(129) => "URLPath", "less than or equal to 128");
        rejects!(version: 2 => "Version", "Member must have value 1");
        rejects!(version: 0 => "Version", "Member must have value 1");
        rejects!(attributes: (0..6).map(|i| (format!("k{i}"), "v".into())).collect() => "Attributes", "at most 5 entries");
        rejects!(attributes: [(String::new(), "v".into())].into() => "Attributes key", "greater than or equal to 1");
        rejects!(attributes: [("k".into(), "v".repeat(33))].into() => "Attributes value", "less than or equal to 32");
        rejects!(rate_boost: Some((1.5, 1)) => "MaxRate", "less than or equal to 1");
        rejects!(rate_boost: Some((0.5, -1)) => "CooldownWindowMinutes", "greater than or equal to 0");
    }

    #[test]
    fn limits_themselves_are_accepted() {
        let mut d = definition();
        d.name = Some("n".repeat(32));
        d.priority = 9999;
        d.fixed_rate = 1.0;
        d.reservoir_size = MAX_API_INTEGER;
        d.resource_arn = "a".repeat(500);
        d.service_name = "s".repeat(64);
        d.http_method = "M".repeat(10);
        d.url_path = "/".repeat(128);
        d.attributes = (0..5).map(|i| (format!("k{i}"), "v".repeat(32))).collect();
        d.rate_boost = Some((0.0, 0));
        let r = create(d).expect("valid at its limits");
        assert_eq!(r.priority, 9999);
        assert_eq!(r.created_at, 100.0);
        assert_eq!(r.modified_at, 100.0);
        let mut d = definition();
        d.priority = 1;
        d.fixed_rate = 0.0;
        d.reservoir_size = 0;
        d.service_name = String::new();
        create(d).expect("valid at its lower limits");
    }

    #[test]
    fn default_changes_only_rate_and_reservoir() {
        let d = Rule::default_rule("arn:d".into());
        let changed = d
            .updated(
                RuleChanges {
                    fixed_rate: Some(0.5),
                    reservoir_size: Some(7),
                    // the values it has already: no change
                    priority: Some(10_000),
                    service_name: Some("*".into()),
                    ..Default::default()
                },
                50.0,
            )
            .expect("rate and reservoir may change");
        assert_eq!((changed.fixed_rate, changed.reservoir_size), (0.5, 7));
        assert_eq!((changed.created_at, changed.modified_at), (0.0, 50.0));
        for (c, field) in [
            (
                RuleChanges {
                    priority: Some(5),
                    ..Default::default()
                },
                "Priority",
            ),
            (
                RuleChanges {
                    host: Some("x".into()),
                    ..Default::default()
                },
                "Host",
            ),
            (
                RuleChanges {
                    url_path: Some("/a".into()),
                    ..Default::default()
                },
                "URLPath",
            ),
            (
                RuleChanges {
                    attributes: Some([("a".into(), "b".into())].into()),
                    ..Default::default()
                },
                "Attributes",
            ),
        ] {
            assert_eq!(
                d.updated(c, 1.0).unwrap_err(),
                SamplingError::DefaultFieldFixed { field }
            );
        }
        assert!(
            d.updated(
                RuleChanges {
                    fixed_rate: Some(2.0),
                    ..Default::default()
                },
                1.0
            )
            .is_err()
        );
    }

    #[test]
    fn updates_check_what_they_change() {
        let r = create(definition()).expect("valid");
        let u = r
            .updated(
                RuleChanges {
                    url_path: Some("/api/*".into()),
                    ..Default::default()
                },
                200.0,
            )
            .expect("valid change");
        assert_eq!(u.url_path, "/api/*");
        assert_eq!(u.service_name, "Score*");
        assert_eq!((u.created_at, u.modified_at), (100.0, 200.0));
        let err = r
            .updated(
                RuleChanges {
                    priority: Some(0),
                    ..Default::default()
                },
                200.0,
            )
            .unwrap_err();
        assert!(err.to_string().contains("'Priority'"), "{err}");
    }

    fn request<'a>(service: &'a str, method: &'a str, path: &'a str) -> SamplingRequest<'a> {
        SamplingRequest {
            service_name: Some(service),
            http_method: Some(method),
            url_path: Some(path),
            ..Default::default()
        }
    }

    #[test]
    fn matching_fields_and_attributes() {
        let mut r = create(definition()).expect("valid");
        assert!(r.matches(&request("Scorekeep", "GET", "/api/x")));
        assert!(!r.matches(&request("inventory", "GET", "/api/x")));
        // What the caller does not know matches.
        assert!(r.matches(&SamplingRequest::default()));
        r.attributes.insert("tenant".into(), "acme-*".into());
        assert!(
            !r.matches(&request("Scorekeep", "GET", "/")),
            "attribute missing"
        );
        let attrs = [("tenant", "ACME-eu")];
        let with = SamplingRequest {
            attributes: &attrs,
            ..request("Scorekeep", "GET", "/")
        };
        assert!(r.matches(&with));
        let other = [("tenant", "globex")];
        let without = SamplingRequest {
            attributes: &other,
            ..request("Scorekeep", "GET", "/")
        };
        assert!(!r.matches(&without));
        r.resource_arn = "arn:aws:ecs:*".into();
        let on_ec2 = SamplingRequest {
            resource_arn: Some("arn:aws:ec2:us-east-1:1:instance/i-1"),
            ..with
        };
        assert!(!r.matches(&on_ec2));
    }

    #[test]
    fn stored_form_round_trips() {
        let mut r = create(definition()).expect("valid");
        r.rate_boost = Some(RateBoost {
            max_rate: 0.5,
            cooldown_window_minutes: 5,
        });
        let json = serde_json::to_value(&r).expect("encode");
        let back: Rule = serde_json::from_value(json).expect("decode");
        assert_eq!(back, r);
    }
}
