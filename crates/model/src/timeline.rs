//! A trace as a timeline: every segment and subsegment as a row, in call order, with
//! its depth, offset from the trace's start, duration and outcome — what a waterfall
//! view draws (the terminal's `roentgen trace`, and the console's timeline).

use std::collections::HashMap;

use crate::document::Segment;

/// How an entity ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Completed without error, throttle or fault.
    Ok,
    /// Client error (4xx) other than throttling.
    Error,
    /// Throttled (429).
    Throttle,
    /// Server fault (5xx).
    Fault,
    /// Still in progress (no end time yet).
    InProgress,
}

impl Outcome {
    fn of(s: &Segment) -> Self {
        if s.fault {
            Self::Fault
        } else if s.throttle {
            Self::Throttle
        } else if s.error {
            Self::Error
        } else if s.in_progress || s.end_time.is_none() {
            Self::InProgress
        } else {
            Self::Ok
        }
    }
}

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Nesting depth (0 for the entry segment).
    pub depth: usize,
    /// The service whose segment this is (or contains it).
    pub service: String,
    /// Segment or subsegment name.
    pub name: String,
    /// True for a segment, false for a subsegment.
    pub is_segment: bool,
    /// `aws`, `remote` or none.
    pub namespace: Option<String>,
    /// Seconds from the trace's first start.
    pub offset: f64,
    /// Seconds, when it has ended.
    pub duration: Option<f64>,
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP status, when recorded.
    pub http_status: Option<u16>,
}

struct Entity<'a> {
    segment: &'a Segment,
    service: &'a str,
    is_segment: bool,
    parent: Option<&'a str>,
}

fn flatten<'a>(
    s: &'a Segment,
    service: &'a str,
    is_segment: bool,
    parent: Option<&'a str>,
    out: &mut Vec<Entity<'a>>,
) {
    out.push(Entity {
        segment: s,
        service,
        is_segment,
        parent,
    });
    for sub in &s.subsegments {
        flatten(sub, service, false, s.id.as_deref(), out);
    }
}

