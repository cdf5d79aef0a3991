//! The README's ORM example is the one `orm-adapter/README.md` holds, which
//! is compiled as a doctest of this crate: the two must not drift apart.

fn rust_block_after(text: &str, marker: &str) -> String {
    let start = text.find(marker).expect("marker present");
    let rest = &text[start..];
    let open = rest.find("```rust").expect("a rust block");
    let body = &rest[open..];
    let close = body[7..].find("```").expect("closed block") + 7;
    body[..close + 3].to_owned()
}

#[test]
fn readme_example_is_the_compiled_one() {
    let root =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let crate_readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert_eq!(
        rust_block_after(&root, "<!-- orm-example"),
        rust_block_after(&crate_readme, "# collection-store-orm")
    );
}
