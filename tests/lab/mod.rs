//! Live lab harness: real FRR daemons and GoBGP peers in Linux network namespaces.
//!
//! Use from an integration test with `mod lab;`. The parts (namespaces, FRR instances, GoBGP
//! peers, their cleanup) are the library's `frr_composer::lab`, which `frr-composer lab` also
//! uses; this file adds what only tests need: the skip-or-fail policy and the crate's binary.
//!
//! Needs root, `ip netns`, FRR 8.4 (Debian) and the FRR 10.3 and 10.7 chroots of `.ci/install-frr.sh`.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use anyhow::Result;

pub(crate) use crate::support;
use crate::support::run;

pub use frr_composer::lab::*;

/// One `#[test]` per FRR version of the suite for each scenario `fn(FrrVersion)`:
/// `crate::frr_versions!(policy, bfd);` makes `policy::frr_8_4`, `policy::frr_10_3`,
/// `policy::frr_10_7`, ... Adding an FRR version to every such test is one line here (and its
/// entry in `FrrVersion::ALL`, which the data-driven tests loop over).
#[macro_export]
macro_rules! frr_versions {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::FrrVersion;
                #[test] fn frr_8_4() { super::$scenario(FrrVersion::V8) }
                #[test] fn frr_10_3() { super::$scenario(FrrVersion::V10) }
                #[test] fn frr_10_7() { super::$scenario(FrrVersion::V10_7) }
            }
        )*
    };
}

/// True when the lab can run `reqs`. Otherwise: panics under `CI=true` (the lab is
/// mandatory there), else prints a SKIPPED message and returns false.
pub fn require(reqs: &[Req]) -> bool {
    support::require_lab(reqs)
}

/// Run the crate's binary: `frr-composer render INPUTS... EXTRA...`; Ok(frr.conf) or an error
/// with the exit status and stderr.
pub fn render(inputs: &[&Path], extra: &[&str]) -> Result<String> {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frr-composer"));
    c.arg("render").args(inputs).args(extra);
    run(&mut c)
}

/// The Node `lab-node` (label kubernetes.io/hostname), as the first document of a test's input.
pub const NODE_DOC: &str = "apiVersion: v1
kind: Node
metadata:
  name: lab-node
  labels:
    kubernetes.io/hostname: lab-node
---
";
