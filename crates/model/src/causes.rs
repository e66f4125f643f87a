//! Root causes of a trace's faults, errors and response time.
//!
//! AWS documents the shapes (`FaultRootCause`, `ErrorRootCause`,
//! `ResponseTimeRootCause`: a chain of services, each with the path of entities it
//! contributed, entities with their exceptions or coverage) but not how it picks them.
//! Roentgen's rules:
//!
//! - Entities (segments and subsegments) form one tree per trace: an embedded
//!   subsegment's parent is the entity that holds it, an independent subsegment's is
//!   its `parent_id`, and a segment's is the calling subsegment named by its
//!   `parent_id` (when that is in the trace and belongs to another segment).
//! - A **fault root cause** starts at every faulted entity none of whose children
//!   faulted; an **error root cause** likewise with `error` or `throttle`. The chain is
//!   the path from the top of the tree down to that entity, grouped into services by
//!   the segment that owns each entity. When the entity is a call to a downstream nobody
//!   answered with a segment (`aws`/`remote` namespace), the inferred node is appended
//!   as the last service (`inferred: true`). Every entity lists the exceptions of its own
//!   `cause` (a `cause` that names an exception id elsewhere in the trace is resolved).
//!   Identical chains are kept once, at most [`MAX_ROOT_CAUSES`] per kind.
//!   `client_impacting` is true when the chain starts at the entry segment and that
//!   segment itself carries the flag.
//! - The **response-time root cause** (at most one) starts at the entry segment and
//!   repeatedly descends into its slowest child while that child took at least half of
//!   its parent's time; each entity's `coverage` is its response time over the entry
//!   segment's. It exists when the entry segment has finished with a positive response
//!   time, and is client-impacting (the client waited for that chain).

use foldhash::{HashMap, HashMapExt, HashSet};

use crate::document::{Cause, Exception, Segment};
use crate::trace::{
    Entity, RootCause, RootCauseEntity, RootCauseException, RootCauseService, ServiceKey,
};

/// Most root causes of one kind kept in a summary.
pub const MAX_ROOT_CAUSES: usize = 20;

/// Most candidate entities examined per kind (bounds work on hostile traces).
const MAX_CANDIDATES: usize = 200;

/// Longest entity chain followed (bounds work on cyclic or very deep parent links).
const MAX_PATH: usize = 256;

/// A response-time chain descends into the slowest child while that child took at
/// least this share of its parent's time.
const DESCEND_SHARE: f64 = 0.5;

/// The three kinds of root causes of one trace.
pub(crate) struct Causes {
    pub(crate) fault: Vec<RootCause>,
    pub(crate) error: Vec<RootCause>,
    pub(crate) response_time: Vec<RootCause>,
}

struct Tree<'a, 'b> {
    docs: &'b [&'a Segment],
    ents: &'b [Entity<'a>],
    /// Parent of each entity in the trace-wide tree.
    parent: Vec<Option<usize>>,
    /// Children of entity `k`: `children[child_start[k]..child_start[k + 1]]`, in
    /// entity order.
    child_start: Vec<usize>,
    children: Vec<usize>,
    /// Entity index of each document's top entity (one more entry: the entity count).
    top_of: &'b [usize],
    exceptions: HashMap<&'a str, &'a Exception>,
    answered: &'b HashSet<&'a str>,
}

fn is_call(seg: &Segment) -> bool {
    matches!(seg.namespace.as_deref(), Some("aws" | "remote"))
}

fn faulted(seg: &Segment) -> bool {
    seg.fault
}

fn errored(seg: &Segment) -> bool {
    seg.error || seg.throttle
}

fn exception(x: &Exception) -> RootCauseException {
    RootCauseException {
        name: x.kind.clone(),
        message: x.message.clone(),
    }
}

