//! GoBGP peers (`gobgpd`) in network namespaces.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::frr::tail;
use super::{build_lock, command, next_seq, process_matches, run, signal, wait_until, Netns, TempDir};

/// A neighbor of a GoBGP peer. `families`: GoBGP afi-safi names ("ipv4-unicast",
/// "ipv6-unicast"); empty = GoBGP's default for the address. `password`: TCP MD5.
/// `extra_toml`: raw TOML appended to this neighbor (e.g. `[neighbors.transport.config]\n
/// passive-mode = true`).
#[derive(Clone, Debug)]
pub struct GoBgpNeighbor {
    pub address: String,
    pub asn: u32,
    pub families: Vec<String>,
    pub password: Option<String>,
    pub extra_toml: String,
}

impl GoBgpNeighbor {
    pub fn new(address: &str, asn: u32) -> GoBgpNeighbor {
        GoBgpNeighbor { address: address.into(), asn, families: Vec::new(), password: None, extra_toml: String::new() }
    }
    pub fn families(mut self, fams: &[&str]) -> GoBgpNeighbor {
        self.families = fams.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn password(mut self, password: &str) -> GoBgpNeighbor {
        self.password = Some(password.into());
        self
    }
}

/// gobgpd's TOML: the global section (with `global_extra`, whole tables, after it) and each
/// neighbor.
fn config_toml(asn: u32, router_id: &str, global_extra: &str, neighbors: &[GoBgpNeighbor]) -> String {
    let mut toml = format!("[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n  port = 179\n{global_extra}");
    for n in neighbors {
        toml.push_str(&format!("\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n", n.address, n.asn));
        if let Some(pw) = &n.password {
            // a TOML string: quotes and backslashes escaped as in JSON
            toml.push_str(&format!("    auth-password = {}\n", serde_json::to_string(pw).expect("strings serialise")));
        }
        toml.push_str("  [neighbors.timers.config]\n    connect-retry = 1\n    idle-hold-time-after-reset = 1\n");
        for f in &n.families {
            toml.push_str(&format!("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\"\n"));
        }
        if !n.extra_toml.is_empty() {
            toml.push_str(&n.extra_toml);
            toml.push('\n');
        }
    }
    toml
}

/// A path in a GoBGP table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpRoute {
    pub prefix: String,
    pub nexthop: Option<String>,
    pub as_path: Vec<u32>,
    /// The neighbor it came from (None: originated by GoBGP itself).
    pub neighbor: Option<String>,
    pub best: bool,
    /// `65000:1`, or a well-known name as GoBGP prints it.
    pub communities: Vec<String>,
    /// `1:2:3`.
    pub large_communities: Vec<String>,
    pub local_pref: Option<u32>,
}

