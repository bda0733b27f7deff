//! CPU windows: the CPU the gateway and the bench used while a figure or its ceiling was measured,
//! and the share the hypervisor gave to others, so that a ratio taken on a shared machine can be
//! read against what the machine was doing.

use crate::servers::{self, Proc};

/// What the machine did over measured windows: CPU seconds of the gateway and of this process,
/// and the CPU time the hypervisor gave to others (`steal` in `/proc/stat`) out of the total.
#[derive(Default, Clone, Copy)]
pub struct Usage {
    pub gateway: f64,
    pub bench: f64,
    /// Of this process's children that ended in the window (the ceiling's sender).
    pub children: f64,
    steal: f64,
    total: f64,
}

impl Usage {
    /// The counters now; the gateway's stays 0 without `gw`.
    pub fn now(gw: Option<&Proc>) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        Usage {
            gateway: gw.map_or(0.0, Proc::cpu_secs),
            bench: servers::cpu_secs("self"),
            children: servers::children_cpu_secs(),
            steal: f.get(7).copied().unwrap_or(0.0),
            total: f.iter().take(8).sum(),
        }
    }
    /// Adds the window from `from` (taken with the same `gw`) to now.
    pub fn add_since(&mut self, gw: Option<&Proc>, from: Usage) {
        let to = Usage::now(gw);
        self.gateway += to.gateway - from.gateway;
        self.bench += to.bench - from.bench;
        self.children += to.children - from.children;
        self.steal += to.steal - from.steal;
        self.total += to.total - from.total;
    }
    pub fn steal_pct(&self) -> f64 {
        if self.total > 0.0 {
            100.0 * self.steal / self.total
        } else {
            0.0
        }
    }
}
