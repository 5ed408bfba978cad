//! The layers inside `crates/core`, enforced: every module belongs to a layer (ARCHITECTURE.md
//! names them), a module imports only from its own layer or lower ones, and no file imports a
//! file that imports it back. A new module must be given its layer here.
//!
//! An import is any `crate::…` or `super::…` path outside comments and test modules, or a child
//! module named by a relative path in code; a module re-exporting or declaring its children is
//! structure, not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// (module path prefix, layer). The longest matching prefix decides.
const LAYERS: &[(&str, u8)] = &[
    // 0 — vocabulary: plain types and pure functions.
    ("error", 0),
    ("ids", 0),
    ("clock", 0),
    ("scope", 0),
    ("principal", 0),
    ("redact", 0),
    ("apikey", 0),
    ("fault", 0),
    ("hints", 0),
    ("request_state", 0),
    // 1 — the store: engines, repositories, the writer. Reads and writes rows, decides nothing.
    ("store", 1),
    // 2 — services over the store: roles, the ledger, keys of the platform, notifications, the
    // shared environment.
    ("roles", 2),
    ("ledger", 2),
    ("secrets", 2),
    // Tenants' keys in cloud KMSs, and the guard for every tenant-given outbound URL.
    ("kms", 2),
    ("outbound", 2),
    // The sealing service: tenants' data keys, sealed values, the re-wrap's work in a transaction.
    ("vault", 2),
    ("jwt", 2),
    ("notify", 2),
    ("event", 2),
    ("config", 2),
    ("env", 2),
    // 3 — the Operation vocabulary and the references operations take.
    ("operation", 3),
    ("refs", 3),
    // 4 — domain rules.
    ("approvals", 4),
    ("billing", 4),
    ("members", 4),
    ("keys", 4),
    ("chat", 4),
    ("proof", 4),
    // 5 — the operations and their registry.
    ("ops", 5),
    // 6 — the engine: `Core`, and by concern its authentication, dispatch, execution, chat
    // identities, publication and worker.
    ("core", 6),
    ("engine", 6),
];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .filter(|(p, _)| module == *p || module.starts_with(&format!("{p}::")))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, l)| *l)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file: module path (`""` for lib.rs) → file.
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().with_extension("");
            let mut module = rel.to_string_lossy().replace('/', "::");
            if module == "lib" {
                module.clear();
            } else if let Some(m) = module.strip_suffix("::mod") {
                module = m.to_owned();
            }
            (module, p)
        })
        .collect()
}

/// The code of a file without comments and without its test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `pub use x::{A, B};` lines of lib.rs: names re-exported at the crate root → their module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        if let Some((path, names)) = rest.split_once("::{") {
            for n in names.trim_end_matches('}').split(',') {
                out.insert(n.trim().to_owned(), path.to_owned());
            }
        } else if let Some((path, name)) = rest.rsplit_once("::") {
            out.insert(name.to_owned(), path.to_owned());
        }
    }
    out
}

