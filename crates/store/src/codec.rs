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

use roentgen_model::trace::ServiceKeyFields;
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

/// Encodes a trace's graph contribution, compactly: a tag byte `0xB4`, then
/// [`postcard`] (LEB128 varints, zigzag for signed numbers, `f64` little-endian) of
/// the trace's distinct node keys, once each, the smallest minute, and per row the
/// minute's offset from it, the source (0: none, else key index + 1), the target's key
/// index, the statistics and the histogram buckets. A five-segment trace's rows take
/// about a quarter of the bytes of the fixed-width layout before it (tag `0xB2`,
/// still read), and every byte of a summary record is journaled, flushed and
/// compacted by the embedded store, and inserted and merged by ClickHouse.
pub(crate) fn encode_graph(rows: &[(u64, GraphKey, Stats)]) -> Vec<u8> {
    /// The index of `k` in `keys`, added when new.
    fn slot<'a>(
        k: &'a ServiceKey,
        keys: &mut Vec<GraphKeyOut<'a>>,
        index: &mut foldhash::HashMap<&'a ServiceKeyFields, u32>,
    ) -> u32 {
        let fields: &ServiceKeyFields = k;
        *index.entry(fields).or_insert_with(|| {
            keys.push(GraphKeyOut {
                name: &fields.name,
                kind: fields.kind.as_deref(),
                account_id: fields.account_id.as_deref(),
            });
            (keys.len() - 1) as u32
        })
    }
    let mut keys = Vec::new();
    let mut index = foldhash::HashMap::default();
    let base_minute = rows.iter().map(|r| r.0).min().unwrap_or(0);
    let mut out_rows = Vec::with_capacity(rows.len());
    for (minute, key, stats) in rows {
        let source = match &key.source {
            Some(k) => slot(k, &mut keys, &mut index) + 1,
            None => 0,
        };
        let target = slot(&key.target, &mut keys, &mut index);
        out_rows.push(GraphRowV2 {
            minute: minute - base_minute,
            source,
            target,
            count: stats.count,
            ok: stats.ok,
            error_other: stats.error_other,
            throttle: stats.throttle,
            fault: stats.fault,
            total_response_time: stats.total_response_time,
            histogram: HistogramOut(&stats.histogram),
        });
    }
    // Room for what a row takes when its numbers are small: grown from one byte, the
    // buffer was copied some seven times per record.
    let mut out = Vec::with_capacity(16 + keys.len() * 32 + rows.len() * 24);
    out.push(GRAPH_V2_TAG);
    let graph = GraphV2 {
        keys,
        base_minute,
        rows: out_rows,
    };
    // Serializing plain data into a Vec cannot fail.
    postcard::to_extend(&graph, out).unwrap_or_default()
}

/// A histogram written as the list of `(bucket, count)` it is read back as, without
/// building that list.
struct HistogramOut<'a>(&'a std::collections::BTreeMap<u32, i64>);

impl serde::Serialize for HistogramOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(b, c)| (*b, *c)))
    }
}

const GRAPH_V2_TAG: u8 = 0xB4;

/// The encoded graph rows. Written with `H` = [`HistogramOut`], read with
/// `Vec<(u32, i64)>`: one field layout for both.
#[derive(serde::Serialize, serde::Deserialize)]
struct GraphV2<'a, H> {
    #[serde(borrow)]
    keys: Vec<GraphKeyOut<'a>>,
    base_minute: u64,
    rows: Vec<GraphRowV2<H>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct GraphKeyOut<'a> {
    name: &'a str,
    kind: Option<&'a str>,
    account_id: Option<&'a str>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct GraphRowV2<H> {
    minute: u64,
    source: u32,
    target: u32,
    count: i64,
    ok: i64,
    error_other: i64,
    throttle: i64,
    fault: i64,
    total_response_time: f64,
    histogram: H,
}

