//! Scan packs: the scan blocks ([`crate::scan`]) that one indexing round derived for the
//! traces of one trace-id second, stored as one value.
//!
//! A time-range scan then reads one entry per second and round instead of one per trace:
//! the per-entry costs of the LSM tree (merging tables, MVCC filtering, key compares)
//! were about half of a match-all scan. A trace derived again later (a late or completing
//! segment) gets a newer copy in a later pack; readers gather a second's packs, keep the
//! copy with the highest revision of each trace and walk them by trace id, highest
//! first, the order of the time index.
//!
//! A pack is its entries by trace id, highest first, each the 16 bytes of the trace id,
//! the block's length (u32, little-endian) and the block.

use std::ops::Deref;

/// One round's scan blocks of one second, before they become a pack: trace id, block.
pub(crate) type Blocks = Vec<([u8; 16], Vec<u8>)>;

/// A pack's value from this round's scan blocks, which it sorts by trace id.
pub(crate) fn encode(entries: &mut [([u8; 16], Vec<u8>)]) -> Vec<u8> {
    entries.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = Vec::with_capacity(entries.iter().map(|(_, b)| 20 + b.len()).sum());
    for (tid, block) in entries.iter() {
        out.extend_from_slice(tid);
        // A scan block is a few hundred bytes; a document is capped at 64 KB.
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        out.extend_from_slice(block);
    }
    out
}

/// One scan block of a [`Second`]: where it is and what it supersedes by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// The trace id's 16 bytes.
    pub(crate) tid: [u8; 16],
    /// The summary's revision (the highest wins).
    pub(crate) revision: u32,
    value: u32,
    start: u32,
    len: u32,
}

/// The scan blocks of one second, from all its packs: one per trace (its highest
/// revision), handed out by trace id, highest first.
pub(crate) struct Second<V> {
    values: Vec<V>,
    /// Ascending by trace id once [`Second::finish`]ed, so `pop` gives the highest.
    entries: Vec<Entry>,
}

impl<V> Default for Second<V> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl<V: Deref<Target = [u8]>> Second<V> {
    /// Empties the second for reuse.
    pub(crate) fn clear(&mut self) {
        self.values.clear();
        self.entries.clear();
    }

    /// Adds the entries of one pack.
    pub(crate) fn add(&mut self, pack: V) -> Result<(), String> {
        let value = u32::try_from(self.values.len()).map_err(|_| "too many packs")?;
        let bytes: &[u8] = &pack;
        let mut at = 0usize;
        while at < bytes.len() {
            let head = bytes
                .get(at..at + 20)
                .ok_or_else(|| format!("scan pack entry header cut short at byte {at}"))?;
            let mut tid = [0u8; 16];
            tid.copy_from_slice(&head[..16]);
            let mut len = [0u8; 4];
            len.copy_from_slice(&head[16..]);
            let len = u32::from_le_bytes(len);
            let start = at + 20;
            let end = start
                .checked_add(len as usize)
                .filter(|e| *e <= bytes.len())
                .ok_or_else(|| format!("scan pack entry at byte {at} runs past the pack"))?;
            let revision = crate::scan::revision_of(&bytes[start..end])?;
            self.entries.push(Entry {
                tid,
                revision,
                value,
                start: u32::try_from(start).map_err(|_| "scan pack over 4 GiB")?,
                len,
            });
            at = end;
        }
        self.values.push(pack);
        Ok(())
    }

