//! Binary encodings of rollup values (minute and hour rows) and of a trace's graph
//! contribution.
//!
//! A rollup value is read and rewritten by the indexer for every trace that touches its
//! minute, and read by every service-graph query for every minute of its window, so it
//! is kept in a fixed binary layout rather than JSON: a tag byte `0xB1`, then `count`,
//! `ok`, `error_other`, `throttle`, `fault` as little-endian `i64`,
//! `total_response_time` as a little-endian `f64`, the number of histogram buckets as a
//! little-endian `u32`, and per bucket its value (`u32`) and count (`i64`). Values
//! written as JSON by earlier versions (they start with `{`) are still read.

use roentgen_model::{GraphKey, ServiceKey, Stats};

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

pub(crate) fn take<const N: usize>(v: &[u8], at: &mut usize) -> Result<[u8; N], String> {
    let bytes = v
        .get(*at..*at + N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or_else(|| format!("value cut short at byte {at}"))?;
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

const HOUR_TAG: u8 = 0xB3;

/// Requests per minute of an hour row (index: minute of the hour).
pub(crate) type MinuteCounts = [i64; 60];

/// Encodes an hour rollup value: a tag byte `0xB3`, the number of minutes with a
/// non-zero request count (`u8`) and per such minute its index (`u8`) and count (`i64`),
/// then the hour's statistics as [`encode_stats`] writes them. The minute counts keep
/// a node's first and last active minute exact when a window is read by the hour.
pub(crate) fn encode_hour(s: &Stats, counts: &MinuteCounts) -> Vec<u8> {
    let stats = encode_stats(s);
    let active = counts.iter().filter(|c| **c != 0).count();
    let mut out = Vec::with_capacity(2 + active * 9 + stats.len());
    out.push(HOUR_TAG);
    out.push(active as u8);
    for (m, c) in counts.iter().enumerate().filter(|(_, c)| **c != 0) {
        out.push(m as u8);
        out.extend_from_slice(&c.to_le_bytes());
    }
    out.extend_from_slice(&stats);
    out
}

/// Decodes an hour rollup value written by [`encode_hour`].
pub(crate) fn decode_hour(v: &[u8]) -> Result<(Stats, MinuteCounts), String> {
    let mut at = 0;
    if take::<1>(v, &mut at)? != [HOUR_TAG] {
        return Err("unknown hour rollup encoding".into());
    }
    let [n] = take::<1>(v, &mut at)?;
    let mut counts = [0i64; 60];
    for _ in 0..n {
        let [m] = take::<1>(v, &mut at)?;
        let c = i64::from_le_bytes(take::<8>(v, &mut at)?);
        let slot = counts
            .get_mut(usize::from(m))
            .ok_or_else(|| format!("hour rollup: minute {m} out of range"))?;
        *slot = c;
    }
    let stats = decode_stats(v.get(at..).unwrap_or_default())?;
    Ok((stats, counts))
}

/// One trace's graph contribution as stored in its summary record: (minute, node or
/// edge, statistics).
pub(crate) type GraphRows = Vec<(u64, GraphKey, Stats)>;

const GRAPH_TAG: u8 = 0xB2;

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

pub(crate) fn put_key(out: &mut Vec<u8>, k: &ServiceKey) {
    put_str(out, &k.name);
    put_opt_str(out, k.kind.as_deref());
    put_opt_str(out, k.account_id.as_deref());
}

/// Encodes a trace's graph contribution: a tag byte `0xB2`, the row count (`u32`), and
/// per row the minute (`u64`), a flag byte and the source key when the row is an edge,
/// the target key, and the statistics as [`encode_stats`] writes them (length first).
/// A key is its name and two optional strings (flag byte, then length and bytes); all
/// numbers little-endian.
pub(crate) fn encode_graph(rows: &[(u64, GraphKey, Stats)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + rows.len() * 160);
    out.push(GRAPH_TAG);
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for (minute, key, stats) in rows {
        out.extend_from_slice(&minute.to_le_bytes());
        match &key.source {
            None => out.push(0),
            Some(src) => {
                out.push(1);
                put_key(&mut out, src);
            }
        }
        put_key(&mut out, &key.target);
        let s = encode_stats(stats);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(&s);
    }
    out
}

pub(crate) fn take_bytes<'a>(v: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = at
        .checked_add(n)
        .filter(|e| *e <= v.len())
        .ok_or_else(|| format!("value cut short at byte {at}"))?;
    let b = &v[*at..end];
    *at = end;
    Ok(b)
}

/// The bytes of a string as [`put_str`] writes it (length first), not yet checked to
/// be UTF-8: what a reader that skips the string or compares its bytes needs.
pub(crate) fn take_str_bytes<'a>(v: &'a [u8], at: &mut usize) -> Result<&'a [u8], String> {
    let n = u32::from_le_bytes(take::<4>(v, at)?) as usize;
    take_bytes(v, at, n)
}

