//! Settings shared by the commands and the servers: where FRR is, log levels and logging, and
//! what the node agent knows about its node. The agent and the webhook take their settings
//! from here, never from the command-line front ends in `cli`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

use ipnet::IpNet;

use crate::api::LogLevel;
use crate::core;
use crate::frr::vtysh::FrrLocation;

/// Where FRR is.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct FrrArgs {
    /// FRR pathspace (FRR's `-N`); default: FRR's default paths.
    #[arg(long)]
    pub pathspace: Option<String>,
    /// The vtysh program.
    #[arg(long, value_name = "PATH")]
    pub vtysh: Option<PathBuf>,
    /// FRR is installed under this root (a chroot): vtysh runs as `chroot ROOT vtysh`.
    #[arg(long, value_name = "DIR")]
    pub frr_root: Option<PathBuf>,
    /// vtysh's configuration folder (vtysh's `--config_dir`).
    #[arg(long, value_name = "DIR")]
    pub vtysh_config_dir: Option<PathBuf>,
}

impl FrrArgs {
    pub fn location(&self) -> FrrLocation {
        FrrLocation {
            vtysh: self.vtysh.clone(),
            pathspace: self.pathspace.clone(),
            root: self.frr_root.clone(),
            config_dir: self.vtysh_config_dir.clone(),
            run_dir: None,
        }
    }
}

/// A log level on the command line (the API's names, lower case).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogLevelArg {
    All,
    Debug,
    Info,
    Warn,
    Error,
    None,
}

impl From<LogLevelArg> for LogLevel {
    fn from(l: LogLevelArg) -> LogLevel {
        match l {
            LogLevelArg::All => LogLevel::All,
            LogLevelArg::Debug => LogLevel::Debug,
            LogLevelArg::Info => LogLevel::Info,
            LogLevelArg::Warn => LogLevel::Warn,
            LogLevelArg::Error => LogLevel::Error,
            LogLevelArg::None => LogLevel::None,
        }
    }
}

/// What the node agent knows about its node, fixed for its lifetime; the log level may change
/// at runtime (FRRK8sConfiguration `config`), so it is given per composition.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// Only FRRConfigurations and Secrets of this namespace are read.
    pub namespace: String,
    /// The hostname written into frr.conf.
    pub hostname: String,
    /// CIDRs every neighbor refuses.
    pub always_block: Vec<IpNet>,
    /// Whether the node has a non-loopback IPv4 address (router-id fallback).
    pub node_has_ipv4: bool,
}

impl NodeSettings {
    /// Checks the always-block list; the hostname defaults to this machine's.
    pub fn new(namespace: &str, hostname: Option<&str>, always_block: &[String]) -> Result<NodeSettings, String> {
        let mut blocks = Vec::new();
        for c in always_block.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            blocks.push(core::values::parse_prefix(c).map_err(|e| format!("--always-block: {e}"))?);
        }
        Ok(NodeSettings {
            namespace: namespace.to_string(),
            hostname: hostname.map(str::to_string).unwrap_or_else(hostname_of_this_machine),
            always_block: blocks,
            node_has_ipv4: host_has_ipv4(),
        })
    }

    /// The core's settings at this log level.
    pub fn core(&self, log_level: LogLevel) -> core::Settings {
        core::Settings {
            namespace: self.namespace.clone(),
            hostname: self.hostname.clone(),
            log_level,
            always_block: self.always_block.clone(),
            node_has_ipv4: self.node_has_ipv4,
            frr_version: None,
        }
    }
}

pub fn hostname_of_this_machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

/// Whether this host has a non-loopback IPv4 address (for the router-id fallback).
pub fn host_has_ipv4() -> bool {
    // /proc/net/fib_trie lists local addresses; loopback ones are 127/8
    std::fs::read_to_string("/proc/net/fib_trie")
        .map(|t| {
            let lines: Vec<&str> = t.lines().collect();
            lines.windows(2).any(|w| {
                w[1].contains("/32 host LOCAL") && w[0].trim().trim_start_matches("|-- ").parse::<std::net::Ipv4Addr>().is_ok_and(|a| !a.is_loopback())
            })
        })
        .unwrap_or(true)
}

/// The servers' log level, changeable at runtime (FRRK8sConfiguration `config`). A plain
/// atomic read by a filter function: no lock is taken while logging.
static LEVEL: AtomicU8 = AtomicU8::new(2);

fn level_code(level: LogLevel) -> u8 {
    match level {
        LogLevel::All | LogLevel::Debug => 4,
        LogLevel::Info => 3,
        LogLevel::Warn => 2,
        LogLevel::Error => 1,
        LogLevel::None => 0,
    }
}

fn enabled(meta: &tracing::Metadata<'_>) -> bool {
    use tracing::Level;
    let ours = meta.target().starts_with("frr_composer");
    let max = if ours { LEVEL.load(Ordering::Relaxed) } else { 2.min(LEVEL.load(Ordering::Relaxed)) };
    let code = match *meta.level() {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    };
    code <= max
}

pub fn set_log_level(level: LogLevel) {
    let old = LEVEL.swap(level_code(level), Ordering::Relaxed);
    if old != level_code(level) {
        // the filter's answers are cached per call site
        tracing::callsite::rebuild_interest_cache();
    }
}

/// JSON logs on stderr; the level can change at runtime (`set_log_level`). Other crates log
/// warnings and errors only.
pub fn init_logging(level: LogLevel) {
    use tracing_subscriber::prelude::*;
    set_log_level(level);
    let filter = tracing_subscriber::filter::filter_fn(enabled);
    tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(filter)).init();
}
