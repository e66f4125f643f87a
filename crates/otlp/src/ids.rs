//! OpenTelemetry trace ids as X-Ray trace ids.
//!
//! An X-Ray trace id is `1-{8 hex: epoch second}-{24 hex}`, 128 bits like an OTel trace
//! id, and Roentgen partitions and indexes traces by that time part. So:
//!
//! * **X-Ray-style ids** — the first 4 bytes are an epoch second within
//!   [`XRAY_STYLE_PAST`] before and [`XRAY_STYLE_FUTURE`] after the time of conversion,
//!   as the AWS X-Ray id generators of the OTel SDKs make them — convert byte for byte:
//!   `5759e988bd862e3fe1be46a994272793` is `1-5759e988-bd862e3fe1be46a994272793`, the
//!   same string the X-Ray propagator puts in `X-Amzn-Trace-Id: Root=…`, so X-Ray SDK
//!   services called by OTel services (and the other way round) share the trace.
//! * **Other ids** (random W3C ids) keep their last 12 bytes; the time part becomes the
//!   span's start second rounded down to a multiple of [`W3C_BUCKET_SECONDS`], so that
//!   every span of a trace (whatever process or batch it comes in) gets the same id as
//!   long as the spans start in the same bucket. The original id is kept in every
//!   document (`metadata.default."otel.trace_id"`), so the mapping can be undone, and
//!   [`w3c_to_xray`] computes the converted id for lookups.

use roentgen_model::TraceId;

/// How old the time part of an X-Ray-style id may be (beyond, the id is treated as a
/// W3C id). AWS keeps traces for 30 days; the server's retention refuses older ones.
pub const XRAY_STYLE_PAST: u64 = 30 * 86_400;
/// How far in the future the time part of an X-Ray-style id may be (clock skew).
pub const XRAY_STYLE_FUTURE: u64 = 86_400;
/// Width of the time buckets that W3C ids are placed in.
pub const W3C_BUCKET_SECONDS: u64 = 4096;

/// How a trace id was converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMapping {
    /// The id was X-Ray style and kept every byte.
    XRayStyle,
    /// The id was not X-Ray style: its time part was replaced.
    W3c,
}

/// True when the first four bytes of `id` are a plausible epoch second at `now`.
pub fn is_xray_style(id: &[u8; 16], now: u64) -> bool {
    let t = u64::from(u32::from_be_bytes([id[0], id[1], id[2], id[3]]));
    t + XRAY_STYLE_PAST >= now && t <= now + XRAY_STYLE_FUTURE
}

/// The X-Ray trace id of an OTel trace id, for a span that started at
/// `span_start_seconds`, converted at `now` (epoch seconds).
pub fn to_xray(id: &[u8; 16], span_start_seconds: u64, now: u64) -> (TraceId, IdMapping) {
    if is_xray_style(id, now) {
        return (TraceId::from_bytes(*id), IdMapping::XRayStyle);
    }
    (w3c_to_xray(id, span_start_seconds), IdMapping::W3c)
}

/// The converted id of a non-X-Ray-style OTel trace id whose spans started at
/// `span_start_seconds`: the start rounded down to [`W3C_BUCKET_SECONDS`], then the
/// last 12 bytes of the OTel id.
pub fn w3c_to_xray(id: &[u8; 16], span_start_seconds: u64) -> TraceId {
    let bucket = span_start_seconds - span_start_seconds % W3C_BUCKET_SECONDS;
    let mut random = [0u8; 12];
    random.copy_from_slice(&id[4..]);
    TraceId::new(bucket.min(u64::from(u32::MAX)) as u32, random)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_780_000_000;

    fn id(hexed: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hexed[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }

    #[test]
    fn xray_style_ids_keep_every_byte() {
        let otel = format!("{NOW:08x}bd862e3fe1be46a994272793");
        let (x, m) = to_xray(&id(&otel), NOW + 5, NOW);
        assert_eq!(m, IdMapping::XRayStyle);
        assert_eq!(
            x.to_string(),
            format!("1-{NOW:08x}-bd862e3fe1be46a994272793")
        );
        // Reversible: the X-Ray id's bytes are the OTel id.
        assert_eq!(hex(&x.to_bytes()), otel);
        // A day old is still X-Ray style; 31 days is not.
        let old = format!("{:08x}bd862e3fe1be46a994272793", NOW - 86_400);
        assert!(is_xray_style(&id(&old), NOW));
        let older = format!("{:08x}bd862e3fe1be46a994272793", NOW - 31 * 86_400);
        assert!(!is_xray_style(&id(&older), NOW));
        let future = format!("{:08x}bd862e3fe1be46a994272793", NOW + 2 * 86_400);
        assert!(!is_xray_style(&id(&future), NOW));
    }

    #[test]
    fn w3c_ids_get_a_bucketed_time_and_keep_their_tail() {
        let otel = id("4bf92f3577b34da6a3ce929d0e0e4736");
        let start = NOW + 100;
        let (x, m) = to_xray(&otel, start, NOW);
        assert_eq!(m, IdMapping::W3c);
        let bucket = start - start % W3C_BUCKET_SECONDS;
        assert_eq!(
            x.to_string(),
            format!("1-{bucket:08x}-77b34da6a3ce929d0e0e4736")
        );
        // Every span of the trace that starts in the same bucket gets the same id.
        let later = to_xray(&otel, bucket + W3C_BUCKET_SECONDS - 1, NOW + 3000).0;
        assert_eq!(later, x);
        assert_eq!(w3c_to_xray(&otel, start), x);
        assert_eq!(
            roentgen_model::SegmentId(0x00ab_0001).to_string(),
            format!("{:016x}", 0x00ab_0001)
        );
    }
}
