//! The node agent under test: `frr-composer controller` against an [`ApiServer`], driving one
//! FRR, as the live tests and benchmarks start it.
//!
//! ```ignore
//! let agent = AgentUnderTest::start(&api, &frr.cli_args(), "wk3", NS, tmp.path(), &["--poll-interval", "1"]);
//! // or, for more than extra arguments:
//! let agent = AgentUnderTest::builder(&api, &frr.cli_args(), "wk3", NS, tmp.path()).log_name("agent-2.log").arg("--state-dir").arg(&state).spawn();
//! assert!(agent.metric("frr_composer_configurations_left_out") == Some(1.0), "{}", agent.diag("nothing left out"));
//! ```
//!
//! Every agent gets `controller --node-name N --namespace NS --hostname N --log-level info`,
//! metrics and health addresses on free loopback ports, then the caller's arguments, then the
//! FRR arguments; `KUBECONFIG` is the API server's. Its stdout goes nowhere, its stderr (the
//! JSON log) to `<dir>/<log name>` (default `agent.log`). Dropping it kills the process
//! (SIGKILL, as a node losing the agent would); [`AgentBuilder::terminate_on_drop`] asks for a
//! SIGTERM with a grace period instead.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::ApiServer;
use crate::support::{free_port, tail_file, Process};

/// Log lines [`AgentUnderTest::diag`] quotes.
const DIAG_LINES: usize = 30;

/// How to start one agent; [`AgentUnderTest::builder`].
pub struct AgentBuilder {
    bin: PathBuf,
    node: String,
    namespace: String,
    kubeconfig: PathBuf,
    frr_args: Vec<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    clean_env: bool,
    dir: PathBuf,
    log_name: String,
    grace: Option<Duration>,
}

impl AgentBuilder {
    /// One more argument after the standard ones (before FRR's).
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<A: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// One more environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Start from an empty environment: only `PATH` (the lab's), `KUBECONFIG` and what
    /// [`env`](Self::env) adds. The benchmarks measure the agent this way.
    pub fn clean_env(mut self) -> Self {
        self.clean_env = true;
        self
    }

    /// The log file's name in the directory (default `agent.log`).
    pub fn log_name(mut self, name: impl Into<String>) -> Self {
        self.log_name = name.into();
        self
    }

    /// Another binary than the one cargo built (a benchmark's `FRR_BENCH_AGENT_BIN`).
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = bin.into();
        self
    }

    /// On drop: SIGTERM, up to `grace`, then SIGKILL (default: SIGKILL at once).
    pub fn terminate_on_drop(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Starts the agent; panics when it cannot.
    pub fn spawn(self) -> AgentUnderTest {
        self.try_spawn().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts the agent.
    pub fn try_spawn(self) -> Result<AgentUnderTest> {
        let (metrics_port, health_port) = (free_port(), free_port());
        let mut cmd = Command::new(&self.bin);
        cmd.arg("controller")
            .args(["--node-name", &self.node, "--namespace", &self.namespace, "--hostname", &self.node, "--log-level", "info"])
            .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}"), "--health-address", &format!("127.0.0.1:{health_port}")])
            .args(&self.args)
            .args(&self.frr_args);
        if self.clean_env {
            cmd.env_clear().env("PATH", crate::support::PATH);
        }
        cmd.env("KUBECONFIG", &self.kubeconfig).envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut process = Process::spawn(&mut cmd, self.dir.join(&self.log_name))?;
        if let Some(grace) = self.grace {
            process = process.terminate_on_drop(grace);
        }
        Ok(AgentUnderTest { started: process.started, process, metrics_port, health_port })
    }
}

/// A running `frr-composer controller`; killed on drop.
pub struct AgentUnderTest {
    process: Process,
    pub metrics_port: u16,
    pub health_port: u16,
    /// When the process was started.
    pub started: Instant,
}

impl AgentUnderTest {
    /// The agent for `node` (also its hostname) watching `namespace`, with FRR's arguments
    /// (`Frr::cli_args()`), its log in `dir/agent.log`, and `extra` arguments.
    pub fn start(api: &ApiServer, frr_args: &[String], node: &str, namespace: &str, dir: &Path, extra: &[&str]) -> AgentUnderTest {
        Self::builder(api, frr_args, node, namespace, dir).args(extra).spawn()
    }

    /// As [`start`](Self::start), with more choices before [`AgentBuilder::spawn`].
    pub fn builder(api: &ApiServer, frr_args: &[String], node: &str, namespace: &str, dir: &Path) -> AgentBuilder {
        AgentBuilder {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_frr-composer")),
            node: node.into(),
            namespace: namespace.into(),
            kubeconfig: api.kubeconfig().to_path_buf(),
            frr_args: frr_args.to_vec(),
            args: Vec::new(),
            env: Vec::new(),
            clean_env: false,
            dir: dir.to_path_buf(),
            log_name: "agent.log".into(),
            grace: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// An error with the log's tail when the process has exited.
    pub fn alive(&mut self) -> Result<()> {
        self.process.alive(DIAG_LINES)
    }

    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        tail_file(self.log_path(), n)
    }

    /// `what`, then the log's tail: for an assertion's message.
    pub fn diag(&self, what: &str) -> String {
        format!("{what}\n--- agent log (tail)\n{}", self.log_tail(DIAG_LINES))
    }

    /// `GET path` on the health address: (status, body); (0, "") when nothing answers.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        get(self.health_port, path)
    }

    /// The body of `GET /metrics` ("" when nothing answers).
    pub fn metrics(&self) -> String {
        get(self.metrics_port, "/metrics").1
    }

    /// The value of one series: its name, with its labels as the agent writes them when it
    /// has any (`frrk8s_bgp_session_up{peer="192.0.2.1",vrf="default"}`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.metrics().lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.trim().parse().ok()).flatten()
        })
    }
}

/// Plain-HTTP GET on loopback: (status, body), (0, "") when the connection fails.
fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
