//! What hashes and sets share: a record holding the count and generation, and one brisk key
//! per element (see the keyspace module). Every change rewrites the record, so a command
//! that read it conflicts with any concurrent change of the collection.

use crate::error::CommandError;
use crate::keyspace::{element_key, element_prefix, Collection, Kind, Record};
use crate::tx::{fresh_generation, Tx};

pub struct Handle {
    kind: Kind,
    meta: Collection,
    expire_at_ms: Option<u64>,
}

/// Collection `key` of `kind`, None if absent; WRONGTYPE if it holds another type.
pub async fn load(tx: &mut Tx<'_>, key: &[u8], kind: Kind) -> Result<Option<Handle>, CommandError> {
    match tx.load(key).await? {
        None => Ok(None),
        Some(r) if r.kind != kind => Err(CommandError::WrongType),
        Some(r) => Ok(Some(Handle {
            kind,
            meta: Collection::decode(&r.body)?,
            expire_at_ms: r.expire_at_ms,
        })),
    }
}

/// Collection `key`, or a new empty one (saved only if it gets an element).
pub async fn load_or_new(tx: &mut Tx<'_>, key: &[u8], kind: Kind) -> Result<Handle, CommandError> {
    Ok(load(tx, key, kind).await?.unwrap_or_else(|| Handle {
        kind,
        meta: Collection {
            count: 0,
            generation: fresh_generation(),
        },
        expire_at_ms: None,
    }))
}

/// The elements a dropped collection record left behind, if `record` is a collection.
pub fn elements_of(key: &[u8], record: &Record) -> Option<Vec<u8>> {
    match record.kind {
        Kind::String => None,
        Kind::Hash | Kind::Set => Collection::decode(&record.body)
            .ok()
            .map(|c| element_prefix(key, c.generation)),
    }
}

impl Handle {
    pub fn len(&self) -> u64 {
        self.meta.count
    }

    pub async fn get(
        &self,
        tx: &mut Tx<'_>,
        key: &[u8],
        member: &[u8],
    ) -> Result<Option<Vec<u8>>, CommandError> {
        tx.get_raw(&element_key(key, self.meta.generation, member))
            .await
    }

    /// Sets `member` to `value`; true if it was new.
    pub async fn put(
        &mut self,
        tx: &mut Tx<'_>,
        key: &[u8],
        member: &[u8],
        value: Vec<u8>,
    ) -> Result<bool, CommandError> {
        let new = self.get(tx, key, member).await?.is_none();
        tx.put_raw(element_key(key, self.meta.generation, member), value);
        if new {
            self.meta.count += 1;
        }
        Ok(new)
    }

    /// Removes `member`; true if it was there.
    pub async fn remove(
        &mut self,
        tx: &mut Tx<'_>,
        key: &[u8],
        member: &[u8],
    ) -> Result<bool, CommandError> {
        if self.get(tx, key, member).await?.is_none() {
            return Ok(false);
        }
        tx.delete_raw(element_key(key, self.meta.generation, member));
        self.meta.count = self.meta.count.saturating_sub(1);
        Ok(true)
    }

    /// Every (member, value) in member order.
    pub async fn all(
        &self,
        tx: &mut Tx<'_>,
        key: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CommandError> {
        let prefix = element_prefix(key, self.meta.generation);
        Ok(tx
            .scan_prefix(&prefix)
            .await?
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_vec(), v))
            .collect())
    }

    /// Writes the record back (every change does, see the module docs); an empty
    /// collection is deleted, as Redis does.
    pub fn save(self, tx: &mut Tx<'_>, key: &[u8]) -> Result<(), CommandError> {
        if self.meta.count == 0 {
            tx.remove(key);
            Ok(())
        } else {
            tx.store(
                key,
                &Record {
                    kind: self.kind,
                    expire_at_ms: self.expire_at_ms,
                    body: self.meta.encode(),
                },
            )
        }
    }
}
