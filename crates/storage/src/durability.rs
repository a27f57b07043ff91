//! Whether a write is fsynced before the call that makes it returns.

use rocksdb::WriteOptions;

/// How durable a write is when the call that makes it returns (docs/design/cold-start.md I7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The WAL is fsynced: the write survives a power loss.
    Sync,
    /// Visible at once, but a crash may lose it until a later WAL fsync covers it.
    Buffered,
}

impl Durability {
    pub fn is_sync(self) -> bool {
        self == Durability::Sync
    }

    /// RocksDB write options that give this durability.
    pub fn write_options(self) -> WriteOptions {
        let mut opts = WriteOptions::default();
        opts.set_sync(self.is_sync());
        opts
    }
}
