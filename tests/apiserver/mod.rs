//! Real Kubernetes API server harness: etcd + kube-apiserver on loopback.
//!
//! Use from an integration test with `mod apiserver;`. The binaries are built from the Go
//! module proxy by `.ci/install-apiserver.sh` into
//! `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/apiserver/bin/`; `kubectl` is
//! `/usr/bin/kubectl`, certificates are made with `openssl`.
//!
//! Every [`ApiServer`] gets its own directory (`/dev/shm/fc-apiserver-<pid>-<n>`: etcd data,
//! certificates, logs, kubeconfig) and its own free loopback ports, so tests may start several
//! in parallel threads and processes. Starting one costs several CPU-seconds (OpenAPI build,
//! bootstrap hooks): on 2 cores prefer one server per test binary with unique namespaces.
//!
//! * etcd: `http://127.0.0.1:<port>`, data on tmpfs, `--unsafe-no-fsync`.
//! * kube-apiserver: `https://127.0.0.1:<port>`, serving cert from a per-instance CA (SANs
//!   localhost, 127.0.0.1, kubernetes.default.svc), `--authorization-mode=RBAC`; the test
//!   client is `admin` in group `system:masters` (bypasses RBAC), by bearer token (kubeconfig)
//!   and by client certificate (`admin_cert()`). ServiceAccount admission is off (no
//!   controller-manager creates `default` service accounts), `--endpoint-reconciler-type=none`.
//! * Admission webhooks: the server can call `https://127.0.0.1:<port>` webhooks; make their
//!   serving certificate with [`ApiServer::issue_serving_cert`] and put [`ApiServer::ca_pem`]
//!   into `caBundle`.
//! * Without kube-controller-manager: deleted namespaces stay Terminating, there is no garbage
//!   collection of ownerReferences, no `default` ServiceAccount, Pods stay Pending.
//!
//! Cleanup: `stop()`/`Drop` terminates the processes this instance started (by pid) and
//! removes its directory (kept when `FRR_COMPOSER_KEEP_APISERVER=1`, for debugging). Leftovers
//! of a killed test process are removed by the next `start()`: directories
//! `fc-apiserver-<pid>-*` whose pid no longer runs, and the etcd/kube-apiserver processes whose
//! command line names such a directory.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub(crate) use crate::support;
use crate::support::{command, pid_alive, run, signal, stop_child, tail_file as tail};

/// The node agent under test (`frr-composer controller`).
pub mod agent;
#[allow(unused_imports)] // not every test starts an agent
pub use agent::AgentUnderTest;
/// The node an agent drives: FRR, a GoBGP router, the API server that knows the Node.
pub mod node;

pub const KUBECTL: &str = "/usr/bin/kubectl";
const OPENSSL: &str = "/usr/bin/openssl";
const DIR_PREFIX: &str = "fc-apiserver-";
/// Start timeout for kube-apiserver (2 cores, possibly busy with parallel tests).
const APISERVER_READY_TIMEOUT: Duration = Duration::from_secs(120);
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Whole-start attempts (a free port can be taken between probing and binding).
const START_ATTEMPTS: usize = 3;

static SEQ: AtomicUsize = AtomicUsize::new(0);

// ------------------------------------------------------------------------------ availability

/// `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/apiserver/bin`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("FRR_COMPOSER_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/frr-composer")).join("apiserver/bin")
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// None when a real API server can run here, else why not.
pub fn available() -> Option<String> {
    let bin = bin_dir();
    let mut missing = Vec::new();
    for b in ["kube-apiserver", "etcd"] {
        if !is_executable(&bin.join(b)) {
            missing.push(bin.join(b).display().to_string());
        }
    }
    for b in [KUBECTL, OPENSSL] {
        if !is_executable(Path::new(b)) {
            missing.push(b.to_string());
        }
    }
    if missing.is_empty() {
        None
    } else {
        Some(format!("missing {}", missing.join(", ")))
    }
}

/// True when a real API server can run. Otherwise: panics under `CI=true` (it is mandatory
/// there), else prints a SKIPPED message and returns false.
pub fn require() -> bool {
    support::prerequisite("a real API server", available(), "run .ci/install-apiserver.sh")
}

// ------------------------------------------------------------------------------ helpers

/// Poll `f` (20 ms, growing to 250 ms) until it returns Ok(true), an error, or `timeout`.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        if f()? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(delay.min(deadline - now));
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// `n` distinct free TCP ports on 127.0.0.1 (held together while probing).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<std::io::Result<Vec<_>>>().context("cannot bind a free port on 127.0.0.1")?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// Plain-HTTP GET on loopback (etcd's /health); Ok((status, body)).
fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&std::net::SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow!("bad HTTP response: {resp:?}"))?;
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// True when the host has an IPv4 default route (kube-apiserver derives its advertise
/// address from it and refuses to start without one).
fn has_default_route() -> bool {
    fs::read_to_string("/proc/net/route").map(|t| t.lines().skip(1).any(|l| l.split_whitespace().nth(1) == Some("00000000"))).unwrap_or(true)
}

