//! The rules of one account: `Default` plus up to [`MAX_RULES`] others, in the order
//! they are evaluated, and the checks that involve more than one rule (unique names,
//! the limit, `Default` staying).

use crate::error::SamplingError;
use crate::rule::{
    DEFAULT_RULE_NAME, Rule, RuleChanges, RuleDefinition, SamplingRequest, check_name,
};

/// Rules an account may have besides `Default`: issue 8's figure for the X-Ray limit (the
/// API reference gives none).
pub const MAX_RULES: usize = 25;

/// How a request names a rule: by `RuleName` or by `RuleARN`, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleRef<'a> {
    /// `RuleName`.
    Name(&'a str),
    /// `RuleARN`.
    Arn(&'a str),
}

impl<'a> RuleRef<'a> {
    /// The reference a request gives, refusing none and both.
    pub fn from_parts(name: Option<&'a str>, arn: Option<&'a str>) -> Result<Self, SamplingError> {
        match (name, arn) {
            (Some(n), None) => Ok(Self::Name(n)),
            (None, Some(a)) => Ok(Self::Arn(a)),
            (None, None) => Err(SamplingError::MissingReference),
            (Some(_), Some(_)) => Err(SamplingError::AmbiguousReference),
        }
    }
}

/// The rules in evaluation order: ascending priority, then name; `Default` (priority
/// 10000) last. There is always exactly one `Default`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// The rules given (as read from storage) plus `default` unless they have a rule
    /// named `Default` already, in evaluation order. Later rules of a duplicated name are
    /// dropped. The limit is not checked here: it applies when creating.
    pub fn new(rules: impl IntoIterator<Item = Rule>, default: Rule) -> Self {
        let mut all: Vec<Rule> = Vec::new();
        for r in rules {
            if !all.iter().any(|have| have.name == r.name) {
                all.push(r);
            }
        }
        if !all.iter().any(Rule::is_default) {
            all.push(default);
        }
        all.sort_by(|a, b| {
            (a.is_default(), a.priority, &a.name).cmp(&(b.is_default(), b.priority, &b.name))
        });
        Self { rules: all }
    }

    /// Every rule in evaluation order (`Default` last).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules as `GetSamplingRules` lists them: `Default` first, then the others in
    /// the order they were created (then by name), so pages stay stable as rules come.
    pub fn listing(&self) -> Vec<&Rule> {
        let mut out: Vec<&Rule> = self.rules.iter().collect();
        out.sort_by(|a, b| {
            (!a.is_default())
                .cmp(&!b.is_default())
                .then(a.created_at.total_cmp(&b.created_at))
                .then(a.name.cmp(&b.name))
        });
        out
    }

    /// The rule of that name.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The rule a reference names.
    pub fn find(&self, r: RuleRef<'_>) -> Result<&Rule, SamplingError> {
        let found = match r {
            RuleRef::Name(n) => self.rules.iter().find(|x| x.name == n),
            RuleRef::Arn(a) => self.rules.iter().find(|x| x.arn == a),
        };
        found.ok_or_else(|| match r {
            RuleRef::Name(n) => SamplingError::NotFound(format!("named {n:?}")),
            RuleRef::Arn(a) => SamplingError::NotFound(format!("with ARN {a:?}")),
        })
    }

    /// The rule a request gets: the first in evaluation order that matches, else
    /// `Default`.
    pub fn matching(&self, request: &SamplingRequest<'_>) -> &Rule {
        self.rules
            .iter()
            .find(|r| !r.is_default() && r.matches(request))
            .unwrap_or_else(|| self.default_rule())
    }

    /// `Default`.
    pub fn default_rule(&self) -> &Rule {
        // `new` puts exactly one Default at the end.
        self.rules
            .last()
            .expect("a rule set always holds Default, last")
    }

    /// The latest change to any rule, epoch seconds.
    pub fn last_modified(&self) -> f64 {
        self.rules.iter().map(|r| r.modified_at).fold(0.0, f64::max)
    }

    /// A new rule from `def`, created `now`, with the ARN `arn(name)`: every field is
    /// checked, the name must be new (`Default` is taken) and the account below
    /// [`MAX_RULES`] rules besides `Default`. The caller stores it.
    pub fn create(
        &self,
        def: RuleDefinition,
        arn: impl FnOnce(&str) -> String,
        now: f64,
    ) -> Result<Rule, SamplingError> {
        let name = def.name.clone().ok_or_else(|| SamplingError::Invalid {
            field: "RuleName",
            value: crate::error::Shown::null(),
            constraint: "Member must not be null".into(),
        })?;
        check_name(&name)?;
        if self.get(&name).is_some() || name == DEFAULT_RULE_NAME {
            return Err(SamplingError::AlreadyExists(name));
        }
        if self.rules.iter().filter(|r| !r.is_default()).count() >= MAX_RULES {
            return Err(SamplingError::LimitExceeded { limit: MAX_RULES });
        }
        let arn = arn(&name);
        Rule::from_definition(name, arn, def, now)
    }

    /// The rule `r` names with `changes` applied at `now` (see [`Rule::updated`]). The
    /// caller stores it.
    pub fn update(
        &self,
        r: RuleRef<'_>,
        changes: RuleChanges,
        now: f64,
    ) -> Result<Rule, SamplingError> {
        self.find(r)?.updated(changes, now)
    }

    /// The rule `r` names, which the caller is to delete; `Default` cannot be.
    pub fn delete(&self, r: RuleRef<'_>) -> Result<&Rule, SamplingError> {
        let rule = self.find(r)?;
        if rule.is_default() {
            return Err(SamplingError::DefaultNotDeletable);
        }
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::RuleDefinition;

    fn def(name: &str, priority: i64, service: &str, method: &str, path: &str) -> RuleDefinition {
        RuleDefinition {
            name: Some(name.into()),
            resource_arn: "*".into(),
            priority,
            fixed_rate: 0.1,
            reservoir_size: 1,
            service_name: service.into(),
            service_type: "*".into(),
            host: "*".into(),
            http_method: method.into(),
            url_path: path.into(),
            version: 1,
            ..Default::default()
        }
    }

    fn set(defs: Vec<RuleDefinition>) -> RuleSet {
        let mut s = RuleSet::new([], Rule::default_rule("arn:Default".into()));
        for (i, d) in defs.into_iter().enumerate() {
            let r = s
                .create(d, |n| format!("arn:{n}"), i as f64)
                .expect("valid rule");
            s = RuleSet::new(
                s.rules().iter().cloned().chain([r]),
                Rule::default_rule(String::new()),
            );
        }
        s
    }

    fn picked<'a>(s: &'a RuleSet, service: &'a str, method: &'a str, path: &'a str) -> &'a str {
        let req = SamplingRequest {
            service_name: Some(service),
            http_method: Some(method),
            url_path: Some(path),
            ..Default::default()
        };
        &s.matching(&req).name
    }

    /// The sampling vectors of the protocol reference (section 8.4).
    #[test]
    fn reference_vectors() {
        let s = set(vec![def("base", 9000, "Score*", "*", "*")]);
        assert_eq!(picked(&s, "Scorekeep", "GET", "/api/x"), "base");
        let s = set(vec![
            def("base", 9000, "Score*", "*", "*"),
            def("poll", 5000, "Scorekeep", "GET", "/api/state/*"),
        ]);
        assert_eq!(picked(&s, "Scorekeep", "GET", "/api/state/1"), "poll");
        assert_eq!(picked(&s, "Scorekeep", "POST", "/api/state/1"), "base");
        let s = set(vec![
            def("b", 100, "svc", "*", "*"),
            def("a", 100, "svc", "*", "*"),
        ]);
        assert_eq!(
            picked(&s, "svc", "GET", "/"),
            "a",
            "same priority: name order"
        );
        assert_eq!(picked(&s, "other", "GET", "/"), "Default");
        let s = set(vec![def("x", 10, "SVC", "*", "*")]);
        assert_eq!(picked(&s, "svc", "GET", "/"), "x");
        let s = set(vec![def("q", 10, "ab?d", "*", "*")]);
        assert_eq!(picked(&s, "abcd", "GET", "/"), "q");
        assert_eq!(picked(&s, "abd", "GET", "/"), "Default");
    }

    #[test]
    fn default_is_always_there_and_last() {
        let s = set(vec![def("z", 1, "*", "*", "*")]);
        assert_eq!(s.rules().last().map(|r| r.name.as_str()), Some("Default"));
        assert_eq!(s.rules().len(), 2);
        let listed: Vec<&str> = s.listing().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(listed, ["Default", "z"]);
        // A stored Default replaces the built-in one.
        let mut changed = Rule::default_rule("arn:Default".into());
        changed.fixed_rate = 0.5;
        let s = RuleSet::new([changed.clone()], Rule::default_rule("x".into()));
        assert_eq!(s.default_rule(), &changed);
    }

    #[test]
    fn names_are_unique_and_default_is_reserved() {
        let s = set(vec![def("a", 1, "*", "*", "*")]);
        assert_eq!(
            s.create(def("a", 2, "*", "*", "*"), |n| n.into(), 0.0),
            Err(SamplingError::AlreadyExists("a".into()))
        );
        assert_eq!(
            s.create(def("Default", 2, "*", "*", "*"), |n| n.into(), 0.0),
            Err(SamplingError::AlreadyExists("Default".into()))
        );
        let mut nameless = def("x", 1, "*", "*", "*");
        nameless.name = None;
        let err = s.create(nameless, |n| n.into(), 0.0).unwrap_err();
        assert!(
            err.to_string().contains("Value null at 'RuleName'"),
            "{err}"
        );
    }

    #[test]
    fn twenty_five_rules_besides_default() {
        let s = set((0..MAX_RULES)
            .map(|i| def(&format!("r{i}"), 1, "*", "*", "*"))
            .collect());
        assert_eq!(s.rules().len(), MAX_RULES + 1);
        assert_eq!(
            s.create(def("one-more", 1, "*", "*", "*"), |n| n.into(), 0.0),
            Err(SamplingError::LimitExceeded { limit: MAX_RULES })
        );
        // Default's changes do not count against the limit.
        assert!(
            s.update(
                RuleRef::Name("Default"),
                RuleChanges {
                    fixed_rate: Some(0.2),
                    ..Default::default()
                },
                1.0
            )
            .is_ok()
        );
    }

    #[test]
    fn references() {
        let s = set(vec![def("a", 1, "*", "*", "*")]);
        assert_eq!(
            s.find(RuleRef::Arn("arn:a")).map(|r| r.name.as_str()),
            Ok("a")
        );
        assert!(matches!(
            s.find(RuleRef::Name("nope")),
            Err(SamplingError::NotFound(_))
        ));
        assert_eq!(
            RuleRef::from_parts(None, None),
            Err(SamplingError::MissingReference)
        );
        assert_eq!(
            RuleRef::from_parts(Some("a"), Some("arn:a")),
            Err(SamplingError::AmbiguousReference)
        );
        assert_eq!(
            s.delete(RuleRef::Name("Default")),
            Err(SamplingError::DefaultNotDeletable)
        );
        assert_eq!(
            s.delete(RuleRef::Name("a")).map(|r| r.name.as_str()),
            Ok("a")
        );
    }

    #[test]
    fn last_modified_is_the_latest_change() {
        let s = set(vec![def("a", 1, "*", "*", "*"), def("b", 1, "*", "*", "*")]);
        assert_eq!(s.last_modified(), 1.0);
    }
}
