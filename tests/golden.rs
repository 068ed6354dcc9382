//! Golden render cases: `testdata/render/<case>/input.yaml` (+ optional `args`) must render to
//! `expected.conf`, or fail with exactly the errors in `expected.err`. Each case also runs with
//! its documents in reverse and rotated order and must give the same result.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the expected files.

use std::path::{Path, PathBuf};

use clap::Parser;
use frr_composer::cli::render::{run, RenderArgs};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: RenderArgs,
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/render");
    let mut v: Vec<PathBuf> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

fn render(input: &Path, extra: &[String]) -> (i32, String, String) {
    let mut argv = vec!["render".to_string(), input.display().to_string()];
    argv.extend(extra.iter().cloned());
    let w = Wrapper::try_parse_from(&argv).unwrap_or_else(|e| panic!("bad args {argv:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&w.args, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

/// The `error:` lines, with the case folder's path removed so that goldens do not depend on
/// where the repository is checked out.
fn error_lines(stderr: &str) -> String {
    let root = format!("{}/", Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/render").display());
    stderr.lines().filter(|l| l.starts_with("error: ")).map(|l| format!("{}\n", l.replace(&root, ""))).collect()
}

fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            docs.push(String::new());
        } else {
            let last = docs.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.into_iter().filter(|d| d.lines().any(|l| !l.trim().is_empty() && !l.starts_with('#'))).collect()
}

#[test]
fn golden_cases() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() > 50, "expected the golden corpus, found {} cases", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let input = case.join("input.yaml");
        let extra: Vec<String> = std::fs::read_to_string(case.join("args")).map(|a| a.split_whitespace().map(String::from).collect()).unwrap_or_default();
        let (code, out, err) = render(&input, &extra);
        let conf = case.join("expected.conf");
        let errf = case.join("expected.err");
        if update {
            let _ = std::fs::remove_file(&conf);
            let _ = std::fs::remove_file(&errf);
            match code {
                0 => std::fs::write(&conf, &out).unwrap(),
                2 => std::fs::write(&errf, error_lines(&err)).unwrap(),
                c => panic!("{name}: exit {c}: {err}"),
            }
        }
        let result = if conf.exists() {
            let expected = std::fs::read_to_string(&conf).unwrap();
            if code != 0 {
                Err(format!("exit {code}, stderr:\n{err}"))
            } else if out != expected {
                let diff = similar::TextDiff::from_lines(&expected, &out);
                Err(format!("rendered text differs:\n{}", diff.unified_diff().header("expected.conf", "rendered")))
            } else {
                Ok(out)
            }
        } else if errf.exists() {
            let expected = std::fs::read_to_string(&errf).unwrap();
            if code != 2 {
                Err(format!("expected exit 2, got {code}; stdout:\n{out}"))
            } else if !out.is_empty() {
                Err("an invalid input wrote to stdout".into())
            } else if error_lines(&err) != expected {
                Err(format!("errors differ:\nexpected:\n{expected}got:\n{}", error_lines(&err)))
            } else {
                Ok(error_lines(&err))
            }
        } else {
            Err("no expected.conf or expected.err".into())
        };
        let reference = match result {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        // Same inputs in another order: same bytes out, same errors.
        let docs = documents(&std::fs::read_to_string(&input).unwrap());
        if docs.len() > 1 {
            let dir = std::env::temp_dir().join(format!("frr-composer-golden-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut orders = vec![docs.iter().rev().cloned().collect::<Vec<_>>()];
            let mut rotated = docs.clone();
            rotated.rotate_left(1);
            orders.push(rotated);
            for (k, order) in orders.into_iter().enumerate() {
                let f = dir.join(format!("order{k}.yaml"));
                std::fs::write(&f, order.join("---\n")).unwrap();
                let (_, out2, err2) = render(&f, &extra);
                let got = if conf.exists() { out2 } else { error_lines(&err2).replace(&f.display().to_string(), &input.display().to_string()) };
                if got != reference {
                    failures.push(format!("{name}: the result depends on the order of the documents (order {k}):\n{got}"));
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    assert!(failures.is_empty(), "{} golden case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}
