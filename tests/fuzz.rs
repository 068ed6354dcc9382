//! Fuzzing with a time budget: every string and number field of a fully set object, list
//! sizes (up to 10,000), neighbor names built to collide, and YAML document structure
//! (nesting, aliases, sizes). Each target runs generated cases until its budget is spent
//! (FRR_COMPOSER_FUZZ_SECONDS, default 15 s per target; CI uses the default) and prints how
//! many it ran (also into the file FRR_COMPOSER_FUZZ_REPORT names). A case that does not
//! finish within 30 s fails: work must be bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use frr_composer::api::*;
use frr_composer::core::{compose, Composition, Errors, SecretEntry, Settings, Snapshot};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

fn budget() -> Duration {
    let s = std::env::var("FRR_COMPOSER_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(15.0);
    Duration::from_secs_f64(s)
}

/// Runs `check` on values of `strategy` until the budget is spent (at least `min_cases`).
fn fuzz<S>(name: &str, min_cases: u32, strategy: S, check: fn(&S::Value) -> Result<(), String>)
where
    S: Strategy,
    S::Value: std::fmt::Debug + Send + Clone + 'static,
{
    let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
    let (start, budget) = (Instant::now(), budget());
    let mut cases = 0u32;
    while cases < min_cases || start.elapsed() < budget {
        let value = strategy.new_tree(&mut runner).expect("a value").current();
        // a watchdog: a case that never ends is a failure, not a hung suite
        let (tx, rx) = mpsc::channel();
        let v = value.clone();
        std::thread::spawn(move || {
            let _ = tx.send(check(&v));
        });
        let shown = || {
            let s = format!("{value:?}");
            s.chars().take(2000).collect::<String>()
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("fuzz {name}: case {cases} fails: {e}\nvalue: {}", shown()),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("fuzz {name}: case {cases} did not finish within 30 s\nvalue: {}", shown()),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("fuzz {name}: case {cases} panicked\nvalue: {}", shown()),
        }
        cases += 1;
    }
    let line = format!("fuzz {name}: {cases} cases in {:.1} s", start.elapsed().as_secs_f64());
    eprintln!("{line}");
    // .ci/test prints these figures after the suite (test output is captured)
    if let Some(file) = std::env::var_os("FRR_COMPOSER_FUZZ_REPORT") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn settings() -> Settings {
    Settings {
        namespace: "ns".into(),
        hostname: "node1".into(),
        log_level: LogLevel::Info,
        always_block: vec!["192.0.2.128/25".parse().unwrap()],
        node_has_ipv4: true,
        frr_version: None,
    }
}

fn run(configs: &[FRRConfiguration]) -> Result<Composition, Errors> {
    let labels = BTreeMap::new();
    let secrets: BTreeMap<String, SecretEntry> =
        [("pw".to_string(), SecretEntry { type_: "kubernetes.io/basic-auth".into(), password: Some(Ok("s3cret".into())) })].into();
    compose(&settings(), Snapshot { node_labels: &labels, configs, secrets: &secrets })
}

fn cfg(name: &str, spec: FRRConfigurationSpec) -> FRRConfiguration {
    let mut c = FRRConfiguration::new(name, spec);
    c.metadata.namespace = Some("ns".into());
    c
}

// ------------------------------------------------------------------------ names

/// Peers and VRFs built from a few fragments, so that `<peer>-<vrf>` spellings meet often.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![Just("eth0"), Just("a"), Just("b"), Just("x"), Just("192.0.2.1"), Just("denied"), Just("in"), Just("1")].prop_map(String::from)
}

fn joined(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 1..=max).prop_map(|v| v.join("-"))
}

#[derive(Clone, Debug)]
struct NamedNeighbor {
    vrf: String,
    peer: String,
    receive: u8,
}

fn named_neighbors() -> impl Strategy<Value = Vec<NamedNeighbor>> {
    let vrf = prop_oneof![Just(String::new()), joined(2)];
    let peer = prop_oneof![Just("192.0.2.1".to_string()), Just("192.0.2.2".to_string()), joined(3)];
    prop::collection::vec((vrf, peer, 0u8..4).prop_map(|(vrf, peer, receive)| NamedNeighbor { vrf, peer, receive }), 1..8)
}

