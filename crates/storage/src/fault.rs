//! Named crash points (docs/design/cold-start.md, "Crash points").
//!
//! Compiled in only with the `crash-points` cargo feature (the test suite enables it; release
//! builds do not have it). A test sets `BRISK_CRASH_AT=<name>` (optionally
//! `BRISK_CRASH_AFTER=<n>` to skip the first n hits) in a node's environment; when execution
//! reaches that point the process aborts as abruptly as `kill -9` (no destructors, no
//! flushes). Without the feature every point is an empty inline function.

pub const APPLY_BEFORE_ACK: &str = "apply_before_ack";
pub const SNAPSHOT_BEFORE_MANIFEST: &str = "snapshot_before_manifest";
pub const SNAPSHOT_BEFORE_POINTER: &str = "snapshot_before_pointer";
/// A snapshot directory replacing one of the same name: the old one is renamed aside, the
/// new one not yet in place.
pub const SNAPSHOT_REPLACE_ASIDE: &str = "snapshot_replace_aside";
pub const POINTER_BEFORE_PURGE: &str = "pointer_before_purge";
pub const MID_PURGE: &str = "mid_purge";
pub const RESTORE_BEFORE_SWAP: &str = "restore_before_swap";
pub const RESTORE_BEFORE_CLEANUP: &str = "restore_before_cleanup";
pub const RECEIVE_MID_TRANSFER: &str = "receive_mid_transfer";
pub const RECEIVE_BEFORE_INSTALL: &str = "receive_before_install";
/// Fail-closed recovery: the log is wiped (with its recovery marker) and the unverifiable
/// state machine quarantined; the node has not caught up from the leader yet.
pub const RECOVERY_BEFORE_CATCH_UP: &str = "recovery_before_catch_up";
/// A DeletePrefix wrote (spilled) a chunk of its tombstones; the entry's final batch, with
/// the applied index, is not written yet.
pub const DELETE_PREFIX_SPILLED: &str = "delete_prefix_spilled";

#[cfg(feature = "crash-points")]
struct Armed {
    name: Option<String>,
    skip: u64,
    hits: std::sync::atomic::AtomicU64,
}

#[cfg(feature = "crash-points")]
fn armed() -> &'static Armed {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    static ARMED: OnceLock<Armed> = OnceLock::new();
    ARMED.get_or_init(|| Armed {
        name: std::env::var("BRISK_CRASH_AT")
            .ok()
            .filter(|s| !s.is_empty()),
        skip: std::env::var("BRISK_CRASH_AFTER")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        hits: AtomicU64::new(0),
    })
}

/// Aborts the process if `name` is the armed crash point.
#[cfg(feature = "crash-points")]
pub fn crash_point(name: &str) {
    let a = armed();
    if a.name.as_deref() != Some(name) {
        return;
    }
    let hit = a.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if hit >= a.skip {
        eprintln!("brisk: crash point {name} reached (hit {hit}); aborting");
        std::process::abort();
    }
}

/// Crash points are compiled out of builds without the `crash-points` feature.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}

/// Deliberately broken behaviours, for showing that the fault harness catches them
/// (`BRISK_TEST_BROKEN=<mode>` in a node's environment, test builds only):
/// [`BROKEN_STALE_READS`] serves linearizable reads from the local replica without a read
/// barrier; [`BROKEN_UNSYNCED_LOG`] acknowledges Raft log appends without an fsync.
pub const BROKEN_STALE_READS: &str = "stale-reads";
pub const BROKEN_UNSYNCED_LOG: &str = "unsynced-log";

/// Whether the broken behaviour `mode` is switched on (never without `crash-points`).
#[cfg(feature = "crash-points")]
pub fn broken(mode: &str) -> bool {
    use std::sync::OnceLock;
    static MODE: OnceLock<Option<String>> = OnceLock::new();
    MODE.get_or_init(|| std::env::var("BRISK_TEST_BROKEN").ok())
        .as_deref()
        == Some(mode)
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn broken(_mode: &str) -> bool {
    false
}

/// A clock offset in milliseconds added to this process's wall clock
/// (`BRISK_TEST_CLOCK_OFFSET_MS`, test builds only): the fault harness steps a node's clock.
#[cfg(feature = "crash-points")]
pub fn clock_offset_ms() -> i64 {
    use std::sync::OnceLock;
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("BRISK_TEST_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    })
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn clock_offset_ms() -> i64 {
    0
}
