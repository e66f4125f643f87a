//! Packs of scan blocks: the scan blocks of many traces of one second in one value.
//!
//! A filtered `GetTraceSummaries` that no pushdown narrows walks every scan block of
//! its window, and an LSM pays for each entry it yields (block parsing, merging the
//! tables, the visibility check) about as much as the scan pays to decode the block.
//! Once a second is old enough that its traces rarely change, the indexer moves its
//! scan blocks into packs of up to [`PACK_MAX`] traces each, so a scan steps through
//! far fewer entries. A trace re-derived after its second was packed gets a loose scan
//! block again, which wins over the packed one until the next seal folds it in.
//!
//! Layout, numbers little-endian: a version byte (`1`), the entry count (`u32`), then
//! per entry, in ascending trace id order, the trace id (16 bytes, as keys hold it) and
//! the end offset of its block (`u32`) within the blocks that follow the table.

/// Most traces in one pack: a pack of ~200-byte scan blocks stays near 50 KB, which a
/// point lookup (the service pushdown) reads whole.
pub(crate) const PACK_MAX: usize = 256;

const VERSION: u8 = 1;
const HEADER: usize = 5;
const ENTRY: usize = 20;

/// Encodes `entries` (ascending trace ids, at most `u32::MAX` bytes of blocks).
pub(crate) fn encode_pack<'a>(
    entries: impl ExactSizeIterator<Item = (&'a [u8; 16], &'a [u8])> + Clone,
) -> Vec<u8> {
    let count = entries.len();
    let blocks: usize = entries.clone().map(|(_, b)| b.len()).sum();
    let mut out = Vec::with_capacity(HEADER + count * ENTRY + blocks);
    out.push(VERSION);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    let mut end = 0u32;
    for (id, block) in entries.clone() {
        end = end.saturating_add(block.len() as u32);
        out.extend_from_slice(id);
        out.extend_from_slice(&end.to_le_bytes());
    }
    for (_, block) in entries {
        out.extend_from_slice(block);
    }
    out
}

/// A pack read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pack<'a> {
    table: &'a [u8],
    blocks: &'a [u8],
}

impl<'a> Pack<'a> {
    /// Checks the header and that every block lies inside the value, in order.
    pub(crate) fn parse(v: &'a [u8]) -> Result<Self, String> {
        match v.first() {
            Some(&VERSION) => {}
            Some(other) => return Err(format!("unknown pack version {other}")),
            None => return Err("empty pack".into()),
        }
        let count = v
            .get(1..HEADER)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or("pack cut short in its header")? as usize;
        let table_len = count
            .checked_mul(ENTRY)
            .filter(|n| HEADER + n <= v.len())
            .ok_or_else(|| format!("pack of {count} entries is longer than its value"))?;
        let (table, blocks) = v[HEADER..].split_at(table_len);
        let pack = Self { table, blocks };
        let mut prev_end = 0;
        let mut prev_id: Option<&[u8]> = None;
        for i in 0..count {
            let (id, end) = pack.raw(i);
            if end < prev_end || end > blocks.len() {
                return Err(format!("pack entry {i} ends outside its value"));
            }
            if prev_id.is_some_and(|p| p >= id) {
                return Err(format!("pack entry {i} is out of order"));
            }
            prev_end = end;
            prev_id = Some(id);
        }
        if prev_end != blocks.len() {
            return Err(format!(
                "pack has {} bytes left over",
                blocks.len() - prev_end
            ));
        }
        Ok(pack)
    }

