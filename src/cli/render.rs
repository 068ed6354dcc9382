//! `frr-composer render`: YAML files in, frr.conf out; `--check`/`--update` for golden files in CI.

use std::io::Write;
use std::path::PathBuf;

use crate::core::error::printable;
use crate::core::Errors;
use crate::offline::{compose_objects, load_inputs, NodeArgs};
pub use crate::settings::LogLevelArg;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct RenderArgs {
    /// YAML files or folders (FRRConfiguration, Secret, Node, FRRK8sConfiguration, List);
    /// `-` reads stdin. Without any, the embedded field example (metallb-wk3) is rendered.
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Compare with FILE: print a unified diff and exit 1 on any difference.
    #[arg(long, value_name = "FILE", conflicts_with = "update")]
    pub check: Option<PathBuf>,
    /// Write the result to FILE (only when the inputs are valid).
    #[arg(long, value_name = "FILE")]
    pub update: Option<PathBuf>,
    /// Print which FRRConfiguration(s) contributed each router, neighbor and prefix.
    #[arg(long)]
    pub explain: bool,
}

/// Runs `render`; returns the exit code (0 ok, 1 `--check` found a difference, 2 invalid input).
pub fn run(args: &RenderArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (objects, load_errors) = load_inputs(&args.inputs);
    if args.inputs.is_empty() {
        let _ = writeln!(err, "frr-composer: no input given; rendering the embedded field example (metallb-wk3)");
    }
    let mut notices: Vec<String> = objects.ignored.iter().map(|i| format!("ignored {i}")).collect();
    let composed = if load_errors.is_empty() { compose_objects(&args.node, &objects, &mut notices) } else { Err(Errors::new(load_errors)) };
    for n in &notices {
        let _ = writeln!(err, "frr-composer: {n}");
    }
    let composition = match composed {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                let _ = writeln!(err, "error: {e}");
            }
            let _ = writeln!(err, "frr-composer: {} error(s); nothing written", errors.0.len());
            return 2;
        }
    };
    if args.explain {
        let _ = out.write_all(crate::render::explain(&composition.model).as_bytes());
        return 0;
    }
    let text = match crate::render::render(&composition.model) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    if let Some(path) = &args.check {
        let expected = match crate::files::read_regular(path, crate::files::MAX_INPUT_FILE) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: cannot read {}: {e}", printable(&path.display().to_string()));
                return 2;
            }
        };
        if expected == text {
            return 0;
        }
        let _ = out.write_all(redacted_diff(&expected, &text, &path.display().to_string()).as_bytes());
        return 1;
    }
    if let Some(path) = &args.update {
        if let Err(e) = std::fs::write(path, &text) {
            let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
            return 2;
        }
        return 0;
    }
    let _ = out.write_all(text.as_bytes());
    0
}

/// How long `--check` looks for the smallest diff. Past it the rest of the two texts is shown as
/// removed and added lines: still a correct diff that names every line, found in linear time
/// (a golden whose lines all changed took minutes without it).
pub const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// A unified diff (3 lines of context) in which every line, context included, is redacted:
/// a changed password shows as a changed line, never its old or new value.
pub fn redacted_diff(expected: &str, rendered: &str, name: &str) -> String {
    use similar::ChangeTag;
    let diff = similar::TextDiff::configure().timeout(DIFF_DEADLINE).diff_lines(expected, rendered);
    let mut s = format!("--- {}\n+++ rendered\n", printable(name));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        s.push_str(&format!("{}\n", hunk.header()));
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            let line = change.value();
            s.push(sign);
            s.push_str(&crate::frr::redact_line(line.strip_suffix('\n').unwrap_or(line)));
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rebuilds (expected, rendered) from a unified diff of texts without passwords.
    fn sides(diff: &str) -> (Vec<&str>, Vec<&str>) {
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for l in diff.lines().skip(2).filter(|l| !l.starts_with("@@")) {
            match l.split_at(1) {
                ("-", t) => old.push(t),
                ("+", t) => new.push(t),
                (_, t) => {
                    old.push(t);
                    new.push(t);
                }
            }
        }
        (old, new)
    }

    #[test]
    fn a_diff_of_a_golden_whose_every_line_changed_ends_and_names_every_line() {
        // 84k lines on each side, none shared: the smallest diff costs time quadratic in the
        // lines (minutes); past the deadline the rest is shown as removed and added lines
        let expected: String = (0..84_000).map(|i| format!("ip prefix-list a seq {i} permit 192.0.2.0/24\n")).collect();
        let rendered: String = (0..84_000).map(|i| format!("ip prefix-list b seq {i} permit 198.51.100.0/24\n")).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let (e, r) = (expected.clone(), rendered.clone());
        std::thread::spawn(move || tx.send(redacted_diff(&e, &r, "golden")).unwrap());
        // a hang guard, far above the deadline: without it this diff took 141 s
        let diff = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the diff ends");
        let (old, new) = sides(&diff);
        assert_eq!(old, expected.lines().collect::<Vec<_>>());
        assert_eq!(new, rendered.lines().collect::<Vec<_>>());
    }

    #[test]
    fn a_small_diff_shows_only_the_changed_lines_with_context() {
        let expected = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let rendered = "a\nb\nc\nd\nX\nf\ng\nh\n";
        let diff = redacted_diff(expected, rendered, "golden");
        assert_eq!(diff, "--- golden\n+++ rendered\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+X\n f\n g\n h\n");
    }
}
