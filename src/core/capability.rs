//! What a configuration needs of the FRR that runs it. Some values pass FRR's syntax check
//! (`vtysh -C`) on every release we run, yet an older bgpd refuses them when they are applied;
//! against the version the agent read from FRR (`show version`) such an object gets an error
//! naming its field, the release it needs and the release that runs, instead of a failed
//! reload. With no version known (offline rendering, the webhook) nothing is checked here.

use super::error::{Error, ObjRef};
use crate::api::FRRConfigurationSpec;

/// The first FRR release that takes a wildcard import route target (`*:N`) for an L3VNI:
/// FRR 8.4's bgpd refuses it ("Malformed Route Target"), 10.3 and 10.7 apply it (the lab's
/// goldens on the three). FRR added the wildcard for L3 route targets after 8.4.
pub const WILDCARD_IMPORT_RT: (u32, u32) = (8, 5);

/// (major, minor) of an FRR version as `show version` prints it: `8.4.4`, `10.3`,
/// `10.7.1-6`, `10.5-dev`.
pub fn release(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The fields of `spec` that FRR `version` cannot apply, each as an error of `obj`.
pub fn check(obj: &ObjRef, spec: &FRRConfigurationSpec, version: Option<&str>) -> Vec<Error> {
    let Some((version, running)) = version.and_then(|v| Some((v, release(v)?))) else { return Vec::new() };
    let mut errors = Vec::new();
    for (i, r) in spec.bgp.routers.iter().enumerate() {
        let Some(l3) = r.evpn.as_ref().and_then(|e| e.l3vni.as_ref()) else { continue };
        for (k, rt) in l3.import_rts.iter().enumerate().filter(|(_, rt)| rt.starts_with("*:")) {
            if running < WILDCARD_IMPORT_RT {
                let (major, minor) = WILDCARD_IMPORT_RT;
                errors.push(Error::invalid(
                    obj,
                    format!("spec.bgp.routers[{i}].evpn.l3vni.importRTs[{k}]"),
                    format!("the wildcard route target {rt:?} needs FRR {major}.{minor} or later; this node runs FRR {version}"),
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_as_frr_prints_them() {
        assert_eq!(release("8.4.4"), Some((8, 4)));
        assert_eq!(release("10.3"), Some((10, 3)));
        assert_eq!(release("10.7.1-6"), Some((10, 7)));
        assert_eq!(release("10.5-dev"), Some((10, 5)));
        assert_eq!(release("FRRouting"), None);
    }

    #[test]
    fn a_wildcard_import_route_target_needs_frr_8_5() {
        let spec: FRRConfigurationSpec = serde_yaml::from_str(
            "bgp:\n  routers:\n  - asn: 64512\n  - asn: 64512\n    vrf: red\n    evpn:\n      l3vni: {vni: 3000, importRTs: ['64512:3000', '*:3000'], advertisePrefixes: [unicast]}\n",
        )
        .unwrap();
        let obj = ObjRef::new("frr-k8s-system", "evpn");
        let e = check(&obj, &spec, Some("8.4.4"));
        assert_eq!(e.len(), 1);
        let msg = e[0].to_string();
        assert!(
            msg.contains("frr-k8s-system/evpn")
                && msg.contains("spec.bgp.routers[1].evpn.l3vni.importRTs[1]")
                && msg.contains("needs FRR 8.5 or later; this node runs FRR 8.4.4"),
            "{msg}"
        );
        for newer in ["8.5", "10.3", "10.7.1"] {
            assert!(check(&obj, &spec, Some(newer)).is_empty(), "{newer}");
        }
        assert!(check(&obj, &spec, None).is_empty(), "no version known: nothing checked");
    }
}