/// The rows of a trace made of `documents` (segments and independently sent
/// subsegments, in any order). Children follow their parent in start order; entities
/// whose parent is not among the documents start a tree of their own.
pub fn timeline(documents: &[&Segment]) -> Vec<Row> {
    let mut entities = Vec::new();
    // Service names of segments, to attribute independent subsegments.
    let mut service_of: HashMap<&str, &str> = HashMap::new();
    for d in documents {
        let is_segment = d.kind.as_deref() != Some("subsegment");
        if is_segment {
            let name = d.name.as_deref().unwrap_or("");
            if let Some(id) = d.id.as_deref() {
                service_of.insert(id, name);
            }
        }
    }
    for d in documents {
        let is_segment = d.kind.as_deref() != Some("subsegment");
        let service = if is_segment {
            d.name.as_deref().unwrap_or("")
        } else {
            ""
        };
        flatten(
            d,
            service,
            is_segment,
            d.parent_id.as_deref(),
            &mut entities,
        );
    }
    // Independent subsegments take the service of the segment they hang under.
    let owner: HashMap<&str, usize> = entities
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.segment.id.as_deref().map(|id| (id, i)))
        .collect();
    for i in 0..entities.len() {
        if entities[i].service.is_empty() {
            let mut at = entities[i].parent;
            let mut hops = 0;
            while let Some(p) = at {
                if let Some(s) = service_of.get(p) {
                    entities[i].service = s;
                    break;
                }
                match owner.get(p) {
                    Some(&j) if hops < entities.len() => {
                        if !entities[j].service.is_empty() {
                            entities[i].service = entities[j].service;
                            break;
                        }
                        at = entities[j].parent;
                        hops += 1;
                    }
                    _ => break,
                }
            }
        }
    }
    let start = entities
        .iter()
        .filter_map(|e| e.segment.start_time)
        .fold(f64::INFINITY, f64::min);
    let start = if start.is_finite() { start } else { 0.0 };

    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, e) in entities.iter().enumerate() {
        match e.parent.filter(|p| owner.contains_key(p)) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let by_start = |a: &usize, b: &usize| {
        let sa = entities[*a].segment.start_time.unwrap_or(f64::MAX);
        let sb = entities[*b].segment.start_time.unwrap_or(f64::MAX);
        sa.total_cmp(&sb)
    };
    roots.sort_by(by_start);
    for list in children.values_mut() {
        list.sort_by(by_start);
    }

    let mut rows = Vec::with_capacity(entities.len());
    let mut visited = vec![false; entities.len()];
    // Entities on a parent cycle have no root: they start trees of their own after the
    // others, in start order.
    let mut all: Vec<usize> = (0..entities.len()).collect();
    all.sort_by(by_start);
    let mut pending = roots.into_iter().chain(all);
    // Depth-first without recursion (hostile parent chains cannot overflow the stack).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    while let Some((i, depth)) = stack
        .pop()
        .or_else(|| pending.find(|&r| !visited[r]).map(|r| (r, 0)))
    {
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        let e = &entities[i];
        let s = e.segment;
        rows.push(Row {
            depth,
            service: e.service.to_string(),
            name: s.name.as_deref().unwrap_or_default().to_string(),
            is_segment: e.is_segment,
            namespace: s.namespace.as_deref().map(str::to_string),
            offset: s.start_time.map_or(0.0, |t| t - start),
            duration: match (s.start_time, s.end_time) {
                (Some(a), Some(b)) if !s.in_progress => Some(b - a),
                _ => None,
            },
            outcome: Outcome::of(s),
            http_status: s
                .http
                .as_ref()
                .and_then(|h| h.response.as_ref())
                .and_then(|r| r.status),
        });
        if let Some(kids) = s.id.as_deref().and_then(|id| children.get(id)) {
            for &k in kids.iter().rev() {
                stack.push((k, depth + 1));
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Document;

    #[test]
    fn rows_in_call_order_across_services() {
        let t = "1-5f000000-000000000000000000000001";
        let web = Document::parse(format!(
            r#"{{"trace_id":"{t}","id":"0000000000000001","name":"web","start_time":100.0,"end_time":101.0,
               "http":{{"response":{{"status":502}}}},"fault":true,
               "subsegments":[
                 {{"id":"0000000000000002","name":"render","start_time":100.05,"end_time":100.1}},
                 {{"id":"0000000000000003","name":"orders","namespace":"remote","start_time":100.2,"end_time":100.9,"fault":true}}]}}"#
        ))
        .expect("web");
        let orders = Document::parse(format!(
            r#"{{"trace_id":"{t}","id":"0000000000000004","name":"orders","parent_id":"0000000000000003",
               "start_time":100.25,"end_time":100.85,"fault":true}}"#
        ))
        .expect("orders");
        let streamed = Document::parse(format!(
            r#"{{"trace_id":"{t}","id":"0000000000000005","type":"subsegment","parent_id":"0000000000000004",
               "name":"db","start_time":100.3,"end_time":100.4,"throttle":true,"error":true}}"#
        ))
        .expect("subsegment");
        let docs = [streamed.segment(), orders.segment(), web.segment()];
        let rows = timeline(&docs);
        let shape: Vec<(usize, &str, &str, Outcome)> = rows
            .iter()
            .map(|r| (r.depth, r.service.as_str(), r.name.as_str(), r.outcome))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, "web", "web", Outcome::Fault),
                (1, "web", "render", Outcome::Ok),
                (1, "web", "orders", Outcome::Fault),
                (2, "orders", "orders", Outcome::Fault),
                (3, "orders", "db", Outcome::Throttle),
            ]
        );
        assert_eq!(rows[0].http_status, Some(502));
        assert!((rows[4].offset - 0.3).abs() < 1e-9);
        assert!((rows[3].duration.unwrap_or(0.0) - 0.6).abs() < 1e-9);
    }

    #[test]
    fn cycles_and_orphans_do_not_hang() {
        let t = "1-5f000000-000000000000000000000002";
        let a = Document::parse(format!(
            r#"{{"trace_id":"{t}","id":"000000000000000a","name":"a","parent_id":"000000000000000b","start_time":1.0,"in_progress":true}}"#
        ))
        .expect("a");
        let b = Document::parse(format!(
            r#"{{"trace_id":"{t}","id":"000000000000000b","name":"b","parent_id":"000000000000000a","start_time":2.0,"end_time":3.0}}"#
        ))
        .expect("b");
        let rows = timeline(&[a.segment(), b.segment()]);
        // Both appear exactly once even though each claims the other as parent.
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(rows[0].outcome, Outcome::InProgress);
        assert_eq!(rows[0].duration, None);
    }
}