/// Base directory for instance directories: tmpfs when there is one.
fn base_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Remove leftovers of killed test processes: instance directories whose pid no longer runs,
/// and the etcd / kube-apiserver processes whose command line names such a directory.
fn clean_stale() {
    let base = base_dir();
    let Ok(entries) = fs::read_dir(&base) else {
        return;
    };
    let mut stale = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid) {
            stale.push(e.path());
        }
    }
    if stale.is_empty() {
        return;
    }
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let ours = cmdline.contains("kube-apiserver") || cmdline.contains("etcd");
            if ours && stale.iter().any(|d| cmdline.contains(&format!("{}/", d.display()))) {
                signal(pid, "KILL");
            }
        }
    }
    for d in stale {
        let _ = fs::remove_dir_all(d);
    }
}

// ------------------------------------------------------------------------------ certificates

/// A per-instance CA plus the certificates and keys the servers and the client need.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn openssl(&self, args: &[&str]) -> Result<String> {
        run(command(OPENSSL).current_dir(&self.dir).args(args))
    }

    fn create(dir: &Path) -> Result<Pki> {
        let pki = Pki { dir: dir.to_path_buf() };
        fs::create_dir_all(dir)?;
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=frr-composer-test-ca",
        ])?;
        pki.sign(
            "apiserver",
            "/CN=kube-apiserver",
            "serverAuth",
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.0.0.1,DNS:kubernetes,\
             DNS:kubernetes.default,DNS:kubernetes.default.svc,\
             DNS:kubernetes.default.svc.cluster.local",
        )?;
        pki.sign("admin", "/O=system:masters/CN=admin", "clientAuth", "")?;
        pki.openssl(&["genrsa", "-out", "sa.key", "2048"])?;
        pki.openssl(&["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
        Ok(pki)
    }

    /// `<name>.crt` / `<name>.key`, signed by the CA, for `eku` (serverAuth / clientAuth).
    fn sign(&self, name: &str, subject: &str, eku: &str, extra: &str) -> Result<()> {
        let ext = format!(
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage={eku}\n{extra}\n"
        );
        fs::write(self.p(&format!("{name}.ext")), ext)?;
        let (key, csr, crt, extf) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        self.openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject])?;
        self.openssl(&["x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650", "-extfile", &extf, "-out", &crt])?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------ ApiServer

/// A running etcd + kube-apiserver pair. Stops both and removes its directory on drop.
pub struct ApiServer {
    dir: PathBuf,
    pki: Pki,
    etcd_port: u16,
    peer_port: u16,
    port: u16,
    token: String,
    kubeconfig: PathBuf,
    etcd: Option<Child>,
    apiserver: Option<Child>,
    apiserver_starts: usize,
    stopped: bool,
}

