//! The offline front door of the core: YAML files and folders in, the merged configuration out.
//!
//! `render`, `apply` and `lab` (and the benches and tests) read their inputs through here: the
//! files are read (`load_inputs`), the node and the agent's settings are worked out from the
//! arguments and the objects (`settings_for`), and the core composes them (`compose_objects`).
//! The agent reads the same objects from the API server instead and calls `core::compose`
//! directly.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;

use crate::core::error::printable;
use crate::core::{self, Composition, Error, Errors, Model, Settings, Snapshot};
use crate::files;
use crate::input::{parse_documents, Objects};
use crate::settings::LogLevelArg;

/// The field example rendered when `render` is given no input.
pub const EMBEDDED_EXAMPLE: &[(&str, &str)] = &[
    ("embedded:metallb-wk3.yaml", include_str!("../testdata/field/metallb-wk3/metallb-wk3.yaml")),
    ("embedded:node-wk3.yaml", include_str!("../testdata/field/metallb-wk3/node-wk3.yaml")),
];

/// The most files one command reads from folders: far beyond any repository of manifests, and a
/// bound on the work when a folder is not what the user meant.
pub const MAX_INPUT_FILES: usize = 10_000;

/// Collects the YAML and JSON files below `dir`, in name order. Entries are looked at without
/// following links: a link to a file is taken (it is read as a regular file or refused), a link
/// to a folder is not followed (a repository can hold a link to itself) and is reported in
/// `skipped`, and so is anything that is not a file or a folder.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>, skipped: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        let t = std::fs::symlink_metadata(&p)?.file_type();
        if t.is_dir() {
            yaml_files(&p, out, skipped)?;
        } else if t.is_symlink() && p.is_dir() {
            skipped.push(format!("{}: a link to a folder, not followed", printable(&p.display().to_string())));
        } else if yaml {
            if out.len() >= MAX_INPUT_FILES {
                return Err(std::io::Error::other(format!("more than {MAX_INPUT_FILES} YAML files")));
            }
            // links to files and special files are taken here and refused by the reader
            out.push(p);
        }
    }
    Ok(())
}

/// Reads files and folders (recursively, `*.yaml`, `*.yml`, `*.json`, in name order); `-` is
/// stdin. Only regular files are read, each up to [`files::MAX_INPUT_FILE`] bytes and all of
/// them up to [`files::MAX_INPUT_TOTAL`]; links to folders inside a folder are not followed.
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
    let document = |p: &Path, reason: String| Error::Document { source_name: printable(&p.display().to_string()).into_owned(), reason };
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            files.push(p.clone());
        } else if let Err(e) = yaml_files(p, &mut files, &mut skipped) {
            errors.push(document(p, format!("cannot read folder: {e}")));
        }
    }
    objects.warnings.extend(skipped);
    let mut total: u64 = 0;
    for f in files {
        let left = files::MAX_INPUT_TOTAL.saturating_sub(total);
        let limit = files::MAX_INPUT_FILE.min(left);
        let text = if f.as_os_str() == "-" { files::read_limited(std::io::stdin(), limit) } else { files::read_regular(&f, limit) };
        match text {
            Ok(text) => {
                total += text.len() as u64;
                let (o, e) = parse_documents(&text, &f.display().to_string());
                objects.extend(o);
                errors.extend(e);
            }
            Err(e) if limit < files::MAX_INPUT_FILE && e.kind() == std::io::ErrorKind::FileTooLarge => {
                errors.push(document(&f, format!("cannot read: the inputs together hold more than {} bytes", files::MAX_INPUT_TOTAL)));
                break;
            }
            Err(e) => errors.push(document(&f, format!("cannot read: {e}"))),
        }
    }
    (objects, errors)
}

