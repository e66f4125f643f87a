//! The scan block of a summary record: the parts of a trace summary that most filter
//! expressions read, in a binary layout a scan can decode in part.
//!
//! A filtered `GetTraceSummaries` may look at every summary of its window, and
//! decoding a whole summary from its stored JSON costs microseconds. The scan block
//! repeats the scalars and the small parts (root request, annotations, users,
//! services, resources) so that a scan decodes only the sections its expression
//! needs ([`roentgen_filter::Needs`]) and reads the JSON only for the summaries it
//! returns, or when the expression reads nodes, edges or root causes.
//!
//! Layout, numbers little-endian: a version byte (`1`); `updated_at` (`f64`),
//! `revision` (`u32`), `start_time`, `end_time`, `duration`, `response_time` (`f64`
//! each, `0` when absent), a flag byte (fault, error, throttle, partial, and which of
//! the three optional times are present), `document_count` (`u32`); then five
//! sections, each its length (`u32`) first so a scan skips it in O(1): http,
//! annotations, users, services (with the entry point), resources. Strings are a
//! `u32` length and UTF-8; optional strings a flag byte first; service keys as
//! [`crate::codec`] writes them.

use std::collections::BTreeMap;

use roentgen_filter::Needs;
use roentgen_model::TraceId;
use roentgen_model::trace::{
    AnnotationEntry, HttpSummary, ServiceKey, StoredAnnotation, TraceSummary, UserEntry,
};

use crate::StoredSummary;
use crate::codec::{
    put_key, put_opt_str, put_str, take, take_bytes, take_flag, take_key, take_str, take_str_bytes,
};

const VERSION: u8 = 1;

const FAULT: u8 = 1;
const ERROR: u8 = 1 << 1;
const THROTTLE: u8 = 1 << 2;
const PARTIAL: u8 = 1 << 3;
const HAS_END: u8 = 1 << 4;
const HAS_DURATION: u8 = 1 << 5;
const HAS_RESPONSE_TIME: u8 = 1 << 6;

/// The parts a scan block can answer; an expression that needs more reads the JSON.
pub(crate) const SCANNABLE: Needs = Needs::HTTP
    .union(Needs::ANNOTATIONS)
    .union(Needs::USERS)
    .union(Needs::SERVICES)
    .union(Needs::RESOURCES);

/// Sections in their stored order.
const SECTIONS: [Needs; 5] = [
    Needs::HTTP,
    Needs::ANNOTATIONS,
    Needs::USERS,
    Needs::SERVICES,
    Needs::RESOURCES,
];

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_keys(out: &mut Vec<u8>, keys: &[ServiceKey]) {
    put_u32(out, keys.len());
    for k in keys {
        put_key(out, k);
    }
}

fn put_strs(out: &mut Vec<u8>, items: &[String]) {
    put_u32(out, items.len());
    for s in items {
        put_str(out, s);
    }
}

