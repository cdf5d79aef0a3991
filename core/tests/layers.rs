//! The engine's layering, checked from the source: each module of
//! `core/src` may use only the modules below it in [`LAYERS`]; the handles
//! (the public entry points) may use anything. A `crate::<module>` reference
//! outside a `#[cfg(test)]` module counts as a use.
//!
//! Run it alone with `cargo test -p collection-store --test layers`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The engine's layers, bottom first (see ARCHITECTURE.md, "Layers").
const LAYERS: &[&str] = &[
    "error",
    "doc",
    "query",
    "keys",
    "storage",
    "index",
    "catalog",
    "log",
    "plan",
    "exec",
    "aggregate",
    "write",
];

/// Modules above the engine: they may use every layer (and each other).
const HANDLES: &[&str] = &[
    "lib",
    "handles",
    "typed",
    "verify",
    "replication",
    "cluster",
    "bin",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `core/src` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The `crate::<module>` references of a file, test modules left out.
fn uses(text: &str) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c}`
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

#[test]
fn engine_modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut violations = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        modules.insert(module.clone());
        if HANDLES.contains(&module.as_str()) {
            continue;
        }
        let Some(own) = rank(&module) else {
            violations.push(format!(
                "{}: module '{module}' is in neither LAYERS nor HANDLES",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            if used == module || used == "MAX_DOCUMENT_SIZE" {
                continue;
            }
            match rank(&used) {
                Some(r) if r < own => {}
                Some(_) => violations.push(format!(
                    "{}: '{module}' uses '{used}', which is not below it",
                    file.display()
                )),
                None if HANDLES.contains(&used.as_str()) => violations.push(format!(
                    "{}: '{module}' uses the handle module '{used}'",
                    file.display()
                )),
                None => {}
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
    for layer in LAYERS {
        assert!(
            modules.contains(*layer),
            "LAYERS names '{layer}', which no longer exists"
        );
    }
}
