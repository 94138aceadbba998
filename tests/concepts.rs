//! docs/concepts.md names code as `src/file.rs::item`; every such file must exist and
//! define every item named, so the walkthrough never points at code that is gone.

use std::path::Path;

/// Whether `source` defines `name` (a function, type, trait, constant or module).
fn defines(source: &str, name: &str) -> bool {
    ["fn", "struct", "enum", "trait", "const", "static", "type", "mod"]
        .iter()
        .any(|keyword| {
            source
                .match_indices(&format!("{keyword} {name}"))
                .any(|(at, matched)| {
                    let after = source[at + matched.len()..].chars().next();
                    let before = source[..at].chars().next_back();
                    !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                        && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                })
        })
}

/// Every `src/...rs` reference in the text, with the items after `::`.
fn references(text: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for (start, _) in text.match_indices("src/") {
        let rest = &text[start..];
        let Some(end) = rest.find(".rs") else { continue };
        let path = &rest[..end + 3];
        if !path.chars().all(|c| c.is_alphanumeric() || "_/.".contains(c)) {
            continue;
        }
        let items: Vec<String> = rest[end + 3..]
            .split("::")
            .skip(1)
            .map_while(|segment| {
                let name: String = segment
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                (!name.is_empty()).then_some(name)
            })
            .collect();
        // `a::b` continues only while each segment is followed directly by `::`.
        let mut chained = Vec::new();
        let mut tail = &rest[end + 3..];
        for item in items {
            match tail
                .strip_prefix("::")
                .and_then(|after| after.strip_prefix(item.as_str()))
            {
                Some(after) => {
                    chained.push(item);
                    tail = after;
                }
                None => break,
            }
        }
        found.push((path.to_string(), chained));
    }
    found
}

#[test]
fn every_file_and_item_in_concepts_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/concepts.md")).unwrap();
    let references = references(&text);
    assert!(
        references.len() >= 30,
        "concepts.md should point at the code: {}",
        references.len()
    );
    let mut problems = Vec::new();
    for (path, items) in &references {
        let Ok(source) = std::fs::read_to_string(root.join(path)) else {
            problems.push(format!("{path} does not exist"));
            continue;
        };
        for item in items {
            if !defines(&source, item) {
                problems.push(format!("{path} does not define {item}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/concepts.md is out of date:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_catches_what_is_missing() {
    assert!(defines("pub fn accept_loop(x: u8) {}", "accept_loop"));
    assert!(!defines("pub fn accept_loop_two() {}", "accept_loop"));
    assert!(defines("pub struct Stats {", "Stats"));
    let refs = references("see `src/a/b.rs::Thing::method` and src/c.rs, also src/d.rs::f.");
    assert_eq!(
        refs,
        vec![
            (
                "src/a/b.rs".to_string(),
                vec!["Thing".to_string(), "method".to_string()]
            ),
            ("src/c.rs".to_string(), vec![]),
            ("src/d.rs".to_string(), vec!["f".to_string()]),
        ]
    );
}
