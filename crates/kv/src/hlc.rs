//! Hybrid logical clock: 48 bits of physical milliseconds, 16 bits of logical counter.
//!
//! Only the leader issues timestamps, and only below the durable *ceiling*: a physical time
//! that the leader raised through the Raft log (lease renewal entries, applied like any other
//! entry, I1) before issuing anything under it. A new leader first learns the previous
//! ceiling from the applied state and issues only timestamps above it
//! ([`Hlc::fence_for_term`]), so timestamps stay unique and increasing across leader changes
//! even when the new leader's wall clock is behind the old one's.

use std::sync::Mutex;

pub const LOGICAL_BITS: u32 = 16;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

pub use brisk_storage::Timestamp;

pub fn compose(physical_ms: u64, logical: u64) -> Timestamp {
    Timestamp((physical_ms << LOGICAL_BITS) | (logical & LOGICAL_MASK))
}

pub fn physical_ms(ts: Timestamp) -> u64 {
    ts.get() >> LOGICAL_BITS
}

pub fn wall_clock_ms() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // Test builds: the fault harness steps this node's clock.
    ms.saturating_add_signed(brisk_storage::fault::clock_offset_ms())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlcError {
    #[error("this node has not yet fenced its clock for term {term}: leadership is still being established")]
    NotFenced { term: u64 },
    #[error("timestamp would reach the durable HLC ceiling ({ceiling_ms} ms); the lease renewal is behind")]
    CeilingReached { ceiling_ms: u64 },
}

#[derive(Debug, Default)]
struct State {
    last: Timestamp,
    ceiling_ms: u64,
    fenced_term: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Hlc {
    state: Mutex<State>,
}

impl Hlc {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere while holding it; the state (three
        // integers) is always consistent, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an applied ceiling (lease renewal or meta key at start). Never lowers it.
    pub fn observe_ceiling(&self, ceiling_ms: u64) {
        let mut s = self.lock();
        s.ceiling_ms = s.ceiling_ms.max(ceiling_ms);
    }

    pub fn ceiling_ms(&self) -> u64 {
        self.lock().ceiling_ms
    }

    /// Records an applied commit timestamp, so later timestamps issued here exceed it.
    pub fn observe(&self, ts: Timestamp) {
        let mut s = self.lock();
        s.last = s.last.max(ts);
    }

    pub fn last(&self) -> Timestamp {
        self.lock().last
    }

    /// Called by a new leader once it has applied everything committed before its term:
    /// every timestamp it issues from now on is above the previous durable ceiling.
    pub fn fence_for_term(&self, term: u64, previous_ceiling_ms: u64) {
        let mut s = self.lock();
        s.ceiling_ms = s.ceiling_ms.max(previous_ceiling_ms);
        s.last = s.last.max(compose(previous_ceiling_ms, LOGICAL_MASK));
        s.fenced_term = Some(term);
    }

    pub fn fenced_term(&self) -> Option<u64> {
        self.lock().fenced_term
    }

    /// Issues a fresh timestamp for a leader of `term`, using wall-clock `now_ms`.
    pub fn issue(&self, term: u64, now_ms: u64) -> Result<Timestamp, HlcError> {
        let mut s = self.lock();
        if s.fenced_term != Some(term) {
            return Err(HlcError::NotFenced { term });
        }
        let last_phys = physical_ms(s.last);
        let candidate = if now_ms > last_phys {
            compose(now_ms, 0)
        } else {
            // Same or earlier millisecond: advance the logical part (it carries into the
            // physical part when it overflows, which the ceiling check below bounds).
            Timestamp(s.last.get().saturating_add(1))
        };
        if physical_ms(candidate) >= s.ceiling_ms {
            return Err(HlcError::CeilingReached {
                ceiling_ms: s.ceiling_ms,
            });
        }
        s.last = candidate;
        Ok(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_within_a_leader() {
        let h = Hlc::new();
        h.fence_for_term(1, 0);
        h.observe_ceiling(10_000);
        let mut prev = Timestamp::ZERO;
        for now in [5_000, 5_000, 4_000, 5_001, 5_001, 3_000] {
            let ts = h.issue(1, now).unwrap();
            assert!(ts > prev, "{ts} <= {prev}");
            prev = ts;
        }
    }

    #[test]
    fn refuses_until_fenced_and_at_ceiling() {
        let h = Hlc::new();
        h.observe_ceiling(1_000);
        assert_eq!(h.issue(1, 10), Err(HlcError::NotFenced { term: 1 }));
        h.fence_for_term(1, 0);
        assert!(h.issue(1, 999).is_ok());
        assert_eq!(
            h.issue(1, 1_000),
            Err(HlcError::CeilingReached { ceiling_ms: 1_000 })
        );
        // A stale term is refused even after fencing another.
        assert_eq!(h.issue(2, 10), Err(HlcError::NotFenced { term: 2 }));
    }

    #[test]
    fn new_leader_with_slower_clock_issues_above_old_ceiling() {
        // Old leader: clock at 100_000 ms, lease ceiling 110_000 ms.
        let old = Hlc::new();
        old.fence_for_term(1, 0);
        old.observe_ceiling(110_000);
        let mut issued = Vec::new();
        for now in [100_000, 105_000, 109_999, 109_999] {
            issued.push(old.issue(1, now).unwrap());
        }
        // Never at or beyond the ceiling, whatever the clock says.
        assert!(old.issue(1, 200_000).is_err());
        let max_old = *issued.iter().max().unwrap();

        // New leader: clock 50 s behind. It learned the ceiling 110_000 from the log.
        let new = Hlc::new();
        new.observe_ceiling(110_000);
        new.fence_for_term(2, 110_000);
        // Until its own renewal raises the ceiling, it cannot issue.
        assert!(matches!(
            new.issue(2, 50_000),
            Err(HlcError::CeilingReached { .. })
        ));
        new.observe_ceiling(110_000 + 10_000);
        let ts = new.issue(2, 50_000).unwrap();
        assert!(
            ts > max_old,
            "new leader ts {ts} must exceed every old ts {max_old}"
        );
        assert!(physical_ms(ts) >= 110_000);
        let ts2 = new.issue(2, 50_001).unwrap();
        assert!(ts2 > ts);
    }
}