    /// When no entry is left, loads the next second that has any: the pack in `ahead`
    /// (read ahead) and those `next` gives while they are of its second, leaving in
    /// `ahead` the first pack of the second after. `below` is as for
    /// [`Second::finish`]; `bad` turns a damaged pack into the caller's error.
    pub(crate) fn refill<E>(
        &mut self,
        ahead: &mut Option<(u32, V)>,
        mut next: impl FnMut() -> Result<Option<(u32, V)>, E>,
        below: Option<&[u8; 16]>,
        bad: impl Fn(String) -> E,
    ) -> Result<(), E> {
        while self.is_empty() {
            let Some((sec, pack)) = ahead.take() else {
                return Ok(());
            };
            self.clear();
            self.add(pack).map_err(&bad)?;
            *ahead = loop {
                match next()? {
                    Some((s, pack)) if s == sec => self.add(pack).map_err(&bad)?,
                    other => break other,
                }
            };
            self.finish(below);
        }
        Ok(())
    }

    /// Orders what was added and keeps, of each trace, the copy with the highest
    /// revision; with `below`, only traces with a lower id (a page's cursor).
    pub(crate) fn finish(&mut self, below: Option<&[u8; 16]>) {
        if let Some(c) = below {
            self.entries.retain(|e| e.tid < *c);
        }
        // By id ascending, then revision descending: `dedup_by` keeps the first of
        // each run of equal ids, the highest revision.
        self.entries
            .sort_unstable_by(|a, b| a.tid.cmp(&b.tid).then(b.revision.cmp(&a.revision)));
        self.entries.dedup_by(|later, first| later.tid == first.tid);
    }

    /// The next entry (the highest trace id left), without taking it.
    pub(crate) fn peek(&self) -> Option<&Entry> {
        self.entries.last()
    }

    /// Takes the next entry.
    pub(crate) fn pop(&mut self) -> Option<Entry> {
        self.entries.pop()
    }

    /// The scan block of `entry` (taken from this second).
    pub(crate) fn block(&self, entry: &Entry) -> &[u8] {
        let start = entry.start as usize;
        &self.values[entry.value as usize][start..start + entry.len as usize]
    }

    /// Whether no entry is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoredSummary;

    fn block(revision: u32) -> Vec<u8> {
        let mut s: StoredSummary = crate::scan::empty();
        s.revision = revision;
        let mut out = Vec::new();
        crate::scan::encode_scan(&mut out, &s);
        out
    }

    fn tid(n: u8) -> [u8; 16] {
        let mut t = [7u8; 16];
        t[15] = n;
        t
    }

    fn drain(second: &mut Second<Vec<u8>>) -> Vec<(u8, u32)> {
        let mut out = Vec::new();
        while let Some(e) = second.pop() {
            assert_eq!(
                crate::scan::revision_of(second.block(&e)).expect("block"),
                e.revision
            );
            out.push((e.tid[15], e.revision));
        }
        out
    }

    #[test]
    fn newest_revision_of_each_trace_in_id_order_across_packs() {
        let mut second = Second::default();
        second
            .add(encode(&mut [
                (tid(1), block(1)),
                (tid(3), block(2)),
                (tid(2), block(1)),
            ]))
            .expect("pack");
        // A later round re-derived 3 (its newer copy) and 1 (an older copy sorts below).
        second
            .add(encode(&mut [(tid(3), block(3)), (tid(4), block(1))]))
            .expect("pack");
        second.add(encode(&mut [(tid(1), block(2))])).expect("pack");
        second.finish(None);
        assert_eq!(drain(&mut second), vec![(4, 1), (3, 3), (2, 1), (1, 2)]);
    }

    #[test]
    fn a_cursor_keeps_only_lower_ids() {
        let mut second = Second::default();
        second
            .add(encode(&mut [
                (tid(1), block(1)),
                (tid(2), block(1)),
                (tid(3), block(1)),
            ]))
            .expect("pack");
        second.finish(Some(&tid(3)));
        assert_eq!(drain(&mut second), vec![(2, 1), (1, 1)]);
        second.clear();
        assert!(second.is_empty());
    }

    #[test]
    fn a_damaged_pack_is_an_error_not_a_panic() {
        let good = encode(&mut [(tid(1), block(1))]);
        for cut in 1..good.len() {
            let mut second = Second::default();
            assert!(second.add(good[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Second::default().add(long).is_err());
    }
}
