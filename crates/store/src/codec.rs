//! Binary encoding of rollup values.
//!
//! A rollup value is read and rewritten by the indexer for every trace that touches its
//! minute, and read by every service-graph query for every minute of its window, so it
//! is kept in a fixed binary layout rather than JSON: a tag byte `0xB1`, then `count`,
//! `ok`, `error_other`, `throttle`, `fault` as little-endian `i64`,
//! `total_response_time` as a little-endian `f64`, the number of histogram buckets as a
//! little-endian `u32`, and per bucket its value (`u32`) and count (`i64`). Values
//! written as JSON by earlier versions (they start with `{`) are still read.

use roentgen_model::Stats;

const TAG: u8 = 0xB1;
const FIXED: usize = 1 + 5 * 8 + 8 + 4;
const BUCKET: usize = 4 + 8;

/// Encodes rollup statistics.
pub(crate) fn encode_stats(s: &Stats) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED + s.histogram.len() * BUCKET);
    out.push(TAG);
    for v in [s.count, s.ok, s.error_other, s.throttle, s.fault] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&s.total_response_time.to_le_bytes());
    out.extend_from_slice(&(s.histogram.len() as u32).to_le_bytes());
    for (bucket, count) in &s.histogram {
        out.extend_from_slice(&bucket.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
    }
    out
}

fn take<const N: usize>(v: &[u8], at: &mut usize) -> Result<[u8; N], String> {
    let bytes = v
        .get(*at..*at + N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or_else(|| format!("rollup value cut short at byte {at}"))?;
    *at += N;
    Ok(bytes)
}

/// Decodes rollup statistics written by [`encode_stats`] or, earlier, as JSON.
pub(crate) fn decode_stats(v: &[u8]) -> Result<Stats, String> {
    match v.first() {
        Some(b'{') => return serde_json::from_slice(v).map_err(|e| e.to_string()),
        Some(&TAG) => {}
        _ => return Err("unknown rollup value encoding".into()),
    }
    let mut at = 1;
    let mut ints = [0i64; 5];
    for slot in &mut ints {
        *slot = i64::from_le_bytes(take::<8>(v, &mut at)?);
    }
    let total_response_time = f64::from_le_bytes(take::<8>(v, &mut at)?);
    let n = u32::from_le_bytes(take::<4>(v, &mut at)?) as usize;
    if v.len() != FIXED + n * BUCKET {
        return Err(format!(
            "rollup value of {} bytes does not hold {n} buckets",
            v.len()
        ));
    }
    let mut histogram = std::collections::BTreeMap::new();
    for _ in 0..n {
        let bucket = u32::from_le_bytes(take::<4>(v, &mut at)?);
        let count = i64::from_le_bytes(take::<8>(v, &mut at)?);
        histogram.insert(bucket, count);
    }
    let [count, ok, error_other, throttle, fault] = ints;
    Ok(Stats {
        count,
        ok,
        error_other,
        throttle,
        fault,
        total_response_time,
        histogram,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stats {
        Stats {
            count: 7,
            ok: 3,
            error_other: 1,
            throttle: 1,
            fault: 2,
            total_response_time: 1.25,
            histogram: [(12, 4), (250, 2), (3100, 1)].into_iter().collect(),
        }
    }

    #[test]
    fn round_trip_and_json_compatibility() {
        let s = sample();
        assert_eq!(decode_stats(&encode_stats(&s)), Ok(s.clone()));
        assert_eq!(
            decode_stats(&encode_stats(&Stats::default())),
            Ok(Stats::default())
        );
        let json = serde_json::to_vec(&s).expect("json");
        assert_eq!(decode_stats(&json), Ok(s));
    }

    #[test]
    fn corrupt_values_are_errors() {
        let bytes = encode_stats(&sample());
        for cut in 0..bytes.len() {
            assert!(decode_stats(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_stats(&longer).is_err());
        let mut huge = bytes;
        huge[FIXED - 4..FIXED].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_stats(&huge).is_err());
    }
}
