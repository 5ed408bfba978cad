//! The MCP prompt templates in `prompts/` name only operations that exist, declare every
//! placeholder they use, and use every argument they declare.

use std::collections::BTreeSet;
use tenantops_core::catalogue;

struct Prompt {
    file: String,
    name: String,
    tools: Vec<String>,
    arguments: Vec<String>,
    body: String,
}

/// Reads the front matter's `name`, `tools: [...]` and `arguments: - name: ...` lines.
fn parse(file: &str, text: &str) -> Prompt {
    let rest = text
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("{file}: no front matter"));
    let (front, body) = rest
        .split_once("\n---\n")
        .unwrap_or_else(|| panic!("{file}: unterminated front matter"));
    let mut p = Prompt {
        file: file.into(),
        name: String::new(),
        tools: vec![],
        arguments: vec![],
        body: body.into(),
    };
    for line in front.lines() {
        let t = line.trim();
        if let Some(v) = line.strip_prefix("name:") {
            p.name = v.split('#').next().unwrap().trim().to_owned();
        } else if let Some(v) = t.strip_prefix("tools:") {
            let v = v.trim().trim_start_matches('[').trim_end_matches(']');
            p.tools = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        } else if let Some(v) = t.strip_prefix("- name:") {
            p.arguments.push(v.trim().to_owned());
        }
    }
    p
}

fn prompts() -> Vec<Prompt> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("prompts/ exists at the repository root") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("md") {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push(parse(&file, &std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

#[test]
fn every_tool_a_prompt_names_exists_in_the_catalogue() {
    let all = prompts();
    let names: BTreeSet<&str> = all.iter().map(|p| p.name.as_str()).collect();
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
    for p in &all {
        assert_eq!(
            format!("{}.md", p.name),
            p.file,
            "name must equal the file stem"
        );
        assert!(!p.tools.is_empty(), "{}: names no tools", p.file);
        for tool in &p.tools {
            assert!(
                catalogue::find(tool).is_some(),
                "{}: `{tool}` is not an operation",
                p.file
            );
        }
        // Operation names mentioned in backticks in the body must exist too.
        for (i, _) in p.body.match_indices('`') {
            let rest = &p.body[i + 1..];
            if let Some(end) = rest.find('`') {
                let word = &rest[..end];
                let looks_like_op = word.contains('.')
                    && word.split('.').all(|s| {
                        !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    })
                    && [
                        "members",
                        "keys",
                        "billing",
                        "approvals",
                        "audit",
                        "tenant",
                        "roles",
                    ]
                    .contains(&word.split('.').next().unwrap_or(""));
                if looks_like_op {
                    assert!(
                        catalogue::find(word).is_some(),
                        "{}: body names `{word}`, not an operation",
                        p.file
                    );
                }
            }
        }
        for arg in &p.arguments {
            assert!(
                p.body.contains(&format!("{{{{{arg}}}}}")),
                "{}: argument {arg} unused",
                p.file
            );
        }
        let mut rest = p.body.as_str();
        while let Some(i) = rest.find("{{") {
            let tail = &rest[i + 2..];
            let end = tail
                .find("}}")
                .unwrap_or_else(|| panic!("{}: unterminated placeholder", p.file));
            let placeholder = tail[..end].trim();
            assert!(
                p.arguments.iter().any(|a| a == placeholder),
                "{}: {{{{{placeholder}}}}} is not an argument",
                p.file
            );
            rest = &tail[end..];
        }
    }
}