/// How the node is described and what the agent's settings are; shared by `render` and `apply`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NodeArgs {
    /// Take the node's labels (and addresses) from the Node object of this name in the inputs.
    #[arg(long)]
    pub node: Option<String>,
    /// Node labels as k=v pairs, comma-separated (instead of, or on top of, --node).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Namespace the agent reads (default: the namespace of the FRRConfigurations in the inputs).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Hostname written into frr.conf (default: the node name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// CIDRs refused from every neighbor, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub always_block: Vec<String>,
    /// FRR log level (default: FRRK8sConfiguration `config` in the inputs, else info).
    #[arg(long, value_enum)]
    pub log_level: Option<LogLevelArg>,
    /// The node has no IPv4 address: routers without an id get one derived from the hostname.
    #[arg(long)]
    pub ipv6_only: bool,
}

/// What the composition needs besides the objects, worked out from the arguments and inputs.
pub fn settings_for(args: &NodeArgs, objects: &Objects, notices: &mut Vec<String>) -> Result<(Settings, BTreeMap<String, String>), Vec<Error>> {
    let mut errors = Vec::new();
    let setting = |s: &str, r: String| Error::Setting { setting: s.to_string(), reason: r };
    let namespace = match &args.namespace {
        Some(ns) => ns.clone(),
        None => {
            let namespaces: std::collections::BTreeSet<&str> = objects.configs.iter().map(|c| c.metadata.namespace.as_deref().unwrap_or("")).collect();
            match namespaces.len() {
                0 => String::new(),
                1 => namespaces.into_iter().next().unwrap_or_default().to_string(),
                _ => {
                    errors.push(setting(
                        "--namespace",
                        format!(
                            "the inputs hold FRRConfigurations of several namespaces ({}); choose one",
                            namespaces.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                    String::new()
                }
            }
        }
    };
    let node = match &args.node {
        Some(name) => match objects.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name)) {
            Some(n) => Some(n),
            None => {
                if args.labels.is_empty() {
                    errors.push(setting("--node", format!("no Node named {name:?} in the inputs (give its labels with --labels)")));
                }
                None
            }
        },
        None if objects.nodes.len() == 1 && args.labels.is_empty() => objects.nodes.first(),
        None => None,
    };
    let mut labels: BTreeMap<String, String> = node.and_then(|n| n.metadata.labels.clone()).unwrap_or_default();
    for kv in &args.labels {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                labels.insert(k.to_string(), v.to_string());
            }
            _ => errors.push(setting("--labels", format!("{kv:?} is not key=value"))),
        }
    }
    if node.is_none() && args.labels.is_empty() && objects.configs.iter().any(|c| c.spec.node_selector.is_some()) {
        notices.push("no node given (--node or --labels): the node has no labels".into());
    }
    let node_name = args.node.clone().or_else(|| node.and_then(|n| n.metadata.name.clone()));
    let hostname = args.hostname.clone().or(node_name).unwrap_or_else(|| "frr-composer".into());
    let mut always_block: Vec<IpNet> = Vec::new();
    for c in args.always_block.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        match core::values::parse_prefix(c) {
            Ok(n) => always_block.push(n),
            Err(e) => errors.push(setting("--always-block", e)),
        }
    }
    let log_level = match args.log_level {
        Some(l) => l.into(),
        None => objects
            .settings
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some("config") && s.metadata.namespace.as_deref().unwrap_or("") == namespace)
            .and_then(|s| s.spec.log_level)
            .unwrap_or_default(),
    };
    // Node addresses, when the inputs carry them, tell whether the node has IPv4.
    let addresses: Vec<IpAddr> = node
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.addresses.as_ref())
        .map(|a| a.iter().filter_map(|a| a.address.parse().ok()).collect())
        .unwrap_or_default();
    let node_has_ipv4 = !args.ipv6_only && (addresses.is_empty() || addresses.iter().any(|a| a.is_ipv4() && !a.is_loopback()));
    if errors.is_empty() {
        Ok((Settings { namespace, hostname, log_level, always_block, node_has_ipv4, frr_version: None }, labels))
    } else {
        Err(errors)
    }
}

