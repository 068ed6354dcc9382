//! A real one-node Kubernetes for deployment tests: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kube-proxy, kubelet and containerd, all inside a network namespace made here.
//!
//! Use from an integration test with `mod lab; mod cluster;`. Binaries and base images come from
//! `.ci/install-apiserver.sh` and `.ci/install-cluster.sh` (cached under
//! `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}`); the frr-composer image is built here from
//! the binary cargo built (FRR image + the stripped binary), so it always runs the code under
//! test. No registry is involved: images are imported into containerd with `ctr`.
//!
//! Network: the node namespace has 192.0.2.113/24 on a veth to a second ("router") namespace with
//! 192.0.2.1/24 (its default route points there); Services use 198.51.100.0/27 and pods
//! 198.51.100.64/27 (a bridge CNI). hostNetwork pods share the node namespace, never the host's.
//!
//! Only one cluster can run on a machine at a time (containerd and kubelet keep some fixed host
//! paths), so [`Cluster::start`] takes an exclusive lock on `$FRR_COMPOSER_CACHE/cluster.lock`
//! and holds it until the cluster is torn down. Teardown (on drop, also when a test fails)
//! stops every process by pid, removes the containers through `ctr`, unmounts what the cluster
//! mounted, deletes the namespaces and the kubepods cgroups and removes the folders it made.
//! Leftovers of a killed test process are removed by the next start.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::lab::support::{command, run, signal, stop_child, tail_file as tail};
use crate::lab::{self, FrrVersion, Netns};

pub const NODE_NAME: &str = "fc-node-1";
pub const NODE_IP: &str = "192.0.2.113";
pub const ROUTER_IP: &str = "192.0.2.1";
pub const SERVICE_CIDR: &str = "198.51.100.0/27";
pub const POD_CIDR: &str = "198.51.100.64/27";
/// The `kubernetes` Service's ClusterIP (first address of SERVICE_CIDR).
pub const API_SERVICE_IP: &str = "198.51.100.1";
pub const NAMESPACE: &str = "frr-k8s-system";
const K8S_VERSION: &str = "v1.36.3";
/// Host folders the shipped manifests use (deploy/frr.yaml): removed at teardown.
const HOST_PATHS: [&str; 2] = ["/var/run/frr-composer", "/var/lib/frr-composer"];
/// Host paths kubelet and containerd 1.6 use whatever they are told: removed at teardown when
/// this cluster created them.
const FIXED_PATHS: [&str; 4] = ["/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/run/containerd"];

pub fn cache() -> PathBuf {
    std::env::var_os("FRR_COMPOSER_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/frr-composer"))
}

fn cluster_bin(name: &str) -> PathBuf {
    cache().join("cluster/bin").join(name)
}

fn apiserver_bin(name: &str) -> PathBuf {
    cache().join("apiserver/bin").join(name)
}

fn oci() -> PathBuf {
    cache().join("cluster/images/oci")
}

fn run_dir() -> PathBuf {
    cache().join("cluster/run")
}

/// Image references in the cluster.
pub fn frr_image(v: FrrVersion) -> String {
    format!("localhost/frr-composer/frr:{}", frr_tag(v))
}
pub fn composer_image(v: FrrVersion) -> String {
    format!("localhost/frr-composer/frr-composer:test-{}", frr_tag(v))
}
const PAUSE_IMAGE: &str = "localhost/frr-composer/pause:3.10";

fn frr_tag(v: FrrVersion) -> &'static str {
    match v {
        FrrVersion::V8 => "8.4",
        FrrVersion::V10 => "10.3",
        FrrVersion::V10_7 => "10.7",
    }
}

// ------------------------------------------------------------------------------ availability

