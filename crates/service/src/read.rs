//! Which state a read sees, and the barrier that makes it so.

use brisk_kv::hlc::{physical_ms, wall_clock_ms};
use brisk_raft::fault;

use crate::error::ServiceError;
use crate::Service;
use brisk_kv::Timestamp;

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Sees every write acknowledged before the read began (a read-index barrier on the
    /// leader; on a follower, the leader's read index applied locally).
    Linearizable,
    /// This replica's state as it is: possibly behind the leader, never ahead of it.
    Stale,
    /// The state as of a commit timestamp (every commit at or below it, on any replica that
    /// has applied them).
    At(Timestamp),
}

impl Read {
    /// The read the wire form names: an explicit timestamp wins; 0 means "latest".
    pub fn from_parts(at_ts: u64, stale: bool) -> Read {
        match (at_ts, stale) {
            (0, false) => Read::Linearizable,
            (0, true) => Read::Stale,
            (ts, _) => Read::At(Timestamp(ts)),
        }
    }

    /// (at_ts, stale) for the wire.
    pub fn into_parts(self) -> (u64, bool) {
        match self {
            Read::Linearizable => (0, false),
            Read::Stale => (0, true),
            Read::At(ts) => (ts.get(), false),
        }
    }

    /// Refuses read timestamps in the future: a read there could miss commits that land
    /// below it later.
    pub(crate) fn check(self) -> Result<(), ServiceError> {
        if let Read::At(ts) = self {
            if physical_ms(ts) > wall_clock_ms() + 60_000 {
                return Err(ServiceError::InvalidArgument(format!(
                    "at_ts {ts} is in the future (physical part {} ms)",
                    physical_ms(ts)
                )));
            }
        }
        Ok(())
    }
}

impl Service {
    /// Makes sure this replica has applied every commit at or below `ts` before a read at
    /// `ts`, and returns the timestamp to read at. Locally true once it has applied a commit
    /// at or above `ts` (commit timestamps increase in log order), so any replica serves such
    /// a read; otherwise it serves it after a linearizable barrier, at `ts` capped to its
    /// last applied commit: every commit acknowledged before the barrier is at or below that
    /// cap, and writes being applied in pieces (a DeletePrefix spilling chunks) sit above it.
    pub(crate) async fn covered(&self, ts: Timestamp) -> Result<Timestamp, ServiceError> {
        let node = &self.node;
        node.check_local_reads()?;
        if node.kv().last_commit_ts() >= ts {
            return Ok(ts);
        }
        node.linearizable_barrier().await?;
        Ok(ts.min(node.kv().last_commit_ts()))
    }

    /// The barrier for a read, and the timestamp to read at, taken after the barrier: for
    /// the latest state, the last applied commit timestamp, never above it (writes being
    /// applied in pieces sit above it); an explicit timestamp follows [`covered`].
    ///
    /// [`covered`]: Self::covered
    pub(crate) async fn read_ts(&self, read: Read) -> Result<Timestamp, ServiceError> {
        let node = &self.node;
        match read {
            Read::At(ts) => return self.covered(ts).await,
            Read::Stale => node.check_local_reads()?,
            Read::Linearizable if fault::broken(fault::BROKEN_STALE_READS) => {
                node.check_local_reads()?
            }
            Read::Linearizable => node.linearizable_barrier().await?,
        }
        Ok(node.kv().last_commit_ts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_round_trip_through_their_wire_form() {
        for r in [Read::Linearizable, Read::Stale, Read::At(Timestamp(42))] {
            let (ts, stale) = r.into_parts();
            assert_eq!(Read::from_parts(ts, stale), r);
        }
        assert_eq!(Read::from_parts(42, true), Read::At(Timestamp(42)));
    }

    #[test]
    fn a_read_in_the_future_is_refused() {
        let far = (wall_clock_ms() + 3_600_000) << 16;
        assert!(Read::At(Timestamp(far)).check().is_err());
        assert!(Read::At(Timestamp(1)).check().is_ok());
        assert!(Read::Linearizable.check().is_ok());
    }
}
