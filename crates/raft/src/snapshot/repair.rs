//! Repair of a snapshot that fails verification on the sender (I5, docs/design/cold-start.md
//! "Snapshots").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::network::SnapshotRepair;
use crate::node::RaftNode;

/// Replaces a snapshot found corrupt while being sent (or refused by a receiver as
/// unverifiable) with a fresh one, so lagging followers are not sent the same bad bytes
/// forever (I5). The fresh snapshot is an ordinary build, by openraft's own builder, at a
/// higher index (lease renewals keep the applied index moving), in a directory of its
/// own: the pointer moves atomically to it and nothing the pointer names is ever replaced
/// in place. A corrupt file that is also a file of the live store (checkpoints hard-link
/// SST files) means the live store itself is damaged: no snapshot may be built from it
/// again (a new CRC over rotten bytes would bless them), so this node stops building
/// snapshots, which stops its Raft; an operator replaces its disk.
pub fn spawn(node: Arc<RaftNode>, mut requests: UnboundedReceiver<SnapshotRepair>) {
    tokio::spawn(async move {
        // When each snapshot (by token) was last examined: a receiver's repeated
        // DATA_LOSS answers cost one verification a minute, not one each.
        let mut examined: HashMap<String, Instant> = HashMap::new();
        // The token of the snapshot the pointer names now.
        let pointed = || {
            node.sm
                .snapshots
                .read_pointer()
                .ok()
                .flatten()
                .map(|(_, token)| token)
        };
        while let Some(req) = requests.recv().await {
            let token = req.dir.token();
            if pointed() != Some(token) {
                continue;
            }
            let key = token.to_hex();
            if req.file.is_none()
                && examined
                    .get(&key)
                    .is_some_and(|at| at.elapsed() < Duration::from_secs(60))
            {
                continue;
            }
            examined.insert(key, Instant::now());
            let bad = match req.file {
                Some(name) => Some(req.dir.path.join(name)),
                None => {
                    // A receiver refused it: check this copy before rebuilding anything.
                    let dir = req.dir.clone();
                    match tokio::task::spawn_blocking(move || dir.verify()).await {
                        Ok(Ok(())) => {
                            tracing::warn!(path = %req.dir.path.display(), "the snapshot verifies here; the receiver's copy was damaged");
                            continue;
                        }
                        Ok(Err(e)) if e.is_integrity_failure() => e.file().map(|f| f.to_path_buf()),
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "could not check a refused snapshot");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not check a refused snapshot");
                            continue;
                        }
                    }
                }
            };
            let live = node.sm.snapshots.layout().state_machine();
            if let Some(bad) = bad.as_deref().filter(|f| same_file_in(f, &live)) {
                node.sm.mark_live_store_damaged();
                node.sm
                    .metrics
                    .snapshot_corruption_in_live_store
                    .increment(1);
                tracing::error!(
                    file = %bad.display(),
                    "a corrupt snapshot file is a file of the live store: the store is damaged; this node builds no more snapshots (replace its disk)"
                );
                continue;
            }
            let index = req.dir.manifest.index;
            if !node
                .sm
                .wait_applied(index.next(), Duration::from_secs(30))
                .await
            {
                tracing::warn!(
                    index = index.get(),
                    "no entry applied past the corrupt snapshot; not rebuilding yet"
                );
                continue;
            }
            if let Err(e) = node.raft.trigger().snapshot().await {
                tracing::error!(error = %e, "could not trigger a fresh snapshot");
                continue;
            }
            // openraft drops the trigger while a build runs: count the repair only once
            // the pointer has moved on.
            let moved = async {
                loop {
                    if pointed().is_some_and(|t| t != token) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            if tokio::time::timeout(Duration::from_secs(60), moved)
                .await
                .is_ok()
            {
                node.sm.metrics.snapshots_repaired.increment(1);
                tracing::warn!(
                    corrupt = %req.dir.path.display(),
                    file = ?bad,
                    "fresh snapshot built in place of one that failed verification"
                );
            } else {
                tracing::warn!("the snapshot pointer did not move within 60 s of a repair");
            }
        }
    });
}

/// Whether `file` (in a snapshot directory) is the very file of the same name in the live
/// store directory `live`.
fn same_file_in(file: &std::path::Path, live: &std::path::Path) -> bool {
    file.file_name()
        .is_some_and(|name| super::dir::same_file(file, &live.join(name)))
}
