//! Rendering: a pure function from the model to frr.conf text, through minijinja templates that
//! are embedded in the binary.
//!
//! The Rust side decides names and numbers (shared prefix lists, stable sequence numbers); the
//! templates only place already-validated values into FRR's syntax.

mod explain;
mod plan;
pub use explain::{explain, sources_for_line};

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::core::Model;
pub use plan::{plan, raw_name_warnings, Plan, PrefixList, RouteMapEntry};

const TEMPLATES: &[(&str, &str)] = &[
    ("frr.conf.j2", include_str!("../../templates/frr.conf.j2")),
    ("filters.j2", include_str!("../../templates/filters.j2")),
    ("router.j2", include_str!("../../templates/router.j2")),
    ("bfd.j2", include_str!("../../templates/bfd.j2")),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build().expect("static syntax config"),
        );
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("embedded templates parse");
        }
        env
    })
}

#[derive(Debug, thiserror::Error)]
#[error("rendering frr.conf failed: {0}")]
pub struct RenderError(String);

/// Renders the model into frr.conf.
pub fn render(model: &Model) -> Result<String, RenderError> {
    // the core refuses more; a model built elsewhere must not make the numbering give up
    for n in model.routers.iter().flat_map(|r| &r.neighbors) {
        if n.outbound.property_entries() > crate::core::model::MAX_PROPERTY_ENTRIES {
            return Err(RenderError(format!(
                "neighbor {}: more than {} local preference, community and AS-path prepend settings",
                n.peer,
                crate::core::model::MAX_PROPERTY_ENTRIES
            )));
        }
    }
    let plan = plan(model);
    render_plan(&plan)
}

pub fn render_plan(plan: &Plan) -> Result<String, RenderError> {
    let tmpl = environment().get_template("frr.conf.j2").map_err(|e| RenderError(e.to_string()))?;
    let text = tmpl.render(minijinja::value::Serde(plan)).map_err(|e| RenderError(format!("{e:#}")))?;
    // Defence in depth: every value was validated as one word; a line that is not ours would
    // mean a template or validation bug, so refuse to hand it to FRR. Raw snippets are the
    // user's own text; everything around them (their comment line too) is checked.
    let generated = if plan.raw.is_empty() {
        std::borrow::Cow::Borrowed(&text)
    } else {
        let mut without_raw = plan.clone();
        without_raw.raw.iter_mut().for_each(|r| r.text.clear());
        std::borrow::Cow::Owned(tmpl.render(minijinja::value::Serde(&without_raw)).map_err(|e| RenderError(format!("{e:#}")))?)
    };
    if let Some(bad) = generated.chars().find(|c| c.is_control() && *c != '\n') {
        return Err(RenderError(format!("rendered text contains the control character {bad:?}")));
    }
    Ok(text)
}