fn names_config(ns: &[NamedNeighbor]) -> FRRConfiguration {
    let mut routers: BTreeMap<String, Router> = BTreeMap::new();
    for n in ns {
        let r = routers.entry(n.vrf.clone()).or_insert_with(|| Router { asn: 65000, vrf: (!n.vrf.is_empty()).then(|| n.vrf.clone()), ..Default::default() });
        let ip = n.peer.parse::<std::net::IpAddr>().is_ok();
        let prefixes =
            (0..n.receive).map(|k| PrefixSelector { prefix: format!("203.0.113.{}/32", k * 8 + n.peer.len() as u8 % 8), ..Default::default() }).collect();
        r.neighbors.push(Neighbor {
            address: ip.then(|| n.peer.clone()),
            interface: (!ip).then(|| n.peer.clone()),
            asn: if ip { 65001 } else { 0 },
            dynamic_asn: (!ip).then_some(DynamicAsn::External),
            to_receive: Receive { allowed: AllowedInPrefixes { prefixes, mode: if n.receive == 3 { AllowMode::All } else { AllowMode::Filtered } } },
            ..Default::default()
        });
    }
    cfg("names", FRRConfigurationSpec { bgp: BgpConfig { routers: routers.into_values().collect(), bfd_profiles: vec![] }, ..Default::default() })
}

/// Distinct neighbors never share a route-map, and a prefix-list name always means one list.
#[allow(clippy::ptr_arg)] // the fuzz driver passes &S::Value
fn names_never_collide(ns: &Vec<NamedNeighbor>) -> Result<(), String> {
    let Ok(c) = run(&[names_config(ns)]) else { return Ok(()) };
    let plan = frr_composer::render::plan(&c.model);
    let mut owner: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for r in &plan.routers {
        for n in &r.neighbors {
            for rm in [&n.route_map_in, &n.route_map_out] {
                if let Some(prev) = owner.insert(rm, (&r.vrf, &n.peer)) {
                    return Err(format!("route-map {rm} is used by {prev:?} and {:?}", (&r.vrf, &n.peer)));
                }
            }
        }
    }
    let mut lists = BTreeSet::new();
    for l in &plan.prefix_lists {
        if !lists.insert((l.family, &l.name)) {
            return Err(format!("{} prefix-list {} is defined twice", l.family, l.name));
        }
    }
    let text = frr_composer::render::render(&c.model).map_err(|e| e.to_string())?;
    let mut heads = BTreeSet::new();
    for l in text.lines().filter(|l| l.starts_with("route-map ")) {
        if !heads.insert(l) {
            return Err(format!("`{l}` appears twice"));
        }
    }
    Ok(())
}

#[test]
fn fuzz_filter_names_never_collide() {
    fuzz("names", 200, named_neighbors(), names_never_collide);
}

// ------------------------------------------------------------------------ sizes

/// List sizes as a fuzzer picks them: small ones, and powers of two and ten around their
/// boundaries, up to 10,000.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..8,
        1 => (1u32..14, -1i64..=1).prop_map(|(k, d)| ((1i64 << k) + d).clamp(0, 10_000) as usize),
        1 => (1u32..5, -1i64..=1).prop_map(|(k, d)| (10i64.pow(k) + d).clamp(0, 10_000) as usize),
    ]
}

#[derive(Clone, Debug)]
struct Sizes {
    prefixes: usize,
    local_prefs: usize,
    communities: usize,
    receive: usize,
    neighbors: usize,
}

fn sizes() -> impl Strategy<Value = Sizes> {
    (size(), size(), size(), size(), 1usize..4).prop_map(|(prefixes, local_prefs, communities, receive, neighbors)| Sizes {
        prefixes,
        local_prefs,
        communities,
        receive,
        neighbors,
    })
}

