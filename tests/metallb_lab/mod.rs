//! A lab driven by a real MetalLB (v0.16.1, frr-k8s mode) against the suite's kube-apiserver.
//!
//! Use with `mod apiserver; mod lab; mod metallb_lab;`. Topology (all addresses from the
//! documentation ranges, all namespaces created here):
//!
//! ```text
//!   client 198.51.100.2 ── 198.51.100.1 router 192.0.2.1 ──┬── 192.0.2.11 n1 (FRR 8.4 + agent + speaker)
//!                           FRR 8.4 bgpd+zebra+bfdd        ├── 192.0.2.12 n2
//!                           AS 64500, maximum-paths 8      └── 192.0.2.13 n3   (one L2 segment)
//! ```
//!
//! The router is FRR, not GoBGP: Debian's gobgpd 3.10 with `[zebra] enabled` panics while
//! decoding FRR 8.4 zebra's interface messages (tried with every `software-name` from frr7.5 to
//! frr10), so it cannot put routes into its kernel. FRR's bgpd with `maximum-paths` does, with
//! one next hop per node. (GoBGP 4.8.0 of `.ci/install-gobgp.sh` does pair with FRR 8.4's zebra:
//! tests/lab_gobgp_zebra.rs.)
//!
//! Each node namespace holds FRR and, on its `lo`, the LoadBalancer IPs with a TCP listener on
//! port 8080 that answers the node's name. MetalLB's controller and one speaker per node run
//! as processes against the API server (what a kubelet would create - the namespace, a Pod per
//! process, Nodes with addresses and a Ready condition - is written here); so do the
//! frr-composer agents, one per node, each driving its node's FRR.
//!
//! Binaries: `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/metallb/` from
//! `.ci/install-metallb.sh`. Drop stops every process it started (by pid), then the FRRs, the
//! API server and the namespaces.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::apiserver::{self, AgentUnderTest, ApiServer};
use crate::lab::{self, Bridge, Frr, FrrVersion, GoBgp, GoBgpNeighbor, Netns, Req, TempDir};
use crate::support::free_port;

pub const NS: &str = "metallb-system";
pub const ROUTER_IP: &str = "192.0.2.1";
pub const ROUTER_ASN: u32 = 64500;
pub const NODE_ASN: u32 = 64512;
pub const CLIENT_IP: &str = "198.51.100.2";
pub const PASSWORD: &str = "lab-Only-Pw-7";
pub const NODES: [(&str, &str); 3] = [("n1", "192.0.2.11"), ("n2", "192.0.2.12"), ("n3", "192.0.2.13")];
/// The second set of nodes, run by frr-k8s v0.0.26 itself (only with `MetalLbLab::start_with`).
pub const FRRK8S_NODES: [(&str, &str); 3] = [("n4", "192.0.2.14"), ("n5", "192.0.2.15"), ("n6", "192.0.2.16")];
/// LoadBalancer IPs every node holds on `lo` (the Services ask for them by annotation).
pub const LB_IPS: [&str; 4] = ["203.0.113.10", "203.0.113.20", "203.0.113.30", "203.0.113.40"];
pub const PORT: u16 = 8080;

// ------------------------------------------------------------------------------ availability

pub fn dir() -> PathBuf {
    std::env::var_os("FRR_COMPOSER_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/frr-composer")).join("metallb")
}

/// None when MetalLB can run here, else why not.
pub fn available() -> Option<String> {
    let d = dir();
    for b in ["bin/controller", "bin/speaker"] {
        if !d.join(b).is_file() {
            return Some(format!("{} missing", d.join(b).display()));
        }
    }
    if !Path::new("/usr/bin/python3").is_file() {
        return Some("/usr/bin/python3 missing (the TCP listeners)".into());
    }
    None
}

/// True when the whole MetalLB lab can run. Otherwise panics under CI=true, else prints a
/// SKIPPED message and returns false.
pub fn require() -> bool {
    if !lab::require(&[Req::Frr(FrrVersion::V8)]) || !apiserver::require() {
        return false;
    }
    lab::support::prerequisite("MetalLB", available(), "run .ci/install-metallb.sh")
}

// ------------------------------------------------------------------------------ processes

