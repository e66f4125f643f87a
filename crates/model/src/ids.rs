//! Trace and segment identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A trace id must look like `1-5759e988-bd862e3fe1be46a994272793`.
    #[error("expected a trace id of the form 1-{{8 hex digits}}-{{24 hex digits}}")]
    TraceId,
    /// A segment, subsegment or exception id must be 16 hex digits.
    #[error("expected 16 hex digits")]
    SegmentId,
}

/// An X-Ray trace id: version 1, the epoch second the trace started, 96 random bits.
///
/// The binary form ([`TraceId::to_bytes`]) is the 4-byte big-endian time followed by the
/// 12 random bytes, so byte order is start-time order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId {
    time: u32,
    random: [u8; 12],
}

impl TraceId {
    /// Length of the text form.
    pub const TEXT_LEN: usize = 35;

    /// Builds a trace id from its parts.
    pub fn new(time: u32, random: [u8; 12]) -> Self {
        Self { time, random }
    }

    /// The epoch second encoded in the id (when the trace started, as its SDK saw it).
    pub fn epoch_seconds(&self) -> u32 {
        self.time
    }

    /// The 96 random bits.
    pub fn random(&self) -> [u8; 12] {
        self.random
    }

    /// Binary form: time (big-endian) then the random part.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&self.time.to_be_bytes());
        out[4..].copy_from_slice(&self.random);
        out
    }

    /// Inverse of [`TraceId::to_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut time = [0u8; 4];
        time.copy_from_slice(&bytes[..4]);
        let mut random = [0u8; 12];
        random.copy_from_slice(&bytes[4..]);
        Self {
            time: u32::from_be_bytes(time),
            random,
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(src: &[u8], out: &mut [u8]) -> bool {
    if src.len() != out.len() * 2 {
        return false;
    }
    for (i, pair) in src.chunks_exact(2).enumerate() {
        match (hex_val(pair[0]), hex_val(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h << 4) | l,
            _ => return false,
        }
    }
    true
}

impl FromStr for TraceId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        if b.len() != Self::TEXT_LEN || &b[..2] != b"1-" || b[10] != b'-' {
            return Err(IdError::TraceId);
        }
        let mut time = [0u8; 4];
        let mut random = [0u8; 12];
        if !decode_hex(&b[2..10], &mut time) || !decode_hex(&b[11..], &mut random) {
            return Err(IdError::TraceId);
        }
        Ok(Self {
            time: u32::from_be_bytes(time),
            random,
        })
    }
}

/// Lower-case hex digits of `bytes` into `out`, two per byte.
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    // Every caller passes `out` exactly twice as long, all `encode_to_slice` checks.
    let _ = hex::encode_to_slice(bytes, out);
}

/// The text of an id, built on the stack: ids are written for every summary the indexer
/// stores and every one the API returns, and `write!` per byte was the slow part.
struct IdText<const N: usize>([u8; N]);

impl<const N: usize> IdText<N> {
    fn as_str(&self) -> &str {
        // Only ASCII hex digits and `-` are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TraceId {
    fn text(&self) -> IdText<{ TraceId::TEXT_LEN }> {
        let mut t = [b'-'; TraceId::TEXT_LEN];
        t[0] = b'1';
        hex_into(&self.time.to_be_bytes(), &mut t[2..10]);
        hex_into(&self.random, &mut t[11..]);
        IdText(t)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A 64-bit segment, subsegment or exception id, written as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u64);

impl FromStr for SegmentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let mut out = [0u8; 8];
        if decode_hex(s.as_bytes(), &mut out) {
            Ok(Self(u64::from_be_bytes(out)))
        } else {
            Err(IdError::SegmentId)
        }
    }
}

impl SegmentId {
    fn text(&self) -> IdText<16> {
        let mut t = [0; 16];
        hex_into(&self.0.to_be_bytes(), &mut t);
        IdText(t)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl fmt::Debug for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.text().as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(TraceId);
serde_via_str!(SegmentId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trips() {
        let text = "1-5759e988-bd862e3fe1be46a994272793";
        let id: TraceId = text.parse().expect("valid");
        assert_eq!(id.epoch_seconds(), 0x5759e988);
        assert_eq!(id.to_string(), text);
        assert_eq!(TraceId::from_bytes(id.to_bytes()), id);
    }

    #[test]
    fn trace_id_rejects() {
        for bad in [
            "",
            "1-5759e988-bd862e3fe1be46a99427279",
            "2-5759e988-bd862e3fe1be46a994272793",
            "1-5759e98g-bd862e3fe1be46a994272793",
            "1-5759e988_bd862e3fe1be46a994272793",
            "1-5759e988-bd862e3fe1be46a9942727930",
            "1-5759e988-bd862e3fe1be46a99427279x",
        ] {
            assert_eq!(bad.parse::<TraceId>(), Err(IdError::TraceId), "{bad}");
        }
    }

    #[test]
    fn trace_id_byte_order_is_time_order() {
        let a: TraceId = "1-00000001-ffffffffffffffffffffffff"
            .parse()
            .expect("valid");
        let b: TraceId = "1-00000002-000000000000000000000000"
            .parse()
            .expect("valid");
        assert!(a.to_bytes() < b.to_bytes());
    }

    proptest::proptest! {
        /// The text built on the stack is what `format!` writes, and reads back.
        #[test]
        fn ids_write_as_format_does(time: u32, random: [u8; 12], seg: u64) {
            let id = TraceId::new(time, random);
            let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
            let text = format!("1-{time:08x}-{hex}");
            proptest::prop_assert_eq!(id.to_string(), text.clone());
            proptest::prop_assert_eq!(serde_json::to_string(&id).ok(), Some(format!("\"{text}\"")));
            proptest::prop_assert_eq!(text.parse::<TraceId>(), Ok(id));
            let s = SegmentId(seg);
            proptest::prop_assert_eq!(s.to_string(), format!("{seg:016x}"));
            proptest::prop_assert_eq!(s.to_string().parse::<SegmentId>(), Ok(s));
        }
    }

    #[test]
    fn segment_id() {
        let id: SegmentId = "70de5b6f19ff9a0a".parse().expect("valid");
        assert_eq!(id.to_string(), "70de5b6f19ff9a0a");
        assert!("70de5b6f19ff9a0".parse::<SegmentId>().is_err());
        assert!("70de5b6f19ff9a0z".parse::<SegmentId>().is_err());
        assert!("+0de5b6f19ff9a0a".parse::<SegmentId>().is_err());
    }
}
