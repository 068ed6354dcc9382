//! Property tests of the core: order independence, idempotence, monotonicity, and that hostile
//! strings never add a line or a word to frr.conf.

use std::collections::BTreeMap;

use frr_composer::api::*;
use frr_composer::core::{compose, model::Model, Composition, Errors, SecretEntry, Settings, Snapshot};
use frr_composer::render::render;
use proptest::prelude::*;

fn settings() -> Settings {
    Settings { namespace: "ns".into(), hostname: "node1".into(), log_level: LogLevel::Info, always_block: vec![], node_has_ipv4: true, frr_version: None }
}

fn cfg(name: &str, spec: FRRConfigurationSpec) -> FRRConfiguration {
    let mut c = FRRConfiguration::new(name, spec);
    c.metadata.namespace = Some("ns".into());
    c
}

/// A pool of small configurations over a few neighbors, prefixes and options, some of which
/// conflict with each other.
fn pool_config(i: usize, seed: &[u8]) -> FRRConfiguration {
    let pick = |k: usize, n: usize| seed[(i * 7 + k) % seed.len()] as usize % n;
    let prefixes: Vec<String> = (0..1 + pick(0, 3)).map(|k| format!("10.{}.{}.0/24", pick(1, 3), (k + pick(2, 4)) % 4)).collect();
    let peer = format!("192.0.2.{}", 1 + pick(3, 3));
    let neighbor = Neighbor {
        asn: 65001 + pick(4, 2) as u32 * (pick(5, 4) / 3) as u32,
        address: Some(peer),
        enable_graceful_restart: pick(6, 2) == 1,
        hold_time: (pick(7, 5) == 0).then(|| "90s".to_string()),
        keepalive_time: (pick(7, 5) == 0).then(|| "30s".to_string()),
        to_advertise: Advertise {
            allowed: AllowedOutPrefixes {
                prefixes: prefixes.iter().take(1 + pick(8, 2)).cloned().collect(),
                mode: if pick(9, 4) == 0 { AllowMode::All } else { AllowMode::Filtered },
            },
            with_community: if pick(10, 3) == 0 {
                vec![CommunityPrefixes { prefixes: vec![prefixes[0].clone()], community: format!("65000:{}", pick(11, 3)) }]
            } else {
                vec![]
            },
            ..Default::default()
        },
        to_receive: Receive {
            allowed: AllowedInPrefixes {
                prefixes: (0..pick(12, 3))
                    .map(|k| PrefixSelector { prefix: format!("172.{}.0.0/16", 16 + k), le: if pick(13, 2) == 0 { 0 } else { 24 }, ge: 0 })
                    .collect(),
                mode: if pick(14, 5) == 0 { AllowMode::All } else { AllowMode::Filtered },
            },
        },
        ..Default::default()
    };
    let vrf = (pick(15, 4) == 0).then(|| "red".to_string());
    cfg(
        &format!("c{i}"),
        FRRConfigurationSpec {
            bgp: BgpConfig { routers: vec![Router { asn: 65000, vrf, neighbors: vec![neighbor], prefixes, ..Default::default() }], bfd_profiles: vec![] },
            ..Default::default()
        },
    )
}

fn run(configs: &[FRRConfiguration]) -> Result<Composition, Errors> {
    let labels = BTreeMap::new();
    let secrets: BTreeMap<String, SecretEntry> = BTreeMap::new();
    compose(&settings(), Snapshot { node_labels: &labels, configs, secrets: &secrets })
}

fn text(r: &Result<Composition, Errors>) -> String {
    match r {
        Ok(c) => render(&c.model).unwrap(),
        Err(e) => format!("ERR {e}"),
    }
}

