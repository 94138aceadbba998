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

/// The `## ` chapter titles of concepts.md, in order.
fn chapters(concepts: &str) -> Vec<String> {
    concepts
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(str::to_string)
        .collect()
}

/// `(number, title)` of each row cell `| N | [Title](#anchor) |` of the concept table.
fn table_entries(concepts: &str) -> Vec<(usize, String)> {
    let mut entries = Vec::new();
    for line in concepts.lines().filter(|line| line.starts_with("| ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        for pair in cells.windows(2) {
            let (Ok(number), Some(rest)) = (pair[0].parse::<usize>(), pair[1].strip_prefix('[')) else {
                continue;
            };
            if let Some((title, _)) = rest.split_once("](#") {
                entries.push((number, title.to_string()));
            }
        }
    }
    entries.sort();
    entries
}

/// `(number, title, concept numbers)` of each `### N. Title [a, b]` heading.
fn exercises(text: &str) -> Vec<(usize, String, Vec<usize>)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("### "))
        .filter_map(|heading| {
            let (number, rest) = heading.split_once(". ")?;
            let number = number.parse().ok()?;
            let (title, concepts) = match rest.rsplit_once(" [") {
                Some((title, list)) => (
                    title,
                    list.trim_end_matches(']')
                        .split(", ")
                        .filter_map(|n| n.parse().ok())
                        .collect(),
                ),
                None => (rest, Vec::new()),
            };
            Some((number, title.to_string(), concepts))
        })
        .collect()
}

#[test]
fn the_concept_table_lists_every_chapter_in_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/concepts.md")).unwrap();
    let chapters = chapters(&text);
    let table: Vec<String> = table_entries(&text).into_iter().map(|(_, title)| title).collect();
    assert!(chapters.len() >= 25, "{} chapters", chapters.len());
    assert_eq!(
        table, chapters,
        "the table at the top of docs/concepts.md is out of date"
    );
    let numbers: Vec<usize> = table_entries(&text)
        .into_iter()
        .map(|(number, _)| number)
        .collect();
    assert_eq!(numbers, (1..=chapters.len()).collect::<Vec<_>>());
}

#[test]
fn every_exercise_has_a_key_and_names_real_chapters() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();
    let chapter_count = chapters(&read("docs/concepts.md")).len();
    let exercises = exercises(&read("docs/exercises.md"));
    let key = exercises_key(&read("docs/teacher-key.md"));
    assert!(exercises.len() >= 25, "{} exercises", exercises.len());
    let numbers: Vec<usize> = exercises.iter().map(|(number, ..)| *number).collect();
    assert_eq!(
        numbers,
        (1..=exercises.len()).collect::<Vec<_>>(),
        "exercise numbers"
    );
    for (number, title, concepts) in &exercises {
        assert!(!concepts.is_empty(), "exercise {number} names no chapter");
        for concept in concepts {
            assert!(
                (1..=chapter_count).contains(concept),
                "exercise {number} names chapter {concept}; concepts.md has {chapter_count}"
            );
        }
        assert!(
            key.contains(&(*number, title.clone())),
            "docs/teacher-key.md has no `### {number}. {title}`"
        );
    }
    assert_eq!(
        key.len(),
        exercises.len(),
        "the key answers exercises that do not exist"
    );
}

/// `(number, title)` of each `### N. Title` heading of the key.
fn exercises_key(text: &str) -> Vec<(usize, String)> {
    exercises(text)
        .into_iter()
        .map(|(number, title, _)| (number, title))
        .collect()
}

#[test]
fn exercise_headings_parse() {
    let parsed =
        exercises("### 3. When the clients are the limit [19]\n### 11. A planted deadlock (code) [26, 8]\n");
    assert_eq!(
        parsed[0],
        (3, "When the clients are the limit".to_string(), vec![19])
    );
    assert_eq!(
        parsed[1],
        (11, "A planted deadlock (code)".to_string(), vec![26, 8])
    );
    let table = table_entries("| 1 | [Threads](#threads) | 16 | [Caches](#caches) |\n");
    assert_eq!(table, [(1, "Threads".to_string()), (16, "Caches".to_string())]);
}
