//! JSON text written straight from spans: object members, escaped strings, numbers and
//! OTLP values, without a `serde_json::Value` tree in between (building and then
//! serialising such trees was half of the conversion's time).

use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped,
/// as `serde_json` writes them.
pub(crate) fn push_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none needs escaping (most strings have none).
        if let Some(chunk) = bytes.get(i..i + 8)
            && let Ok(word) = <[u8; 8]>::try_from(chunk)
            && !needs_escape(u64::from_le_bytes(word))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => {
                // Only ASCII bytes are cut at, so `start..i` is on character boundaries.
                out.push_str(&s[start..i]);
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[start..i]);
        out.push_str(escape);
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// True when one of the eight bytes of `word` is a control character, `"` or `\`.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below `n` (n <= 128) sets its high bit in `(x - n) & !x`.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    below(word, 0x20) != 0
        || below(word ^ (ONES * u64::from(b'"')), 1) != 0
        || below(word ^ (ONES * u64::from(b'\\')), 1) != 0
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends a finite double in the shortest text that reads back to it; a
/// non-finite one, which JSON cannot hold, as its text in a string.
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(v));
    } else {
        push_string(out, &v.to_string());
    }
}

/// Appends an integer.
pub(crate) fn push_i64(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends an OTLP value as JSON: arrays and key-value lists nest, bytes become hex, a
/// non-finite double becomes its text, a missing value `null`.
pub(crate) fn push_value(out: &mut String, v: Option<&Av>) {
    match v {
        None => out.push_str("null"),
        Some(Av::StringValue(s)) => push_string(out, s),
        Some(Av::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Av::IntValue(n)) => push_i64(out, *n),
        Some(Av::DoubleValue(d)) => push_f64(out, *d),
        Some(Av::ArrayValue(a)) => {
            out.push('[');
            for (i, item) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item.value.as_ref());
            }
            out.push(']');
        }
        Some(Av::KvlistValue(l)) => {
            // Later keys win, as they did in a JSON map.
            let mut m = Members::default();
            let replaced = Superseded::of(&l.values, |kv| kv.key.as_str());
            for (_, kv) in l
                .values
                .iter()
                .enumerate()
                .filter(|(i, _)| !replaced.is(*i))
            {
                push_value(
                    m.key(&kv.key),
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                );
            }
            m.push_object_to(out);
        }
        Some(Av::BytesValue(b)) => push_string(out, &crate::ids::hex(b)),
        Some(Av::StringValueStrindex(i)) => push_i64(out, i64::from(*i)),
    }
}

/// Which items a later item with the same key replaces, as in a JSON map where later
/// keys overwrite earlier ones.
pub(crate) enum Superseded {
    /// Bit `i` for item `i` (up to 64 items: no allocation).
    Few(u64),
    Many(Vec<bool>),
}

impl Superseded {
    pub(crate) fn of<T>(items: &[T], key: impl Fn(&T) -> &str) -> Self {
        let n = items.len();
        if n <= 64 {
            let mut bits = 0u64;
            for (i, item) in items.iter().enumerate() {
                let k = key(item);
                if items[i + 1..].iter().any(|later| key(later) == k) {
                    bits |= 1 << i;
                }
            }
            Self::Few(bits)
        } else {
            let mut seen = std::collections::HashSet::with_capacity(n);
            let mut replaced = vec![false; n];
            for (i, item) in items.iter().enumerate().rev() {
                replaced[i] = !seen.insert(key(item));
            }
            Self::Many(replaced)
        }
    }

    /// Is item `i` replaced by a later one?
    pub(crate) fn is(&self, i: usize) -> bool {
        match self {
            Self::Few(bits) => i < 64 && bits & (1 << i) != 0,
            Self::Many(replaced) => replaced.get(i).copied().unwrap_or(false),
        }
    }

    fn none(&self) -> bool {
        matches!(self, Self::Few(0))
    }
}

/// Keeps the last item of each key (see [`Superseded`]), in order.
pub(crate) fn keep_last_of_each<T>(items: &mut Vec<T>, key: impl Fn(&T) -> &str) {
    let replaced = Superseded::of(items, key);
    if replaced.none() {
        return;
    }
    let mut i = 0;
    items.retain(|_| {
        let keep = !replaced.is(i);
        i += 1;
        keep
    });
}

/// A rough size of [`push_value`]'s text, in bytes, without writing it.
pub(crate) fn value_size(v: Option<&Av>) -> usize {
    match v {
        None | Some(Av::BoolValue(_)) => 5,
        Some(Av::IntValue(_) | Av::DoubleValue(_) | Av::StringValueStrindex(_)) => 20,
        Some(Av::StringValue(s)) => s.len() + 2 + s.len() / 16,
        Some(Av::BytesValue(b)) => b.len() * 2 + 2,
        Some(Av::ArrayValue(a)) => {
            2 + a
                .values
                .iter()
                .map(|x| value_size(x.value.as_ref()) + 1)
                .sum::<usize>()
        }
        Some(Av::KvlistValue(l)) => {
            2 + l
                .values
                .iter()
                .map(|kv| {
                    kv.key.len() + 4 + value_size(kv.value.as_ref().and_then(|v| v.value.as_ref()))
                })
                .sum::<usize>()
        }
    }
}

/// The members of a JSON object being written, comma-separated, without the braces.
#[derive(Debug, Default, Clone)]
pub(crate) struct Members(String);