pub(crate) fn take_str(v: &[u8], at: &mut usize) -> Result<String, String> {
    String::from_utf8(take_str_bytes(v, at)?.to_vec()).map_err(|e| e.to_string())
}

pub(crate) fn take_flag(v: &[u8], at: &mut usize) -> Result<bool, String> {
    match take::<1>(v, at)? {
        [0] => Ok(false),
        [1] => Ok(true),
        [b] => Err(format!("bad flag byte {b} at byte {}", *at - 1)),
    }
}

pub(crate) fn take_opt_str(v: &[u8], at: &mut usize) -> Result<Option<String>, String> {
    if take_flag(v, at)? {
        take_str(v, at).map(Some)
    } else {
        Ok(None)
    }
}

pub(crate) fn take_key(v: &[u8], at: &mut usize) -> Result<ServiceKey, String> {
    Ok(ServiceKey::new(
        take_str(v, at)?,
        take_opt_str(v, at)?,
        take_opt_str(v, at)?,
    ))
}

/// Decodes graph rows written by [`encode_graph`] or, earlier, as JSON; empty input is
/// no rows.
pub(crate) fn decode_graph(v: &[u8]) -> Result<GraphRows, String> {
    match v.first() {
        None => return Ok(Vec::new()),
        Some(b'[') => return serde_json::from_slice(v).map_err(|e| e.to_string()),
        Some(&GRAPH_TAG) => {}
        Some(_) => return Err("unknown graph rows encoding".into()),
    }
    let mut at = 1;
    let n = u32::from_le_bytes(take::<4>(v, &mut at)?) as usize;
    // Each row takes at least 8 + 1 + 4 + 2 + 4 + FIXED bytes: a count the rest cannot
    // hold is corrupt (and must not size an allocation).
    if n > v.len() / (19 + FIXED) {
        return Err(format!("graph rows: count {n} exceeds the value"));
    }
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let minute = u64::from_le_bytes(take::<8>(v, &mut at)?);
        let source = if take_flag(v, &mut at)? {
            Some(take_key(v, &mut at)?)
        } else {
            None
        };
        let target = take_key(v, &mut at)?;
        let len = u32::from_le_bytes(take::<4>(v, &mut at)?) as usize;
        let stats = decode_stats(take_bytes(v, &mut at, len)?)?;
        rows.push((minute, GraphKey { source, target }, stats));
    }
    if at != v.len() {
        return Err(format!("graph rows: {} bytes left over", v.len() - at));
    }
    Ok(rows)
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

    fn key(name: &str, kind: Option<&str>) -> ServiceKey {
        ServiceKey::new(name, kind.map(str::to_string), None)
    }

    fn rows() -> GraphRows {
        vec![
            (
                29_000_000,
                GraphKey {
                    source: None,
                    target: key("web ☃", Some("AWS::EC2::Instance")),
                },
                sample(),
            ),
            (
                29_000_001,
                GraphKey {
                    source: Some(key("web ☃", Some("AWS::EC2::Instance"))),
                    target: ServiceKey::new("orders", None, Some("123456789012".into())),
                },
                Stats::default(),
            ),
        ]
    }

    #[test]
    fn hour_round_trip_and_corruption() {
        let mut counts = [0i64; 60];
        counts[0] = 3;
        counts[59] = -1;
        counts[17] = 1 << 40;
        let bytes = encode_hour(&sample(), &counts);
        assert_eq!(decode_hour(&bytes), Ok((sample(), counts)));
        assert_eq!(
            decode_hour(&encode_hour(&Stats::default(), &[0; 60])),
            Ok((Stats::default(), [0; 60]))
        );
        for cut in 0..bytes.len() {
            assert!(decode_hour(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_minute = bytes;
        bad_minute[2] = 60;
        assert!(decode_hour(&bad_minute).is_err());
    }

    #[test]
    fn graph_round_trip_and_json_compatibility() {
        let r = rows();
        assert_eq!(decode_graph(&encode_graph(&r)), Ok(r.clone()));
        assert_eq!(decode_graph(&encode_graph(&[])), Ok(Vec::new()));
        assert_eq!(decode_graph(&[]), Ok(Vec::new()));
        let json = serde_json::to_vec(&r).expect("json");
        assert_eq!(decode_graph(&json), Ok(r));
    }

    #[test]
    fn corrupt_graph_rows_are_errors() {
        let bytes = encode_graph(&rows());
        for cut in 1..bytes.len() {
            assert!(decode_graph(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_graph(&longer).is_err());
        let mut huge = bytes;
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_graph(&huge).is_err());
    }
}
