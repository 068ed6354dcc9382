//! Command-line front ends of the core (the thin I/O shell of `render`, `crds`, `bench-render`).

pub mod apply;
pub mod bench;
pub mod diff;
pub mod lab;
pub mod peers;
pub mod render;
pub mod routes;
pub mod why;

/// All CRDs as one multi-document YAML stream (what `frr-composer crds` prints).
pub fn crds_yaml() -> String {
    crate::api::all_crds().iter().map(|(_, crd)| serde_yaml::to_string(crd).expect("CRDs serialise")).collect::<Vec<_>>().join("---\n")
}