fn put_section(out: &mut Vec<u8>, s: &TraceSummary, part: Needs) {
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    match part {
        Needs::HTTP => match &s.http {
            None => out.push(0),
            Some(h) => {
                out.push(1);
                put_opt_str(out, h.url.as_deref());
                match h.status {
                    None => out.push(0),
                    Some(st) => {
                        out.push(1);
                        out.extend_from_slice(&st.to_le_bytes());
                    }
                }
                put_opt_str(out, h.method.as_deref());
                put_opt_str(out, h.user_agent.as_deref());
                put_opt_str(out, h.client_ip.as_deref());
            }
        },
        Needs::ANNOTATIONS => {
            put_u32(out, s.annotations.len());
            for (key, entries) in &s.annotations {
                put_str(out, key);
                put_u32(out, entries.len());
                for e in entries {
                    match &e.value {
                        StoredAnnotation::String(v) => {
                            out.push(0);
                            put_str(out, v);
                        }
                        StoredAnnotation::Number(n) => {
                            out.push(1);
                            out.extend_from_slice(&n.to_le_bytes());
                        }
                        StoredAnnotation::Bool(b) => out.extend_from_slice(&[2, u8::from(*b)]),
                    }
                    put_keys(out, &e.services);
                }
            }
        }
        Needs::USERS => {
            put_u32(out, s.users.len());
            for u in &s.users {
                put_str(out, &u.user);
                put_keys(out, &u.services);
            }
        }
        Needs::SERVICES => {
            put_keys(out, &s.services);
            match &s.entry_point {
                None => out.push(0),
                Some(k) => {
                    out.push(1);
                    put_key(out, k);
                }
            }
        }
        _ => {
            put_strs(out, &s.instance_ids);
            put_strs(out, &s.availability_zones);
            put_strs(out, &s.resource_arns);
        }
    }
    let len = (out.len() - len_at - 4) as u32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Appends the scan block of `stored` to `out`.
pub(crate) fn encode_scan(out: &mut Vec<u8>, stored: &StoredSummary) {
    let s = &stored.summary;
    out.push(VERSION);
    out.extend_from_slice(&stored.updated_at.to_le_bytes());
    out.extend_from_slice(&stored.revision.to_le_bytes());
    let mut flags = 0;
    for (on, bit) in [
        (s.has_fault, FAULT),
        (s.has_error, ERROR),
        (s.has_throttle, THROTTLE),
        (s.is_partial, PARTIAL),
        (s.end_time.is_some(), HAS_END),
        (s.duration.is_some(), HAS_DURATION),
        (s.response_time.is_some(), HAS_RESPONSE_TIME),
    ] {
        if on {
            flags |= bit;
        }
    }
    for t in [Some(s.start_time), s.end_time, s.duration, s.response_time] {
        out.extend_from_slice(&t.unwrap_or(0.0).to_le_bytes());
    }
    out.push(flags);
    put_u32(out, s.document_count);
    for part in SECTIONS {
        put_section(out, s, part);
    }
}

fn take_u32(v: &[u8], at: &mut usize) -> Result<usize, String> {
    Ok(u32::from_le_bytes(take::<4>(v, at)?) as usize)
}

fn take_f64(v: &[u8], at: &mut usize) -> Result<f64, String> {
    Ok(f64::from_le_bytes(take::<8>(v, at)?))
}

/// A count read from the value, checked against the bytes left (each item takes at
/// least `min` bytes), so a corrupt count cannot size an allocation.
fn take_count(v: &[u8], at: &mut usize, min: usize) -> Result<usize, String> {
    let n = take_u32(v, at)?;
    if n.saturating_mul(min) > v.len().saturating_sub(*at) {
        return Err(format!("count {n} at byte {} exceeds the value", *at - 4));
    }
    Ok(n)
}

/// Steps over one service key without building it.
fn skip_keys_one(v: &[u8], at: &mut usize) -> Result<(), String> {
    take_str_bytes(v, at)?;
    for _ in 0..2 {
        if take_flag(v, at)? {
            take_str_bytes(v, at)?;
        }
    }
    Ok(())
}

/// Steps over a list of service keys without building them.
fn skip_keys(v: &[u8], at: &mut usize) -> Result<(), String> {
    let n = take_count(v, at, 6)?;
    for _ in 0..n {
        skip_keys_one(v, at)?;
    }
    Ok(())
}

/// Reads a string into `s`, in its allocation.
fn fill_str(v: &[u8], at: &mut usize, s: &mut String) -> Result<(), String> {
    let b = take_str_bytes(v, at)?;
    s.clear();
    s.push_str(std::str::from_utf8(b).map_err(|e| e.to_string())?);
    Ok(())
}

fn fill_opt_str(v: &[u8], at: &mut usize, s: &mut Option<String>) -> Result<(), String> {
    if take_flag(v, at)? {
        fill_str(v, at, s.get_or_insert_with(String::new))
    } else {
        *s = None;
        Ok(())
    }
}

fn fill_key(v: &[u8], at: &mut usize, k: &mut ServiceKey) -> Result<(), String> {
    let k = k.make_mut();
    fill_str(v, at, &mut k.name)?;
    fill_opt_str(v, at, &mut k.kind)?;
    fill_opt_str(v, at, &mut k.account_id)
}

/// Reads a list into `items`, reusing the elements it has: `fill` reads one into an
/// existing element, `take` builds a new one.
fn fill_list<T>(
    v: &[u8],
    at: &mut usize,
    min: usize,
    items: &mut Vec<T>,
    mut fill: impl FnMut(&[u8], &mut usize, &mut T) -> Result<(), String>,
    mut take: impl FnMut(&[u8], &mut usize) -> Result<T, String>,
) -> Result<(), String> {
    let n = take_count(v, at, min)?;
    items.truncate(n);
    for i in 0..n {
        match items.get_mut(i) {
            Some(item) => fill(v, at, item)?,
            None => items.push(take(v, at)?),
        }
    }
    Ok(())
}

fn fill_keys(v: &[u8], at: &mut usize, keys: &mut Vec<ServiceKey>) -> Result<(), String> {
    fill_list(v, at, 6, keys, fill_key, take_key)
}

fn fill_strs(v: &[u8], at: &mut usize, items: &mut Vec<String>) -> Result<(), String> {
    fill_list(v, at, 4, items, fill_str, take_str)
}

fn take_value(v: &[u8], at: &mut usize) -> Result<StoredAnnotation, String> {
    Ok(match take::<1>(v, at)? {
        [0] => StoredAnnotation::String(take_str(v, at)?),
        [1] => StoredAnnotation::Number(take_f64(v, at)?),
        [2] => StoredAnnotation::Bool(take_flag(v, at)?),
        [t] => return Err(format!("unknown annotation tag {t}")),
    })
}

fn skip_value(v: &[u8], at: &mut usize) -> Result<(), String> {
    match take::<1>(v, at)? {
        [0] => {
            take_str_bytes(v, at)?;
        }
        [1] => {
            take::<8>(v, at)?;
        }
        [2] => {
            take::<1>(v, at)?;
        }
        [t] => return Err(format!("unknown annotation tag {t}")),
    }
    Ok(())
}

/// Reads one section into `s`, reusing the allocations `s` has from an earlier block.
fn fill_section(
    v: &[u8],
    at: &mut usize,
    s: &mut TraceSummary,
    part: Needs,
    keys: Option<&[String]>,
) -> Result<(), String> {
    match part {
        Needs::HTTP => {
            if take_flag(v, at)? {
                let h = s.http.get_or_insert_with(HttpSummary::default);
                fill_opt_str(v, at, &mut h.url)?;
                h.status = if take_flag(v, at)? {
                    Some(u16::from_le_bytes(take::<2>(v, at)?))
                } else {
                    None
                };
                fill_opt_str(v, at, &mut h.method)?;
                fill_opt_str(v, at, &mut h.user_agent)?;
                fill_opt_str(v, at, &mut h.client_ip)?;
            } else {
                s.http = None;
            }
        }
        Needs::ANNOTATIONS => {
            // Keys the last block had keep their entry (and its allocations) when this
            // block has them too; the others go at the end.
            for entries in s.annotations.values_mut() {
                entries.clear();
            }
            let count = take_count(v, at, 8)?;
            for _ in 0..count {
                let raw = take_str_bytes(v, at)?;
                let n = take_count(v, at, 6)?;
                if keys.is_some_and(|keys| !keys.iter().any(|k| k.as_bytes() == raw)) {
                    for _ in 0..n {
                        skip_value(v, at)?;
                        skip_keys(v, at)?;
                    }
                    continue;
                }
                let key = std::str::from_utf8(raw).map_err(|e| e.to_string())?;
                let entries = match s.annotations.get_mut(key) {
                    Some(entries) => entries,
                    None => s.annotations.entry(key.to_string()).or_default(),
                };
                for _ in 0..n {
                    let value = take_value(v, at)?;
                    skip_keys(v, at)?;
                    entries.push(AnnotationEntry {
                        value,
                        services: Vec::new(),
                    });
                }
            }
            s.annotations.retain(|_, entries| !entries.is_empty());
        }
        Needs::USERS => fill_list(
            v,
            at,
            8,
            &mut s.users,
            |v, at, u| {
                fill_str(v, at, &mut u.user)?;
                skip_keys(v, at)
            },
            |v, at| {
                let user = take_str(v, at)?;
                skip_keys(v, at)?;
                Ok(UserEntry {
                    user,
                    services: Vec::new(),
                })
            },
        )?,
        Needs::SERVICES => {
            fill_keys(v, at, &mut s.services)?;
            if take_flag(v, at)? {
                skip_keys_one(v, at)?;
            }
        }
        _ => {
            fill_strs(v, at, &mut s.instance_ids)?;
            fill_strs(v, at, &mut s.availability_zones)?;
            fill_strs(v, at, &mut s.resource_arns)?;
        }
    }
    Ok(())
}

/// Empties the section `part` of `s`.
fn clear_section(s: &mut TraceSummary, part: Needs) {
    match part {
        Needs::HTTP => s.http = None,
        Needs::ANNOTATIONS => s.annotations.clear(),
        Needs::USERS => s.users.clear(),
        Needs::SERVICES => s.services.clear(),
        _ => {
            s.instance_ids.clear();
            s.availability_zones.clear();
            s.resource_arns.clear();
        }
    }
}

/// A summary with nothing in it (and an all-zero trace id), for [`decode_scan_into`]
/// to fill.
pub(crate) fn empty() -> StoredSummary {
    StoredSummary {
        summary: TraceSummary {
            trace_id: TraceId::from_bytes([0; 16]),
            start_time: 0.0,
            end_time: None,
            duration: None,
            response_time: None,
            has_fault: false,
            has_error: false,
            has_throttle: false,
            is_partial: false,
            http: None,
            annotations: BTreeMap::new(),
            users: Vec::new(),
            services: Vec::new(),
            entry_point: None,
            instance_ids: Vec::new(),
            availability_zones: Vec::new(),
            resource_arns: Vec::new(),
            document_count: 0,
            nodes: Vec::new(),
            edges: Vec::new(),
            fault_root_causes: Vec::new(),
            error_root_causes: Vec::new(),
            response_time_root_causes: Vec::new(),
        },
        revision: 0,
        updated_at: 0.0,
    }
}

/// Decodes the scalars of a scan block and the sections `needs` names, as the filter
/// evaluator reads them: other parts are left empty (nodes, edges and root causes
/// always), and so are the services of annotation entries and users, the entry point,
/// and annotations under keys outside `annotation_keys` (when given), which
/// evaluation never reads (the filter crate's property
/// `needs_names_every_part_evaluation_reads` holds it to that).
#[cfg(test)]
pub(crate) fn decode_scan(
    v: &[u8],
    trace_id: TraceId,
    needs: Needs,
    annotation_keys: Option<&[String]>,
) -> Result<StoredSummary, String> {
    let mut out = empty();
    decode_scan_into(v, trace_id, needs, annotation_keys, &mut out)?;
    Ok(out)
}

/// The summary revision a scan block holds, read without decoding the rest.
pub(crate) fn revision_of(v: &[u8]) -> Result<u32, String> {
    match v {
        [VERSION, _, _, _, _, _, _, _, _, r0, r1, r2, r3, ..] => {
            Ok(u32::from_le_bytes([*r0, *r1, *r2, *r3]))
        }
        [other, ..] if *other != VERSION => Err(format!("unknown scan block version {other}")),
        _ => Err("scan block cut short before its revision".into()),
    }
}

/// [`decode_scan`] into `out`, which a scan reuses from block to block so that a block
/// costs no allocation beyond what its values need. `out` holds a summary as
/// [`decode_scan`] returns it (or what [`empty`] gives) on success; after an error its
/// contents are unspecified.
pub(crate) fn decode_scan_into(
    v: &[u8],
    trace_id: TraceId,
    needs: Needs,
    annotation_keys: Option<&[String]>,
    out: &mut StoredSummary,
) -> Result<(), String> {
    let mut at = 0;
    match take::<1>(v, &mut at)? {
        [VERSION] => {}
        [other] => return Err(format!("unknown scan block version {other}")),
    }
    out.updated_at = take_f64(v, &mut at)?;
    out.revision = u32::from_le_bytes(take::<4>(v, &mut at)?);
    let [start_time, end, duration, response_time] = [
        take_f64(v, &mut at)?,
        take_f64(v, &mut at)?,
        take_f64(v, &mut at)?,
        take_f64(v, &mut at)?,
    ];
    let [flags] = take::<1>(v, &mut at)?;
    let document_count = take_u32(v, &mut at)?;
    let when = |bit: u8, t: f64| (flags & bit != 0).then_some(t);
    let s = &mut out.summary;
    s.trace_id = trace_id;
    s.start_time = start_time;
    s.end_time = when(HAS_END, end);
    s.duration = when(HAS_DURATION, duration);
    s.response_time = when(HAS_RESPONSE_TIME, response_time);
    s.has_fault = flags & FAULT != 0;
    s.has_error = flags & ERROR != 0;
    s.has_throttle = flags & THROTTLE != 0;
    s.is_partial = flags & PARTIAL != 0;
    s.document_count = document_count;
    for part in SECTIONS {
        let len = take_u32(v, &mut at)?;
        let section = take_bytes(v, &mut at, len)?;
        if needs.contains(part) {
            let mut inner = 0;
            fill_section(section, &mut inner, s, part, annotation_keys)?;
            if inner != section.len() {
                return Err(format!(
                    "scan section has {} bytes left over",
                    section.len() - inner
                ));
            }
        } else {
            clear_section(s, part);
        }
    }
    if at != v.len() {
        return Err(format!("scan block has {} bytes left over", v.len() - at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, kind: Option<&str>) -> ServiceKey {
        ServiceKey::new(name, kind.map(Into::into), Some("123456789012".into()))
    }

    fn sample() -> StoredSummary {
        let web = key("web", Some("AWS::EC2::Instance"));
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "customer".to_string(),
            vec![AnnotationEntry {
                value: StoredAnnotation::String("c-42".into()),
                services: vec![web.clone()],
            }],
        );
        annotations.insert(
            "n".to_string(),
            vec![
                AnnotationEntry {
                    value: StoredAnnotation::Number(-1.5),
                    services: vec![web.clone()],
                },
                AnnotationEntry {
                    value: StoredAnnotation::Bool(true),
                    services: vec![],
                },
            ],
        );
        StoredSummary {
            summary: TraceSummary {
                trace_id: "1-5759e988-bd862e3fe1be46a994272793".parse().expect("id"),
                start_time: 1465510280.0,
                end_time: Some(1465510281.25),
                duration: Some(1.25),
                response_time: None,
                has_fault: true,
                has_error: false,
                has_throttle: true,
                is_partial: false,
                http: Some(HttpSummary {
                    url: Some("https://web.example.com/ü".into()),
                    status: Some(503),
                    method: Some("GET".into()),
                    user_agent: None,
                    client_ip: Some("10.0.0.1".into()),
                }),
                annotations,
                users: vec![UserEntry {
                    user: "alice".into(),
                    services: vec![web.clone()],
                }],
                services: vec![web.clone(), key("DynamoDB", Some("AWS::DynamoDB::Table"))],
                entry_point: Some(web),
                instance_ids: vec!["i-1".into()],
                availability_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
                resource_arns: vec![],
                document_count: 3,
                nodes: vec![],
                edges: vec![],
                fault_root_causes: vec![],
                error_root_causes: vec![],
                response_time_root_causes: vec![],
            },
            revision: 7,
            updated_at: 1465510290.5,
        }
    }

    fn encoded(s: &StoredSummary) -> Vec<u8> {
        let mut out = Vec::new();
        encode_scan(&mut out, s);
        out
    }

    #[test]
    fn every_scannable_part_round_trips() {
        let s = sample();
        let back = decode_scan(&encoded(&s), s.summary.trace_id, SCANNABLE, None).expect("decodes");
        // What evaluation never reads is left out.
        let mut want = s.clone();
        want.summary.entry_point = None;
        want.summary.users[0].services.clear();
        for entries in want.summary.annotations.values_mut() {
            entries.iter_mut().for_each(|e| e.services.clear());
        }
        assert_eq!(back, want);
    }

    #[test]
    fn parts_not_asked_for_stay_empty() {
        let s = sample();
        let back =
            decode_scan(&encoded(&s), s.summary.trace_id, Needs::ANNOTATIONS, None).expect("ok");
        assert_eq!(
            back.summary.annotations["n"][0].value,
            StoredAnnotation::Number(-1.5)
        );
        assert_eq!(back.summary.annotations.len(), 2);
        assert_eq!(back.summary.response_time, None);
        assert_eq!(back.summary.duration, Some(1.25));
        assert!(back.summary.has_fault && back.summary.has_throttle && !back.summary.has_error);
        assert_eq!(back.revision, 7);
        assert!(back.summary.http.is_none() && back.summary.services.is_empty());
        assert!(back.summary.users.is_empty() && back.summary.availability_zones.is_empty());
    }

    #[test]
    fn only_the_asked_annotation_keys_are_built() {
        let s = sample();
        let keys = ["n".to_string(), "absent".to_string()];
        let back =
            decode_scan(&encoded(&s), s.summary.trace_id, SCANNABLE, Some(&keys)).expect("decodes");
        assert_eq!(back.summary.annotations.keys().collect::<Vec<_>>(), ["n"]);
        assert_eq!(back.summary.annotations["n"].len(), 2);
        // What follows the skipped key is still read.
        assert_eq!(back.summary.users[0].user, "alice");
        assert_eq!(back.summary.resource_arns.len(), 0);
        assert_eq!(back.summary.availability_zones.len(), 2);
    }

    /// Blocks unlike each other, for decoding one after another into one summary.
    fn variants() -> Vec<StoredSummary> {
        let full = sample();
        let mut bare = empty();
        bare.summary.trace_id = full.summary.trace_id;
        bare.summary.start_time = 1.0;
        let mut other = sample();
        other.summary.http = Some(HttpSummary {
            url: None,
            status: None,
            method: Some("a much longer method name than GET".into()),
            user_agent: Some("curl".into()),
            client_ip: None,
        });
        other.summary.annotations.remove("customer");
        other.summary.annotations.insert(
            "z".into(),
            vec![AnnotationEntry {
                value: StoredAnnotation::String("zz".into()),
                services: vec![],
            }],
        );
        other.summary.users.clear();
        other.summary.services.truncate(1);
        other.summary.services[0].make_mut().kind = None;
        other.summary.instance_ids = vec!["i-2".into(), "i-3".into(), "i-4".into()];
        other.summary.end_time = None;
        other.revision = 9;
        vec![full, bare, other]
    }

    #[test]
    fn reused_summaries_decode_like_fresh_ones() {
        let keys = ["n".to_string(), "z".to_string()];
        for needs in [
            SCANNABLE,
            Needs::ANNOTATIONS,
            Needs::HTTP | Needs::SERVICES,
            Needs::NONE,
        ] {
            for keys in [None, Some(&keys[..])] {
                let mut reused = empty();
                // Every order of every pair, and each after itself.
                for a in variants() {
                    for b in variants() {
                        for s in [&a, &b] {
                            let v = encoded(s);
                            let id = s.summary.trace_id;
                            decode_scan_into(&v, id, needs, keys, &mut reused).expect("decodes");
                            let fresh = decode_scan(&v, id, needs, keys).expect("decodes");
                            assert_eq!(reused, fresh, "{needs:?} {keys:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        let s = sample();
        let v = encoded(&s);
        for cut in 0..v.len() {
            assert!(decode_scan(&v[..cut], s.summary.trace_id, SCANNABLE, None).is_err());
        }
        let mut longer = v.clone();
        longer.push(0);
        assert!(decode_scan(&longer, s.summary.trace_id, Needs::NONE, None).is_err());
        let mut flipped = v;
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            // Any answer but a panic (or an unbounded allocation) is fine.
            let _ = decode_scan(&flipped, s.summary.trace_id, SCANNABLE, None);
            let keys = ["n".to_string()];
            let _ = decode_scan(&flipped, s.summary.trace_id, SCANNABLE, Some(&keys));
            flipped[i] ^= 0xff;
        }
    }
}
