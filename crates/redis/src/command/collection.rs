//! What hashes, sets and lists share: a record holding the count and generation (and a
//! list's head position), and one brisk key per element (see the keyspace module). Every change rewrites the record, so a command
//! that read it conflicts with any concurrent change of the collection.

use crate::error::CommandError;
use crate::keyspace::{element_key, element_prefix, position_bytes, Collection, Kind, Record};
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

/// Collection `key`, or a new empty one (saved only if it gets an element). An expired
/// collection's elements are deleted after the commit: the new one takes a new generation.
pub async fn load_or_new(tx: &mut Tx<'_>, key: &[u8], kind: Kind) -> Result<Handle, CommandError> {
    let now = tx.now_ms();
    match tx.load_stored(key).await? {
        Some(r) if !r.expired(now) => {
            if r.kind != kind {
                return Err(CommandError::WrongType);
            }
            return Ok(Handle {
                kind,
                meta: Collection::decode(&r.body)?,
                expire_at_ms: r.expire_at_ms,
            });
        }
        Some(expired) => {
            if let Some(prefix) = elements_of(key, &expired) {
                tx.discard_after_commit(prefix);
            }
        }
        None => {}
    }
    Ok(Handle {
        kind,
        meta: Collection {
            count: 0,
            generation: fresh_generation(),
            head: 0,
        },
        expire_at_ms: None,
    })
}

/// The elements a dropped collection record left behind, if `record` is a collection.
pub fn elements_of(key: &[u8], record: &Record) -> Option<Vec<u8>> {
    match record.kind {
        Kind::String => None,
        Kind::Hash | Kind::Set | Kind::List | Kind::SortedSet => Collection::decode(&record.body)
            .ok()
            .map(|c| element_prefix(key, c.generation)),
    }
}

impl Handle {
    pub fn len(&self) -> u64 {
        self.meta.count
    }

    /// The generation the collection's elements are stored under.
    pub fn generation(&self) -> u64 {
        self.meta.generation
    }

    pub async fn get(
        &self,
        tx: &mut Tx<'_>,
        key: &[u8],
        member: &[u8],
    ) -> Result<Option<Vec<u8>>, CommandError> {
        tx.get_element(&element_key(key, self.meta.generation, member))
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

    /// Adds `member` with an empty value unless it is there; true if it was new (a set
    /// member that exists already is not written again).
    pub async fn insert(
        &mut self,
        tx: &mut Tx<'_>,
        key: &[u8],
        member: &[u8],
    ) -> Result<bool, CommandError> {
        if self.get(tx, key, member).await?.is_some() {
            return Ok(false);
        }
        self.put(tx, key, member, Vec::new()).await
    }

    /// Buffers an element that is not counted (a sorted set's score index entry).
    pub fn put_uncounted(&self, tx: &mut Tx<'_>, key: &[u8], member: &[u8], value: Vec<u8>) {
        tx.put_raw(element_key(key, self.meta.generation, member), value);
    }

    pub fn delete_uncounted(&self, tx: &mut Tx<'_>, key: &[u8], member: &[u8]) {
        tx.delete_raw(element_key(key, self.meta.generation, member));
    }

    /// Every (member, value) whose member begins with `prefix`, in member order.
    pub async fn all_with(
        &self,
        tx: &mut Tx<'_>,
        key: &[u8],
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CommandError> {
        let mut p = element_prefix(key, self.meta.generation);
        let base = p.len();
        p.extend_from_slice(prefix);
        Ok(tx
            .scan_prefix(&p)
            .await?
            .into_iter()
            .map(|(k, v)| (k[base..].to_vec(), v))
            .collect())
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

    /// The list element at `index` (0 = head), None beyond the end.
    pub async fn at(
        &self,
        tx: &mut Tx<'_>,
        key: &[u8],
        index: u64,
    ) -> Result<Option<Vec<u8>>, CommandError> {
        if index >= self.meta.count {
            return Ok(None);
        }
        let pos = self.meta.head.saturating_add(index as i64);
        self.get(tx, key, &position_bytes(pos)).await
    }

    /// Every list element, head first.
    pub async fn items(&self, tx: &mut Tx<'_>, key: &[u8]) -> Result<Vec<Vec<u8>>, CommandError> {
        let mut out = Vec::with_capacity(self.meta.count.min(1 << 16) as usize);
        for i in 0..self.meta.count {
            if let Some(v) = self.at(tx, key, i).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn put_at(&self, tx: &mut Tx<'_>, key: &[u8], pos: i64, value: Vec<u8>) {
        tx.put_raw(
            element_key(key, self.meta.generation, &position_bytes(pos)),
            value,
        );
    }

    fn delete_at(&self, tx: &mut Tx<'_>, key: &[u8], pos: i64) {
        tx.delete_raw(element_key(key, self.meta.generation, &position_bytes(pos)));
    }

    pub fn push_front(&mut self, tx: &mut Tx<'_>, key: &[u8], value: Vec<u8>) {
        self.meta.head -= 1;
        self.put_at(tx, key, self.meta.head, value);
        self.meta.count += 1;
    }

    pub fn push_back(&mut self, tx: &mut Tx<'_>, key: &[u8], value: Vec<u8>) {
        self.put_at(tx, key, self.meta.head + self.meta.count as i64, value);
        self.meta.count += 1;
    }

    pub async fn pop_front(
        &mut self,
        tx: &mut Tx<'_>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, CommandError> {
        let Some(v) = self.at(tx, key, 0).await? else {
            return Ok(None);
        };
        self.delete_at(tx, key, self.meta.head);
        self.meta.head += 1;
        self.meta.count -= 1;
        Ok(Some(v))
    }

    pub async fn pop_back(
        &mut self,
        tx: &mut Tx<'_>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, CommandError> {
        let Some(last) = self.meta.count.checked_sub(1) else {
            return Ok(None);
        };
        let v = self.at(tx, key, last).await?;
        self.delete_at(tx, key, self.meta.head + last as i64);
        self.meta.count = last;
        Ok(v)
    }

    /// Replaces the list element at `index` (which must exist).
    pub fn set_at(&self, tx: &mut Tx<'_>, key: &[u8], index: u64, value: Vec<u8>) {
        self.put_at(tx, key, self.meta.head + index as i64, value);
    }

    /// Makes the list hold exactly `items` (LREM, LINSERT, LTRIM: O(n), as in Redis).
    pub fn replace_items(&mut self, tx: &mut Tx<'_>, key: &[u8], items: Vec<Vec<u8>>) {
        for i in 0..self.meta.count {
            self.delete_at(tx, key, self.meta.head + i as i64);
        }
        self.meta.count = 0;
        for v in items {
            self.push_back(tx, key, v);
        }
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
