//! Key layout of the embedded store.
//!
//! Every key starts with the tenant (length byte + bytes) so tenants never share a
//! prefix. Within a tenant:
//! - `docs_YYYYMMDD`: trace id (16 bytes, time first) + document id (8) → raw JSON.
//! - `sums_YYYYMMDD`: trace id (16) → summary record; trace ids begin with their start
//!   second, so this keyspace is also the time index.
//! - `svcs_YYYYMMDD`: service name + 0x00 + trace id (16) → empty; the service pushdown.
//! - `scan_YYYYMMDD`: trace id (16) → the summary's scan block ([`crate::scan`]), what
//!   filtered scans read; the one-byte key `0xFF` (no tenant prefix starts with it)
//!   marks a day whose every summary has its block.
//! - `roll_YYYYMMDD`: minute (8, big-endian) + node/edge key → stats (binary).
//! - `rolh_YYYYMMDD`: hour (8) + node/edge key → stats and per-minute counts.
//! - `meta`: kind byte + name → configuration JSON (not partitioned by day).

use roentgen_model::TraceId;

use crate::StoreError;

/// A tenant: every record carries one. `default` until tenants arrive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// Validates a tenant id.
    pub fn new(id: impl Into<String>) -> Result<Self, StoreError> {
        let id = id.into();
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(StoreError::InvalidTenant(id));
        }
        Ok(Self(id))
    }

    /// The tenant used while Roentgen has no tenants.
    pub fn default_tenant() -> Self {
        Self("default".to_string())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn prefix(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        // Validated to at most 64 bytes.
        v.push(self.0.len() as u8);
        v.extend_from_slice(self.0.as_bytes());
        v
    }
}

/// A key's tenant prefix (as [`TenantId::prefix`] writes it) and the rest of the key;
/// `None` when the key is shorter than its prefix says.
pub(crate) fn split_tenant(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = 1 + usize::from(*key.first()?);
    (key.len() >= n).then(|| key.split_at(n))
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

/// UTC day (`YYYYMMDD`) of an epoch second (proleptic Gregorian, Howard Hinnant's
/// days-from-civil inverse).
pub(crate) fn day_of(epoch_seconds: u64) -> u32 {
    let days = (epoch_seconds / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y * 10_000 + m * 100 + d) as u32
}

/// First epoch second of a `YYYYMMDD` day.
pub(crate) fn day_start(day: u32) -> u64 {
    let y = (day / 10_000) as i64;
    let m = ((day / 100) % 100) as i64;
    let d = (day % 100) as i64;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days.max(0) as u64) * 86_400
}

pub(crate) fn trace_key(tenant: &[u8], trace: &TraceId) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 16);
    k.extend_from_slice(tenant);
    k.extend_from_slice(&trace.to_bytes());
    k
}

pub(crate) fn doc_key(tenant: &[u8], trace: &TraceId, id: u64) -> Vec<u8> {
    let mut k = trace_key(tenant, trace);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn time_key(tenant: &[u8], epoch_seconds: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 4);
    k.extend_from_slice(tenant);
    k.extend_from_slice(&epoch_seconds.to_be_bytes());
    k
}

/// Key of a scan pack: tenant, the second of its trace ids and the pack's number.
pub(crate) fn pack_key(tenant: &[u8], epoch_seconds: u32, seq: u64) -> Vec<u8> {
    let mut k = time_key(tenant, epoch_seconds);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn service_key(tenant: &[u8], service: &str, trace: Option<&TraceId>) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + service.len() + 17);
    k.extend_from_slice(tenant);
    k.extend_from_slice(service.as_bytes());
    k.push(0);
    if let Some(t) = trace {
        k.extend_from_slice(&t.to_bytes());
    }
    k
}

pub(crate) fn rollup_prefix(tenant: &[u8], minute: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 8);
    k.extend_from_slice(tenant);
    k.extend_from_slice(&minute.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(day_of(0), 19_700_101);
        assert_eq!(day_of(1_465_510_280), 20_160_609);
        assert_eq!(day_of(951_782_400), 20_000_229);
        for day in [19_700_101, 20_000_229, 20_161_231, 20_260_301, 20_991_231] {
            assert_eq!(day_of(day_start(day)), day);
            assert_eq!(day_of(day_start(day) + 86_399), day);
            assert_ne!(day_of(day_start(day) + 86_400), day);
        }
    }

    #[test]
    fn tenant_ids() {
        assert!(TenantId::new("acme-prod_1").is_ok());
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("a b").is_err());
        assert!(TenantId::new("x".repeat(65)).is_err());
    }
}
