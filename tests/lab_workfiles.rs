//! `frr-composer apply` against real FRR 8.4: its working files (syntax checks and batches,
//! with passwords in them) stay in one private directory under $TMPDIR, which is gone when
//! the command ends, also when SIGTERM ends `apply --watch`; and an FRR whose pathspace has
//! no vtysh.conf (vtysh's notice about it is not a refusal) is configured all the same.
//!
//! Needs root, `ip netns` and FRR (.ci/install-frr.sh): skipped without them, except under
//! CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lab::{Frr, FrrVersion, Netns, Req, TempDir};

const CONFIG: &str = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: a, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n      neighbors:\n      - {address: 192.0.2.1, asn: 65001, password: Work-File-Secret}\n";

/// The private directories frr-composer made in `dir`.
fn work_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("frr-composer-")).collect()
}

fn apply(frr: &Frr, input: &Path, tmpdir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frr-composer"));
    c.arg("apply").arg(input).args(frr.cli_args()).env("TMPDIR", tmpdir);
    c
}

#[test]
fn working_files_are_private_and_gone_after_apply_and_sigterm() {
    if !lab::require(&[Req::Frr(FrrVersion::V8)]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let work = tmp.path().join("tmpdir");
    std::fs::create_dir(&work).unwrap();
    let input = tmp.write("in.yaml", CONFIG).unwrap();
    let ns = Netns::new().unwrap();
    let frr = Frr::start(FrrVersion::V8, &ns).unwrap();

    // one apply: nothing left behind
    let o = apply(&frr, &input, &work).output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(frr.running_config().unwrap().contains("neighbor 192.0.2.1 password"));
    assert_eq!(work_dirs(&work), Vec::<PathBuf>::new());

    // --watch: a private directory while it runs, removed on SIGTERM
    std::fs::write(&input, CONFIG.replace("Work-File-Secret", "Second-Secret")).unwrap();
    let log = tmp.path().join("watch.log");
    let mut child = lab::support::KillOnDrop(
        apply(&frr, &input, &work).args(["--watch", "--poll-ms", "100"]).stdout(std::fs::File::create(&log).unwrap()).stderr(Stdio::inherit()).spawn().unwrap(),
    );
    assert!(
        lab::wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log).unwrap_or_default().contains("applied")),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let dirs = work_dirs(&work);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let meta = std::fs::symlink_metadata(&dirs[0]).unwrap();
    assert!(meta.is_dir() && meta.mode() & 0o777 == 0o700, "mode {:o}", meta.mode());
    // the check and batch files of the apply are gone already
    assert_eq!(std::fs::read_dir(&dirs[0]).unwrap().count(), 0);
    lab::support::run(lab::support::command("kill").args(["-TERM", &child.0.id().to_string()])).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(work_dirs(&work), Vec::<PathBuf>::new(), "the private directory outlived SIGTERM");
}

#[test]
fn an_frr_without_vtysh_conf_is_configured() {
    if !lab::require(&[Req::Frr(FrrVersion::V8)]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let input = tmp.write("in.yaml", CONFIG).unwrap();
    let ns = Netns::new().unwrap();
    let frr = Frr::start(FrrVersion::V8, &ns).unwrap();
    std::fs::remove_file(frr.dir().join("etc").join(frr.name()).join("vtysh.conf")).unwrap();
    let o = apply(&frr, &input, tmp.path()).output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{all}");
    assert!(frr.running_config().unwrap().contains("neighbor 192.0.2.1 remote-as 65001"), "{all}");
    assert!(!all.contains("Work-File-Secret"), "{all}");
}

/// What a SIGKILLed `lab run` leaves (namespaces with daemons still inside, folders holding the
/// peer's password) is removed by `lab down`, not only by the next `lab run`.
#[test]
fn lab_down_removes_what_a_killed_lab_left() {
    if !lab::require(&[]) {
        return;
    }
    // a pid that no longer runs
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let ns = format!("fc-{dead}-0-0000dead");
    let folder = PathBuf::from(format!("/tmp/fc-{dead}-1-0000beef"));
    assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success());
    let mut daemon = Command::new("ip").args(["netns", "exec", &ns, "sleep", "600"]).stdin(Stdio::null()).spawn().unwrap();
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("gobgpd.toml"), "auth-password = \"Left-Behind-Secret\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frr-composer")).args(["lab", "down", "--name", "never-started"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // reap the daemon (killed by lab down) before asserting, so a failure leaves nothing behind
    let stopped = lab::wait_until(Duration::from_secs(5), || daemon.try_wait().unwrap().is_some());
    if !stopped {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    let _ = Command::new("ip").args(["netns", "del", &ns]).stderr(Stdio::null()).status();
    let left = folder.exists();
    let _ = std::fs::remove_dir_all(&folder);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("removed what stopped labs left"), "{stdout}");
    assert!(stopped, "the daemon in the left namespace still runs");
    assert!(!left, "the left folder (with a password) is still there");
    let list = String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).into_owned();
    assert!(!list.contains(&ns), "{list}");
}