/// None when a cluster can run here, else why not.
pub fn available() -> Option<String> {
    let mut missing = Vec::new();
    for b in ["kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"] {
        if !cluster_bin(b).is_file() {
            missing.push(cluster_bin(b).display().to_string());
        }
    }
    for b in ["kube-apiserver", "etcd"] {
        if !apiserver_bin(b).is_file() {
            missing.push(apiserver_bin(b).display().to_string());
        }
    }
    for b in [
        "/usr/bin/containerd",
        "/usr/bin/ctr",
        "/usr/sbin/runc",
        "/usr/bin/umoci",
        "/usr/bin/skopeo",
        "/usr/lib/cni/bridge",
        "/usr/bin/kubectl",
        "/usr/bin/openssl",
        "/usr/bin/strip",
    ] {
        if !Path::new(b).exists() {
            missing.push(b.to_string());
        }
    }
    for tag in ["pause", "frr-8.4", "frr-10.3", "frr-10.7"] {
        if !cache().join(format!("cluster/images/{tag}.done")).is_file() {
            missing.push(format!("image {tag}"));
        }
    }
    if missing.is_empty() {
        lab::unavailable(&[lab::Req::Frr(FrrVersion::V8)])
    } else {
        Some(format!("missing {}", missing.join(", ")))
    }
}

/// True when a cluster can run. Otherwise: panics under `CI=true`, else prints SKIPPED and
/// returns false.
pub fn require() -> bool {
    crate::lab::support::prerequisite("a real cluster", available(), "run .ci/install-cluster.sh")
}

// ------------------------------------------------------------------------------ processes

struct Proc {
    name: &'static str,
    child: Child,
    argv: Vec<String>,
}

/// Mount points at or under `prefix` (deepest first).
fn mounts_under(prefix: &str) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut m: Vec<String> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    m.sort_by_key(|p| std::cmp::Reverse(p.len()));
    m.dedup();
    m
}

fn umount_under(prefix: &str) {
    // a mount may be stacked several times: repeat while something is left
    for _ in 0..5 {
        let m = mounts_under(prefix);
        if m.is_empty() {
            return;
        }
        for p in m {
            let _ = command("umount").args(["-l", &p]).stderr(Stdio::null()).status();
        }
    }
}

/// Processes in a kubepods cgroup (containers of this cluster; no other kubelet runs here).
fn kubepods_pids() -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains("/kubepods")) {
            out.push(pid);
        }
    }
    out
}

/// Removes the kubepods cgroups of every v1 hierarchy (and v2), deepest first.
fn remove_kubepods_cgroups() {
    let Ok(roots) = fs::read_dir("/sys/fs/cgroup") else { return };
    let mut dirs = Vec::new();
    let mut stack: Vec<PathBuf> =
        roots.flatten().map(|e| e.path().join("kubepods")).chain(std::iter::once(PathBuf::from("/sys/fs/cgroup/kubepods"))).filter(|p| p.is_dir()).collect();
    while let Some(d) = stack.pop() {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        dirs.push(d);
    }
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in dirs {
        let _ = fs::remove_dir(&d);
    }
}

