//! The agent's command line and environment (`frr-composer controller`).

use std::net::SocketAddr;
use std::time::Duration;

use super::{holddown, status, trigger};
use crate::settings::{FrrArgs, LogLevelArg};

#[derive(clap::Args, Clone, Debug)]
pub struct ControllerArgs {
    /// The node this agent serves (downward API: spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Namespace of the FRRConfigurations, Secrets and FRRK8sConfiguration to read.
    #[arg(long, env = "NAMESPACE")]
    pub namespace: String,
    #[command(flatten)]
    pub frr: FrrArgs,
    /// CIDRs refused from every neighbor, comma-separated.
    #[arg(long, value_delimiter = ',', env = "FRR_COMPOSER_ALWAYS_BLOCK")]
    pub always_block: Vec<String>,
    /// Coalescing window: a change after a quiet period applies at once; changes during an
    /// apply or within this time after it wait for the end of the window and apply together.
    #[arg(long, default_value_t = trigger::DEFAULT_WINDOW_MS, env = "FRR_COMPOSER_DEBOUNCE_MS")]
    pub debounce_ms: u64,
    /// How long what an FRRConfiguration withdraws stays in FRR: the configuration of a
    /// deleted object, and the prefixes (or neighbors) an object no longer advertises (0:
    /// withdraw at once). Advertising them again within this time changes nothing (MetalLB's
    /// speaker deletes, empties or partly writes its object when it restarts); additions apply
    /// at once.
    #[arg(long, default_value = "5s", value_parser = holddown::parse_duration, env = "FRR_COMPOSER_DELETION_HOLD_DOWN")]
    pub deletion_hold_down: Duration,
    /// What this node writes into the status of the FRRConfigurations it merges: `all` (applied
    /// here or why not, for every node) or `problems` (only where an object is refused, held
    /// or failing; use it from a few hundred nodes on, where an object selecting every node
    /// would otherwise carry an entry per node).
    #[arg(long, value_enum, default_value = "all", env = "FRR_COMPOSER_OBJECT_STATUS")]
    pub object_status: status::ObjectStatus,
    /// Log level of the agent and default FRR log level (FRRK8sConfiguration `config` overrides).
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: LogLevelArg,
    /// Prometheus metrics address.
    #[arg(long, default_value = "0.0.0.0:9140")]
    pub metrics_address: SocketAddr,
    /// Health address (/healthz, /readyz, /livez).
    #[arg(long, default_value = "127.0.0.1:7572")]
    pub health_address: SocketAddr,
    /// Seconds between checks of FRR's running configuration for drift.
    #[arg(long, default_value_t = 30)]
    pub drift_interval: u64,
    /// Seconds between reads of BGP/BFD state (BGPSessionState, metrics).
    #[arg(long, default_value_t = 2)]
    pub poll_interval: u64,
    /// Also write the applied configuration to this file, so FRR restarts with it.
    #[arg(long, value_name = "FILE")]
    pub persist: Option<std::path::PathBuf>,
    /// The hostname written into frr.conf (default: this machine's hostname).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Directory (owned by the agent, not writable by others) where the generations of the
    /// FRRConfigurations in effect are kept across restarts (unset: kept in memory only).
    #[arg(long, env = "FRR_COMPOSER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    /// Daemons that must run for FRR to be live (/livez).
    #[arg(long, value_delimiter = ',', default_value = "zebra,bgpd")]
    pub required_daemons: Vec<String>,
}
