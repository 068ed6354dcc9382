//! Command-line front ends of the core (the thin I/O shell of `render`, `crds`, `bench-render`).

pub mod apply;
pub mod bench;
pub mod render;

use std::path::{Path, PathBuf};

use crate::core::Error;
use crate::input::{parse_documents, Objects};

/// The field example rendered when `render` is given no input.
pub const EMBEDDED_EXAMPLE: &[(&str, &str)] = &[
    ("embedded:metallb-wk3.yaml", include_str!("../../testdata/field/metallb-wk3/metallb-wk3.yaml")),
    ("embedded:node-wk3.yaml", include_str!("../../testdata/field/metallb-wk3/node-wk3.yaml")),
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads files and folders (recursively, `*.yaml`, `*.yml`, `*.json`, in name order); `-` is stdin.
pub fn load_inputs(paths: &[PathBuf]) -> (Objects, Vec<Error>) {
    let mut objects = Objects::default();
    let mut errors = Vec::new();
    if paths.is_empty() {
        for (name, text) in EMBEDDED_EXAMPLE {
            let (o, e) = parse_documents(text, name);
            objects.extend(o);
            errors.extend(e);
        }
        return (objects, errors);
    }
    let mut files = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            files.push(p.clone());
        } else if let Err(e) = yaml_files(p, &mut files) {
            errors.push(Error::Document { source_name: p.display().to_string(), reason: format!("cannot read folder: {e}") });
        }
    }
    for f in files {
        let text = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
        } else {
            std::fs::read_to_string(&f)
        };
        match text {
            Ok(text) => {
                let (o, e) = parse_documents(&text, &f.display().to_string());
                objects.extend(o);
                errors.extend(e);
            }
            Err(e) => errors.push(Error::Document { source_name: f.display().to_string(), reason: format!("cannot read: {e}") }),
        }
    }
    (objects, errors)
}

/// All CRDs as one multi-document YAML stream (what `frr-composer crds` prints).
pub fn crds_yaml() -> String {
    crate::api::all_crds().iter().map(|(_, crd)| serde_yaml::to_string(crd).expect("CRDs serialise")).collect::<Vec<_>>().join("---\n")
}