/// Network namespaces the CNI made for pods (`cni-<uuid>`); only this harness runs a CNI here.
fn remove_cni_netns() {
    if let Ok(rd) = fs::read_dir("/var/run/netns") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("cni-") {
                let _ = command("umount").args(["-l", &e.path().display().to_string()]).stderr(Stdio::null()).status();
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// What a previous, killed run may have left: container processes, mounts, namespaces,
/// cgroups, folders. (Its node namespace and the processes in it are removed by the lab.)
fn remove_leftovers() {
    for pid in kubepods_pids() {
        signal(pid, "KILL");
    }
    let run = run_dir();
    umount_under(&run.display().to_string());
    remove_cni_netns();
    std::thread::sleep(Duration::from_millis(200));
    remove_kubepods_cgroups();
    let _ = fs::remove_dir_all(&run);
    for p in HOST_PATHS {
        let _ = fs::remove_dir_all(p);
    }
    if let Ok(created) = fs::read_to_string(cache().join("cluster/created-paths")) {
        for p in created.lines().filter(|l| FIXED_PATHS.contains(l)) {
            umount_under(p);
            let _ = fs::remove_dir_all(p);
        }
        let _ = fs::remove_file(cache().join("cluster/created-paths"));
    }
}

// ------------------------------------------------------------------------------ certificates

const CERTS_SH: &str = r#"set -eu
cd "$1"
node="$2"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -out ca.crt -days 3 -subj /CN=frr-composer-test-ca 2>/dev/null
cert() {
    key "$1"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%b\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3 -extfile "$1.ext" 2>/dev/null
}
cert apiserver /CN=kube-apiserver "subjectAltName=IP:192.0.2.113,IP:198.51.100.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:localhost\nextendedKeyUsage=serverAuth"
cert admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
cert kubelet "/O=system:nodes/CN=system:node:$node" "extendedKeyUsage=clientAuth"
cert controller-manager /CN=system:kube-controller-manager "extendedKeyUsage=clientAuth"
cert scheduler /CN=system:kube-scheduler "extendedKeyUsage=clientAuth"
cert proxy /CN=system:kube-proxy "extendedKeyUsage=clientAuth"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub
"#;

fn kubeconfig(pki: &Path, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{NODE_IP}:6443\n    certificate-authority: {pki}/ca.crt\nusers:\n- name: u\n  user:\n    client-certificate: {pki}/{user}.crt\n    client-key: {pki}/{user}.key\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
        pki = pki.display()
    )
}

// ------------------------------------------------------------------------------ the cluster

pub struct Cluster {
    pub version: FrrVersion,
    dir: PathBuf,
    procs: Vec<Proc>,
    created: Vec<&'static str>,
    /// Fields drop in order: the namespaces after `Drop for Cluster` tore the cluster down,
    /// the lock last.
    pub node: Netns,
    pub router: Netns,
    _lock: fs::File,
}

impl Cluster {
    /// Starts a cluster whose images use FRR `version`, and waits until its Node is Ready.
    pub fn start(version: FrrVersion) -> Result<Cluster> {
        let lock_path = cache().join("cluster.lock");
        fs::create_dir_all(cache())?;
        let lock =
            fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).with_context(|| format!("opening {}", lock_path.display()))?;
        let waited = Instant::now();
        lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
        if waited.elapsed() > Duration::from_secs(1) {
            eprintln!("cluster: waited {:.0} s for {}", waited.elapsed().as_secs_f64(), lock_path.display());
        }
        remove_leftovers();
        let created: Vec<&'static str> = FIXED_PATHS.iter().copied().filter(|p| !Path::new(p).exists()).collect();
        fs::write(cache().join("cluster/created-paths"), created.join("\n"))?;
        let dir = run_dir();
        for d in ["pki", "logs", "etcd", "kubelet", "kubelet-pki", "cni", "cni-ipam", "containerd", "pod-logs", "flex", "images", "overlay"] {
            fs::create_dir_all(dir.join(d))?;
        }
        let node = Netns::new()?;
        let router = Netns::new()?;
        let mut c = Cluster { version, dir, procs: Vec::new(), created, node, router, _lock: lock };
        c.boot().with_context(|| format!("starting the cluster\n{}", c.diagnostics()))?;
        Ok(c)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    fn boot(&mut self) -> Result<()> {
        let t = Instant::now();
        lab::veth(&self.node, "eth0", &[&format!("{NODE_IP}/24")], &self.router, "eth0", &[&format!("{ROUTER_IP}/24")])?;
        self.node.ip(&["route", "add", "default", "via", ROUTER_IP])?;
        self.node.sysctl("net.ipv4.ip_forward", "1")?;
        let pki = self.pki();
        run(command("bash").args(["-c", CERTS_SH, "certs"]).arg(&pki).arg(NODE_NAME))?;
        for (file, user) in
            [("admin", "admin"), ("kubelet", "kubelet"), ("controller-manager", "controller-manager"), ("scheduler", "scheduler"), ("proxy", "proxy")]
        {
            fs::write(self.dir.join(format!("{file}.kubeconfig")), kubeconfig(&pki, user))?;
        }
        self.write_configs()?;
        let d = self.dir.display().to_string();
        let p = pki.display().to_string();

        self.spawn(
            "etcd",
            &apiserver_bin("etcd").display().to_string(),
            &[
                &format!("--data-dir={d}/etcd"),
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=default=http://127.0.0.1:2380",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )?;
        self.start_apiserver()?;
        self.spawn("containerd", "/usr/bin/containerd", &["--config", &format!("{d}/containerd.toml")])?;
        let sock = self.dir.join("containerd/containerd.sock");
        if !lab::wait_until(Duration::from_secs(30), || sock.exists() && self.ctr(&["version"]).is_ok()) {
            bail!("containerd did not start");
        }
        self.import_images()?;
        self.spawn(
            "kube-controller-manager",
            &cluster_bin("kube-controller-manager").display().to_string(),
            &[
                &format!("--kubeconfig={d}/controller-manager.kubeconfig"),
                &format!("--service-account-private-key-file={p}/sa.key"),
                &format!("--root-ca-file={p}/ca.crt"),
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--flex-volume-plugin-dir={d}/flex"),
                &format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--v=1",
            ],
        )?;
        self.spawn(
            "kube-scheduler",
            &cluster_bin("kube-scheduler").display().to_string(),
            &[&format!("--kubeconfig={d}/scheduler.kubeconfig"), "--leader-elect=false", "--bind-address=127.0.0.1", "--v=1"],
        )?;
        self.spawn("kube-proxy", &cluster_bin("kube-proxy").display().to_string(), &[&format!("--config={d}/kube-proxy.yaml"), "--v=1"])?;
        self.spawn(
            "kubelet",
            &cluster_bin("kubelet").display().to_string(),
            &[
                &format!("--config={d}/kubelet.yaml"),
                &format!("--kubeconfig={d}/kubelet.kubeconfig"),
                &format!("--hostname-override={NODE_NAME}"),
                &format!("--node-ip={NODE_IP}"),
                &format!("--root-dir={d}/kubelet"),
                &format!("--cert-dir={d}/kubelet-pki"),
                "--v=1",
            ],
        )?;
        let ready = lab::wait_until(Duration::from_secs(120), || {
            self.kubectl_json(&["get", "node", NODE_NAME])
                .is_ok_and(|n| n["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")))
        });
        if !ready {
            bail!("node {NODE_NAME} not Ready after 120 s");
        }
        // the default ServiceAccount of the namespaces exists once the controller-manager runs
        if !lab::wait_until(Duration::from_secs(60), || self.kubectl(&["-n", "default", "get", "serviceaccount", "default"]).is_ok()) {
            bail!("no default ServiceAccount");
        }
        eprintln!("cluster: node Ready {:.1} s after start", t.elapsed().as_secs_f64());
        Ok(())
    }

    fn start_apiserver(&mut self) -> Result<()> {
        let d = self.dir.display().to_string();
        let p = self.pki().display().to_string();
        self.spawn(
            "kube-apiserver",
            &apiserver_bin("kube-apiserver").display().to_string(),
            &[
                &format!("--advertise-address={NODE_IP}"),
                "--bind-address=0.0.0.0",
                "--secure-port=6443",
                "--etcd-servers=http://127.0.0.1:2379",
                &format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                &format!("--client-ca-file={p}/ca.crt"),
                &format!("--tls-cert-file={p}/apiserver.crt"),
                &format!("--tls-private-key-file={p}/apiserver.key"),
                "--service-account-issuer=https://kubernetes.default.svc",
                &format!("--service-account-key-file={p}/sa.pub"),
                &format!("--service-account-signing-key-file={p}/sa.key"),
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                &format!("--kubelet-client-certificate={p}/apiserver-kubelet-client.crt"),
                &format!("--kubelet-client-key={p}/apiserver-kubelet-client.key"),
                "--kubelet-preferred-address-types=InternalIP",
                &format!("--cert-dir={d}/apiserver-certs"),
                "--profiling=false",
            ],
        )?;
        if !lab::wait_until(Duration::from_secs(120), || self.kubectl(&["get", "--raw", "/readyz"]).is_ok()) {
            bail!("kube-apiserver not ready after 120 s");
        }
        Ok(())
    }

    /// Stops kube-apiserver (the rest of the cluster keeps running).
    pub fn stop_apiserver(&mut self) {
        if let Some(i) = self.procs.iter().position(|p| p.name == "kube-apiserver") {
            let mut p = self.procs.remove(i);
            stop_child(&mut p.child, Duration::from_secs(20));
        }
    }

    pub fn restart_apiserver(&mut self) -> Result<()> {
        self.stop_apiserver();
        self.start_apiserver()
    }

    fn write_configs(&self) -> Result<()> {
        let d = self.dir.display();
        let p = self.pki().display().to_string();
        fs::write(
            self.dir.join("containerd.toml"),
            format!(
                r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
[grpc]
  address = "{d}/containerd/containerd.sock"
[ttrpc]
  address = "{d}/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"#
            ),
        )?;
        fs::write(
            self.dir.join("cni/10-bridge.conflist"),
            format!(
                r#"{{"cniVersion": "0.4.0", "name": "frr-composer-test", "plugins": [{{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true, "ipam": {{"type": "host-local", "dataDir": "{d}/cni-ipam", "ranges": [[{{"subnet": "{POD_CIDR}"}}]], "routes": [{{"dst": "0.0.0.0/0"}}]}}}}]}}"#
            ),
        )?;
        fs::write(
            self.dir.join("kubelet.yaml"),
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfailCgroupV1: false\ncgroupDriver: cgroupfs\ncontainerRuntimeEndpoint: unix://{d}/containerd/containerd.sock\nauthentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: false\n  x509:\n    clientCAFile: {p}/ca.crt\nauthorization:\n  mode: AlwaysAllow\nfailSwapOn: false\npodLogsDir: {d}/pod-logs\nevictionHard:\n  memory.available: 50Mi\n  nodefs.available: 1%\n  imagefs.available: 1%\n  nodefs.inodesFree: 1%\nimageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\nreadOnlyPort: 0\nhealthzBindAddress: 127.0.0.1\nmaxPods: 30\nserializeImagePulls: false\n"
            ),
        )?;
        fs::write(
            self.dir.join("kube-proxy.yaml"),
            format!(
                "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclientConnection:\n  kubeconfig: {d}/proxy.kubeconfig\nmode: iptables\nclusterCIDR: {POD_CIDR}\nhostnameOverride: {NODE_NAME}\nmetricsBindAddress: 127.0.0.1:10249\nhealthzBindAddress: 127.0.0.1:10256\nconntrack:\n  maxPerCore: 0\n  min: 0\n"
            ),
        )?;
        Ok(())
    }

    /// Starts `program` inside the node namespace, its output in logs/NAME.log.
    fn spawn(&mut self, name: &'static str, program: &str, args: &[&str]) -> Result<()> {
        let log = fs::OpenOptions::new().create(true).append(true).open(self.dir.join(format!("logs/{name}.log")))?;
        let mut argv = vec![program.to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        // nsenter enters the network namespace only and execs the program (same pid); `ip netns
        // exec` would also give each process its own mount namespace with a fresh /sys, and
        // kubelet, containerd and runc must see each other's mounts and the cgroup hierarchies
        let mut c = command("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.node.name())).arg("--").args(&argv).stdout(log.try_clone()?).stderr(log);
        let child = c.spawn().with_context(|| format!("starting {name}"))?;
        self.procs.push(Proc { name, child, argv });
        Ok(())
    }

    /// `ctr` against this cluster's containerd, in the `k8s.io` namespace.
    pub fn ctr(&self, args: &[&str]) -> Result<String> {
        run(command("ctr").arg("--address").arg(self.dir.join("containerd/containerd.sock")).args(["-n", "k8s.io"]).args(args))
    }

    /// kubectl as cluster admin, run inside the node namespace.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        run(self.kubectl_command().args(args))
    }

    /// kubectl for this cluster, with its caches in the cluster's folder (never in the work tree).
    fn kubectl_command(&self) -> Command {
        let mut c = self.node.command("/usr/bin/kubectl");
        c.env("HOME", &self.dir).arg("--kubeconfig").arg(self.kubeconfig());
        c
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Result<String> {
        use std::io::Write;
        let mut c = self.kubectl_command();
        c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn()?;
        child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?.write_all(input.as_bytes())?;
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("kubectl {args:?} failed ({}):\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        Ok(stdout)
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a)?;
        serde_json::from_str(&out).with_context(|| format!("kubectl {args:?}: not JSON"))
    }

    // -------------------------------------------------------------------------- images

    /// Imports pause, FRR and the frr-composer image (FRR + this build's binary, stripped).
    fn import_images(&self) -> Result<()> {
        let t = Instant::now();
        self.import(&[("pause".to_string(), PAUSE_IMAGE.to_string())])?;
        self.import_version(self.version)?;
        eprintln!("cluster: images built and imported in {:.1} s", t.elapsed().as_secs_f64());
        Ok(())
    }

    /// Imports FRR `v`'s image and an frr-composer image on it (FRR + this build's binary,
    /// stripped): the cluster's own version at start, or another one for an upgrade.
    pub fn import_version(&self, v: FrrVersion) -> Result<()> {
        let oci = oci();
        let tag = format!("composer-{}", frr_tag(v));
        let layer = self.dir.join("images/layer");
        fs::create_dir_all(layer.join("usr/bin"))?;
        run(command("strip").args(["--strip-debug", "-o"]).arg(layer.join("usr/bin/frr-composer")).arg(env!("CARGO_BIN_EXE_frr-composer")))?;
        let tar = self.dir.join("images/layer.tar");
        run(command("tar").args(["--owner=0", "--group=0", "-C"]).arg(&layer).arg("-cf").arg(&tar).arg("usr"))?;
        let img = |t: &str| format!("{}:{t}", oci.display());
        let _ = run(command("umoci").args(["rm", "--image", &img(&tag)]));
        run(command("umoci").args(["raw", "add-layer", "--image", &img(&format!("frr-{}", frr_tag(v))), "--tag", &tag]).arg(&tar))?;
        run(command("umoci").args([
            "config",
            "--image",
            &img(&tag),
            "--config.user",
            "frr",
            "--config.env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--clear=config.entrypoint",
            "--clear=config.cmd",
            "--config.entrypoint",
            "/usr/bin/frr-composer",
        ]))?;
        let r = self.import(&[(format!("frr-{}", frr_tag(v)), frr_image(v)), (tag.clone(), composer_image(v))]);
        let _ = run(command("umoci").args(["rm", "--image", &img(&tag)]));
        r
    }

    /// Copies OCI layout tags into containerd under the given names.
    fn import(&self, images: &[(String, String)]) -> Result<()> {
        let img = |t: &str| format!("{}:{t}", oci().display());
        for (oci_tag, name) in images {
            let file = self.dir.join(format!("images/{oci_tag}.tar"));
            run(command("skopeo").args(["copy", "--quiet", &format!("oci:{}", img(oci_tag)), &format!("docker-archive:{}:{name}", file.display())]))?;
            self.ctr(&["images", "import", &file.display().to_string()])?;
            let _ = fs::remove_file(&file);
        }
        Ok(())
    }

    // -------------------------------------------------------------------------- deploy/

    /// A kustomize overlay of the shipped deploy/ that changes image references only.
    pub fn overlay(&self) -> Result<PathBuf> {
        let dir = self.dir.join("overlay");
        let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy");
        let (frr_name, frr_tag) = frr_image(self.version).rsplit_once(':').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
        let (c_name, c_tag) = composer_image(self.version).rsplit_once(':').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
        fs::write(
            dir.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {}{}\nimages:\n- name: quay.io/frrouting/frr\n  newName: {frr_name}\n  newTag: \"{frr_tag}\"\n- name: ghcr.io/frr-composer/frr-composer\n  newName: {c_name}\n  newTag: \"{c_tag}\"\n",
                // kustomize takes relative paths only
                "../".repeat(dir.components().count() - 1),
                deploy.display().to_string().trim_start_matches('/')
            ),
        )?;
        Ok(dir)
    }

    // -------------------------------------------------------------------------- pods

    /// Pods of `selector` in NAMESPACE.
    pub fn pods(&self, selector: &str) -> Vec<serde_json::Value> {
        self.kubectl_json(&["-n", NAMESPACE, "get", "pods", "-l", selector]).map(|l| l["items"].as_array().cloned().unwrap_or_default()).unwrap_or_default()
    }

    /// The host pid of a container (by name) of a pod, through containerd.
    pub fn container_pid(&self, pod: &serde_json::Value, container: &str) -> Option<u32> {
        let id = pod["status"]["containerStatuses"].as_array()?.iter().find(|c| c["name"] == container)?["containerID"]
            .as_str()?
            .strip_prefix("containerd://")?
            .to_string();
        let tasks = self.ctr(&["tasks", "ls"]).ok()?;
        // TASK PID STATUS: only a running task's pid (a stopped one may have been reused)
        let line = tasks.lines().find(|l| l.starts_with(&id))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(2) == Some(&"RUNNING")).then(|| fields.get(1)?.parse().ok()).flatten()
    }

    /// Logs of every process of the cluster (tails), for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        for name in ["kubelet", "containerd", "kube-apiserver", "kube-controller-manager", "kube-proxy"] {
            s.push_str(&format!("--- {name} (tail)\n{}\n", tail(&self.dir.join(format!("logs/{name}.log")), 15)));
        }
        if let Ok(l) = self.kubectl(&["-n", NAMESPACE, "logs", "-l", "app.kubernetes.io/component=frr", "--all-containers", "--tail=40"]) {
            s.push_str(&format!("--- FRR pod logs (tail)\n{l}\n"));
        }
        if let Ok(l) = self.node.exec(&["ss", "-ltnp"]) {
            s.push_str(&format!("--- listening in the node namespace\n{l}\n"));
        }
        if let Ok(p) = self.kubectl(&["get", "pods", "-A", "-o", "wide"]) {
            s.push_str(&format!("--- pods\n{p}\n"));
        }
        if let Ok(e) = self.kubectl(&["get", "events", "-A", "--sort-by=.lastTimestamp"]) {
            let lines: Vec<&str> = e.lines().collect();
            s.push_str(&format!("--- events (tail)\n{}\n", lines[lines.len().saturating_sub(25)..].join("\n")));
        }
        s
    }

    /// Tears everything down (also done on drop).
    fn teardown(&mut self) {
        let t = Instant::now();
        if std::env::var_os("FRR_COMPOSER_KEEP_CLUSTER_LOGS").is_some() {
            let keep = std::env::temp_dir().join(format!("frr-composer-cluster-logs-{}", std::process::id()));
            let _ = run(command("cp").arg("-a").arg(self.dir.join("logs")).arg(&keep));
            eprintln!("cluster: logs kept in {}", keep.display());
        }
        // kubelet first, so that it restarts nothing
        if let Some(i) = self.procs.iter().position(|p| p.name == "kubelet") {
            let mut p = self.procs.remove(i);
            stop_child(&mut p.child, Duration::from_secs(10));
        }
        if self.procs.iter().any(|p| p.name == "containerd") {
            let tasks = self.ctr(&["tasks", "ls", "-q"]).unwrap_or_default();
            for id in tasks.lines().filter(|l| !l.trim().is_empty()) {
                let _ = self.ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id]);
            }
            std::thread::sleep(Duration::from_millis(300));
            for id in tasks.lines().filter(|l| !l.trim().is_empty()) {
                let _ = self.ctr(&["tasks", "rm", "-f", id]);
            }
            for id in self.ctr(&["containers", "ls", "-q"]).unwrap_or_default().lines().filter(|l| !l.trim().is_empty()) {
                let _ = self.ctr(&["containers", "rm", id]);
            }
        }
        while let Some(mut p) = self.procs.pop() {
            stop_child(&mut p.child, Duration::from_secs(10));
        }
        for pid in kubepods_pids() {
            signal(pid, "KILL");
        }
        // shims and anything else still in the node namespace
        for pid in self.node.pids() {
            signal(pid, "KILL");
        }
        std::thread::sleep(Duration::from_millis(300));
        umount_under(&self.dir.display().to_string());
        remove_cni_netns();
        remove_kubepods_cgroups();
        for p in HOST_PATHS {
            let _ = fs::remove_dir_all(p);
        }
        for p in &self.created {
            umount_under(p);
            let _ = fs::remove_dir_all(p);
        }
        let _ = fs::remove_file(cache().join("cluster/created-paths"));
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("cluster: cannot remove {}: {e}", self.dir.display());
        }
        eprintln!("cluster: torn down in {:.1} s", t.elapsed().as_secs_f64());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}
