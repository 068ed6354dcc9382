//! Hostile, odd and large input: each case once broke `render` (a spin, a shared filter, a
//! leaked secret, minutes of parsing, a gigabyte of messages). Every one must now end quickly
//! with frr.conf or with a clear error that names the object and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_frr-composer")
}

/// A private folder for one test, removed at the end.
fn dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("frr-composer-hostile-").tempdir().unwrap()
}

fn write(d: &Path, name: &str, text: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the binary; a run that takes longer than `limit` is killed and fails the test (a hang
/// is what some of these inputs caused).
fn run_within(limit: Duration, args: &[&std::ffi::OsStr]) -> Output {
    use std::io::Read;
    let mut child = Command::new(bin()).args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("frr-composer {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

fn render(args: &[&Path]) -> Output {
    let mut v: Vec<&std::ffi::OsStr> = vec!["render".as_ref()];
    v.extend(args.iter().map(|p| p.as_os_str()));
    run_within(Duration::from_secs(60), &v)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn header(name: &str) -> String {
    format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n")
}

/// One neighbor advertising `n` prefixes, each with its own local preference and community.
fn many_properties(n: usize) -> String {
    let mut s = header("many");
    let prefixes: Vec<String> = (0..n).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
    s.push_str("      prefixes:\n");
    for p in &prefixes {
        s.push_str(&format!("      - {p}\n"));
    }
    s.push_str("      neighbors:\n      - address: 192.0.2.1\n        asn: 65001\n        toAdvertise:\n          allowed:\n            mode: all\n          withLocalPref:\n");
    for (i, p) in prefixes.iter().enumerate() {
        s.push_str(&format!("          - {{localPref: {}, prefixes: [{p}]}}\n", 100 + i));
    }
    s
}

#[test]
fn thousands_of_local_preferences_end_with_an_error_not_a_spin() {
    let d = dir();
    // 4,999 once made the numbering loop forever
    let f = write(d.path(), "in.yaml", &many_properties(4999));
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("4999 local preference, community and AS-path prepend settings")
            && e.contains("at most 4000")
            && e.contains("ns/many")
            && e.contains("neighbor 192.0.2.1"),
        "{e}"
    );
    // at the limit, every entry gets its own route-map number
    let f = write(d.path(), "in.yaml", &many_properties(4000));
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let seqs: std::collections::BTreeSet<&str> = text.lines().filter(|l| l.starts_with("route-map 192.0.2.1-out permit ")).collect();
    assert_eq!(seqs.len(), 4002, "4,000 property entries and 2 permits, all distinct");
}

/// `routers` routers of `per_router` neighbors each (one VRF per router after the first).
fn many_neighbors(routers: usize, per_router: usize) -> String {
    let mut s =
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: wide, namespace: ns}\nspec:\n  bgp:\n    routers:\n".to_string();
    for r in 0..routers {
        s.push_str(&format!("    - asn: 65000\n{}      neighbors:\n", if r == 0 { String::new() } else { format!("      vrf: red{r}\n") }));
        for i in 0..per_router {
            s.push_str(&format!("      - {{address: 10.{r}.{}.{}, asn: 65001}}\n", i / 256, i % 256));
        }
    }
    s
}

#[test]
fn an_object_holds_at_most_1000_neighbors() {
    let d = dir();
    // over two routers, so the CRD's per-router bound would not catch it: the core's does
    let f = write(d.path(), "in.yaml", &many_neighbors(2, 501));
    let t = std::time::Instant::now();
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("ns/wide") && e.contains("spec.bgp.routers[].neighbors") && e.contains("1002 neighbors") && e.contains("at most 1000"), "{e}");
    assert_eq!(e.lines().filter(|l| l.starts_with("error:")).count(), 1, "one error, not one per neighbor: {e}");
    eprintln!("1002 neighbors refused in {:?}", t.elapsed());
    // at the limit it renders
    let f = write(d.path(), "in.yaml", &many_neighbors(2, 500));
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().filter(|l| l.ends_with(" remote-as 65001")).count(), 1000);
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let d = dir();
    let f = write(d.path(), "deep.yaml", &format!("a: {}", "[".repeat(100_000)));
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nested more than 64 deep"), "{}", stderr(&o));
    // quoted brackets are text, not nesting
    let f = write(
        d.path(),
        "quoted.yaml",
        &format!("{}  rawConfig: \"{}\"\n", header("q").replace("    routers:\n    - asn: 65000\n", "    routers: []\n  raw:\n"), "[".repeat(200)),
    );
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn an_aliased_megabyte_is_bounded_and_never_echoed() {
    let d = dir();
    let big = "x".repeat(1 << 20);
    let mut text = format!("{}      id: &big {big}\n      neighbors:\n", header("alias"));
    for _ in 0..1000 {
        text.push_str("      - {address: *big, asn: 65001}\n");
    }
    let f = write(d.path(), "alias.yaml", &text);
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.len() < 64 * 1024, "{} bytes of messages", e.len());
    assert!(e.contains("with every alias expanded"), "{}", &e[..e.len().min(2000)]);
    // without aliases, one huge value is quoted as a short excerpt only
    let f = write(d.path(), "huge.yaml", &format!("{}      id: {big}\n", header("huge")));
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.len() < 4096 && e.contains("more bytes") && e.contains("spec.bgp.routers[0].id"), "{}", &e[..e.len().min(2000)]);
}

