//! Prompt templates: the top-level `prompts/` directory (markdown with YAML front matter),
//! embedded at build time and served through `prompts/list` and `prompts/get`.

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::LazyLock;

mod files {
    include!(concat!(env!("OUT_DIR"), "/prompt_files.rs"));
}

/// The longest value accepted for one prompt argument.
const MAX_ARGUMENT_CHARS: usize = 2_000;

/// One template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file it came from.
    pub file: &'static str,
    /// Its front matter.
    pub meta: FrontMatter,
    /// The text, with `{{argument}}` placeholders.
    pub body: &'static str,
}

/// A template's front matter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    /// Stable prompt name.
    pub name: String,
    /// Human title.
    pub title: String,
    /// When to use it.
    pub description: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Vec<Argument>,
    /// The catalogue operations (tools) it drives.
    pub tools: Vec<String>,
}

/// One prompt argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argument {
    /// Its name, used as `{{name}}` in the body.
    pub name: String,
    /// What to pass.
    pub description: String,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
}

/// Why a template or a `prompts/get` request is unusable.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// A template file is malformed (a build-time mistake; tests catch it).
    #[error("prompt template {file}: {message}")]
    Template {
        /// The file.
        file: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No prompt has that name.
    #[error("no prompt named `{0}`; prompts/list shows them")]
    Unknown(String),
    /// The arguments do not fit the prompt.
    #[error("{0}")]
    Arguments(String),
}

fn parse(file: &'static str, text: &'static str) -> Result<Template, PromptError> {
    let err = |message: String| PromptError::Template { file, message };
    let rest = text
        .strip_prefix("---\n")
        .ok_or_else(|| err("must start with a `---` front matter line".into()))?;
    let (front, body) = rest
        .split_once("\n---\n")
        .ok_or_else(|| err("front matter is not closed by a `---` line".into()))?;
    let meta: FrontMatter = yaml_serde::from_str(front).map_err(|e| err(e.to_string()))?;
    Ok(Template { file, meta, body })
}