fn sized_config(s: &Sizes) -> FRRConfiguration {
    let net = |i: usize| format!("{}.{}.{}.0/24", 1 + i / 65536, (i >> 8) & 255, i & 255);
    // one prefix per setting at least (two local preferences for one prefix conflict)
    let prefixes: Vec<String> = (0..s.prefixes.max(s.local_prefs).max(s.communities).max(1)).map(net).collect();
    let neighbors = (0..s.neighbors)
        .map(|k| Neighbor {
            address: Some(format!("192.0.2.{}", k + 1)),
            asn: 65001,
            to_advertise: Advertise {
                allowed: AllowedOutPrefixes { prefixes: vec![], mode: AllowMode::All },
                with_local_pref: (0..s.local_prefs)
                    .map(|i| LocalPrefPrefixes { prefixes: vec![prefixes[i % prefixes.len()].clone()], local_pref: 100 + i as u32 })
                    .collect(),
                with_community: (0..s.communities)
                    .map(|i| CommunityPrefixes { prefixes: vec![prefixes[i % prefixes.len()].clone()], community: format!("{}:{}", i / 65536, i % 65536) })
                    .collect(),
                ..Default::default()
            },
            to_receive: Receive {
                allowed: AllowedInPrefixes {
                    prefixes: (0..s.receive).map(|i| PrefixSelector { prefix: net(i), le: 32, ge: 0 }).collect(),
                    mode: AllowMode::Filtered,
                },
            },
            ..Default::default()
        })
        .collect();
    cfg(
        "sized",
        FRRConfigurationSpec {
            bgp: BgpConfig { routers: vec![Router { asn: 65000, prefixes, neighbors, ..Default::default() }], bfd_profiles: vec![] },
            ..Default::default()
        },
    )
}

/// Any size ends, with a clear error or with a configuration whose route-map entries are all
/// distinct.
fn sizes_are_bounded(s: &Sizes) -> Result<(), String> {
    match run(&[sized_config(s)]) {
        Err(e) => {
            let e = e.to_string();
            if e.contains("sized") && e.contains("at most") {
                Ok(())
            } else {
                Err(format!("unclear error: {}", e.chars().take(500).collect::<String>()))
            }
        }
        Ok(c) => {
            let text = frr_composer::render::render(&c.model).map_err(|e| e.to_string())?;
            let heads: Vec<&str> = text.lines().filter(|l| l.starts_with("route-map ")).collect();
            let distinct: BTreeSet<&&str> = heads.iter().collect();
            if distinct.len() != heads.len() {
                return Err("two route-map entries share a number".into());
            }
            Ok(())
        }
    }
}

#[test]
fn fuzz_list_sizes_are_bounded() {
    fuzz("sizes", 30, sizes(), sizes_are_bounded);
}

// ------------------------------------------------------------------------ every field

/// An object with every field set (valid), as JSON: the fuzzer replaces one leaf at a time.
fn full_object() -> serde_json::Value {
    serde_json::from_str(
        r#"{
        "apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration",
        "metadata": {"name": "full", "namespace": "ns"},
        "spec": {
            "nodeSelector": {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "k", "operator": "NotIn", "values": ["v"]}]},
            "raw": {"priority": 5, "rawConfig": "! raw"},
            "bgp": {
                "bfdProfiles": [{"name": "prof", "receiveInterval": 300, "transmitInterval": 300, "detectMultiplier": 3, "echoInterval": 50, "echoMode": true, "passiveMode": false, "minimumTtl": 254}],
                "routers": [
                    {"asn": 65000, "id": "192.0.2.10", "vrf": "", "prefixes": ["198.51.100.0/24", "2001:db8::/64"], "imports": [{"vrf": "red"}],
                     "neighbors": [
                        {"asn": 65001, "address": "192.0.2.1", "port": 1179, "passwordSecret": {"name": "pw", "namespace": "ns"}, "holdTime": "90s", "keepaliveTime": "30s", "connectTime": "10s",
                         "ebgpMultiHop": true, "bfdProfile": "prof", "enableGracefulRestart": true, "sourceaddress": "192.0.2.2", "localASN": 65010, "dualStackAddressFamily": true,
                         "addressFamilies": ["unicast"],
                         "toAdvertise": {"allowed": {"prefixes": ["198.51.100.0/24"], "mode": "filtered"}, "nextHop": {"ipv4": "192.0.2.3", "ipv6": "2001:db8::3"},
                                         "withLocalPref": [{"prefixes": ["198.51.100.0/24"], "localPref": 200}], "withCommunity": [{"prefixes": ["198.51.100.0/24"], "community": "65000:1"}, {"prefixes": ["2001:db8::/64"], "community": "large:1:2:3"}]},
                         "toReceive": {"allowed": {"prefixes": [{"prefix": "203.0.113.0/24", "le": 32, "ge": 25}], "mode": "filtered"}}},
                        {"dynamicASN": "external", "interface": "eth0", "password": "inline-pw", "toReceive": {"allowed": {"mode": "all"}}}
                     ]},
                    {"asn": 65000, "vrf": "red", "prefixes": ["203.0.113.0/24"],
                     "evpn": {"advertiseVNIs": "All", "advertiseSVI": true, "l2vnis": [{"vni": 100, "rd": "65000:100", "importRTs": ["65000:100"], "exportRTs": ["65000:100"]}],
                              "l3vni": {"vni": 200, "rd": "192.0.2.10:200", "importRTs": ["*:200"], "exportRTs": ["65000:200"], "advertisePrefixes": ["unicast"]}},
                     "neighbors": [{"asn": 65000, "address": "2001:db8::20", "addressFamilies": ["evpn", "unicast"]}]}
                ]
            }
        }
    }"#,
    )
    .unwrap()
}