#[test]
fn names_with_line_breaks_are_refused_and_never_printed_raw() {
    let d = dir();
    let text = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: \"a\\r\\nrouter bgp 1\\n\\u001b[31m\", namespace: ns}\nspec:\n  raw:\n    rawConfig: \"! ok\"\n";
    let f = write(d.path(), "name.yaml", text);
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    let e = stderr(&o);
    assert!(e.contains("metadata: the name is not a valid DNS subdomain"), "{e}");
    assert!(!e.contains('\r') && !e.contains('\u{1b}') && e.contains("\\r\\nrouter bgp 1"), "{e:?}");
    assert!(o.stdout.is_empty());
}

#[test]
fn misspelled_fields_are_warned_about() {
    let d = dir();
    let text = format!("{}      neighbours:\n      - {{address: 192.0.2.1, asn: 65001, pasword: x}}\n", header("typo"));
    let f = write(d.path(), "typo.yaml", &text);
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("warning:") && e.contains("unknown field \"spec.bgp.routers.0.neighbours\""), "{e}");
    let text = format!("{}      neighbors:\n      - {{address: 192.0.2.1, asn: 65001, pasword: x}}\n", header("typo"));
    let f = write(d.path(), "typo.yaml", &text);
    let e = stderr(&render(&[&f]));
    assert!(e.contains("unknown field \"spec.bgp.routers.0.neighbors.0.pasword\""), "{e}");
}

#[test]
fn a_numeric_password_is_never_echoed() {
    let d = dir();
    let text = format!("{}      neighbors:\n      - {{address: 192.0.2.1, asn: 65001, password: 987654321}}\n", header("num"));
    let f = write(d.path(), "num.yaml", &text);
    let o = render(&[&f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("password") && e.contains("not shown") && !e.contains("987654321"), "{e}");
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\ntype: kubernetes.io/basic-auth\nstringData: {password: 123456789}\n";
    let f = write(d.path(), "secret.yaml", secret);
    let e = stderr(&render(&[&f]));
    assert!(!e.contains("123456789"), "{e}");
}

#[test]
fn check_redacts_passwords_and_needs_its_golden() {
    let d = dir();
    let cfg = format!("{}      neighbors:\n      - {{address: 192.0.2.1, asn: 65001, password: New-Secret-1}}\n", header("pw"));
    let f = write(d.path(), "in.yaml", &cfg);
    let golden = d.path().join("golden.conf");
    let o = run_within(Duration::from_secs(60), &["render".as_ref(), f.as_os_str(), "--update".as_ref(), golden.as_os_str()]);
    assert_eq!(o.status.code(), Some(0));
    let old = std::fs::read_to_string(&golden).unwrap();
    std::fs::write(&golden, old.replace("New-Secret-1", "Old-Secret-0")).unwrap();
    let o = run_within(Duration::from_secs(60), &["render".as_ref(), f.as_os_str(), "--check".as_ref(), golden.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("New-Secret-1") && !out.contains("Old-Secret-0"), "{out}");
    assert!(out.contains("- neighbor 192.0.2.1 password <retracted>") && out.contains("+ neighbor 192.0.2.1 password <retracted>"), "{out}");
    // a missing golden is an error, not an empty file
    let missing = d.path().join("missing.conf");
    let o = run_within(Duration::from_secs(60), &["render".as_ref(), f.as_os_str(), "--check".as_ref(), missing.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty() && stderr(&o).contains("cannot read"), "{}", stderr(&o));
}

#[test]
fn raw_config_does_not_switch_off_the_guard_on_generated_lines() {
    use frr_composer::core::model::{Model, RawSnippet};
    use frr_composer::core::ObjRef;
    // a model built without the core's checks: the raw text may hold anything, the rest not
    let mut m = Model { log_level: "informational", hostname: "n".into(), routers: vec![], bfd_profiles: vec![], raw: vec![], warnings: vec![] };
    m.raw.push(RawSnippet { priority: 0, source: ObjRef::new("ns", "a"), text: "! tab\there".into() });
    assert!(frr_composer::render::render(&m).is_ok());
    m.hostname = "n\rrouter bgp 1".into();
    assert!(frr_composer::render::render(&m).unwrap_err().to_string().contains("control character"));
}

#[test]
fn a_raw_filter_for_a_shared_name_is_reported() {
    // the admin's raw deny entry was written for eth0 in VRF a-b (eth0-a-b-in); MetalLB's
    // object adds eth0-a in VRF b, whose name would be the same: both take their fallback
    // names and the raw entry filters nothing
    let admin = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: admin, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n      vrf: a-b\n      neighbors:\n      - {interface: eth0, dynamicASN: external}\n  raw:\n    rawConfig: |\n      route-map eth0-a-b-in deny 1\n       match ip address prefix-list bogons\n";
    let other = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: other, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n      vrf: b\n      neighbors:\n      - {interface: eth0-a, dynamicASN: external}\n";
    let d = dir();
    let a = write(d.path(), "admin.yaml", admin);
    let o = render(&[&a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("rawConfig refers to"), "alone, the name is eth0's: {}", stderr(&o));
    let b = write(d.path(), "other.yaml", other);
    let o = render(&[&a, &b]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("warning: FRRConfiguration ns/admin: rawConfig refers to eth0-a-b-in, a name neighbors eth0 (vrf a-b) and eth0-a (vrf b) would share; they are named eth0~a-b~in and eth0-a~b~in instead, so the raw lines apply to neither"),
        "{e}"
    );
}