/// Composes the inputs for the node; notices (ignored objects, warnings) are appended.
pub fn compose_objects(args: &NodeArgs, objects: &Objects, notices: &mut Vec<String>) -> Result<Composition, Errors> {
    notices.extend(objects.warnings.iter().map(|w| format!("warning: {w}")));
    let (settings, labels) = settings_for(args, objects, notices).map_err(Errors::new)?;
    let secrets = objects.secrets_in(&settings.namespace);
    let c = core::compose(&settings, Snapshot { node_labels: &labels, configs: &objects.configs, secrets: &secrets })?;
    for o in &c.other_namespace {
        notices.push(format!("ignored FRRConfiguration {o}: not in namespace {:?}", settings.namespace));
    }
    for o in &c.not_selected {
        notices.push(format!("FRRConfiguration {o} does not select this node"));
    }
    notices.extend(c.model.warnings.iter().map(|w| format!("warning: {w}")));
    notices.extend(crate::render::raw_name_warnings(&c.model).into_iter().map(|w| format!("warning: {w}")));
    Ok(c)
}

/// Renders the inputs; errors are printed and yield `None`.
pub fn desired(inputs: &[PathBuf], node: &NodeArgs, err: &mut dyn Write) -> Option<(Model, String)> {
    let (objects, load_errors) = load_inputs(inputs);
    let mut notices = Vec::new();
    let composed = if load_errors.is_empty() { compose_objects(node, &objects, &mut notices) } else { Err(crate::core::Errors::new(load_errors)) };
    for n in &notices {
        let _ = writeln!(err, "frr-composer: {n}");
    }
    match composed {
        Ok(c) => match crate::render::render(&c.model) {
            Ok(text) => Some((c.model, text)),
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                None
            }
        },
        Err(errors) => {
            for e in &errors.0 {
                let _ = writeln!(err, "error: {e}");
            }
            let _ = writeln!(err, "frr-composer: {} error(s); FRR keeps its current configuration", errors.0.len());
            None
        }
    }
}

pub fn inputs_stamp(paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>)> {
    fn walk(p: &std::path::Path, out: &mut Vec<(PathBuf, Option<SystemTime>)>) {
        let meta = std::fs::metadata(p).ok();
        out.push((p.to_path_buf(), meta.as_ref().and_then(|m| m.modified().ok())));
        if meta.is_some_and(|m| m.is_dir()) {
            if let Ok(entries) = std::fs::read_dir(p) {
                let mut v: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                v.sort();
                for e in v {
                    walk(&e, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n";

    fn errors_of(paths: &[PathBuf]) -> (Objects, Vec<String>) {
        let (o, e) = load_inputs(paths);
        (o, e.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn links_to_folders_are_not_followed() {
        // two links to the folder itself (a repository can hold them): read once, and said
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.yaml"), NODE).unwrap();
        std::os::unix::fs::symlink(".", dir.path().join("self")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("again")).unwrap();
        let (o, errors) = errors_of(&[dir.path().to_path_buf()]);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(o.nodes.len(), 1);
        assert_eq!(o.warnings.iter().filter(|w| w.contains("a link to a folder, not followed")).count(), 2, "{:?}", o.warnings);
    }

    #[test]
    fn special_files_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), NODE).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(dir.path().join("fifo.yaml")).status().unwrap().success());
        let (o, errors) = errors_of(&[dir.path().to_path_buf()]);
        assert_eq!(o.nodes.len(), 1, "the regular file is still read");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("fifo.yaml") && e.contains("not a regular file (a FIFO)")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("zero.yaml") && e.contains("not a regular file (a character device)")), "{errors:?}");
        // named on the command line, the same
        let (_, errors) = errors_of(&[PathBuf::from("/dev/zero")]);
        assert!(errors[0].contains("not a regular file"), "{errors:?}");
    }
}