/// Paths of the form `a::b::C` starting at `at` in `text`.
fn path_at(text: &str, at: usize) -> String {
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect::<String>()
        .trim_end_matches(':')
        .to_owned()
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let reexports = root_reexports(&lib);
    let resolve = |path: &str| -> Option<String> {
        let mut parts: Vec<String> = path.split("::").map(str::to_owned).collect();
        if let Some(first) = parts.first()
            && let Some(target) = reexports.get(first)
        {
            let mut full: Vec<String> = target.split("::").map(str::to_owned).collect();
            full.extend(parts.drain(1..));
            parts = full;
        }
        (1..=parts.len())
            .rev()
            .map(|i| parts[..i].join("::"))
            .find(|m| mods.contains_key(m))
    };
    let mut graph = BTreeMap::new();
    for (module, path) in &mods {
        let text = code(path);
        let mut deps = BTreeSet::new();
        let parent = module.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let is_dir_module = path.ends_with("mod.rs") || module.is_empty();
        // `crate::…` paths, and `use crate::{a::b, c}` groups.
        for (i, _) in text.match_indices("crate::") {
            let p = path_at(&text, i + "crate::".len());
            if text[i + 7..].starts_with('{') {
                let end = text[i..].find('}').map_or(text.len(), |e| i + e);
                for item in text[i + 8..end].split(',') {
                    let item = item.trim().split(' ').next().unwrap_or("");
                    let item = item.split("::{").next().unwrap_or("");
                    if let Some(m) = resolve(item) {
                        deps.insert(m);
                    }
                }
            } else if let Some(m) = resolve(&p) {
                deps.insert(m);
            }
        }
        // `super::…` paths.
        // `super` is the parent module, whether this module is a file or a directory.
        let under_parent = |p: &str| {
            if parent.is_empty() {
                p.to_owned()
            } else {
                format!("{parent}::{p}")
            }
        };
        for (i, _) in text.match_indices("super::") {
            let at = i + "super::".len();
            let items: Vec<String> = if text[at..].starts_with('{') {
                let end = text[at..].find('}').map_or(text.len(), |e| at + e);
                text[at + 1..end]
                    .split(',')
                    .map(|item| {
                        item.trim()
                            .split([' ', '{'])
                            .next()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .map(|item| item.trim_end_matches(':').to_owned())
                    .collect()
            } else {
                vec![path_at(&text, at)]
            };
            for item in items.iter().filter(|i| !i.is_empty()) {
                if let Some(m) = resolve(&under_parent(item)) {
                    deps.insert(m);
                }
            }
        }
        // Children named by a relative path in code (not in `use`/`mod` lines).
        if is_dir_module {
            let body: String = text
                .lines()
                .filter(|l| {
                    let t = l.trim_start();
                    !(t.starts_with("use ")
                        || t.starts_with("pub use ")
                        || t.starts_with("pub(crate) use ")
                        || t.starts_with("mod ")
                        || t.starts_with("pub mod ")
                        || t.starts_with("pub(crate) mod "))
                })
                .collect::<Vec<_>>()
                .join("\n");
            for child in mods.keys().filter(|c| {
                let prefix = if module.is_empty() {
                    String::new()
                } else {
                    format!("{module}::")
                };
                c.starts_with(&prefix) && !c[prefix.len()..].contains("::") && *c != module
            }) {
                let name = child.rsplit("::").next().unwrap();
                let needle = format!("{name}::");
                let used = body.match_indices(&needle).any(|(i, _)| {
                    i == 0 || {
                        let b = body.as_bytes()[i - 1];
                        !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
                    }
                });
                if used {
                    deps.insert(child.clone());
                }
            }
        }
        deps.remove(module);
        deps.remove("");
        graph.insert(module.clone(), deps);
    }
    graph
}

#[test]
fn every_module_has_a_layer_and_imports_only_its_own_or_lower_layers() {
    let graph = imports();
    let mut wrong = Vec::new();
    for (module, deps) in &graph {
        if module.is_empty() {
            continue;
        }
        let Some(mine) = layer_of(module) else {
            wrong.push(format!("`{module}` has no layer: add it to LAYERS"));
            continue;
        };
        for d in deps {
            if let Some(theirs) = layer_of(d)
                && theirs > mine
            {
                wrong.push(format!(
                    "`{module}` (layer {mine}) imports `{d}` (layer {theirs})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let graph = imports();
    // Tarjan's strongly connected components.
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        circles: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.circles.push(scc);
            }
        }
    }
    let mut t = T {
        g: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    assert!(
        t.circles.is_empty(),
        "import circles between files: {:?}",
        t.circles
    );
}

#[test]
fn the_checker_sees_imports() {
    let graph = imports();
    assert!(graph["engine::dispatch"].contains("operation"), "{graph:?}");
    assert!(graph["ops::registry"].contains("ops::members"), "{graph:?}");
    assert!(graph["store::keys"].contains("principal"), "{graph:?}");
}