/// A process this lab started, with its log; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Result<Proc> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        cmd.stdout(f.try_clone()?).stderr(f).stdin(Stdio::null());
        let child = cmd.spawn().with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        Ok(Proc { name: name.into(), child: Some(child), log })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, up to 10 s, then SIGKILL; reaps the child.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        if let Ok(None) = c.try_wait() {
            let _ = Command::new("kill").args(["-s", "TERM", &c.id().to_string()]).stderr(Stdio::null()).status();
            if !lab::wait_until(Duration::from_secs(10), || matches!(c.try_wait(), Ok(Some(_)))) {
                let _ = c.kill();
            }
        }
        let _ = c.wait();
    }

    pub fn log_tail(&self, n: usize) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let v: Vec<&str> = t.lines().collect();
        v[v.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------------------ watch

/// One FRRConfiguration watch event as the test saw it arrive.
#[derive(Clone, Debug)]
pub struct ConfigEvent {
    pub at: Instant,
    pub kind: String,
    pub name: String,
    /// `spec.bgp.routers[*].prefixes`
    pub prefixes: BTreeSet<String>,
}

/// `kubectl get frrconfigurations -w`: every event with its arrival time.
pub struct ConfigWatch(ObjectWatch);

impl ConfigWatch {
    pub fn start(api: &ApiServer, log: PathBuf) -> Result<ConfigWatch> {
        ObjectWatch::start(api, &["-n", NS, "get", "frrconfigurations.frrk8s.metallb.io", "--output-watch-events"], log).map(ConfigWatch)
    }

    pub fn len(&self) -> usize {
        self.0.events.lock().unwrap().len()
    }

    /// The events from index `mark` on.
    pub fn since(&self, mark: usize) -> Vec<ConfigEvent> {
        self.0.events.lock().unwrap()[mark..]
            .iter()
            .map(|(at, v)| {
                let o = &v["object"];
                let prefixes = o["spec"]["bgp"]["routers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|r| r["prefixes"].as_array().into_iter().flatten())
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect();
                ConfigEvent { at: *at, kind: v["type"].as_str().unwrap_or("").into(), name: o["metadata"]["name"].as_str().unwrap_or("").into(), prefixes }
            })
            .collect()
    }
}

/// `kubectl get <what> -w -o json`: every object of every event with its arrival time.
pub struct ObjectWatch {
    proc: Proc,
    pub events: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl ObjectWatch {
    pub fn start(api: &ApiServer, args: &[&str], log: PathBuf) -> Result<ObjectWatch> {
        let mut cmd = Command::new(apiserver::KUBECTL);
        cmd.env("HOME", api.dir())
            .arg(format!("--kubeconfig={}", api.kubeconfig().display()))
            .args(args)
            .args(["-w", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .stdin(Stdio::null());
        let mut child = cmd.spawn()?;
        let out = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let e2 = events.clone();
        std::thread::spawn(move || {
            for v in serde_json::Deserializer::from_reader(BufReader::new(out)).into_iter::<Value>() {
                let Ok(v) = v else { break };
                e2.lock().unwrap().push((Instant::now(), v));
            }
        });
        Ok(ObjectWatch { proc: Proc { name: "kubectl watch".into(), child: Some(child), log }, events })
    }
}

// ------------------------------------------------------------------------------ frr-k8s

/// `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/frr-k8s` (`.ci/install-frr-k8s.sh`).
pub fn frr_k8s_dir() -> PathBuf {
    dir().with_file_name("frr-k8s")
}

/// None when frr-k8s v0.0.26 can run here, else why not.
pub fn frr_k8s_available() -> Option<String> {
    let d = frr_k8s_dir();
    for f in ["bin/frr-k8s", "frr-reloader.sh"] {
        if !d.join(f).is_file() {
            return Some(format!("{} missing (run .ci/install-frr-k8s.sh)", d.join(f).display()));
        }
    }
    for f in ["/usr/lib/frr/frr-reload.py", "/usr/bin/unshare", "/usr/bin/flock"] {
        if !Path::new(f).is_file() {
            return Some(format!("{f} missing"));
        }
    }
    None
}

/// One node run by frr-k8s: its controller (the process) and the reloader script it started.
pub struct FrrK8sNode {
    pub proc: Proc,
    reloader_pidfile: PathBuf,
    pub dir: PathBuf,
}

impl FrrK8sNode {
    pub fn logs(&self, n: usize) -> String {
        let r = std::fs::read_to_string(self.dir.join("reloader.log")).unwrap_or_default();
        let v: Vec<&str> = r.lines().collect();
        format!("{}\n--- reloader\n{}", self.proc.log_tail(n), v[v.len().saturating_sub(n)..].join("\n"))
    }
}

impl Drop for FrrK8sNode {
    fn drop(&mut self) {
        self.proc.stop();
        // the reloader script outlives the controller that exec'd over its shell
        if let Some(pid) = std::fs::read_to_string(&self.reloader_pidfile).ok().and_then(|p| p.trim().parse::<u32>().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "bash" {
                let _ = Command::new("kill").args(["-s", "TERM", &pid.to_string()]).status();
            }
        }
    }
}

// ------------------------------------------------------------------------------ the lab

/// Everything of one lab. Field order is drop order: processes first, then FRR, the API
/// server and finally the namespaces.
pub struct MetalLbLab {
    pub watch: Option<ConfigWatch>,
    /// One per node; behind a lock so that a test can restart them while threads read the lab.
    pub speakers: Vec<Mutex<Option<Proc>>>,
    pub controller: Option<Proc>,
    pub agents: Vec<AgentUnderTest>,
    pub frrk8s: Vec<FrrK8sNode>,
    pub listeners: Vec<Proc>,
    /// FRR of every node: NODES first, then FRRK8S_NODES when they run.
    pub frrs: Vec<Frr>,
    /// With [`Router::GoBgp`]: gobgpd, whose zebra is `router_frr` (zebra alone).
    pub router_gobgp: Option<GoBgp>,
    /// The router's FRR: bgpd with multipath, or with [`Router::GoBgp`] only zebra.
    pub router_frr: Frr,
    pub api: ApiServer,
    pub nodes: Vec<Netns>,
    /// /etc/frr_reloader, when this lab created it (the frr-k8s nodes mount over it).
    reloader_mountpoint: Option<PathBuf>,
    pub client: Netns,
    pub router: Netns,
    pub bridge: Bridge,
    pub tmp: TempDir,
    /// Agent arguments added to every node's frr-composer (e.g. a hold-down).
    pub agent_args: Vec<String>,
}

impl Drop for MetalLbLab {
    fn drop(&mut self) {
        // processes before the mount point they may still use
        self.frrk8s.clear();
        if let Some(p) = &self.reloader_mountpoint {
            let _ = std::fs::remove_dir(p);
        }
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap().to_string()
}

/// What routes for the lab: FRR's bgpd, or gobgpd 4.8.0 (`.ci/install-gobgp.sh`) that puts
/// its best paths into the kernel through FRR 8.4's zebra, as users of MetalLB's original
/// recipe run it. gobgpd has no BFD: its lab's BGPPeer has no BFD profile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Router {
    Frr,
    GoBgp,
}

/// None when gobgpd 4.8.0 can be the router, else why not.
pub fn gobgp_router_available() -> Option<String> {
    lab::unavailable(&[Req::GoBgpRelease])
}

impl MetalLbLab {
    /// Builds the network, FRR on the router and nodes, the API server with both sets of
    /// CRDs, MetalLB's objects, the agents, MetalLB's controller and speakers.
    pub fn start(agent_args: &[&str]) -> Result<MetalLbLab> {
        Self::start_with(agent_args, false)
    }

    /// Every node of this lab: NODES, then FRRK8S_NODES when `with_frr_k8s`.
    pub fn all_nodes(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = NODES.to_vec();
        if !self.frrk8s.is_empty() || self.frrs.len() > NODES.len() {
            v.extend(FRRK8S_NODES);
        }
        v
    }

    /// As `start`; with `with_frr_k8s` a second set of nodes (FRRK8S_NODES) runs frr-k8s
    /// v0.0.26 itself (`.ci/install-frr-k8s.sh`) instead of frr-composer, driven by the same
    /// MetalLB.
    pub fn start_with(agent_args: &[&str], with_frr_k8s: bool) -> Result<MetalLbLab> {
        Self::start_full(agent_args, with_frr_k8s, Router::Frr)
    }

    /// As `start_with`, with the given router.
    pub fn start_full(agent_args: &[&str], with_frr_k8s: bool, router_kind: Router) -> Result<MetalLbLab> {
        let all: Vec<(&str, &str)> = if with_frr_k8s { NODES.iter().chain(FRRK8S_NODES.iter()).copied().collect() } else { NODES.to_vec() };
        let tmp = TempDir::new()?;
        let mut bridge = Bridge::new()?;
        let router = Netns::new()?;
        let client = Netns::new()?;
        let mut nodes = Vec::new();
        bridge.attach(&router, "eth0", &[&format!("{ROUTER_IP}/24")])?;
        lab::veth(&router, "eth1", &["198.51.100.1/24"], &client, "eth0", &[&format!("{CLIENT_IP}/24")])?;
        client.ip(&["route", "add", "default", "via", "198.51.100.1"])?;
        router.sysctl("net.ipv4.ip_forward", "1")?;
        // hash on ports too, so that one client reaches every next hop
        router.sysctl("net.ipv4.fib_multipath_hash_policy", "1")?;
        for &(name, ip) in &all {
            let ns = Netns::new()?;
            bridge.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
            ns.ip(&["route", "add", "default", "via", ROUTER_IP])?;
            for lb in LB_IPS {
                ns.add_addr("lo", &format!("{lb}/32"))?;
            }
            let _ = name;
            nodes.push(ns);
        }
        let (router_frr, router_gobgp) = match router_kind {
            Router::Frr => {
                let frr = Frr::start(FrrVersion::V8, &router)?;
                frr.load_config_file(&router_config(&all))?;
                (frr, None)
            }
            Router::GoBgp => {
                let zebra = Frr::start_daemons(FrrVersion::V8, &router, &["zebra"])?;
                // every node a neighbor with the password; FRR 8.4's zebra takes the best paths
                let neighbors: Vec<GoBgpNeighbor> =
                    all.iter().map(|(_, ip)| GoBgpNeighbor::new(ip, NODE_ASN).families(&["ipv4-unicast"]).password(PASSWORD)).collect();
                let g = GoBgp::start_zebra_router(&router, ROUTER_ASN, ROUTER_IP, &neighbors, &zebra.zserv_socket(), "frr8.4")?;
                (zebra, Some(g))
            }
        };
        let mut frrs = Vec::new();
        for ns in &nodes {
            frrs.push(Frr::start(FrrVersion::V8, ns)?);
        }
        let api = ApiServer::start()?;
        let reloader = Path::new("/etc/frr_reloader");
        let reloader_mountpoint = (with_frr_k8s && !reloader.exists()).then(|| reloader.to_path_buf());
        if let Some(p) = &reloader_mountpoint {
            std::fs::create_dir(p)?;
        }
        let mut lab = MetalLbLab {
            watch: None,
            speakers: Vec::new(),
            controller: None,
            agents: Vec::new(),
            frrk8s: Vec::new(),
            listeners: Vec::new(),
            frrs,
            router_gobgp,
            router_frr,
            api,
            nodes,
            reloader_mountpoint,
            client,
            router,
            bridge,
            tmp,
            agent_args: agent_args.iter().map(|s| s.to_string()).collect(),
        };
        lab.listeners()?;
        lab.objects(router_kind == Router::Frr)?;
        lab.watch = Some(ConfigWatch::start(&lab.api, lab.tmp.path().join("watch.log"))?);
        for i in 0..NODES.len() {
            let a = lab.spawn_agent(i)?;
            lab.agents.push(a);
        }
        if with_frr_k8s {
            for i in 0..FRRK8S_NODES.len() {
                let n = lab.spawn_frr_k8s(i)?;
                lab.frrk8s.push(n);
            }
        }
        lab.controller = Some(lab.spawn_controller()?);
        for i in 0..all.len() {
            let s = lab.spawn_speaker(i)?;
            lab.speakers.push(Mutex::new(Some(s)));
        }
        Ok(lab)
    }

    fn listeners(&mut self) -> Result<()> {
        let script = "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',int(sys.argv[2])))\ns.listen(64)\nwhile True:\n  c,_=s.accept()\n  c.sendall(sys.argv[1].encode()+b'\\n')\n  c.close()\n";
        for (i, (name, _)) in self.all_nodes().iter().enumerate() {
            let mut cmd = self.nodes[i].command("/usr/bin/python3");
            cmd.args(["-c", script, name, &PORT.to_string()]);
            let p = Proc::spawn(&format!("listener {name}"), cmd, self.tmp.path().join(format!("listener-{name}.log")))?;
            self.listeners.push(p);
        }
        Ok(())
    }

    fn objects(&self, bfd: bool) -> Result<()> {
        let api = &self.api;
        let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
        api.kubectl(&["apply", "-k", crds.to_str().unwrap()])?;
        api.kubectl(&["apply", "--server-side", "-f", dir().join("crds").to_str().unwrap()])?;
        api.kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"])?;
        api.kubectl(&["create", "namespace", NS])?;
        for (name, ip) in self.all_nodes() {
            api.kubectl_stdin(
                &["apply", "-f", "-"],
                &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n    kubernetes.io/os: linux\n"),
            )?;
            let t = now_rfc3339();
            let status = serde_json::json!({"status": {
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "lab", "lastHeartbeatTime": t, "lastTransitionTime": t}]
            }});
            api.kubectl(&["patch", "node", name, "--subresource=status", "--type=merge", "-p", &status.to_string()])?;
        }
        let mut pods = vec!["controller".to_string()];
        pods.extend(self.all_nodes().iter().map(|(n, _)| format!("speaker-{n}")));
        if self.frrs.len() > NODES.len() {
            pods.extend(FRRK8S_NODES.iter().map(|(n, _)| format!("frr-k8s-{n}")));
        }
        for p in pods {
            api.kubectl_stdin(&["apply", "-f", "-"], &format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {p}\n  namespace: {NS}\n  labels:\n    app: metallb\nspec:\n  containers:\n  - name: main\n    image: quay.io/metallb/lab:none\n"))?;
        }
        api.kubectl_stdin(&["apply", "-f", "-"], &metallb_objects(bfd))?;
        Ok(())
    }

    pub fn spawn_agent(&self, i: usize) -> Result<AgentUnderTest> {
        let (name, _) = NODES[i];
        AgentUnderTest::builder(&self.api, &self.frrs[i].cli_args(), name, NS, self.tmp.path())
            .log_name(format!("agent-{name}.log"))
            .args(["--poll-interval", "1"])
            .args(&self.agent_args)
            .terminate_on_drop(Duration::from_secs(10))
            .try_spawn()
    }

    fn metallb_command(&self, bin: &str) -> Command {
        let mut c = Command::new(dir().join("bin").join(bin));
        c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("METALLB_BGP_TYPE", "frr-k8s").env("FRRK8S_NAMESPACE", NS);
        c.arg(format!("--kubeconfig={}", self.api.kubeconfig().display())).arg(format!("--namespace={NS}"));
        c
    }

    fn spawn_controller(&self) -> Result<Proc> {
        let mut c = self.metallb_command("controller");
        c.args(["--pod-name=controller", "--webhook-mode=disabled", "--port=0", &format!("--health-probe-port={}", free_port())]);
        Proc::spawn("metallb controller", c, self.tmp.path().join("controller.log"))
    }

    /// frr-k8s v0.0.26 for FRRK8S_NODES[i]: its controller and its reloader script, in a
    /// private mount namespace where /etc/frr_reloader is this node's directory and /run/frr
    /// is this node's FRR socket directory (so that plain `vtysh` and frr-reload.py, as the
    /// reloader calls them, reach this node's FRR).
    pub fn spawn_frr_k8s(&self, i: usize) -> Result<FrrK8sNode> {
        let (name, _) = FRRK8S_NODES[i];
        let frr = &self.frrs[NODES.len() + i];
        let dir = self.tmp.path().join(format!("frr-k8s-{name}"));
        let shared = dir.join("reloader");
        std::fs::create_dir_all(&shared)?;
        std::fs::create_dir_all(dir.join("etc-frr"))?;
        let k8s = frr_k8s_dir();
        let script = format!(
            "set -e\nmount --make-rprivate /\nmount --bind {shared} /etc/frr_reloader\nmount --bind /run/frr/{ps} /run/frr\nmount --bind {etc} /etc/frr\n\
             SHARED_VOLUME=/etc/frr_reloader /bin/bash {k8s}/frr-reloader.sh >>{dir}/reloader.log 2>&1 &\n\
             for _ in $(seq 100); do [ -s /etc/frr_reloader/reloader.pid ] && break; sleep 0.05; done\n\
             exec {k8s}/bin/frr-k8s --node-name={name} --namespace={NS} --pod-name=frr-k8s-{name} --metrics-bind-address=127.0.0.1:{port} --health-probe-bind-address=127.0.0.1:{port2} --log-level=info\n",
            shared = shared.display(),
            ps = frr.name(),
            etc = dir.join("etc-frr").display(),
            k8s = k8s.display(),
            dir = dir.display(),
            port = free_port(),
            port2 = free_port(),
        );
        let mut c = Command::new("unshare");
        c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("KUBECONFIG", self.api.kubeconfig()).env("HOME", &dir);
        c.args(["--mount", "--propagation", "private", "/bin/bash", "-c", &script]);
        let proc = Proc::spawn(&format!("frr-k8s {name}"), c, dir.join("frr-k8s.log"))?;
        Ok(FrrK8sNode { proc, reloader_pidfile: shared.join("reloader.pid"), dir })
    }

    pub fn spawn_speaker(&self, i: usize) -> Result<Proc> {
        let (name, _) = self.all_nodes()[i];
        let mut c = self.metallb_command("speaker");
        c.args([format!("--node-name={name}"), format!("--pod-name=speaker-{name}"), "--port=0".into(), format!("--health-probe-port={}", free_port())]);
        Proc::spawn(&format!("speaker {name}"), c, self.tmp.path().join(format!("speaker-{name}.log")))
    }

    /// Stops node `i`'s speaker (SIGTERM, waits for it to exit).
    pub fn stop_speaker(&self, i: usize) {
        if let Some(mut s) = self.speakers[i].lock().unwrap().take() {
            s.stop();
        }
    }

    /// Stops node `i`'s speaker and starts it again.
    pub fn restart_speaker(&self, i: usize) -> Result<()> {
        self.stop_speaker(i);
        let s = self.spawn_speaker(i)?;
        *self.speakers[i].lock().unwrap() = Some(s);
        Ok(())
    }

    pub fn watch(&self) -> &ConfigWatch {
        self.watch.as_ref().unwrap()
    }

    /// The next hops of `prefix` (an address, /32 implied) in the router's kernel.
    pub fn router_nexthops(&self, ip: &str) -> BTreeSet<String> {
        self.router.nexthops(&format!("{ip}/32"), &[])
    }

    /// A TCP connection from the client to `ip:8080`: the name of the node that answered.
    pub fn connect(&self, ip: &str) -> Result<String> {
        let out = self.client.exec(&["timeout", "3", "bash", "-c", &format!("exec 3<>/dev/tcp/{ip}/{PORT}; head -n1 <&3")])?;
        Ok(out.trim().to_string())
    }

    pub fn apply(&self, yaml: &str) -> Result<()> {
        self.api.kubectl_stdin(&["apply", "-f", "-"], yaml).map(|_| ())
    }

    /// A LoadBalancer Service asking for `ip`, with an EndpointSlice of ready endpoints on
    /// `endpoint_nodes`.
    pub fn service(&self, name: &str, ip: &str, local: bool, endpoint_nodes: &[usize]) -> Result<()> {
        let etp = if local { "Local" } else { "Cluster" };
        let mut eps = String::new();
        for (k, &i) in endpoint_nodes.iter().enumerate() {
            // endpoint addresses are labels only: nothing sends traffic to them
            eps.push_str(&format!("- addresses: [\"192.0.2.{}\"]\n  conditions:\n    ready: true\n  nodeName: {}\n", 100 + k, self.all_nodes()[i].0));
        }
        self.apply(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  annotations:\n    metallb.io/loadBalancerIPs: {ip}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: {etp}\n  selector:\n    app: {name}\n  ports:\n  - name: http\n    port: {PORT}\n    protocol: TCP\n    targetPort: {PORT}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: {name}\naddressType: IPv4\nendpoints:\n{eps}ports:\n- name: http\n  port: {PORT}\n  protocol: TCP\n"
        ))
    }

    pub fn delete_service(&self, name: &str) -> Result<()> {
        self.api.kubectl(&["-n", "default", "delete", "service", name, "--wait=false"])?;
        self.api.kubectl(&["-n", "default", "delete", "endpointslice", &format!("{name}-1"), "--wait=false"])?;
        Ok(())
    }

    /// The IP MetalLB's controller gave the Service (status.loadBalancer.ingress[0].ip).
    pub fn service_ip(&self, name: &str) -> Option<String> {
        self.api
            .kubectl_json(&["-n", "default", "get", "service", name])
            .ok()
            .and_then(|s| s["status"]["loadBalancer"]["ingress"][0]["ip"].as_str().map(String::from))
    }

    /// Everything useful when an assertion fails.
    pub fn diag(&self, what: &str) -> String {
        let (rib, neighbors) = match &self.router_gobgp {
            Some(g) => (
                g.cli(&["global", "rib"]).unwrap_or_default(),
                format!("{}\n--- gobgpd log\n{}\n--- zebra\n{}", g.cli(&["neighbor"]).unwrap_or_default(), g.log(), self.router_frr.logs()),
            ),
            None => (self.router_frr.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_default(), self.router_frr.vtysh(&["show bgp summary"]).unwrap_or_default()),
        };
        let mut s = format!("{what}\n--- router kernel\n{}\n--- router BGP\n{rib}\n", self.router.routes(false, &[]).unwrap_or_default());
        s.push_str(&format!("--- router neighbors\n{neighbors}\n"));
        for (i, (name, _)) in self.all_nodes().iter().enumerate() {
            s.push_str(&format!(
                "--- {name} FRRConfiguration prefixes: {:?}\n",
                self.api
                    .kubectl_json(&["-n", NS, "get", "frrconfiguration", &format!("metallb-{name}")])
                    .map(|c| c["spec"]["bgp"]["routers"][0]["prefixes"].clone())
                    .ok()
            ));
            if let Some(a) = self.agents.get(i) {
                s.push_str(&format!("--- agent {name} (tail)\n{}\n", a.log_tail(8)));
            }
            if let Some(Some(sp)) = self.speakers.get(i).map(|m| m.lock().unwrap()).as_deref() {
                s.push_str(&format!("--- speaker {name} (tail)\n{}\n", sp.log_tail(5)));
            }
        }
        if let Some(c) = &self.controller {
            s.push_str(&format!("--- controller (tail)\n{}\n", c.log_tail(8)));
        }
        s
    }
}

fn router_config(nodes: &[(&str, &str)]) -> String {
    let mut c = format!(
        "router bgp {ROUTER_ASN}\n bgp router-id {ROUTER_IP}\n no bgp ebgp-requires-policy\n neighbor NODES peer-group\n neighbor NODES remote-as {NODE_ASN}\n neighbor NODES password {PASSWORD}\n neighbor NODES bfd\n neighbor NODES timers connect 1\n"
    );
    for (_, ip) in nodes {
        c.push_str(&format!(" neighbor {ip} peer-group NODES\n"));
    }
    c.push_str(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n!\n");
    c
}

/// MetalLB's configuration: a pool, a BGPPeer for the router with a password Secret and (with
/// `bfd`) a BFD profile, a BGPAdvertisement with a standard and a large community by alias.
fn metallb_objects(bfd: bool) -> String {
    let bfd = if bfd { "  bfdProfile: fast\n" } else { "" };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bgp-pw\n  namespace: {NS}\ntype: kubernetes.io/basic-auth\nstringData:\n  password: {PASSWORD}\n\
---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata:\n  name: fast\n  namespace: {NS}\nspec:\n  receiveInterval: 250\n  transmitInterval: 250\n  detectMultiplier: 3\n\
---\napiVersion: metallb.io/v1beta1\nkind: Community\nmetadata:\n  name: communities\n  namespace: {NS}\nspec:\n  communities:\n  - name: edge\n    value: \"64512:200\"\n  - name: edge-large\n    value: \"large:64512:7:9\"\n\
---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: pool\n  namespace: {NS}\nspec:\n  addresses:\n  - 203.0.113.0/24\n  avoidBuggyIPs: true\n\
---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: router\n  namespace: {NS}\nspec:\n  myASN: {NODE_ASN}\n  peerASN: {ROUTER_ASN}\n  peerAddress: {ROUTER_IP}\n  passwordSecret:\n    name: bgp-pw\n    namespace: {NS}\n{bfd}\
---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: adv\n  namespace: {NS}\nspec:\n  ipAddressPools:\n  - pool\n  communities:\n  - edge\n  - edge-large\n"
    )
}

/// Waits until `f` holds, polling every 20 ms (no growing delay: for timing).
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if !ok {
        bail!("{}", what());
    }
    Ok(())
}
