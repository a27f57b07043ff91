//! DeletePrefix runs in bounded memory whatever the size of the keyspace under the prefix: an
//! entry applied on every replica at once must not be able to exhaust their memory.
//!
//! The test binary counts every heap allocation of the Rust side (values read out of RocksDB
//! land there) and checks the peak while one DeletePrefix deletes 48 MiB of values.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use brisk_kv::{Command, Hlc, KvStateMachine, Request, Response, Timestamp};
use brisk_storage::{AppliedLogId, AppliedState, Durability, Store};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn state(index: u64) -> AppliedState {
    AppliedState {
        log_id: AppliedLogId {
            term: 1,
            leader_node: 1,
            index: brisk_storage::LogIndex(index),
        },
        membership: b"m".to_vec(),
    }
}

#[test]
fn delete_prefix_over_a_large_keyspace_stays_within_a_small_memory_budget() {
    const KEYS: u64 = 12_288;
    const VALUE: usize = 4096;
    const BUDGET: usize = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let sm = KvStateMachine::new(
        Store::open(&dir.path().join("sm")).unwrap(),
        Arc::new(Hlc::new()),
    )
    .unwrap();
    let value = vec![b'x'; VALUE];
    for i in 0..KEYS {
        let req = Request {
            ts: Timestamp(100 + i),
            command: Command::Put {
                key: format!("big/{i:06}").into_bytes(),
                value: value.clone(),
            },
        };
        sm.apply(state(i + 1), Some(&req), Durability::Buffered)
            .unwrap();
    }
    let req = Request {
        ts: Timestamp(1_000_000),
        command: Command::DeletePrefix {
            prefix: b"big/".to_vec(),
        },
    };
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let resp = sm
        .apply(state(KEYS + 1), Some(&req), Durability::Sync)
        .unwrap();
    let peak = PEAK.load(Ordering::SeqCst) - before;
    assert_eq!(
        resp,
        Response::Written {
            commit_ts: Timestamp(1_000_000),
            deleted: KEYS
        }
    );
    assert!(
        peak < BUDGET,
        "DeletePrefix over {} MiB of values peaked at {} MiB of heap (budget {} MiB)",
        (KEYS as usize * VALUE) >> 20,
        peak >> 20,
        BUDGET >> 20
    );
    assert!(sm
        .get(b"big/000000", Timestamp::MAX)
        .unwrap()
        .unwrap()
        .value
        .is_none());
}