impl ApiServer {
    /// Start etcd and kube-apiserver on free loopback ports and wait until `/readyz` is ok
    /// and the `default` namespace exists. Retries the whole start a few times (a probed
    /// free port can be taken by someone else before the server binds it).
    pub fn start() -> Result<ApiServer> {
        if let Some(why) = available() {
            bail!("real API server cannot run: {why} (run .ci/install-apiserver.sh)");
        }
        clean_stale();
        let mut last = None;
        for attempt in 1..=START_ATTEMPTS {
            match Self::start_once() {
                Ok(s) => return Ok(s),
                Err(e) => {
                    eprintln!("apiserver harness: start attempt {attempt} failed: {e:#}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap())
    }

    fn start_once() -> Result<ApiServer> {
        let dir = base_dir().join(format!("{DIR_PREFIX}{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst)));
        let ports = free_ports(3)?;
        let token = random_token()?;
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // From here on, Drop cleans up whatever was started.
        let mut s = ApiServer {
            pki: Pki { dir: dir.join("pki") },
            kubeconfig: dir.join("kubeconfig"),
            dir,
            etcd_port: ports[0],
            peer_port: ports[1],
            port: ports[2],
            token,
            etcd: None,
            apiserver: None,
            apiserver_starts: 0,
            stopped: false,
        };
        s.pki = Pki::create(&s.dir.join("pki")).context("cannot create certificates")?;
        fs::write(s.pki.p("tokens.csv"), format!("{},admin,admin-uid,\"system:masters\"\n", s.token))?;
        s.write_kubeconfig()?;
        s.start_etcd()?;
        s.start_apiserver()?;
        Ok(s)
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let ca = self.pki.p("ca.crt");
        let kc = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: test\n  \
               cluster:\n    \
                 server: {url}\n    \
                 certificate-authority: {ca}\n\
             users:\n\
             - name: admin\n  \
               user:\n    \
                 token: {token}\n\
             contexts:\n\
             - name: test\n  \
               context:\n    \
                 cluster: test\n    \
                 user: admin\n    \
                 namespace: default\n\
             current-context: test\n",
            url = self.url(),
            ca = ca.display(),
            token = self.token,
        );
        fs::write(&self.kubeconfig, kc)?;
        Ok(())
    }

    fn start_etcd(&mut self) -> Result<()> {
        let log = self.dir.join("etcd.log");
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = command(bin_dir().join("etcd"))
            .current_dir(&self.dir)
            .args([
                "--name=test".to_string(),
                format!("--data-dir={}/etcd", self.dir.display()),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster=test={peer}"),
                "--unsafe-no-fsync=true".to_string(),
                "--log-level=warn".to_string(),
            ])
            .stdout(fs::File::create(&log)?)
            .stderr(fs::File::create(self.dir.join("etcd.stderr.log"))?)
            .spawn()
            .context("cannot start etcd")?;
        self.etcd = Some(child);
        let port = self.etcd_port;
        let ok = wait_until(ETCD_READY_TIMEOUT, || {
            if let Some(status) = self.etcd.as_mut().unwrap().try_wait()? {
                bail!("etcd exited ({status}):\n{}", tail(&self.dir.join("etcd.stderr.log"), 30));
            }
            Ok(matches!(http_get(port, "/health"), Ok((200, body)) if body.contains("true")))
        })?;
        if !ok {
            bail!("etcd not healthy after {ETCD_READY_TIMEOUT:?}:\n{}", tail(&self.dir.join("etcd.stderr.log"), 30));
        }
        Ok(())
    }

    fn apiserver_log(&self) -> PathBuf {
        self.dir.join(format!("kube-apiserver.{}.log", self.apiserver_starts))
    }

    fn start_apiserver(&mut self) -> Result<()> {
        self.apiserver_starts += 1;
        let log = self.apiserver_log();
        let pki = |n: &str| self.pki.p(n).display().to_string();
        let mut args = vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_port),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={}", self.port),
            format!("--cert-dir={}", self.pki.dir.display()),
            format!("--tls-cert-file={}", pki("apiserver.crt")),
            format!("--tls-private-key-file={}", pki("apiserver.key")),
            format!("--client-ca-file={}", pki("ca.crt")),
            format!("--token-auth-file={}", pki("tokens.csv")),
            format!("--service-account-issuer=https://127.0.0.1:{}", self.port),
            format!("--service-account-key-file={}", pki("sa.pub")),
            format!("--service-account-signing-key-file={}", pki("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            "--authorization-mode=RBAC".to_string(),
            "--disable-admission-plugins=ServiceAccount".to_string(),
            "--allow-privileged=true".to_string(),
            "--endpoint-reconciler-type=none".to_string(),
            "--profiling=false".to_string(),
        ];
        if !has_default_route() {
            // Only a label with --endpoint-reconciler-type=none: nothing connects to it.
            args.push("--advertise-address=192.0.2.1".to_string());
        }
        let child = command(bin_dir().join("kube-apiserver"))
            .current_dir(&self.dir)
            .args(&args)
            .stdout(fs::File::create(&log)?)
            .stderr(fs::File::options().append(true).open(&log)?)
            .spawn()
            .context("cannot start kube-apiserver")?;
        self.apiserver = Some(child);
        self.wait_ready()
    }

    /// Wait until `/readyz` answers ok and the `default` namespace exists.
    fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        let mut last = String::new();
        let ok = wait_until(APISERVER_READY_TIMEOUT, || {
            if let Some(status) = self.apiserver.as_mut().unwrap().try_wait()? {
                bail!("kube-apiserver exited ({status}):\n{}", tail(&self.apiserver_log(), 40));
            }
            match self.kubectl(&["get", "--raw", "/readyz", "--request-timeout=5s"]) {
                Ok(out) if out.trim() == "ok" => Ok(true),
                Ok(out) => {
                    last = out;
                    Ok(false)
                }
                Err(e) => {
                    last = format!("{e:#}");
                    Ok(false)
                }
            }
        })?;
        if !ok {
            bail!("kube-apiserver not ready after {APISERVER_READY_TIMEOUT:?}; last answer: {last}\nlog:\n{}", tail(&self.apiserver_log(), 40));
        }
        let ok = wait_until(Duration::from_secs(30), || Ok(self.kubectl(&["get", "namespace", "default", "-o", "name"]).is_ok()))?;
        if !ok {
            bail!("namespace default not there 30 s after /readyz");
        }
        eprintln!("apiserver harness: kube-apiserver ready at {} after {:.1}s", self.url(), start.elapsed().as_secs_f64());
        Ok(())
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>` of etcd.
    pub fn etcd_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.etcd_port)
    }

    /// The kubeconfig (cluster `test`, user `admin` in `system:masters`, namespace default).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The instance directory (certificates under `pki/`, logs, kubeconfig).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bearer token of the `admin` user (group `system:masters`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA that signed the serving and client certificates (PEM file).
    pub fn ca_cert(&self) -> PathBuf {
        self.pki.p("ca.crt")
    }

    /// The CA as PEM text (for a webhook's `caBundle`, base64 it).
    pub fn ca_pem(&self) -> Result<String> {
        Ok(fs::read_to_string(self.ca_cert())?)
    }

    /// Client certificate and key of `admin` (O=system:masters).
    pub fn admin_cert(&self) -> (PathBuf, PathBuf) {
        (self.pki.p("admin.crt"), self.pki.p("admin.key"))
    }

    /// A serving certificate signed by this instance's CA, for a webhook listening on
    /// loopback: SANs 127.0.0.1, localhost and `dns_names`. Returns (cert, key) paths.
    pub fn issue_serving_cert(&self, name: &str, dns_names: &[&str]) -> Result<(PathBuf, PathBuf)> {
        let mut sans = vec!["IP:127.0.0.1".to_string(), "DNS:localhost".to_string()];
        sans.extend(dns_names.iter().map(|d| format!("DNS:{d}")));
        let name = format!("serving-{name}");
        self.pki.sign(
            &name,
            &format!("/CN={}", dns_names.first().copied().unwrap_or("localhost")),
            "serverAuth",
            &format!("subjectAltName={}", sans.join(",")),
        )?;
        Ok((self.pki.p(&format!("{name}.crt")), self.pki.p(&format!("{name}.key"))))
    }

    fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut c = command(KUBECTL);
        c.env("HOME", &self.dir)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--cache-dir={}", self.dir.join("kube-cache").display()))
            .args(args);
        c
    }

    /// Run `kubectl --kubeconfig=<ours> <args>`; Ok(stdout) on success, else an error with
    /// stdout and stderr.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        run(&mut self.kubectl_command(args))
    }

    /// Like [`kubectl`](Self::kubectl) with `stdin` as standard input (`apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Result<String> {
        let mut cmd = self.kubectl_command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
        let input = stdin.as_bytes().to_vec();
        let mut pipe = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output()?;
        let _ = writer.join();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("{cmd:?} failed ({}):\n{}{}", out.status, stdout, String::from_utf8_lossy(&out.stderr));
        }
        Ok(stdout)
    }

    /// `kubectl ... -o json`, parsed.
    /// Installs this repository's CRDs (crds/) and waits until they are established.
    pub fn install_crds(&self) -> Result<()> {
        let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        self.kubectl(&["apply", "-k", &crds.to_string_lossy()]).context("installing the CRDs")?;
        self.kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]).context("CRDs not established")?;
        Ok(())
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a)?;
        serde_json::from_str(&out).with_context(|| format!("kubectl {args:?}: not JSON: {out}"))
    }

    /// Stop kube-apiserver only (etcd keeps running): for outage tests. `restart_apiserver`
    /// brings it back.
    pub fn stop_apiserver(&mut self) {
        if let Some(mut c) = self.apiserver.take() {
            stop_child(&mut c, STOP_TIMEOUT);
        }
    }

    /// Stop kube-apiserver (when running) and start it again on the same port with the same
    /// etcd, certificates and kubeconfig; waits until it is ready.
    pub fn restart_apiserver(&mut self) -> Result<()> {
        self.stop_apiserver();
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match self.start_apiserver() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    eprintln!("apiserver harness: restart failed: {e:#}");
                    self.stop_apiserver();
                    last = Some(e);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        Err(last.unwrap())
    }

    /// True while the kube-apiserver process runs.
    pub fn apiserver_running(&mut self) -> bool {
        match self.apiserver.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)) && pid_alive(c.id()),
            None => false,
        }
    }

    /// Stop kube-apiserver, then etcd, and remove the directory. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.stop_apiserver();
        if let Some(mut c) = self.etcd.take() {
            stop_child(&mut c, STOP_TIMEOUT);
        }
        if std::env::var("FRR_COMPOSER_KEEP_APISERVER").as_deref() == Ok("1") {
            eprintln!("apiserver harness: keeping {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn random_token() -> Result<String> {
    let mut buf = [0u8; 24];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
