//! `#[derive(Document)]` for collection-store: typed collections, schema-driven indexes and typed field paths will be generated here.