static TEMPLATES: LazyLock<Result<Vec<Template>, String>> = LazyLock::new(|| {
    files::FILES
        .iter()
        .map(|(file, text)| parse(file, text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
});

/// Every template, in file-name order.
pub fn templates() -> Result<&'static [Template], PromptError> {
    TEMPLATES
        .as_deref()
        .map_err(|message| PromptError::Template {
            file: "prompts/",
            message: message.clone(),
        })
}

/// The `prompts/list` entries.
pub fn list() -> Result<Vec<Prompt>, PromptError> {
    Ok(templates()?
        .iter()
        .map(|t| {
            let arguments = t
                .meta
                .arguments
                .iter()
                .map(|a| {
                    PromptArgument::new(&a.name)
                        .with_description(&a.description)
                        .with_required(a.required)
                })
                .collect();
            Prompt::new(&t.meta.name, Some(&t.meta.description), Some(arguments))
                .with_title(&t.meta.title)
        })
        .collect())
}

/// Renders prompt `name` with `arguments` (strings; a missing optional argument is empty).
pub fn get(
    name: &str,
    arguments: Option<&Map<String, Value>>,
) -> Result<GetPromptResult, PromptError> {
    let template = templates()?
        .iter()
        .find(|t| t.meta.name == name)
        .ok_or_else(|| PromptError::Unknown(name.to_owned()))?;
    let empty = Map::new();
    let given = arguments.unwrap_or(&empty);
    for key in given.keys() {
        if !template.meta.arguments.iter().any(|a| &a.name == key) {
            let known: Vec<&str> = template
                .meta
                .arguments
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            return Err(PromptError::Arguments(format!(
                "prompt `{name}` has no argument `{key}`; its arguments are: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let mut text = template.body.to_owned();
    for arg in &template.meta.arguments {
        let value = match given.get(&arg.name) {
            None | Some(Value::Null) if arg.required => {
                return Err(PromptError::Arguments(format!(
                    "prompt `{name}` needs argument `{}`: {}",
                    arg.name, arg.description
                )));
            }
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if value.chars().count() > MAX_ARGUMENT_CHARS {
            return Err(PromptError::Arguments(format!(
                "argument `{}` is longer than {MAX_ARGUMENT_CHARS} characters",
                arg.name
            )));
        }
        text = text.replace(&format!("{{{{{}}}}}", arg.name), &value);
    }
    let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
    result.description = Some(template.meta.description.clone());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use tenantops_core::catalogue;

    #[test]
    fn every_template_parses_and_the_guide_workflows_are_present() {
        let all = templates().unwrap();
        let names: BTreeSet<&str> = all.iter().map(|t| t.meta.name.as_str()).collect();
        assert_eq!(names.len(), all.len(), "prompt names must be unique");
        for required in [
            "monthly-close",
            "overage-investigation",
            "day1-onboarding",
            "dsar-export",
            "webhook-failures",
            "key-compliance-review",
            "on-call-revoke",
        ] {
            assert!(
                names.contains(required),
                "prompt {required} missing; have {names:?}"
            );
        }
        for t in all {
            assert_eq!(
                format!("{}.md", t.meta.name),
                t.file,
                "a prompt's file is named after it"
            );
        }
    }

    #[test]
    fn every_tool_a_prompt_names_exists_in_the_catalogue() {
        for t in templates().unwrap() {
            assert!(!t.meta.tools.is_empty(), "{}: names no tools", t.file);
            for tool in &t.meta.tools {
                assert!(
                    catalogue::find(tool).is_some(),
                    "{}: tool `{tool}` is not a catalogue operation",
                    t.file
                );
                assert!(
                    t.body.contains(&format!("`{tool}`")) || t.body.contains(tool.as_str()),
                    "{}: lists `{tool}` but never mentions it",
                    t.file
                );
            }
            // Every backticked dotted name in the body that looks like an operation must exist.
            for word in t.body.split('`').skip(1).step_by(2) {
                let looks_like_op = word.contains('.')
                    && word
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                    && !word.ends_with('.');
                if looks_like_op
                    && [
                        "members",
                        "keys",
                        "billing",
                        "audit",
                        "approvals",
                        "roles",
                        "tenant",
                    ]
                    .contains(&word.split('.').next().unwrap())
                {
                    assert!(
                        catalogue::find(word).is_some(),
                        "{}: mentions unknown operation `{word}`",
                        t.file
                    );
                }
            }
        }
    }

    #[test]
    fn placeholders_and_arguments_match() {
        for t in templates().unwrap() {
            let declared: BTreeSet<&str> =
                t.meta.arguments.iter().map(|a| a.name.as_str()).collect();
            let mut used = BTreeSet::new();
            let mut rest = t.body;
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let end = after
                    .find("}}")
                    .unwrap_or_else(|| panic!("{}: unclosed {{{{", t.file));
                used.insert(&after[..end]);
                rest = &after[end + 2..];
            }
            assert_eq!(
                declared, used,
                "{}: declared arguments and placeholders differ",
                t.file
            );
        }
    }

    #[test]
    fn get_fills_arguments_and_explains_mistakes() {
        let mut args = Map::new();
        args.insert("period".into(), Value::String("2026-10".into()));
        let r = get("monthly-close", Some(&args)).unwrap();
        let text = serde_json::to_string(&r.messages).unwrap();
        assert!(
            text.contains("2026-10") && !text.contains("{{period}}"),
            "{text}"
        );

        args.insert("bogus".into(), Value::String("x".into()));
        let e = get("monthly-close", Some(&args)).unwrap_err().to_string();
        assert!(
            e.contains("no argument `bogus`") && e.contains("period"),
            "{e}"
        );
        assert!(matches!(get("nope", None), Err(PromptError::Unknown(_))));
        let required = templates()
            .unwrap()
            .iter()
            .find(|t| t.meta.arguments.iter().any(|a| a.required))
            .expect("some prompt has a required argument");
        let e = get(&required.meta.name, None).unwrap_err().to_string();
        assert!(e.contains("needs argument"), "{e}");
    }
}
