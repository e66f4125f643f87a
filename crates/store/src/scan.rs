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
    put_key, put_opt_str, put_str, take, take_bytes, take_flag, take_key, take_opt_str, take_str,
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

fn take_keys(v: &[u8], at: &mut usize) -> Result<Vec<ServiceKey>, String> {
    let n = take_count(v, at, 6)?;
    (0..n).map(|_| take_key(v, at)).collect()
}

/// Steps over one service key without building it.
fn skip_keys_one(v: &[u8], at: &mut usize) -> Result<(), String> {
    let len = take_u32(v, at)?;
    take_bytes(v, at, len)?;
    for _ in 0..2 {
        if take_flag(v, at)? {
            let len = take_u32(v, at)?;
            take_bytes(v, at, len)?;
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

fn take_strs(v: &[u8], at: &mut usize) -> Result<Vec<String>, String> {
    let n = take_count(v, at, 4)?;
    (0..n).map(|_| take_str(v, at)).collect()
}

fn take_section(
    v: &[u8],
    at: &mut usize,
    s: &mut TraceSummary,
    part: Needs,
    keys: Option<&[String]>,
) -> Result<(), String> {
    match part {
        Needs::HTTP => {
            s.http = if take_flag(v, at)? {
                Some(HttpSummary {
                    url: take_opt_str(v, at)?,
                    status: if take_flag(v, at)? {
                        Some(u16::from_le_bytes(take::<2>(v, at)?))
                    } else {
                        None
                    },
                    method: take_opt_str(v, at)?,
                    user_agent: take_opt_str(v, at)?,
                    client_ip: take_opt_str(v, at)?,
                })
            } else {
                None
            };
        }
        Needs::ANNOTATIONS => {
            let count = take_count(v, at, 8)?;
            for _ in 0..count {
                let len = take_u32(v, at)?;
                let raw = take_bytes(v, at, len)?;
                let n = take_count(v, at, 6)?;
                if keys.is_some_and(|keys| !keys.iter().any(|k| k.as_bytes() == raw)) {
                    for _ in 0..n {
                        match take::<1>(v, at)? {
                            [0] => {
                                let len = take_u32(v, at)?;
                                take_bytes(v, at, len)?;
                            }
                            [1] => {
                                take::<8>(v, at)?;
                            }
                            [2] => {
                                take::<1>(v, at)?;
                            }
                            [t] => return Err(format!("unknown annotation tag {t}")),
                        }
                        skip_keys(v, at)?;
                    }
                    continue;
                }
                let key = String::from_utf8(raw.to_vec()).map_err(|e| e.to_string())?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let value = match take::<1>(v, at)? {
                        [0] => StoredAnnotation::String(take_str(v, at)?),
                        [1] => StoredAnnotation::Number(take_f64(v, at)?),
                        [2] => StoredAnnotation::Bool(take_flag(v, at)?),
                        [t] => return Err(format!("unknown annotation tag {t}")),
                    };
                    skip_keys(v, at)?;
                    entries.push(AnnotationEntry {
                        value,
                        services: Vec::new(),
                    });
                }
                s.annotations.insert(key, entries);
            }
        }
        Needs::USERS => {
            let n = take_count(v, at, 8)?;
            s.users = (0..n)
                .map(|_| {
                    let user = take_str(v, at)?;
                    skip_keys(v, at)?;
                    Ok(UserEntry {
                        user,
                        services: Vec::new(),
                    })
                })
                .collect::<Result<_, String>>()?;
        }
        Needs::SERVICES => {
            s.services = take_keys(v, at)?;
            if take_flag(v, at)? {
                skip_keys_one(v, at)?;
            }
        }
        _ => {
            s.instance_ids = take_strs(v, at)?;
            s.availability_zones = take_strs(v, at)?;
            s.resource_arns = take_strs(v, at)?;
        }
    }
    Ok(())
}

/// Decodes the scalars of a scan block and the sections `needs` names, as the filter
/// evaluator reads them: other parts are left empty (nodes, edges and root causes
/// always), and so are the services of annotation entries and users, the entry point,
/// and annotations under keys outside `annotation_keys` (when given), which
/// evaluation never reads (the filter crate's property
/// `needs_names_every_part_evaluation_reads` holds it to that).
pub(crate) fn decode_scan(
    v: &[u8],
    trace_id: TraceId,
    needs: Needs,
    annotation_keys: Option<&[String]>,
) -> Result<StoredSummary, String> {
    let mut at = 0;
    match take::<1>(v, &mut at)? {
        [VERSION] => {}
        [other] => return Err(format!("unknown scan block version {other}")),
    }
    let updated_at = take_f64(v, &mut at)?;
    let revision = u32::from_le_bytes(take::<4>(v, &mut at)?);
    let [start_time, end, duration, response_time] = [
        take_f64(v, &mut at)?,
        take_f64(v, &mut at)?,
        take_f64(v, &mut at)?,
        take_f64(v, &mut at)?,
    ];
    let [flags] = take::<1>(v, &mut at)?;
    let document_count = take_u32(v, &mut at)?;
    let when = |bit: u8, t: f64| (flags & bit != 0).then_some(t);
    let mut summary = TraceSummary {
        trace_id,
        start_time,
        end_time: when(HAS_END, end),
        duration: when(HAS_DURATION, duration),
        response_time: when(HAS_RESPONSE_TIME, response_time),
        has_fault: flags & FAULT != 0,
        has_error: flags & ERROR != 0,
        has_throttle: flags & THROTTLE != 0,
        is_partial: flags & PARTIAL != 0,
        http: None,
        annotations: BTreeMap::new(),
        users: Vec::new(),
        services: Vec::new(),
        entry_point: None,
        instance_ids: Vec::new(),
        availability_zones: Vec::new(),
        resource_arns: Vec::new(),
        document_count,
        nodes: Vec::new(),
        edges: Vec::new(),
        fault_root_causes: Vec::new(),
        error_root_causes: Vec::new(),
        response_time_root_causes: Vec::new(),
    };
    for part in SECTIONS {
        let len = take_u32(v, &mut at)?;
        let section = take_bytes(v, &mut at, len)?;
        if needs.contains(part) {
            let mut inner = 0;
            take_section(section, &mut inner, &mut summary, part, annotation_keys)?;
            if inner != section.len() {
                return Err(format!(
                    "scan section has {} bytes left over",
                    section.len() - inner
                ));
            }
        }
    }
    if at != v.len() {
        return Err(format!("scan block has {} bytes left over", v.len() - at));
    }
    Ok(StoredSummary {
        summary,
        revision,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, kind: Option<&str>) -> ServiceKey {
        ServiceKey {
            name: name.into(),
            kind: kind.map(Into::into),
            account_id: Some("123456789012".into()),
        }
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