fn decode_graph_v2(v: &[u8]) -> Result<GraphRows, String> {
    let (graph, rest) =
        postcard::take_from_bytes::<GraphV2<'_, Vec<(u32, i64)>>>(v).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("graph rows: {} bytes left over", rest.len()));
    }
    let keys: Vec<ServiceKey> = graph
        .keys
        .iter()
        .map(|k| {
            ServiceKey::new(
                k.name,
                k.kind.map(str::to_string),
                k.account_id.map(str::to_string),
            )
        })
        .collect();
    let key = |i: u32| {
        keys.get(i as usize)
            .cloned()
            .ok_or_else(|| format!("graph rows: key {i} of {}", keys.len()))
    };
    graph
        .rows
        .into_iter()
        .map(|r| {
            let minute = graph
                .base_minute
                .checked_add(r.minute)
                .ok_or("graph rows: minute out of range")?;
            let source = match r.source {
                0 => None,
                s => Some(key(s - 1)?),
            };
            let stats = Stats {
                count: r.count,
                ok: r.ok,
                error_other: r.error_other,
                throttle: r.throttle,
                fault: r.fault,
                total_response_time: r.total_response_time,
                histogram: r.histogram.into_iter().collect(),
            };
            Ok((
                minute,
                GraphKey {
                    source,
                    target: key(r.target)?,
                },
                stats,
            ))
        })
        .collect()
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

/// Decodes graph rows written by [`encode_graph`], by the fixed-width layout before it,
/// or, earlier, as JSON; empty input is no rows.
pub(crate) fn decode_graph(v: &[u8]) -> Result<GraphRows, String> {
    match v.first() {
        None => return Ok(Vec::new()),
        Some(b'[') => return serde_json::from_slice(v).map_err(|e| e.to_string()),
        Some(&GRAPH_V2_TAG) => return decode_graph_v2(v.get(1..).unwrap_or_default()),
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

    /// The fixed-width layout earlier records hold: a tag byte `0xB2`, the row count (`u32`), and
    /// per row the minute (`u64`), a flag byte and the source key when the row is an edge,
    /// the target key, and the statistics as [`encode_stats`] writes them (length first).
    /// A key is its name and two optional strings (flag byte, then length and bytes); all
    /// numbers little-endian.
    fn encode_graph_v1(rows: &[(u64, GraphKey, Stats)]) -> Vec<u8> {
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

    #[test]
    fn graph_round_trip_and_json_compatibility() {
        let r = rows();
        assert_eq!(decode_graph(&encode_graph(&r)), Ok(r.clone()));
        assert_eq!(decode_graph(&encode_graph_v1(&r)), Ok(r.clone()));
        assert!(encode_graph(&r).len() * 2 < encode_graph_v1(&r).len());
        assert_eq!(decode_graph(&encode_graph(&[])), Ok(Vec::new()));
        assert_eq!(decode_graph(&[]), Ok(Vec::new()));
        let json = serde_json::to_vec(&r).expect("json");
        assert_eq!(decode_graph(&json), Ok(r));
    }

    #[test]
    fn corrupt_graph_rows_are_errors() {
        for bytes in [encode_graph(&rows()), encode_graph_v1(&rows())] {
            for cut in 1..bytes.len() {
                assert!(decode_graph(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_graph(&longer).is_err());
        }
        let mut huge = encode_graph_v1(&rows());
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_graph(&huge).is_err());
        // Rows naming a key the table does not hold, or a minute past the range.
        let row = |target, minute| GraphRowV2 {
            minute,
            source: 0,
            target,
            count: 1,
            ok: 1,
            error_other: 0,
            throttle: 0,
            fault: 0,
            total_response_time: 0.5,
            histogram: vec![(500, 1)],
        };
        let keys = || {
            vec![GraphKeyOut {
                name: "web",
                kind: None,
                account_id: None,
            }]
        };
        let encode = |g: &GraphV2<'_, Vec<(u32, i64)>>| {
            postcard::to_extend(g, vec![GRAPH_V2_TAG]).expect("encode")
        };
        let good = GraphV2 {
            keys: keys(),
            base_minute: 7,
            rows: vec![row(0, 1)],
        };
        assert_eq!(
            decode_graph(&encode(&good)).expect("decode")[0].0,
            8,
            "minutes are offsets from the base"
        );
        let unknown = GraphV2 {
            keys: keys(),
            base_minute: 7,
            rows: vec![row(1, 0)],
        };
        let err = decode_graph(&encode(&unknown)).expect_err("unknown key");
        assert!(err.contains("key 1 of 1"), "{err}");
        let past = GraphV2 {
            keys: keys(),
            base_minute: u64::MAX,
            rows: vec![row(0, 1)],
        };
        assert!(decode_graph(&encode(&past)).is_err());
    }
}