impl<'a, 'b> Tree<'a, 'b> {
    fn new(
        docs: &'b [&'a Segment],
        ents: &'b [Entity<'a>],
        top_of: &'b [usize],
        by_id: &HashMap<&'a str, usize>,
        answered: &'b HashSet<&'a str>,
    ) -> Self {
        let mut parent: Vec<Option<usize>> = ents.iter().map(|e| e.embedded_in).collect();
        for (i, d) in docs.iter().enumerate() {
            let top = top_of[i];
            let Some(&pe) = d.parent_id.as_deref().and_then(|p| by_id.get(p)) else {
                continue;
            };
            if pe == top || (!d.is_subsegment() && ents[pe].owner == Some(i)) {
                continue;
            }
            parent[top] = Some(pe);
        }
        let mut child_start = vec![0usize; ents.len() + 1];
        for p in parent.iter().flatten() {
            child_start[p + 1] += 1;
        }
        for k in 0..ents.len() {
            child_start[k + 1] += child_start[k];
        }
        let mut fill = child_start.clone();
        let mut children = vec![0usize; child_start[ents.len()]];
        for (k, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[fill[p]] = k;
                fill[p] += 1;
            }
        }
        let mut exceptions = HashMap::new();
        for e in ents {
            if let Some(Cause::Details(d)) = e.seg.cause.as_deref() {
                for x in &d.exceptions {
                    if let Some(id) = x.id.as_deref() {
                        exceptions.entry(id).or_insert(x);
                    }
                }
            }
        }
        Self {
            docs,
            ents,
            parent,
            child_start,
            children,
            top_of,
            exceptions,
            answered,
        }
    }

    fn children_of(&self, k: usize) -> &[usize] {
        &self.children[self.child_start[k]..self.child_start[k + 1]]
    }

    fn exceptions_of(&self, seg: &Segment) -> Vec<RootCauseException> {
        match seg.cause.as_deref() {
            Some(Cause::Details(d)) => d.exceptions.iter().map(exception).collect(),
            Some(Cause::Reference(id)) => self
                .exceptions
                .get(id.as_str())
                .map(|x| vec![exception(x)])
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Entity indices from the top of the tree down to `leaf`.
    fn path_to(&self, leaf: usize) -> Vec<usize> {
        let mut path = vec![leaf];
        let mut at = leaf;
        while let Some(p) = self.parent[at] {
            if path.len() >= MAX_PATH {
                break;
            }
            path.push(p);
            at = p;
        }
        path.reverse();
        path
    }

    /// Groups a top-down entity path into services, appending the inferred node when
    /// the path ends in an unanswered downstream call.
    fn chain(
        &self,
        path: &[usize],
        entity: &dyn Fn(usize) -> RootCauseEntity,
    ) -> Vec<RootCauseService> {
        let mut services: Vec<RootCauseService> = Vec::new();
        let mut current: Option<usize> = None;
        for &k in path {
            let Some(o) = self.ents[k].owner else {
                continue;
            };
            if current != Some(o) {
                services.push(RootCauseService {
                    key: ServiceKey::of_segment(self.docs[o]),
                    inferred: false,
                    entity_path: Vec::new(),
                });
                current = Some(o);
            }
            if let Some(last) = services.last_mut() {
                last.entity_path.push(entity(k));
            }
        }
        if let Some(&leaf) = path.last() {
            let e = &self.ents[leaf];
            let answered = e
                .seg
                .id
                .as_deref()
                .is_some_and(|id| self.answered.contains(id));
            if e.owner.is_some() && is_call(e.seg) && !answered {
                let mut node = entity(leaf);
                node.exceptions.clear();
                node.remote = true;
                services.push(RootCauseService {
                    key: ServiceKey::inferred(e.seg),
                    inferred: true,
                    entity_path: vec![node],
                });
            }
        }
        services
    }

    fn leaf_causes(&self, flagged: fn(&Segment) -> bool, root: Option<usize>) -> Vec<RootCause> {
        let mut out: Vec<RootCause> = Vec::new();
        let root_top = root.map(|r| self.top_of[r]);
        let root_flagged = root.is_some_and(|r| flagged(self.docs[r]));
        let mut candidates = 0;
        for k in 0..self.ents.len() {
            let e = &self.ents[k];
            if !flagged(e.seg)
                || self
                    .children_of(k)
                    .iter()
                    .any(|c| flagged(self.ents[*c].seg))
            {
                continue;
            }
            candidates += 1;
            if candidates > MAX_CANDIDATES {
                break;
            }
            let path = self.path_to(k);
            let services = self.chain(&path, &|k| RootCauseEntity {
                name: self.ents[k]
                    .seg
                    .name
                    .as_deref()
                    .unwrap_or_default()
                    .to_string(),
                exceptions: self.exceptions_of(self.ents[k].seg),
                remote: is_call(self.ents[k].seg),
                coverage: None,
            });
            if services.is_empty() {
                continue;
            }
            let cause = RootCause {
                services,
                client_impacting: root_flagged && path.first().copied() == root_top,
            };
            if !out.contains(&cause) {
                out.push(cause);
                if out.len() == MAX_ROOT_CAUSES {
                    break;
                }
            }
        }
        out
    }

    fn response_time_cause(&self, root: Option<usize>) -> Vec<RootCause> {
        let Some(top) = root.map(|r| self.top_of[r]) else {
            return Vec::new();
        };
        let Some(total) = self.ents[top].seg.response_time().filter(|t| *t > 0.0) else {
            return Vec::new();
        };
        let mut path = vec![top];
        let mut at = top;
        while path.len() < MAX_PATH {
            let took = self.ents[at].seg.response_time().unwrap_or(0.0);
            let slowest = self
                .children_of(at)
                .iter()
                .filter_map(|c| Some((*c, self.ents[*c].seg.response_time()?)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match slowest {
                Some((c, t)) if t > 0.0 && t >= took * DESCEND_SHARE => {
                    path.push(c);
                    at = c;
                }
                _ => break,
            }
        }
        let services = self.chain(&path, &|k| {
            let seg = self.ents[k].seg;
            RootCauseEntity {
                name: seg.name.as_deref().unwrap_or_default().to_string(),
                exceptions: Vec::new(),
                remote: is_call(seg),
                coverage: seg.response_time().map(|t| t / total),
            }
        });
        if services.is_empty() {
            return Vec::new();
        }
        vec![RootCause {
            services,
            client_impacting: true,
        }]
    }
}

/// Derives the three kinds of root causes of one trace. `ents` are the trace's
/// entities (documents in order, each depth first, with their owning segment),
/// `top_of` the index of each document's top entity, `by_id` the first entity with
/// each id, `root` the entry segment's index and `answered` the ids of subsegments that
/// a downstream segment names as parent.
pub(crate) fn derive_causes<'a>(
    docs: &[&'a Segment],
    ents: &[Entity<'a>],
    top_of: &[usize],
    by_id: &HashMap<&'a str, usize>,
    root: Option<usize>,
    answered: &HashSet<&'a str>,
) -> Causes {
    let tree = Tree::new(docs, ents, top_of, by_id, answered);
    Causes {
        fault: tree.leaf_causes(faulted, root),
        error: tree.leaf_causes(errored, root),
        response_time: tree.response_time_cause(root),
    }
}
