//! Attribute lists: look-ups by key that remember what was used.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;

/// The attributes of a span (or resource). A key read with `take` is "used": it went
/// into a typed field and is left out of the metadata.
pub(crate) struct Attrs<'a> {
    kv: &'a [KeyValue],
    used: Vec<bool>,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(kv: &'a [KeyValue]) -> Self {
        Self {
            kv,
            used: vec![false; kv.len()],
        }
    }

    fn find(&self, key: &str) -> Option<usize> {
        self.kv
            .iter()
            .position(|kv| kv.key == key && kv.value.as_ref().is_some_and(|v| v.value.is_some()))
    }

    /// The value of `key` without using it.
    pub(crate) fn peek(&self, key: &str) -> Option<&'a Av> {
        let i = self.find(key)?;
        self.kv[i].value.as_ref()?.value.as_ref()
    }

    /// The value of `key`, marked used.
    pub(crate) fn take(&mut self, key: &str) -> Option<&'a Av> {
        let i = self.find(key)?;
        self.used[i] = true;
        self.kv[i].value.as_ref()?.value.as_ref()
    }

    /// A string value without using it.
    pub(crate) fn peek_str(&self, key: &str) -> Option<&'a str> {
        match self.peek(key)? {
            Av::StringValue(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// The first of `keys` that has a non-empty string value, marked used.
    pub(crate) fn take_str(&mut self, keys: &[&str]) -> Option<&'a str> {
        for key in keys {
            if let Some(i) = self.find(key)
                && let Some(Av::StringValue(s)) =
                    self.kv[i].value.as_ref().and_then(|v| v.value.as_ref())
                && !s.is_empty()
            {
                self.used[i] = true;
                return Some(s);
            }
        }
        None
    }

    /// The first of `keys` with an integer value (or a string of one), marked used.
    pub(crate) fn take_int(&mut self, keys: &[&str]) -> Option<i64> {
        self.take_int_in(keys, i64::MIN..=i64::MAX)
    }

    /// The first of `keys` with an integer value (or a string of one) in `range`, marked
    /// used; values outside it stay unused.
    pub(crate) fn take_int_in(
        &mut self,
        keys: &[&str],
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        for key in keys {
            if let Some(i) = self.find(key) {
                let n = match self.kv[i].value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Av::IntValue(n)) => Some(*n),
                    Some(Av::StringValue(s)) => s.trim().parse().ok(),
                    Some(Av::DoubleValue(d)) if d.fract() == 0.0 && d.is_finite() => {
                        Some(*d as i64)
                    }
                    _ => None,
                };
                if let Some(n) = n.filter(|n| range.contains(n)) {
                    self.used[i] = true;
                    return Some(n);
                }
            }
        }
        None
    }

    /// The attributes nobody used, in their order.
    pub(crate) fn unused(&self) -> impl Iterator<Item = (&'a str, &'a Av)> + '_ {
        self.kv.iter().zip(&self.used).filter_map(|(kv, used)| {
            if *used {
                return None;
            }
            Some((kv.key.as_str(), kv.value.as_ref()?.value.as_ref()?))
        })
    }
}

/// Attribute value of `key` in a plain list (events, resources).
pub(crate) fn get<'a>(kv: &'a [KeyValue], key: &str) -> Option<&'a Av> {
    kv.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// String attribute of `key` in a plain list.
pub(crate) fn get_str<'a>(kv: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(kv, key)? {
        Av::StringValue(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// True when the value can be an X-Ray annotation (a string, a boolean, an integer or a
/// finite double).
pub(crate) fn is_annotation(v: &Av) -> bool {
    match v {
        Av::StringValue(_) | Av::BoolValue(_) | Av::IntValue(_) => true,
        Av::DoubleValue(d) => d.is_finite(),
        _ => false,
    }
}

/// An annotation key as X-Ray allows it: every character but ASCII letters and digits
/// becomes `_` (the rule of the AWS exporter before its `allowDot` gate; X-Ray documents
/// letters, digits and underscores only).
pub(crate) fn annotation_key(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    out.truncate(roentgen_model::document::MAX_ANNOTATION_KEY_LEN);
    out
}
