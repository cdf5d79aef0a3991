//! Every ```rust block of README.md is compiled (verbatim, in
//! `src/readme.rs`) and run here, in a scratch directory.

use std::path::Path;

fn rust_blocks(readme: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```rust") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap_or_default()),
            (Some(b), _) => b.push(line.to_owned()),
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_readme_snippet_is_in_src_readme_rs_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let source = std::fs::read_to_string(root.join("src/readme.rs")).unwrap();
    // Compare line by line without the indentation the wrapping function adds.
    let src: Vec<&str> = source.lines().map(str::trim).collect();
    let blocks = rust_blocks(&readme);
    assert_eq!(blocks.len(), 5, "README's rust blocks");
    for block in blocks {
        let want: Vec<&str> = block.iter().map(|l| l.trim()).collect();
        assert!(
            src.windows(want.len()).any(|w| w == want.as_slice()),
            "README snippet not found verbatim in examples/src/readme.rs:\n{}",
            block.join("\n")
        );
    }
}

#[test]
fn readme_snippets_run() {
    let dir = tempfile::tempdir().unwrap();
    // The snippets use relative paths (./data, ./typed-data, ./replica); this
    // is the only test in this binary that depends on the current directory.
    std::env::set_current_dir(dir.path()).unwrap();
    collection_store_examples::readme::typed().unwrap();
    collection_store_examples::readme::untyped_and_changes().unwrap();
    collection_store_examples::readme::replica().unwrap();
    collection_store_examples::readme::aggregation().unwrap();
    // And again: the snippets drop and recreate what they use.
    collection_store_examples::readme::typed().unwrap();
    collection_store_examples::readme::untyped_and_changes().unwrap();
}