/// Every leaf (string, number, bool) of a JSON value, as a path of keys and indexes.
fn leaves(v: &serde_json::Value, path: &mut Vec<serde_json::Value>, out: &mut Vec<Vec<serde_json::Value>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone().into());
                leaves(x, path, out);
                path.pop();
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.into());
                leaves(x, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn leaf_mut<'a>(v: &'a mut serde_json::Value, path: &[serde_json::Value]) -> &'a mut serde_json::Value {
    path.iter().fold(v, |v, k| match k {
        serde_json::Value::String(s) => &mut v[s.as_str()],
        k => &mut v[k.as_u64().unwrap() as usize],
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    /// The valid value with a hostile fragment before or after it.
    Around(String, bool),
    Text(String),
    Number(serde_json::Number),
}

fn hostile_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just("\r\n neighbor 203.0.113.9 remote-as 1".to_string()),
        Just(" extra".to_string()),
        Just("\t".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{1b}[31m".to_string()),
        Just("\u{2028}".to_string()),
        Just("!".to_string()),
        Just("#".to_string()),
        Just("%".to_string()),
        Just("-in".to_string()),
        (1usize..70_000).prop_map(|n| "x".repeat(n)),
        "\\PC{0,12}",
        any::<String>(),
    ]
}

fn mutation() -> impl Strategy<Value = (usize, Mutation)> {
    let m = prop_oneof![
        4 => (hostile_fragment(), any::<bool>()).prop_map(|(f, before)| Mutation::Around(f, before)),
        1 => hostile_fragment().prop_map(Mutation::Text),
        2 => prop_oneof![
            any::<i64>().prop_map(serde_json::Number::from),
            any::<u64>().prop_map(serde_json::Number::from),
            prop_oneof![Just(0u64), Just(1), Just(2), Just(3), Just(32), Just(33), Just(128), Just(129), Just(255), Just(65535), Just(65536), Just(16_777_216), Just(4_294_967_295), Just(4_294_967_296)].prop_map(serde_json::Number::from),
            any::<f64>().prop_filter_map("finite", serde_json::Number::from_f64),
        ].prop_map(Mutation::Number),
    ];
    (any::<usize>(), m)
}

/// Word counts of the lines, sorted.
fn shape(text: &str) -> Vec<usize> {
    let mut v: Vec<usize> = text.lines().map(|l| l.split_whitespace().count()).collect();
    v.sort();
    v
}

fn render_object(v: &serde_json::Value) -> Result<String, String> {
    let yaml = serde_yaml::to_string(v).map_err(|e| e.to_string())?;
    let (objects, errors) = frr_composer::input::parse_documents(&yaml, "fuzz.yaml");
    if !errors.is_empty() {
        return Err(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
    }
    let c = run(&objects.configs).map_err(|e| e.to_string())?;
    frr_composer::render::render(&c.model).map_err(|e| e.to_string())
}

/// Whatever one field holds: an error (short, and never with a password) or frr.conf without
/// control characters; a value with a fragment around it never adds a line or a word.
fn any_field_value_is_safe(case: &(usize, Mutation)) -> Result<(), String> {
    let base = full_object();
    let benign = render_object(&base).map_err(|e| format!("the full object does not render: {e}"))?;
    let mut paths = Vec::new();
    leaves(&base, &mut Vec::new(), &mut paths);
    let path = &paths[case.0 % paths.len()];
    let mut v = base.clone();
    let leaf = leaf_mut(&mut v, path);
    let original = leaf.clone();
    let around = matches!(case.1, Mutation::Around(..)) && original.is_string();
    *leaf = match &case.1 {
        Mutation::Around(f, before) => match &original {
            serde_json::Value::String(s) if *before => format!("{f}{s}").into(),
            serde_json::Value::String(s) => format!("{s}{f}").into(),
            _ => f.clone().into(),
        },
        Mutation::Text(t) => t.clone().into(),
        Mutation::Number(n) => n.clone().into(),
    };
    let secret = path.last().and_then(|k| k.as_str()) == Some("password");
    match render_object(&v) {
        Err(msg) => {
            if msg.len() > 16 * 1024 {
                return Err(format!("{} bytes of errors for {path:?}: {}", msg.len(), msg.chars().take(3000).collect::<String>()));
            }
            if secret && original.as_str().is_some_and(|s| msg.contains(s)) && !matches!(original.as_str(), Some("pw")) {
                return Err("an error shows the password".into());
            }
            if msg.chars().any(|c| c.is_control() && c != '\n') {
                return Err(format!("an error holds a control character: {msg:?}"));
            }
            Ok(())
        }
        Ok(text) => {
            let raw_text = path.iter().any(|k| k.as_str() == Some("rawConfig"));
            if !raw_text && text.chars().any(|c| c.is_control() && c != '\n') {
                return Err("a control character in frr.conf".into());
            }
            if around && !raw_text && shape(&text) != shape(&benign) {
                return Err(format!("the value at {path:?} changed the shape of frr.conf"));
            }
            Ok(())
        }
    }
}

#[test]
fn fuzz_every_field() {
    fuzz("fields", 500, mutation(), any_field_value_is_safe);
}

// ------------------------------------------------------------------------ document structure

#[derive(Clone, Debug)]
enum Doc {
    /// `depth` opening brackets of one kind, maybe closed.
    Nested { depth: usize, flow_map: bool, closed: bool },
    /// A scalar of `size` bytes, anchored and aliased `aliases` times (maybe nested anchors).
    Aliased { size: usize, aliases: usize, levels: usize },
    /// Block sequences nested `depth` deep (`- - - x`).
    Dashes { depth: usize },
    /// Many small documents.
    Many { docs: usize },
}

fn doc() -> impl Strategy<Value = Doc> {
    prop_oneof![
        (prop_oneof![0usize..200, 1000usize..200_000], any::<bool>(), any::<bool>()).prop_map(|(depth, flow_map, closed)| Doc::Nested {
            depth,
            flow_map,
            closed
        }),
        (prop_oneof![0usize..100, 100_000usize..2_000_000], 0usize..3000, 1usize..12).prop_map(|(size, aliases, levels)| Doc::Aliased {
            size,
            aliases,
            levels
        }),
        (0usize..20_000).prop_map(|depth| Doc::Dashes { depth }),
        (0usize..5000).prop_map(|docs| Doc::Many { docs }),
    ]
}

fn doc_text(d: &Doc) -> String {
    let head =
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: doc, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n";
    match d {
        Doc::Nested { depth, flow_map, closed } => {
            let (o, c) = if *flow_map { ("{a: ", "}") } else { ("[", "]") };
            format!("{head}      id: {}{}\n", o.repeat(*depth), if *closed { c.repeat(*depth) } else { String::new() })
        }
        Doc::Aliased { size, aliases, levels } => {
            let mut s = format!("{head}      id: &a0 {}\n      prefixes:\n", "x".repeat(*size));
            // each level lists the previous one 10 times (a "billion laughs" when deep)
            for l in 1..*levels {
                s.push_str(&format!("      - &a{l} [{}]\n", vec![format!("*a{}", l - 1); 10].join(", ")));
            }
            for _ in 0..*aliases {
                s.push_str(&format!("      - *a{}\n", levels - 1));
            }
            s
        }
        Doc::Dashes { depth } => format!("{head}      id:\n        {}x\n", "- ".repeat(*depth)),
        Doc::Many { docs } => (0..*docs).map(|i| head.replace("name: doc", &format!("name: d{i}"))).collect::<Vec<_>>().join("---\n"),
    }
}

/// Any structure: parsed or refused in bounded time, with bounded messages.
fn structure_is_bounded(d: &Doc) -> Result<(), String> {
    let text = doc_text(d);
    let (_, errors) = frr_composer::input::parse_documents(&text, "fuzz.yaml");
    let total: usize = errors.iter().map(|e| e.to_string().len()).sum();
    if total > 64 * 1024 {
        return Err(format!("{total} bytes of errors"));
    }
    Ok(())
}

#[test]
fn fuzz_document_structure() {
    fuzz("documents", 20, doc(), structure_is_bounded);
}