    fn raw(&self, i: usize) -> (&'a [u8], usize) {
        let e = &self.table[i * ENTRY..(i + 1) * ENTRY];
        let mut end = [0; 4];
        end.copy_from_slice(&e[16..]);
        (&e[..16], u32::from_le_bytes(end) as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len() / ENTRY
    }

    /// Entry `i` (below [`Self::len`]): the trace id and its scan block.
    pub(crate) fn entry(&self, i: usize) -> ([u8; 16], &'a [u8]) {
        let (id, end) = self.raw(i);
        let start = if i == 0 { 0 } else { self.raw(i - 1).1 };
        let mut tb = [0; 16];
        tb.copy_from_slice(id);
        (tb, &self.blocks[start..end])
    }

    /// Entry `i` (below [`Self::len`]): the trace id and where its scan block lies in
    /// the value the pack was parsed from.
    pub(crate) fn entry_range(&self, i: usize) -> ([u8; 16], std::ops::Range<usize>) {
        let base = HEADER + self.table.len();
        let (id, end) = self.raw(i);
        let start = if i == 0 { 0 } else { self.raw(i - 1).1 };
        let mut tb = [0; 16];
        tb.copy_from_slice(id);
        (tb, base + start..base + end)
    }

    /// How many entries have a trace id below `id` (where a scan below `id` starts).
    pub(crate) fn count_below(&self, id: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.raw(mid).0 < id {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The entry of trace `id`, if the pack holds it.
    pub(crate) fn position(&self, id: &[u8; 16]) -> Option<usize> {
        let i = self.count_below(id);
        (i < self.len() && self.raw(i).0 == id).then_some(i)
    }

    /// The highest trace id in the pack.
    pub(crate) fn last_id(&self) -> Option<&'a [u8]> {
        self.len().checked_sub(1).map(|i| self.raw(i).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 16] {
        let mut b = [0; 16];
        b[15] = n;
        b
    }

    #[test]
    fn round_trip_and_lookup() {
        let ids = [id(1), id(3), id(7)];
        let blocks: [&[u8]; 3] = [b"a", b"", b"ccc"];
        let v = encode_pack(ids.iter().zip(blocks));
        let p = Pack::parse(&v).expect("parse");
        assert_eq!(p.len(), 3);
        for (i, (want_id, want_block)) in ids.iter().zip(blocks).enumerate() {
            assert_eq!(p.entry(i), (*want_id, want_block));
            let (id, range) = p.entry_range(i);
            assert_eq!((id, &v[range]), (*want_id, want_block));
            assert_eq!(p.position(want_id), Some(i));
        }
        assert_eq!(p.position(&id(2)), None);
        assert_eq!(p.position(&id(9)), None);
        assert_eq!(p.count_below(&id(0)), 0);
        assert_eq!(p.count_below(&id(3)), 1);
        assert_eq!(p.count_below(&id(4)), 2);
        assert_eq!(p.count_below(&id(200)), 3);
        assert_eq!(p.last_id(), Some(&id(7)[..]));
    }

    #[test]
    fn empty_pack() {
        let v = encode_pack(std::iter::empty::<(&[u8; 16], &[u8])>());
        let p = Pack::parse(&v).expect("parse");
        assert_eq!(p.len(), 0);
        assert_eq!(p.last_id(), None);
        assert_eq!(p.position(&id(1)), None);
    }

    #[test]
    fn corrupt_packs_are_refused() {
        let ids = [id(1), id(2)];
        let blocks: [&[u8]; 2] = [b"xx", b"yy"];
        let good = encode_pack(ids.iter().zip(blocks));
        assert!(Pack::parse(&[]).is_err());
        assert!(Pack::parse(&[9]).is_err());
        assert!(Pack::parse(&good[..3]).is_err());
        // Cut inside the table, inside the blocks, and with bytes added.
        assert!(Pack::parse(&good[..HEADER + ENTRY]).is_err());
        assert!(Pack::parse(&good[..good.len() - 1]).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(Pack::parse(&longer).is_err());
        // A count far beyond the value.
        let mut huge = good.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Pack::parse(&huge).is_err());
        // Ids out of order.
        let swapped = encode_pack([id(2), id(1)].iter().zip(blocks));
        assert!(Pack::parse(&swapped).is_err());
    }
}