impl Members {
    /// Empty, with room for `n` bytes.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(String::with_capacity(n))
    }

    /// Starts the member `key`: the caller appends its value to the returned text.
    pub(crate) fn key(&mut self, key: &str) -> &mut String {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        push_string(&mut self.0, key);
        self.0.push(':');
        &mut self.0
    }

    pub(crate) fn string(&mut self, key: &str, v: &str) {
        push_string(self.key(key), v);
    }

    pub(crate) fn f64(&mut self, key: &str, v: f64) {
        push_f64(self.key(key), v);
    }

    pub(crate) fn i64(&mut self, key: &str, v: i64) {
        push_i64(self.key(key), v);
    }

    pub(crate) fn u64(&mut self, key: &str, v: u64) {
        self.key(key).push_str(itoa::Buffer::new().format(v));
    }

    pub(crate) fn bool(&mut self, key: &str, v: bool) {
        self.key(key).push_str(if v { "true" } else { "false" });
    }

    /// A member whose value is already JSON text.
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key).push_str(json);
    }

    /// A member whose value is the object of `inner`'s members.
    pub(crate) fn object(&mut self, key: &str, inner: &Members) {
        inner.push_object_to(self.key(key));
    }

    /// Appends `{members}`.
    pub(crate) fn push_object_to(&self, out: &mut String) {
        out.push('{');
        out.push_str(&self.0);
        out.push('}');
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The members' text (no braces).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};

    fn written(v: &Av) -> serde_json::Value {
        let mut out = String::new();
        push_value(&mut out, Some(v));
        serde_json::from_str(&out).expect("valid JSON")
    }

    #[test]
    fn strings_round_trip_through_a_json_parser() {
        for s in [
            "",
            "plain",
            "quote \" and backslash \\",
            "tab\tnew\nline\rcr \u{8}\u{c} \u{1} \u{1f} \u{7f}",
            "ünïcødé ✓ 𝄞",
        ] {
            let mut out = String::new();
            push_string(&mut out, s);
            let back: String = serde_json::from_str(&out).expect("valid JSON string");
            assert_eq!(back, s);
            assert_eq!(out, serde_json::to_string(s).expect("serialises"), "{s:?}");
        }
    }

    proptest::proptest! {
        /// Any text, escapes anywhere in an eight-byte word or past its end: the same
        /// JSON string `serde_json` writes.
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(
            s in "[\\x00-\\x7f]{0,40}|\\PC{0,20}|.{0,20}",
        ) {
            let mut out = String::new();
            push_string(&mut out, &s);
            proptest::prop_assert_eq!(out, serde_json::to_string(&s).expect("serialises"));
        }
    }

    #[test]
    fn numbers_round_trip_through_a_json_parser() {
        for v in [
            0.0,
            1.5,
            1_780_000_000.25,
            1_780_000_000.123_456_7,
            1e300,
            -2.5e-7,
        ] {
            let mut out = String::new();
            push_f64(&mut out, v);
            let back: f64 = serde_json::from_str(&out).expect("valid JSON number");
            assert_eq!(back.to_bits(), v.to_bits(), "{out}");
        }
        let mut out = String::new();
        push_f64(&mut out, f64::NAN);
        assert_eq!(out, "\"NaN\"");
        let mut out = String::new();
        push_i64(&mut out, i64::MIN);
        assert_eq!(out, i64::MIN.to_string());
    }

    #[test]
    fn otlp_values_nest_and_later_keys_win() {
        let any = |v: Av| AnyValue { value: Some(v) };
        let kv = |k: &str, v: Av| KeyValue {
            key: k.into(),
            value: Some(any(v)),
            ..Default::default()
        };
        let v = Av::KvlistValue(KeyValueList {
            values: vec![
                kv("a", Av::IntValue(1)),
                kv(
                    "list",
                    Av::ArrayValue(ArrayValue {
                        values: vec![any(Av::BoolValue(true)), AnyValue { value: None }],
                    }),
                ),
                kv("bytes", Av::BytesValue(vec![0xab, 0x01])),
                kv("a", Av::DoubleValue(f64::INFINITY)),
            ],
        });
        assert_eq!(
            written(&v),
            serde_json::json!({"a": "inf", "list": [true, null], "bytes": "ab01"})
        );
    }

    #[test]
    fn the_last_item_of_each_key_is_kept_in_order() {
        for n in [0usize, 1, 5, 64, 65, 300] {
            // Keys repeat every seven items.
            let mut items: Vec<(String, usize)> =
                (0..n).map(|i| (format!("k{}", i % 7), i)).collect();
            keep_last_of_each(&mut items, |(k, _)| k.as_str());
            let expected: Vec<usize> = (n.saturating_sub(7)..n).collect();
            assert_eq!(
                items.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
                expected,
                "{n}"
            );
        }
    }

    #[test]
    fn members_make_objects() {
        let mut inner = Members::default();
        inner.string("k", "v");
        let mut m = Members::with_capacity(64);
        assert!(m.is_empty());
        m.i64("n", -3);
        m.bool("b", false);
        m.f64("f", 0.5);
        m.raw("r", "[1]");
        m.object("o", &inner);
        let mut out = String::new();
        m.push_object_to(&mut out);
        assert_eq!(out.len(), m.len() + 2);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).expect("valid JSON"),
            serde_json::json!({"n": -3, "b": false, "f": 0.5, "r": [1], "o": {"k": "v"}})
        );
        assert_eq!(m.as_str(), &out[1..out.len() - 1]);
    }
}