/// `gobgpd` in a namespace: an external BGP router. API on 127.0.0.1:<port> inside the
/// namespace. Connect-retry and idle-hold timers are 1 s (GoBGP waits at least 5 s between
/// active connects; FRR connects itself as soon as its configuration is complete).
pub struct GoBgp {
    ns: String,
    /// The `gobgp` CLI that matches the running gobgpd.
    cli: PathBuf,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl GoBgp {
    pub fn start(ns: &Netns, asn: u32, router_id: &str, neighbors: &[GoBgpNeighbor]) -> Result<GoBgp> {
        Self::start_with_config(ns, &config_toml(asn, router_id, "", neighbors))
    }

    /// A router: GoBGP [`GOBGP_RELEASE`](super::GOBGP_RELEASE) of `.ci/install-gobgp.sh` with
    /// multipath, putting its best paths into its namespace's kernel through the zebra at
    /// `zserv` (ZAPI 6; `software`: the FRR release zebra is, e.g. "frr8.4", the newest whose
    /// zebra this GoBGP pairs with).
    pub fn start_zebra_router(ns: &Netns, asn: u32, router_id: &str, neighbors: &[GoBgpNeighbor], zserv: &Path, software: &str) -> Result<GoBgp> {
        let extra = format!(
            "[global.use-multiple-paths.config]\n  enabled = true\n\n[zebra.config]\n  enabled = true\n  url = \"unix:{}\"\n  version = 6\n  software-name = \"{software}\"\n",
            zserv.display()
        );
        let bin = super::gobgp_release_bin();
        Self::start_programs(ns, &config_toml(asn, router_id, &extra, neighbors), &bin.join("gobgpd"), &bin.join("gobgp"))
    }

    /// Start with a complete gobgpd TOML configuration.
    pub fn start_with_config(ns: &Netns, toml: &str) -> Result<GoBgp> {
        Self::start_programs(ns, toml, Path::new("gobgpd"), Path::new("gobgp"))
    }

    /// Start with a complete TOML configuration, running the given `gobgpd` and talking to it
    /// with the given `gobgp` CLI (paths, or names on [`PATH`](super::PATH)), e.g. a GoBGP
    /// release built by `.ci/install-gobgp.sh` instead of Debian's.
    pub fn start_programs(ns: &Netns, toml: &str, gobgpd: &Path, gobgp: &Path) -> Result<GoBgp> {
        let dir = TempDir::new()?;
        let conf = dir.write("gobgpd.toml", toml)?;
        let log = fs::File::create(dir.path().join("gobgpd.log"))?;
        let port = 50100 + (next_seq() % 10000) as u16;
        let building = build_lock();
        let child = ns
            .command(&gobgpd.to_string_lossy())
            .arg("-f")
            .arg(&conf)
            .args(["-t", "toml", "-p", "--pprof-disable", "--api-hosts", &format!("127.0.0.1:{port}")])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        drop(building);
        let mut g = GoBgp { ns: ns.name().into(), cli: gobgp.to_path_buf(), port, dir, child: Some(child) };
        let mut err = String::new();
        let ready = wait_until(Duration::from_secs(10), || {
            if let Some(Ok(Some(st))) = g.child.as_mut().map(|c| c.try_wait()) {
                err = format!("gobgpd exited ({st})");
                return true;
            }
            match g.cli(&["global"]) {
                Ok(_) => true,
                Err(e) => {
                    err = e.to_string();
                    false
                }
            }
        });
        if !ready || g.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_)))) {
            bail!("gobgpd did not start: {err}\n{}", g.log());
        }
        Ok(g)
    }

    pub fn api_port(&self) -> u16 {
        self.port
    }

    /// `gobgp -u 127.0.0.1 -p PORT ARGS...` inside the namespace.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let mut c = command("ip");
        c.args(["netns", "exec", &self.ns]).arg(&self.cli).args(["-u", "127.0.0.1", "-p", &self.port.to_string()]).args(args);
        run(&mut c)
    }

    fn cli_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["-j"];
        a.extend_from_slice(args);
        let out = self.cli(&a)?;
        if out.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&out).with_context(|| format!("gobgp {args:?}: not JSON: {out}"))
    }

    /// Originate `prefix` (IPv4 or IPv6) with `nexthop`; `attrs`: further `gobgp global rib
    /// add` arguments, e.g. `["aspath", "65101"]` or `["community", "65000:1"]`.
    pub fn add_route(&self, prefix: &str, nexthop: &str, attrs: &[&str]) -> Result<()> {
        let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let mut a = vec!["global", "rib", "add", prefix, "nexthop", nexthop];
        a.extend_from_slice(attrs);
        a.extend_from_slice(&["-a", fam]);
        self.cli(&a).map(|_| ())
    }

    pub fn del_route(&self, prefix: &str) -> Result<()> {
        let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "del", prefix, "-a", fam]).map(|_| ())
    }

    /// Session state of a neighbor, lower case: "idle", "connect", "active", "opensent",
    /// "openconfirm", "established".
    pub fn neighbor_state(&self, addr: &str) -> Result<String> {
        let v = self.cli_json(&["neighbor", addr])?;
        let st = &v["state"]["session_state"];
        let s = match st {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(1) => "idle",
                Some(2) => "connect",
                Some(3) => "active",
                Some(4) => "opensent",
                Some(5) => "openconfirm",
                Some(6) => "established",
                _ => "unknown",
            }
            .to_string(),
            serde_json::Value::String(s) => s.to_lowercase().trim_start_matches("session_state_").to_string(),
            _ => bail!("no session_state for {addr}: {v}"),
        };
        Ok(s)
    }

    fn parse_table(v: &serde_json::Value) -> Vec<BgpRoute> {
        let mut out = Vec::new();
        let Some(map) = v.as_object() else { return out };
        for (prefix, paths) in map {
            for p in paths.as_array().into_iter().flatten() {
                let mut r = BgpRoute {
                    prefix: prefix.clone(),
                    nexthop: None,
                    as_path: Vec::new(),
                    neighbor: p.get("neighbor-ip").and_then(|n| n.as_str()).map(str::to_string),
                    best: p.get("best").and_then(|b| b.as_bool()).unwrap_or(false),
                    communities: Vec::new(),
                    large_communities: Vec::new(),
                    local_pref: None,
                };
                for a in p.get("attrs").and_then(|a| a.as_array()).into_iter().flatten() {
                    match a.get("type").and_then(|t| t.as_u64()) {
                        Some(2) => {
                            for seg in a.get("as_paths").and_then(|s| s.as_array()).into_iter().flatten() {
                                for asn in seg.get("asns").and_then(|s| s.as_array()).into_iter().flatten() {
                                    r.as_path.extend(asn.as_u64().map(|x| x as u32));
                                }
                            }
                        }
                        Some(3) => r.nexthop = a.get("nexthop").and_then(|n| n.as_str()).map(str::to_string),
                        Some(5) => r.local_pref = a.get("value").and_then(|v| v.as_u64()).map(|v| v as u32),
                        Some(8) => {
                            r.communities = a
                                .get("communities")
                                .and_then(|c| c.as_array())
                                .into_iter()
                                .flatten()
                                .filter_map(|c| c.as_u64())
                                .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                                .collect()
                        }
                        Some(32) => {
                            r.large_communities = a
                                .get("value")
                                .and_then(|c| c.as_array())
                                .into_iter()
                                .flatten()
                                .map(|c| {
                                    let f = |k: &str| c.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                                    format!("{}:{}:{}", f("ASN"), f("LocalData1"), f("LocalData2"))
                                })
                                .collect()
                        }
                        // MP_REACH_NLRI (IPv6)
                        Some(14) => {
                            // gobgp 3.10 prints `nexthop`, other versions a `nexthops` list
                            r.nexthop = a
                                .get("nexthop")
                                .and_then(|n| n.as_str())
                                .or_else(|| a.get("nexthops").and_then(|n| n.as_array()).and_then(|n| n.first()).and_then(|n| n.as_str()))
                                .map(str::to_string)
                        }
                        _ => {}
                    }
                }
                out.push(r);
            }
        }
        out
    }

    fn table(&self, args: &[&str]) -> Result<Vec<BgpRoute>> {
        let mut routes = Vec::new();
        for fam in ["ipv4", "ipv6"] {
            let mut a = args.to_vec();
            a.extend_from_slice(&["-a", fam]);
            routes.extend(Self::parse_table(&self.cli_json(&a)?));
        }
        Ok(routes)
    }

    /// The global RIB (IPv4 and IPv6): received and originated paths.
    pub fn rib(&self) -> Result<Vec<BgpRoute>> {
        self.table(&["global", "rib"])
    }

    /// Paths received from `addr` (before GoBGP's import policy).
    pub fn adj_in(&self, addr: &str) -> Result<Vec<BgpRoute>> {
        self.table(&["neighbor", addr, "adj-in"])
    }

    /// Paths GoBGP advertises to `addr`.
    pub fn adj_out(&self, addr: &str) -> Result<Vec<BgpRoute>> {
        self.table(&["neighbor", addr, "adj-out"])
    }

    /// Prefixes received from `addr`.
    pub fn received_prefixes(&self, addr: &str) -> Result<BTreeSet<String>> {
        Ok(self.adj_in(addr)?.into_iter().map(|r| r.prefix).collect())
    }

    /// How gobgpd ended, once it has (a panic, a configuration it refused); None while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// gobgpd's whole log (stdout and stderr), e.g. to look for a message.
    pub fn full_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("gobgpd.log")).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        tail(&fs::read_to_string(self.dir.path().join("gobgpd.log")).unwrap_or_default(), 40)
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            // `ip netns exec` execs gobgpd: the child is gobgpd itself.
            if process_matches(pid, "gobgpd", None) {
                signal(pid, "TERM");
                let exited = wait_until(Duration::from_secs(3), || matches!(child.try_wait(), Ok(Some(_))));
                if !exited {
                    let _ = child.kill();
                }
            } else {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}
