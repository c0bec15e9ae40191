//! The layers of docs/ARCHITECTURE.md, checked: a module may import (`crate::x`) only modules of its own layer or
//! below, so the request path runs one way and no router reaches back into the server. A new top-level module must
//! be placed in a layer here (and in the document), or this test fails.

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level modules by layer, 1 (entry) to 6 (foundations), as docs/ARCHITECTURE.md draws them.
const LAYERS: &[(u8, &[&str])] = &[
    (1, &["main", "cli"]),
    (
        2,
        &[
            "server",
            "connections",
            "batched_writes",
            "http1",
            "runtime",
        ],
    ),
    (3, &["protocol", "web", "admin", "guard"]),
    (4, &["ops", "tokens", "login", "seed", "import"]),
    (
        5,
        &[
            "model",
            "context",
            "auth",
            "client",
            "throttle",
            "hashing",
            "pagination",
            "secrets",
            "redact",
            "log_writer",
            "private_files",
            "state",
            "touches",
            "store",
        ],
    ),
    (6, &["domain", "mail", "error", "clock", "ids"]),
];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(_, mods)| mods.contains(&module))
        .map(|(n, _)| *n)
}

/// The top-level module a source file belongs to (`src/ops/list_users.rs` → `ops`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names as `crate::x` (in `use` lines and paths alike), tests excluded.
fn imports(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    // Comments may name any module (doc links); only code counts.
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut found = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
    }
    // `use crate::{a, b::c}` groups.
    for (i, _) in code.match_indices("crate::{") {
        let group = &code[i + "crate::{".len()..];
        let group = &group[..group.find("};").unwrap_or(group.len())];
        let mut depth = 0;
        let mut start = true;
        let mut current = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    start = true;
                    continue;
                }
                _ => {}
            }
            if depth == 0 && start {
                if c.is_ascii_alphanumeric() || c == '_' {
                    current.push(c);
                } else if !current.is_empty() {
                    found.push(std::mem::take(&mut current));
                    start = false;
                }
            }
        }
        if !current.is_empty() {
            found.push(current);
        }
    }
    found
}

#[test]
fn every_module_imports_only_its_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            panic!(
                "src/{module} is in no layer: place it in tests/architecture.rs and docs/ARCHITECTURE.md"
            );
        };
        let text = std::fs::read_to_string(file).expect("readable");
        for imported in imports(&text) {
            if imported == module {
                continue;
            }
            let Some(theirs) = layer_of(&imported) else {
                panic!(
                    "{} imports crate::{imported}, which is in no layer",
                    file.display()
                );
            };
            if theirs < own {
                violations
                    .entry(format!("{} (layer {own})", file.display()))
                    .or_insert_with(Vec::new)
                    .push(format!("{imported} (layer {theirs})"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports from a layer above: {violations:#?}"
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_imports() {
    let found =
        imports("use crate::{ops::{self, Ctx}, store::Store};\nlet x = crate::server::serve();\n");
    for m in ["ops", "store", "server"] {
        assert!(found.iter().any(|f| f == m), "{m} in {found:?}");
    }
    assert!(
        !found.iter().any(|f| f == "Ctx" || f == "Store"),
        "{found:?}"
    );
}
