//! Compile tests of `#[derive(Document)]`: clear errors, with spans, for
//! malformed schemas and ill-typed queries; `#[document(crate = "...")]` for
//! re-exporting crates. Refresh the expected output with `TRYBUILD=overwrite`.

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/pass/*.rs");
}
