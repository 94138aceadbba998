//! The module graph reads one way: no two modules of src/ use each other in a circle,
//! at any level (top-level modules, the modules inside `proxy`, the files of one
//! folder). docs/architecture.md draws the layers this keeps.
//!
//! The graph is read from the source itself: every `crate::a::b` path and every
//! `use crate::{..}` tree, plus `super::` paths (in comments too), with test code
//! (`#[cfg(test)]` onwards) left out, since a unit test may reach anywhere. An edge from module A to module B is
//! kept at the level where A and B are siblings: `crate::proxy::front::server` using
//! `crate::proxy::pool::direct` is the edge `front → pool` inside `proxy`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path such as `["proxy", "front", "server"]`.
type ModPath = Vec<String>;

/// Every `.rs` file under `dir` with its module path.
fn modules(root: &Path) -> Vec<(ModPath, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: ModPath = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|last| last == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            out.push((parts, path));
        }
    }
    out
}

/// The text before the first `#[cfg(test)]`. Comments are kept: a doc comment that
/// names `crate::x` is a reader's arrow too (and the project's before-stop check reads
/// them the same way).
fn code_of(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    text.split("#[cfg(test)]").next().unwrap_or_default().to_string()
}

/// Expands a `use` tree (`crate::a::{b, c::{d, e}}`) into its paths.
fn expand_use(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default().trim();
        out.push(format!("{prefix}{path}"));
        return;
    };
    let head = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut depth = 0;
    let mut start = 0;
    for (index, character) in inner.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand_use(&inner[start..index], &format!("{prefix}{head}"), out);
                start = index + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand_use(&inner[start..], &format!("{prefix}{head}"), out);
    }
}

/// Every module path a file refers to, resolved from `crate::` or `super::`.
fn references(module: &ModPath, code: &str) -> Vec<ModPath> {
    let mut paths = Vec::new();
    // `use` statements, which may span lines and hold trees.
    let mut rest = code;
    while let Some(index) = rest.find("use ") {
        let before = rest[..index].chars().last();
        let after = &rest[index + 4..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = after.find(';') else { break };
        let tree: String = after[..end].split_whitespace().collect::<Vec<_>>().join(" ");
        if tree.starts_with("crate::") || tree.starts_with("super::") {
            expand_use(&tree, "", &mut paths);
        }
    }
    // Inline paths such as `crate::proxy::admin::dashboard::response()`.
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(index) = rest.find(start) {
            let tail = &rest[index..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            paths.push(tail[..end].trim_end_matches(':').to_string());
            rest = &tail[start.len()..];
        }
    }
    let mut resolved = Vec::new();
    for path in paths {
        let mut parts: Vec<&str> = path.split("::").filter(|part| !part.is_empty()).collect();
        let mut base: ModPath = if parts.first() == Some(&"crate") {
            parts.remove(0);
            Vec::new()
        } else {
            // `super` of the module `a::b` is `a`, whether it lives in `a/b.rs` or
            // in `a/b/mod.rs`.
            let mut base = module.clone();
            while parts.first() == Some(&"super") {
                parts.remove(0);
                base.pop();
            }
            base
        };
        base.extend(parts.iter().map(|part| part.to_string()));
        resolved.push(base);
    }
    resolved
}

/// Edges between siblings: parent module → (from child, to child).
fn sibling_edges() -> BTreeMap<ModPath, BTreeSet<(String, String)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules(&root);
    let known: BTreeSet<ModPath> = files.iter().map(|(module, _)| module.clone()).collect();
    let mut edges: BTreeMap<ModPath, BTreeSet<(String, String)>> = BTreeMap::new();
    for (module, path) in &files {
        for mut target in references(module, &code_of(path)) {
            // Trim an item name (`crate::http1::head::Limits`) down to a known module.
            while !target.is_empty() && !known.contains(&target) {
                target.pop();
            }
            if target.is_empty() {
                continue;
            }
            let common = module.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == module.len() || common == target.len() {
                continue; // a module using its own child or parent
            }
            edges
                .entry(module[..common].to_vec())
                .or_default()
                .insert((module[common].clone(), target[common].clone()));
        }
    }
    edges
}

/// Strongly connected components with more than one member (Tarjan's algorithm).
fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeSet<(String, String)>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let number = state.index.len();
        state.index.insert(node, number);
        state.low.insert(node, number);
        state.stack.push(node);
        let next: Vec<&'a str> = state
            .edges
            .iter()
            .filter(|(from, _)| from == node)
            .map(|(_, to)| to.as_str())
            .collect();
        for to in next {
            if !state.index.contains_key(to) {
                visit(state, to);
                let low = state.low[node].min(state.low[to]);
                state.low.insert(node, low);
            } else if state.stack.contains(&to) {
                let low = state.low[node].min(state.index[to]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                component.push(member.to_string());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    let nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(from, to)| [from.as_str(), to.as_str()])
        .collect();
    for node in nodes {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.found
}

#[test]
fn no_module_cycle_at_any_level() {
    let mut problems = Vec::new();
    for (parent, edges) in sibling_edges() {
        for cycle in cycles(&edges) {
            let place = if parent.is_empty() {
                "src/".to_string()
            } else {
                format!("src/{}/", parent.join("/"))
            };
            let arrows: Vec<String> = edges
                .iter()
                .filter(|(from, to)| cycle.contains(from) && cycle.contains(to))
                .map(|(from, to)| format!("{from} → {to}"))
                .collect();
            problems.push(format!(
                "in {place}: {{{}}} ({})",
                cycle.join(", "),
                arrows.join("; ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "modules use each other in a circle (arrows must point down; docs/architecture.md):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_codec_and_the_system_layer_import_nothing_above_them() {
    let edges = sibling_edges();
    let top = edges.get(&Vec::new()).cloned().unwrap_or_default();
    for bottom in ["http1", "sys", "units"] {
        let upward: Vec<&String> = top
            .iter()
            .filter(|(from, _)| from == bottom)
            .map(|(_, to)| to)
            .filter(|to| !["http1", "sys", "units"].contains(&to.as_str()))
            .collect();
        assert!(
            upward.is_empty(),
            "src/{bottom} uses {upward:?}, which sit above it"
        );
    }
    // No module imports the command line: it fills the configuration, not the reverse.
    let users_of_cli: Vec<&String> = top
        .iter()
        .filter(|(_, to)| to == "cli")
        .map(|(from, _)| from)
        .collect();
    assert!(users_of_cli.is_empty(), "{users_of_cli:?} import cli");
}

#[test]
fn the_checker_finds_a_planted_cycle() {
    let mut edges = BTreeSet::new();
    edges.insert(("front".to_string(), "pool".to_string()));
    edges.insert(("pool".to_string(), "forward".to_string()));
    edges.insert(("forward".to_string(), "front".to_string()));
    edges.insert(("forward".to_string(), "http1".to_string()));
    assert_eq!(cycles(&edges), vec![vec!["forward", "front", "pool"]]);
    let mut paths = Vec::new();
    expand_use("crate::a::{b, c::{d, e as f}}", "", &mut paths);
    assert_eq!(paths, ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]);
    let module = vec!["proxy".to_string(), "front".to_string(), "server".to_string()];
    let found = references(
        &module,
        "use super::dispatch::X;\nlet y = crate::http1::head::Limits;",
    );
    assert!(found.contains(&vec![
        "proxy".into(),
        "front".into(),
        "dispatch".into(),
        "X".into()
    ]));
    assert!(found.contains(&vec!["http1".into(), "head".into(), "Limits".into()]));
}