/// Everything `a` has is still in `merged`.
fn contains(merged: &Model, a: &Model) -> Result<(), String> {
    for ra in &a.routers {
        let rm = merged.routers.iter().find(|r| r.vrf == ra.vrf).ok_or(format!("router {} lost", ra.vrf))?;
        for p in ra.prefixes.keys() {
            if !rm.prefixes.contains_key(p) {
                return Err(format!("network {p} lost"));
            }
        }
        for na in &ra.neighbors {
            let nm = rm.neighbors.iter().find(|n| n.peer == na.peer).ok_or(format!("neighbor {} lost", na.peer))?;
            for p in na.outbound.advertise.keys() {
                if !nm.outbound.advertise.contains_key(p) {
                    return Err(format!("advertisement {p} to {} lost", na.peer));
                }
            }
            if na.inbound.receive_all.is_some() && nm.inbound.receive_all.is_none() {
                return Err("receive all lost".into());
            }
            if nm.inbound.receive_all.is_none() {
                for f in na.inbound.receive.keys() {
                    if !nm.inbound.receive.contains_key(f) {
                        return Err(format!("receive {f} lost"));
                    }
                }
            }
            for (c, ps) in &na.outbound.communities {
                if !ps.iter().all(|p| nm.outbound.communities.get(c).is_some_and(|m| m.contains(p))) {
                    return Err(format!("community {c} lost"));
                }
            }
            if na.session.graceful_restart && !nm.session.graceful_restart {
                return Err("graceful restart lost".into());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn merge_is_order_independent(seed in prop::collection::vec(any::<u8>(), 32), n in 1usize..7, rot in 0usize..7) {
        let configs: Vec<_> = (0..n).map(|i| pool_config(i, &seed)).collect();
        let reference = text(&run(&configs));
        let mut reversed = configs.clone();
        reversed.reverse();
        prop_assert_eq!(&text(&run(&reversed)), &reference);
        let mut rotated = configs.clone();
        rotated.rotate_left(rot % n);
        prop_assert_eq!(&text(&run(&rotated)), &reference);
    }

    #[test]
    fn merging_a_config_with_itself_changes_nothing(seed in prop::collection::vec(any::<u8>(), 32), i in 0usize..50) {
        let a = pool_config(i, &seed);
        let mut copy = a.clone();
        copy.metadata.name = Some("zz-copy".into());
        let alone = run(std::slice::from_ref(&a));
        let twice = run(&[a, copy]);
        prop_assert_eq!(text(&alone), text(&twice));
    }

    #[test]
    fn merge_is_monotonic(seed in prop::collection::vec(any::<u8>(), 32), i in 0usize..50, j in 50usize..100) {
        let a = pool_config(i, &seed);
        let b = pool_config(j, &seed);
        if let (Ok(alone), Ok(merged)) = (run(std::slice::from_ref(&a)), run(&[a, b])) {
            if let Err(e) = contains(&merged.model, &alone.model) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// Fragments that try to break out of a value's place.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just("\r\n neighbor 203.0.113.9 remote-as 1".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{2028}".to_string()),
        Just("\u{85}".to_string()),
        Just("é".to_string()),
        Just("!".to_string()),
        Just("#".to_string()),
        Just("x".repeat(300)),
        "\\PC{0,8}",
        any::<String>(),
    ]
}

/// Which string field of the object gets the hostile value, and a valid value for it.
const FIELDS: usize = 16;
const BENIGN: [&str; FIELDS] = [
    "192.0.2.1",
    "pw",
    "192.0.2.2",
    "prof",
    "65000:1",
    "198.51.100.0/24",
    "198.51.100.0/24",
    "192.0.2.10",
    "red",
    "eth0",
    "203.0.113.0/24",
    "192.0.2.3",
    "node1",
    "65000:1",
    "90s",
    "10s",
];

fn object_with(field: usize, v: &str) -> (Vec<FRRConfiguration>, BTreeMap<String, SecretEntry>, Settings) {
    let mut settings = settings();
    let mut secrets = BTreeMap::new();
    let mut n = Neighbor {
        asn: 65001,
        address: Some("192.0.2.1".into()),
        password_secret: Some(k8s_openapi::api::core::v1::SecretReference { name: Some("pw".into()), namespace: None }),
        bfd_profile: Some("prof".into()),
        source_address: Some("192.0.2.2".into()),
        to_advertise: Advertise {
            allowed: AllowedOutPrefixes { prefixes: vec!["198.51.100.0/24".into()], mode: AllowMode::Filtered },
            with_community: vec![CommunityPrefixes { prefixes: vec!["198.51.100.0/24".into()], community: "65000:1".into() }],
            next_hop: Some(NextHop { ipv4: Some("192.0.2.3".into()), ipv6: None }),
            ..Default::default()
        },
        to_receive: Receive {
            allowed: AllowedInPrefixes { prefixes: vec![PrefixSelector { prefix: "203.0.113.0/24".into(), le: 32, ge: 0 }], mode: AllowMode::Filtered },
        },
        ..Default::default()
    };
    let mut router = Router { asn: 65000, id: Some("192.0.2.10".into()), prefixes: vec!["198.51.100.0/24".into()], ..Default::default() };
    let mut red = Router { asn: 65000, vrf: Some("red".into()), neighbors: vec![], prefixes: vec![], ..Default::default() };
    let mut profile = BfdProfile { name: "prof".into(), ..Default::default() };
    let mut password = "benign-pw".to_string();
    let mut raw_interface: Option<String> = None;
    let mut evpn_rd = "65000:1".to_string();
    match field {
        0 => n.address = Some(v.into()),
        1 => password = v.into(),
        2 => n.source_address = Some(v.into()),
        3 => {
            profile.name = v.into();
            n.bfd_profile = Some(v.into());
        }
        4 => n.to_advertise.with_community[0].community = v.into(),
        5 => n.to_advertise.allowed.prefixes = vec![v.into()],
        6 => router.prefixes = vec![v.into()],
        7 => router.id = Some(v.into()),
        8 => red.vrf = Some(v.into()),
        9 => raw_interface = Some(v.into()),
        10 => n.to_receive.allowed.prefixes[0].prefix = v.into(),
        11 => n.to_advertise.next_hop = Some(NextHop { ipv4: Some(v.into()), ipv6: None }),
        12 => settings.hostname = v.into(),
        13 => evpn_rd = v.into(),
        14 => n.hold_time = Some(v.into()),
        15 => n.connect_time = Some(v.into()),
        _ => {}
    }
    n.keepalive_time = n.hold_time.as_ref().map(|_| "3s".into());
    secrets.insert("pw".to_string(), SecretEntry { type_: "kubernetes.io/basic-auth".into(), password: Some(Ok(password)) });
    router.neighbors = vec![n];
    if let Some(i) = raw_interface {
        router.neighbors.push(Neighbor { interface: Some(i), dynamic_asn: Some(DynamicAsn::External), ..Default::default() });
    }
    red.neighbors = vec![Neighbor { asn: 65000, address: Some("192.0.2.20".into()), address_families: vec![AddressFamily::Evpn], ..Default::default() }];
    red.evpn = Some(EvpnConfig {
        advertise_vnis: Some(AdvertiseVnis::All),
        l2vnis: vec![L2Vni { vni: 100, rd: Some(evpn_rd), ..Default::default() }],
        ..Default::default()
    });
    let c = cfg("hostile", FRRConfigurationSpec { bgp: BgpConfig { routers: vec![router, red], bfd_profiles: vec![profile] }, ..Default::default() });
    (vec![c], secrets, settings)
}

fn render_with(field: usize, v: &str) -> Result<String, String> {
    let (configs, secrets, settings) = object_with(field, v);
    let labels = BTreeMap::new();
    let c = compose(&settings, Snapshot { node_labels: &labels, configs: &configs, secrets: &secrets }).map_err(|e| e.to_string())?;
    render(&c.model).map_err(|e| e.to_string())
}

/// Line shapes: the number of words on each line, sorted.
fn shape(text: &str) -> Vec<usize> {
    let mut v: Vec<usize> = text.lines().map(|l| l.split_whitespace().count()).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_strings_never_add_a_line_or_a_word(field in 0..FIELDS, prefix in any::<bool>(), frag in hostile()) {
        let benign = render_with(field, BENIGN[field]).expect("the benign object renders");
        let value = match (field, prefix) {
            (0, true) => format!("{frag}192.0.2.1"),
            (0, false) => format!("192.0.2.1{frag}"),
            (1, _) => format!("pw{frag}"),
            (5 | 6, _) => format!("198.51.100.0/24{frag}"),
            (_, true) => format!("{frag}x"),
            (_, false) => format!("x{frag}"),
        };
        match render_with(field, &value) {
            Err(msg) => {
                // errors are single-line per error and never echo a password
                if field == 1 && frag.len() > 2 {
                    prop_assert!(!msg.contains(&value), "the error echoes the password");
                }
            }
            Ok(text) => {
                prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "control character in output");
                prop_assert_eq!(shape(&text), shape(&benign), "value {:?} in field {} changed the shape of the config", value, field);
            }
        }
    }
}

/// Numbers anywhere in an object: a clear error or a valid config of the same shape, never a
/// panic (overflow, out-of-range values reaching FRR).
fn object_with_number(field: usize, v: u32) -> Result<String, String> {
    let (mut configs, secrets, settings) = object_with(99, "");
    {
        let spec = &mut configs[0].spec;
        let r = &mut spec.bgp.routers[0];
        let n = &mut r.neighbors[0];
        match field {
            0 => r.asn = v,
            1 => n.asn = v,
            2 => n.local_asn = v,
            3 => n.port = Some(v),
            4 => n.to_receive.allowed.prefixes[0].le = v,
            5 => n.to_receive.allowed.prefixes[0].ge = v,
            6 => n.to_advertise.with_local_pref = vec![LocalPrefPrefixes { prefixes: vec!["198.51.100.0/24".into()], local_pref: v }],
            7 => spec.bgp.bfd_profiles[0].receive_interval = Some(v),
            8 => spec.bgp.bfd_profiles[0].detect_multiplier = Some(v),
            9 => spec.bgp.bfd_profiles[0].minimum_ttl = Some(v),
            10 => spec.bgp.routers[1].evpn.as_mut().unwrap().l2vnis[0].vni = v,
            _ => spec.raw.priority = v as i32,
        }
    }
    let labels = BTreeMap::new();
    let c = compose(&settings, Snapshot { node_labels: &labels, configs: &configs, secrets: &secrets }).map_err(|e| e.to_string())?;
    render(&c.model).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn numbers_never_break_the_config(field in 0usize..12, v in prop_oneof![Just(0u32), Just(1), Just(32), Just(33), Just(128), Just(129), Just(65535), Just(65536), Just(16_777_216), Just(u32::MAX), any::<u32>()]) {
        if let Ok(text) = object_with_number(field, v) {
            let benign = render_with(99, "").unwrap();
            // a setting may add its own lines (local-as, a local-preference list), never more
            prop_assert!(shape(&text).len() <= shape(&benign).len() + 10);
            prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
        }
    }

    #[test]
    fn any_document_text_is_an_error_or_objects_never_a_panic(text in "\\PC{0,200}", prefix in prop_oneof![Just(""), Just("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: x, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - "), Just("---\n")]) {
        let _ = frr_composer::input::parse_documents(&format!("{prefix}{text}"), "fuzz.yaml");
    }
}

/// `--explain` and every error keep passwords out.
#[test]
fn passwords_never_leave_frr_conf() {
    let dir = std::env::temp_dir().join(format!("frr-composer-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("in.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\ntype: kubernetes.io/basic-auth\nstringData: {password: Sup3r-Secret-Value}\n---\n\
         apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: a, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n      neighbors:\n      - {address: 192.0.2.1, asn: 65001, passwordSecret: {name: s}}\n---\n\
         apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: b, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n      neighbors:\n      - {address: 192.0.2.1, asn: 65001, password: Other-Secret-Value}\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_frr-composer");
    for args in [vec!["render"], vec!["render", "--explain"]] {
        let o = std::process::Command::new(bin).args(&args).arg(&f).output().unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(2), "the two passwords conflict: {all}");
        assert!(all.contains("password") && !all.contains("Sup3r-Secret-Value") && !all.contains("Other-Secret-Value"), "{all}");
    }
    // when valid, the password is only in frr.conf itself
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("Other-Secret-Value", "Sup3r-Secret-Value")).unwrap();
    let o = std::process::Command::new(bin).args(["render", "--explain"]).arg(&f).output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && !all.contains("Sup3r-Secret-Value"), "{all}");
    let o = std::process::Command::new(bin).arg("render").arg(&f).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("neighbor 192.0.2.1 password Sup3r-Secret-Value"));
    let _ = std::fs::remove_dir_all(&dir);
}
