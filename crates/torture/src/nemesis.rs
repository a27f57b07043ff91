//! Faults, each applied and then healed on a schedule while the clients run.

use std::time::Duration;

use anyhow::Result;
use rand::Rng;

use crate::cluster::Cluster;
use crate::net::Firewall;

/// A fault's name (its `--faults` value, and its key in the report) is its variant in
/// kebab-case.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    strum::Display,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Fault {
    /// `kill -9` of one follower.
    KillOne,
    /// `kill -9` of the leader.
    KillLeader,
    /// `kill -9` of two nodes.
    KillMajority,
    /// `kill -9` of every node, then a cold start of all.
    KillAll,
    /// SIGSTOP of one follower.
    PauseOne,
    /// SIGSTOP of the leader.
    PauseLeader,
    /// The leader cut off from both followers.
    PartitionLeader,
    /// One follower cut off.
    PartitionOne,
    /// A ring: nodes A and C cannot talk, B talks to both.
    PartitionBridge,
    /// Power loss of one node: killed, and its unsynced writes are gone.
    PowerCutOne,
    /// Power loss of every node at once.
    PowerCutAll,
    /// The leader restarted with its clock stepped by up to ±3 s.
    ClockSkew,
    /// Every node in turn: SIGTERM, restart, wait until ready.
    RollingRestart,
}

pub const ALL: [Fault; 13] = [
    Fault::KillOne,
    Fault::KillLeader,
    Fault::KillMajority,
    Fault::KillAll,
    Fault::PauseOne,
    Fault::PauseLeader,
    Fault::PartitionLeader,
    Fault::PartitionOne,
    Fault::PartitionBridge,
    Fault::PowerCutOne,
    Fault::PowerCutAll,
    Fault::ClockSkew,
    Fault::RollingRestart,
];

impl Fault {
    pub fn needs_lazyfs(self) -> bool {
        matches!(self, Fault::PowerCutOne | Fault::PowerCutAll)
    }
}

async fn leader_or_any(c: &Cluster) -> u64 {
    c.leader().await.unwrap_or(1)
}

fn other_than(id: u64, rng: &mut impl Rng) -> u64 {
    let others: Vec<u64> = (1..=3).filter(|&i| i != id).collect();
    others[rng.random_range(0..others.len())]
}

/// Applies `fault` (returns once it is in place; rolling restarts return when done).
pub async fn apply(fault: Fault, c: &mut Cluster, fw: &Firewall, rng: &mut impl Rng) -> Result<()> {
    match fault {
        Fault::KillOne => {
            let l = leader_or_any(c).await;
            c.kill(other_than(l, rng));
        }
        Fault::KillLeader => {
            let l = leader_or_any(c).await;
            c.kill(l);
        }
        Fault::KillMajority => {
            let spared = rng.random_range(1..=3);
            for id in (1..=3).filter(|&i| i != spared) {
                c.kill(id);
            }
        }
        Fault::KillAll => {
            for id in 1..=3 {
                c.kill(id);
            }
        }
        Fault::PauseOne => {
            let l = leader_or_any(c).await;
            c.pause(other_than(l, rng));
        }
        Fault::PauseLeader => {
            let l = leader_or_any(c).await;
            c.pause(l);
        }
        Fault::PartitionLeader | Fault::PartitionOne => {
            let l = leader_or_any(c).await;
            let alone = if fault == Fault::PartitionLeader {
                l
            } else {
                other_than(l, rng)
            };
            let ips = c.ips();
            let rest = (1..=3)
                .filter(|&i| i != alone)
                .map(|i| ips[(i - 1) as usize])
                .collect();
            fw.partition(&[vec![ips[(alone - 1) as usize]], rest])?;
        }
        Fault::PartitionBridge => {
            let bridge = rng.random_range(1..=3u64);
            let ends: Vec<u64> = (1..=3).filter(|&i| i != bridge).collect();
            let ips = c.ips();
            fw.cut(ips[(ends[0] - 1) as usize], ips[(ends[1] - 1) as usize])?;
        }
        Fault::PowerCutOne => {
            let id = rng.random_range(1..=3);
            c.power_cut(id)?;
        }
        Fault::PowerCutAll => {
            for id in 1..=3 {
                c.kill(id);
            }
            for id in 1..=3 {
                c.power_cut(id)?;
            }
        }
        Fault::ClockSkew => {
            // The leader's clock matters most: it issues the timestamps.
            let id = leader_or_any(c).await;
            let offset = rng.random_range(500..3_000) * if rng.random_bool(0.5) { 1 } else { -1 };
            c.kill(id);
            c.set_clock_offset(id, offset);
            c.start(id)?;
        }
        Fault::RollingRestart => {
            for id in 1..=3 {
                c.terminate(id, Duration::from_secs(10));
                c.start(id)?;
                c.wait_ready(Duration::from_secs(30)).await?;
            }
        }
    }
    Ok(())
}

/// Undoes every fault: the network heals, paused nodes resume, stopped nodes restart with
/// their clocks set right.
pub fn heal(c: &mut Cluster, fw: &Firewall) -> Result<()> {
    fw.heal()?;
    c.resume_all();
    for id in 1..=3 {
        if c.node(id).clock_offset_ms != 0 {
            c.kill(id);
            c.set_clock_offset(id, 0);
        }
        c.start(id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name in the report is the one `--faults` takes and the one serialized.
    #[test]
    fn a_fault_has_one_name() {
        use clap::ValueEnum;
        for fault in ALL {
            let flag = fault
                .to_possible_value()
                .expect("every fault is a --faults value");
            assert_eq!(fault.to_string(), flag.get_name());
            assert_eq!(serde_json::to_value(fault).unwrap(), fault.to_string());
        }
        assert_eq!(Fault::PowerCutAll.to_string(), "power-cut-all");
    }
}
