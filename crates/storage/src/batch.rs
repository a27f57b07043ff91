use rocksdb::WriteBatch;

use crate::meta::{self, AppliedState};
use crate::store::{TAG_PUT, TAG_TOMBSTONE};
use crate::{mvcc_key, Durability, StorageError, Store, Timestamp};

/// The only way to write to the store.
///
/// I1 (docs/design/cold-start.md, "I1 — Atomic apply"): a batch is created from the [`AppliedState`] of
/// the entry being applied and [`commit`](Self::commit) writes that state with the data in one
/// RocksDB write batch. There is no constructor without it, so no entry type (lease renewals,
/// no-ops and membership changes included) can change the store without moving the applied
/// index in the same atomic write.
pub struct ApplyBatch<'a> {
    store: &'a Store,
    batch: WriteBatch,
    state: AppliedState,
    last_commit_ts: Option<Timestamp>,
    hlc_ceiling_ms: Option<u64>,
}

impl<'a> ApplyBatch<'a> {
    pub(crate) fn new(store: &'a Store, state: AppliedState) -> Self {
        ApplyBatch {
            store,
            batch: WriteBatch::default(),
            state,
            last_commit_ts: None,
            hlc_ceiling_ms: None,
        }
    }

    pub fn put(&mut self, key: &[u8], commit_ts: Timestamp, value: &[u8]) {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.push(TAG_PUT);
        v.extend_from_slice(value);
        self.batch
            .put_cf(self.store.cf_data(), mvcc_key::encode(key, commit_ts), v);
    }

    /// Writes a tombstone version: reads at or after `commit_ts` see no value.
    pub fn delete(&mut self, key: &[u8], commit_ts: Timestamp) {
        self.batch.put_cf(
            self.store.cf_data(),
            mvcc_key::encode(key, commit_ts),
            [TAG_TOMBSTONE],
        );
    }

    /// Writes the buffered data now, without the meta keys, and keeps building the batch.
    ///
    /// The one exception to "every write carries the applied index" (I1), for entries whose
    /// effect is idempotent under replay and too large for one batch (DeletePrefix over a large
    /// keyspace): a crash after a spill leaves part of the entry's effect on disk with the
    /// applied index still below the entry, so the entry is applied again at restart and must
    /// reach the same final state from there. Spilled data must not be visible to readers
    /// before the final commit: it is written at the entry's commit timestamp, above the last
    /// commit, which reads never exceed.
    pub fn spill(&mut self) -> Result<(), StorageError> {
        let batch = std::mem::take(&mut self.batch);
        self.store.write(batch, Durability::Buffered)?;
        crate::fault::crash_point(crate::fault::DELETE_PREFIX_SPILLED);
        Ok(())
    }

    pub fn set_last_commit_ts(&mut self, ts: Timestamp) {
        self.last_commit_ts = Some(ts);
    }

    /// Records the durable HLC physical ceiling (a lease renewal's effect, I1).
    pub fn set_hlc_ceiling_ms(&mut self, ms: u64) {
        self.hlc_ceiling_ms = Some(ms);
    }

    /// Writes data and meta keys atomically, as durably as `durability` says (I7).
    pub fn commit(mut self, durability: Durability) -> Result<(), StorageError> {
        let cf = self.store.cf_meta();
        self.batch
            .put_cf(cf, meta::KEY_APPLIED, self.state.log_id.encode());
        self.batch
            .put_cf(cf, meta::KEY_MEMBERSHIP, &self.state.membership);
        if let Some(ts) = self.last_commit_ts {
            self.batch
                .put_cf(cf, meta::KEY_LAST_COMMIT_TS, ts.get().to_be_bytes());
        }
        if let Some(ms) = self.hlc_ceiling_ms {
            self.batch
                .put_cf(cf, meta::KEY_HLC_CEILING, ms.to_be_bytes());
        }
        self.store.write(self.batch, durability)
    }
}
