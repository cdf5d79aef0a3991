//! `#[derive(Document)]` and `#[derive(Embedded)]` for collection-store.
//!
//! Use them through `collection_store` (default feature `derive`):
//!
//! ```ignore
//! #[derive(Document, Serialize, Deserialize)]
//! #[document(collection = "users", version = 2)]
//! #[document(index(fields(email, age desc), name = "email_age"))]
//! #[document(index(fields(address.city), partial = r#"{"active": true}"#))]
//! struct User {
//!     #[document(id)] id: u64,
//!     #[document(index(unique))] email: String,
//!     #[document(index(desc))] age: u32,
//!     address: Address,   // #[derive(Embedded)]
//!     active: bool,
//! }
//! ```
//!
//! Container attributes: `collection = "name"` (default: the struct name in
//! snake_case), `version = N` (default 1), `index(fields(path [asc|desc], ...),
//! name = "...", unique, sparse, partial = "<json filter>")` (repeatable),
//! `has_many(name, Target.field, cascade(remove))` (repeatable: a one-to-many
//! relation whose children reference this document in `field`),
//! `crate = "path::to::collection_store"`. Field attributes: `id`, `index` or
//! `index(unique, sparse, desc, name = "...", partial = "...")`, `version` (the
//! optimistic-lock counter of an ORM layer; an integer field), `reference` or
//! `reference(cascade(persist))` (a many-to-one reference; the field's type
//! implements `collection_store::typed::Reference`, e.g. the ORM's `Ref<T>`).
//!
//! Generated for `User`: `UserFields<R>` with one accessor per field
//! (`User::fields().age()` is a `Field<User, u32>`), `impl Embedded`, and for
//! documents `impl Document` (collection, id field, version, index specs) and
//! `UserIden`, an identifier enum (`UserIden::Table`, `UserIden::Email`, ...)
//! that implements `sea_query::Iden` when collection-store's `sea-query`
//! feature is on.

#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitInt, LitStr, Token, Type};

/// Derives `collection_store::typed::Document` (and `Embedded`): a struct
/// stored as the documents of one collection. See the crate documentation.
#[proc_macro_derive(Document, attributes(document))]
pub fn derive_document(input: TokenStream) -> TokenStream {
    expand(input, Kind::Document)
}

/// Derives `collection_store::typed::Embedded`: a struct stored inside
/// documents, whose fields get typed paths (`User::fields().address().city()`).
#[proc_macro_derive(Embedded, attributes(document))]
pub fn derive_embedded(input: TokenStream) -> TokenStream {
    expand(input, Kind::Embedded)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Document,
    Embedded,
}

fn expand(input: TokenStream, kind: Kind) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    match Model::parse(&input, kind).and_then(|m| m.generate()) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Collects errors so that one compile shows all of them.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// One component of an index key: a dotted path of Rust field names and a direction.
struct IndexKey {
    path: Vec<Ident>,
    dir: i32,
}

impl Parse for IndexKey {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut path = vec![input.parse::<Ident>()?];
        while input.peek(Token![.]) {
            input.parse::<Token![.]>()?;
            path.push(input.parse::<Ident>()?);
        }
        let mut dir = 1;
        if input.peek(Ident) {
            let d: Ident = input.parse()?;
            dir = match d.to_string().as_str() {
                "asc" => 1,
                "desc" => -1,
                _ => {
                    return Err(syn::Error::new(
                        d.span(),
                        "expected `asc` or `desc` after an index field",
                    ))
                }
            };
        }
        Ok(IndexKey { path, dir })
    }
}

/// An index declared on the struct or on a field.
struct IndexDecl {
    span: Span,
    keys: Vec<IndexKey>,
    name: Option<LitStr>,
    unique: bool,
    sparse: bool,
    partial: Option<LitStr>,
}

struct FieldModel {
    ident: Ident,
    ty: Type,
    /// The serialized (stored) name.
    name: String,
    skip: bool,
    flatten: bool,
}

struct Model {
    kind: Kind,
    ident: Ident,
    vis: syn::Visibility,
    krate: syn::Path,
    collection: String,
    version: u32,
    fields: Vec<FieldModel>,
    id: Option<usize>,
    indexes: Vec<IndexDecl>,
    /// The `#[document(version)]` field.
    version_field: Option<usize>,
    /// `#[document(reference)]` fields: (field index, cascade).
    references: Vec<(usize, CascadeDecl)>,
    has_many: Vec<HasMany>,
}

/// `cascade(persist, remove)`.
#[derive(Default, Clone, Copy)]
struct CascadeDecl {
    persist: bool,
    remove: bool,
}

/// Parses the inside of `cascade(...)`, accepting only the `allowed` rules.
fn parse_cascade(meta: &syn::meta::ParseNestedMeta, allowed: &[&str]) -> syn::Result<CascadeDecl> {
    let mut c = CascadeDecl::default();
    meta.parse_nested_meta(|m| {
        let rule = path_str(&m.path);
        if !allowed.contains(&rule.as_str()) {
            return Err(m.error(format!(
                "unknown cascade rule `{rule}` here; expected {}",
                allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        match rule.as_str() {
            "persist" => c.persist = true,
            _ => c.remove = true,
        }
        Ok(())
    })?;
    Ok(c)
}

/// `has_many(name, Target.field.path, cascade(remove))` on the struct.
struct HasMany {
    name: Ident,
    target: syn::Path,
    path: Vec<Ident>,
    cascade: CascadeDecl,
}

fn parse_has_many(meta: &syn::meta::ParseNestedMeta) -> syn::Result<HasMany> {
    let content;
    syn::parenthesized!(content in meta.input);
    let shape = "expected `has_many(name, Target.field, cascade(remove))`";
    let name: Ident = content
        .parse()
        .map_err(|e| syn::Error::new(e.span(), shape))?;
    content
        .parse::<Token![,]>()
        .map_err(|e| syn::Error::new(e.span(), shape))?;
    let mut target = syn::Path {
        leading_colon: None,
        segments: Punctuated::new(),
    };
    target.segments.push(content.parse::<Ident>()?.into());
    while content.peek(Token![::]) {
        content.parse::<Token![::]>()?;
        target.segments.push(content.parse::<Ident>()?.into());
    }
    let mut path = Vec::new();
    while content.peek(Token![.]) {
        content.parse::<Token![.]>()?;
        path.push(content.parse::<Ident>()?);
    }
    if path.is_empty() {
        return Err(syn::Error::new(
            target.span(),
            "name the target's reference field: `has_many(posts, Post.author)`",
        ));
    }
    let mut cascade = CascadeDecl::default();
    if content.peek(Token![,]) {
        content.parse::<Token![,]>()?;
        let key: Ident = content.parse()?;
        if key != "cascade" {
            return Err(syn::Error::new(key.span(), "expected `cascade(remove)`"));
        }
        let inner;
        syn::parenthesized!(inner in content);
        let rules = Punctuated::<Ident, Token![,]>::parse_terminated(&inner)?;
        for r in rules {
            if r == "remove" {
                cascade.remove = true;
            } else {
                return Err(syn::Error::new(
                    r.span(),
                    "has_many supports `cascade(remove)` only (the children are not held by the parent, so there is nothing to persist)",
                ));
            }
        }
    }
    if !content.is_empty() {
        return Err(content.error(shape));
    }
    Ok(HasMany {
        name,
        target,
        path,
        cascade,
    })
}

fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

fn snake_case(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

fn pascal_case(s: &str) -> String {
    s.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// serde's `rename_all` applied to a field name written in snake_case.
fn apply_rename_all(rule: &str, field: &str) -> Option<String> {
    Some(match rule {
        "lowercase" => field.to_ascii_lowercase(),
        "UPPERCASE" => field.to_ascii_uppercase(),
        "PascalCase" => pascal_case(field),
        "camelCase" => {
            let p = pascal_case(field);
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        }
        "snake_case" => field.to_owned(),
        "SCREAMING_SNAKE_CASE" => field.to_ascii_uppercase(),
        "kebab-case" => field.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => field.to_ascii_uppercase().replace('_', "-"),
        _ => return None,
    })
}

/// Skips the value of a serde attribute this macro does not interpret.
fn skip_meta_value(meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        meta.input.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream2>()?;
    }
    Ok(())
}

/// `rename = "x"` or `rename(serialize = "x", ...)`: the serialized name.
fn parse_rename(meta: &syn::meta::ParseNestedMeta) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    let mut ser = None;
    meta.parse_nested_meta(|m| {
        if m.path.is_ident("serialize") {
            ser = Some(m.value()?.parse()?);
        } else {
            skip_meta_value(&m)?;
        }
        Ok(())
    })?;
    Ok(ser)
}

impl Model {
    fn parse(input: &DeriveInput, kind: Kind) -> syn::Result<Model> {
        let derive = match kind {
            Kind::Document => "Document",
            Kind::Embedded => "Embedded",
        };
        let named = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(n) => n,
                _ => {
                    return Err(syn::Error::new(
                        input.ident.span(),
                        format!("#[derive({derive})] needs a struct with named fields"),
                    ))
                }
            },
            _ => {
                return Err(syn::Error::new(
                    input.ident.span(),
                    format!("#[derive({derive})] can only be used on a struct with named fields"),
                ))
            }
        };
        let mut errors = Errors::default();
        if !input.generics.params.is_empty() {
            errors.push(syn::Error::new(
                input.generics.span(),
                format!("#[derive({derive})] does not support generic structs"),
            ));
        }
        let mut model = Model {
            kind,
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            krate: syn::parse_quote!(::collection_store),
            collection: snake_case(&unraw(&input.ident)),
            version: 1,
            fields: Vec::new(),
            id: None,
            indexes: Vec::new(),
            version_field: None,
            references: Vec::new(),
            has_many: Vec::new(),
        };
        let mut rename_all: Option<String> = None;
        for attr in &input.attrs {
            if attr.path().is_ident("document") {
                model.parse_container_attr(attr, &mut errors);
            } else if attr.path().is_ident("serde") {
                let _ = attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("rename_all") {
                        if let Some(rule) = parse_rename(&meta)? {
                            rename_all = Some(rule.value());
                            if apply_rename_all(&rule.value(), "a").is_none() {
                                errors.push(syn::Error::new(
                                    rule.span(),
                                    "unknown serde rename_all rule",
                                ));
                            }
                        }
                    } else {
                        skip_meta_value(&meta)?;
                    }
                    Ok(())
                });
            }
        }
        let mut id_marks: Vec<(usize, Span)> = Vec::new();
        let mut version_marks: Vec<(usize, Span)> = Vec::new();
        let mut field_indexes: Vec<(usize, IndexDecl)> = Vec::new();
        for (i, f) in named.named.iter().enumerate() {
            let ident = f.ident.clone().expect("named field");
            let mut fm = FieldModel {
                name: unraw(&ident),
                ident,
                ty: f.ty.clone(),
                skip: false,
                flatten: false,
            };
            if let Some(rule) = &rename_all {
                if let Some(n) = apply_rename_all(rule, &fm.name) {
                    fm.name = n;
                }
            }
            for attr in &f.attrs {
                if attr.path().is_ident("serde") {
                    let _ = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("rename") {
                            if let Some(n) = parse_rename(&meta)? {
                                fm.name = n.value();
                            }
                        } else if meta.path.is_ident("skip")
                            || meta.path.is_ident("skip_serializing")
                        {
                            fm.skip = true;
                        } else if meta.path.is_ident("flatten") {
                            fm.flatten = true;
                        } else {
                            skip_meta_value(&meta)?;
                        }
                        Ok(())
                    });
                } else if attr.path().is_ident("document") {
                    let res = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("id") {
                            if kind == Kind::Embedded {
                                return Err(meta.error(
                                    "`id` applies to #[derive(Document)]; an embedded struct has no primary key",
                                ));
                            }
                            id_marks.push((i, meta.path.span()));
                            Ok(())
                        } else if meta.path.is_ident("index") {
                            if kind == Kind::Embedded {
                                return Err(meta.error(
                                    "indexes are declared on the #[derive(Document)] struct, e.g. #[document(index(fields(address.city)))]",
                                ));
                            }
                            let decl = parse_index(&meta, true)?;
                            field_indexes.push((i, decl));
                            Ok(())
                        } else if meta.path.is_ident("version") || meta.path.is_ident("reference") {
                            if kind == Kind::Embedded {
                                return Err(meta.error(format!(
                                    "`{}` applies to fields of a #[derive(Document)] struct",
                                    path_str(&meta.path)
                                )));
                            }
                            if meta.path.is_ident("version") {
                                version_marks.push((i, meta.path.span()));
                                return Ok(());
                            }
                            let mut cascade = CascadeDecl::default();
                            if meta.input.peek(syn::token::Paren) {
                                meta.parse_nested_meta(|m| {
                                    if m.path.is_ident("cascade") {
                                        cascade = parse_cascade(&m, &["persist"])?;
                                        Ok(())
                                    } else {
                                        Err(m.error("expected `reference` or `reference(cascade(persist))`"))
                                    }
                                })?;
                            }
                            model.references.push((i, cascade));
                            Ok(())
                        } else {
                            Err(meta.error(format!(
                                "unknown field attribute `{}`; expected `id`, `index`, `version` or `reference`",
                                path_str(&meta.path)
                            )))
                        }
                    });
                    if let Err(e) = res {
                        errors.push(e);
                    }
                }
            }
            model.fields.push(fm);
        }

        if kind == Kind::Document {
            match id_marks.as_slice() {
                [] => {
                    model.id = model.fields.iter().position(|f| f.name == "_id");
                    if model.id.is_none() {
                        errors.push(syn::Error::new(
                            input.ident.span(),
                            format!(
                                "`{}` has no primary key: mark one field with #[document(id)] (or serialize one as `_id`)",
                                input.ident
                            ),
                        ));
                    }
                }
                [(i, _)] => model.id = Some(*i),
                [(first, _), rest @ ..] => {
                    model.id = Some(*first);
                    for (_, span) in rest {
                        errors.push(syn::Error::new(
                            *span,
                            format!(
                                "a document has one primary key, and `{}` is already marked #[document(id)]",
                                model.fields[*first].ident
                            ),
                        ));
                    }
                }
            }
            if let Some(i) = model.id {
                let f = &model.fields[i];
                if f.skip || f.flatten {
                    errors.push(syn::Error::new(
                        f.ident.span(),
                        "the primary key field cannot be skipped or flattened",
                    ));
                }
            }
        }

        match version_marks.as_slice() {
            [] => {}
            [(i, span), rest @ ..] => {
                if Some(*i) == model.id {
                    errors.push(syn::Error::new(
                        *span,
                        "the primary key cannot be the version field",
                    ));
                }
                let f = &model.fields[*i];
                if f.skip || f.flatten {
                    errors.push(syn::Error::new(
                        *span,
                        "the version field must be stored (not skipped or flattened)",
                    ));
                }
                model.version_field = Some(*i);
                for (_, span) in rest {
                    errors.push(syn::Error::new(*span, "a document has one version field"));
                }
            }
        }
        for (i, _) in &model.references {
            let f = &model.fields[*i];
            if f.skip || f.flatten || Some(*i) == model.id {
                errors.push(syn::Error::new(
                    f.ident.span(),
                    "a reference field must be a stored field other than the primary key",
                ));
            }
        }

        for (i, mut decl) in field_indexes {
            let f = &model.fields[i];
            if f.skip {
                errors.push(syn::Error::new(
                    decl.span,
                    format!(
                        "field `{}` is not stored (serde skip), so it cannot be indexed",
                        f.ident
                    ),
                ));
                continue;
            }
            let dir = decl.keys.first().map(|k| k.dir).unwrap_or(1);
            decl.keys = vec![IndexKey {
                path: vec![f.ident.clone()],
                dir,
            }];
            model.indexes.push(decl);
        }
        // Index keys must name existing, stored fields (deeper parts are checked
        // by the compiler through the generated accessors).
        for decl in &model.indexes {
            for key in &decl.keys {
                let first = &key.path[0];
                match model.fields.iter().find(|f| f.ident == *first) {
                    None => errors.push(syn::Error::new(
                        first.span(),
                        format!(
                            "index on unknown field `{}`: `{}` has no such field (fields: {})",
                            unraw(first),
                            model.ident,
                            model
                                .fields
                                .iter()
                                .map(|f| unraw(&f.ident))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                    Some(f) if f.skip => errors.push(syn::Error::new(
                        first.span(),
                        format!(
                            "field `{}` is not stored (serde skip), so it cannot be indexed",
                            unraw(first)
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
        errors.finish()?;
        Ok(model)
    }

    fn parse_container_attr(&mut self, attr: &Attribute, errors: &mut Errors) {
        let kind = self.kind;
        let res = attr.parse_nested_meta(|meta| {
            let doc_only = |what: &str| {
                meta.error(format!(
                    "`{what}` applies to #[derive(Document)]; #[derive(Embedded)] only takes `crate`"
                ))
            };
            if meta.path.is_ident("collection") {
                if kind == Kind::Embedded {
                    return Err(doc_only("collection"));
                }
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() || lit.value().starts_with('$') || lit.value().contains('\0') {
                    return Err(syn::Error::new(
                        lit.span(),
                        "a collection name must be non-empty, not start with `$` and not contain NUL",
                    ));
                }
                self.collection = lit.value();
            } else if meta.path.is_ident("version") {
                if kind == Kind::Embedded {
                    return Err(doc_only("version"));
                }
                let lit: LitInt = meta.value()?.parse()?;
                self.version = lit.base10_parse::<u32>()?;
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                self.krate = lit.parse()?;
            } else if meta.path.is_ident("index") {
                if kind == Kind::Embedded {
                    return Err(doc_only("index"));
                }
                self.indexes.push(parse_index(&meta, false)?);
            } else if meta.path.is_ident("has_many") {
                if kind == Kind::Embedded {
                    return Err(doc_only("has_many"));
                }
                self.has_many.push(parse_has_many(&meta)?);
            } else {
                let expected = match kind {
                    Kind::Document => "`collection`, `index`, `has_many`, `version` or `crate`",
                    Kind::Embedded => "`crate`",
                };
                return Err(meta.error(format!(
                    "unknown document attribute `{}`; expected {expected}",
                    path_str(&meta.path)
                )));
            }
            Ok(())
        });
        if let Err(e) = res {
            errors.push(e);
        }
    }

    fn generate(&self) -> syn::Result<TokenStream2> {
        let krate = &self.krate;
        let ident = &self.ident;
        let vis = &self.vis;
        let fields_ident = format_ident!("{}Fields", ident);
        let fields_doc = format!(
            "Typed field paths of [`{ident}`] documents, for documents of type `R` (generated by `#[derive]`)."
        );
        let accessors = self.fields.iter().filter(|f| !f.skip).map(|f| {
            let fid = &f.ident;
            let ty = &f.ty;
            if f.flatten {
                let doc = format!("The flattened fields of `{}` (stored inline).", unraw(fid));
                quote! {
                    #[doc = #doc]
                    #vis fn #fid(&self) -> <#ty as #krate::typed::Embedded>::Fields<__R> {
                        <#ty as #krate::typed::Embedded>::fields_at::<__R>(::core::clone::Clone::clone(&self.__prefix))
                    }
                }
            } else {
                let name = &f.name;
                let doc = format!("The path of field `{}` (stored as `{name}`).", unraw(fid));
                quote! {
                    #[doc = #doc]
                    #vis fn #fid(&self) -> #krate::typed::Field<__R, #ty> {
                        #krate::typed::Field::new(self.__prefix.join(#name))
                    }
                }
            }
        });
        let embedded = quote! {
            #[doc = #fields_doc]
            #vis struct #fields_ident<__R: 'static = #ident> {
                __prefix: #krate::typed::Prefix,
                __marker: ::core::marker::PhantomData<fn() -> __R>,
            }

            impl<__R: 'static> ::core::clone::Clone for #fields_ident<__R> {
                fn clone(&self) -> Self {
                    #fields_ident {
                        __prefix: ::core::clone::Clone::clone(&self.__prefix),
                        __marker: ::core::marker::PhantomData,
                    }
                }
            }

            impl<__R: 'static> ::core::fmt::Debug for #fields_ident<__R> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::core::write!(f, "{}({:?})", ::core::stringify!(#fields_ident), self.__prefix)
                }
            }

            #[allow(dead_code, clippy::wrong_self_convention)]
            impl<__R: 'static> #fields_ident<__R> {
                #(#accessors)*
            }

            #[allow(dead_code)]
            impl #ident {
                /// Typed paths to this struct's fields, e.g. `fields().age().gte(18)`.
                #vis fn fields() -> #fields_ident<#ident> {
                    <#ident as #krate::typed::Embedded>::fields_at::<#ident>(#krate::typed::Prefix::root())
                }
            }

            impl #krate::typed::Embedded for #ident {
                type Fields<__R: 'static> = #fields_ident<__R>;
                fn fields_at<__R: 'static>(prefix: #krate::typed::Prefix) -> #fields_ident<__R> {
                    #fields_ident { __prefix: prefix, __marker: ::core::marker::PhantomData }
                }
            }
        };
        if self.kind == Kind::Embedded {
            return Ok(embedded);
        }

        let id = &self.fields[self.id.expect("checked in parse")];
        let id_ty = &id.ty;
        let id_ident = &id.ident;
        let id_name = &id.name;
        let id_key = quote_spanned! {id_ty.span()=>
            <#id_ty as #krate::typed::IdKey>::Key
        };
        // Spanned at the id type too, so an id type that is not a key is
        // reported once, at the field.
        let id_assoc = quote_spanned! {id_ty.span()=>
            type Id = #id_key;
        };
        let id_fn = quote_spanned! {id_ty.span()=>
            fn id(&self) -> ::core::option::Option<&<#id_ty as #krate::typed::IdKey>::Key> {
                <#id_ty as #krate::typed::IdKey>::key(&self.#id_ident)
            }
        };
        let collection = &self.collection;
        let version = self.version;
        let specs = self.indexes.iter().map(|decl| {
            let keys = decl.keys.iter().map(|k| {
                let segs = &k.path;
                let dir = k.dir;
                quote! { (#krate::typed::FieldRef::path(&__f #(.#segs())*), #dir) }
            });
            let mut spec = quote! { #krate::typed::__private::index(::std::vec![#(#keys),*]) };
            if decl.unique {
                spec = quote! { #spec.unique() };
            }
            if decl.sparse {
                spec = quote! { #spec.sparse() };
            }
            if let Some(n) = &decl.name {
                spec = quote! { #spec.name(#n) };
            }
            if let Some(p) = &decl.partial {
                spec = quote! { #spec.partial(#krate::typed::__private::partial(#p)) };
            }
            quote_spanned! {decl.span=> { let __spec = #spec; __spec } }
        });

        let version_const = self.version_field.map(|i| {
            let f = &self.fields[i];
            let name = &f.name;
            let ty = &f.ty;
            let check = quote_spanned! {ty.span()=>
                const _: fn() = || {
                    fn __version_field<T: #krate::typed::VersionField>() {}
                    __version_field::<#ty>();
                };
            };
            (quote! { const VERSION_FIELD: ::core::option::Option<&'static str> = ::core::option::Option::Some(#name); }, check)
        });
        let (version_const, version_check) = match version_const {
            Some((c, k)) => (c, k),
            None => (quote! {}, quote! {}),
        };
        let cascade_tokens = |c: &CascadeDecl| {
            let (p, r) = (c.persist, c.remove);
            quote! { #krate::typed::Cascade { persist: #p, remove: #r } }
        };
        let mut relations = Vec::new();
        let mut visits = Vec::new();
        for (i, cascade) in &self.references {
            let f = &self.fields[*i];
            let fid = &f.ident;
            let ty = &f.ty;
            let rel_name = unraw(fid);
            let stored = &f.name;
            let c = cascade_tokens(cascade);
            relations.push(quote_spanned! {ty.span()=>
                #krate::typed::__private::relation::< <#ty as #krate::typed::Reference>::Target >(
                    #rel_name, #krate::typed::RelationKind::ManyToOne, #stored, #c)
            });
            visits.push(quote! { #krate::typed::ReferenceVisitor::visit(__visitor, #rel_name, &self.#fid); });
        }
        for hm in &self.has_many {
            let target = &hm.target;
            let segs = &hm.path;
            let rel_name = unraw(&hm.name);
            let c = cascade_tokens(&hm.cascade);
            relations.push(quote_spanned! {target.span()=>
                #krate::typed::__private::relation::<#target>(
                    #rel_name,
                    #krate::typed::RelationKind::OneToMany,
                    #krate::typed::FieldRef::path(
                        &<#target as #krate::typed::Embedded>::fields_at::<#target>(#krate::typed::Prefix::root()) #(.#segs())*
                    ),
                    #c)
            });
        }
        let relations_fn = if relations.is_empty() {
            quote! {}
        } else {
            quote! {
                fn relations() -> ::std::vec::Vec<#krate::typed::Relation> {
                    ::std::vec![#(#relations),*]
                }
            }
        };
        let visit_fn = if visits.is_empty() {
            quote! {}
        } else {
            quote! {
                fn visit_references<__V: #krate::typed::ReferenceVisitor>(&self, __visitor: &mut __V) {
                    #(#visits)*
                }
            }
        };

        let iden_ident = format_ident!("{}Iden", ident);
        let iden_doc = format!(
            "Identifiers of [`{ident}`]: `Table` (the collection `{collection}`) and one variant per stored top-level field; `sea_query::Iden` with collection-store's `sea-query` feature."
        );
        let mut variants = vec![(format_ident!("Table"), collection.clone())];
        for f in self.fields.iter().filter(|f| !f.skip && !f.flatten) {
            let mut v = pascal_case(&unraw(&f.ident));
            if v == "Table" {
                v = "TableField".into();
            }
            variants.push((Ident::new(&v, f.ident.span()), f.name.clone()));
        }
        let variant_idents: Vec<_> = variants.iter().map(|(v, _)| v).collect();
        let variant_names: Vec<_> = variants.iter().map(|(_, n)| n).collect();
        let variant_docs: Vec<_> = variants.iter().map(|(_, n)| format!("`{n}`")).collect();

        Ok(quote! {
            #embedded

            impl #krate::typed::Document for #ident {
                #id_assoc
                const COLLECTION: &'static str = #collection;
                const ID_FIELD: &'static str = #id_name;
                const VERSION: u32 = #version;
                #version_const

                #relations_fn

                #visit_fn

                fn indexes() -> ::std::vec::Vec<#krate::IndexSpec> {
                    #[allow(unused_variables)]
                    let __f = <#ident as #krate::typed::Embedded>::fields_at::<#ident>(#krate::typed::Prefix::root());
                    ::std::vec![#(#specs),*]
                }

                #id_fn
            }

            #version_check

            #[doc = #iden_doc]
            #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash)]
            #[allow(dead_code)]
            #vis enum #iden_ident {
                #(#[doc = #variant_docs] #variant_idents,)*
            }

            #[allow(dead_code)]
            impl #iden_ident {
                /// The collection or field name.
                #vis const fn as_str(&self) -> &'static str {
                    match self {
                        #(#iden_ident::#variant_idents => #variant_names,)*
                    }
                }
            }

            impl ::core::fmt::Display for #iden_ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            #krate::__impl_sea_query_iden!(#iden_ident);
        })
    }
}

fn path_str(p: &syn::Path) -> String {
    p.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// `index`, `index(...)` on a field, or `index(fields(...), ...)` on the struct.
fn parse_index(meta: &syn::meta::ParseNestedMeta, on_field: bool) -> syn::Result<IndexDecl> {
    let mut decl = IndexDecl {
        span: meta.path.span(),
        keys: Vec::new(),
        name: None,
        unique: false,
        sparse: false,
        partial: None,
    };
    let mut dir = 1;
    if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|m| {
            if m.path.is_ident("fields") && !on_field {
                let content;
                syn::parenthesized!(content in m.input);
                let keys = Punctuated::<IndexKey, Token![,]>::parse_terminated(&content)?;
                if keys.is_empty() {
                    return Err(m.error("an index needs at least one field"));
                }
                decl.keys.extend(keys);
            } else if m.path.is_ident("name") {
                decl.name = Some(m.value()?.parse()?);
            } else if m.path.is_ident("unique") {
                decl.unique = true;
            } else if m.path.is_ident("sparse") {
                decl.sparse = true;
            } else if m.path.is_ident("partial") {
                let lit: LitStr = m.value()?.parse()?;
                match serde_json::from_str::<serde_json::Value>(&lit.value()) {
                    Ok(serde_json::Value::Object(_)) => {}
                    Ok(_) => return Err(syn::Error::new(
                        lit.span(),
                        "a partial filter must be a JSON object, e.g. r#\"{\"active\": true}\"#",
                    )),
                    Err(e) => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("the partial filter is not valid JSON: {e}"),
                        ))
                    }
                }
                decl.partial = Some(lit);
            } else if on_field && (m.path.is_ident("asc") || m.path.is_ident("desc")) {
                dir = if m.path.is_ident("desc") { -1 } else { 1 };
            } else {
                let expected = if on_field {
                    "`unique`, `sparse`, `asc`, `desc`, `name` or `partial`"
                } else {
                    "`fields`, `unique`, `sparse`, `name` or `partial`"
                };
                return Err(m.error(format!(
                    "unknown index option `{}`; expected {expected}",
                    path_str(&m.path)
                )));
            }
            Ok(())
        })?;
    } else if !on_field {
        return Err(meta.error("expected `index(fields(a, b desc), ...)`"));
    }
    if on_field {
        // The field itself is filled in by the caller.
        decl.keys.push(IndexKey {
            path: Vec::new(),
            dir,
        });
    } else if decl.keys.is_empty() {
        return Err(meta.error("expected `fields(...)` in a struct-level index"));
    }
    Ok(decl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_collection_names_are_snake_case() {
        assert_eq!(snake_case("User"), "user");
        assert_eq!(snake_case("LineItem"), "line_item");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("Order2Go"), "order2_go");
    }

    #[test]
    fn serde_rename_all_rules() {
        let f = "created_at_ms";
        assert_eq!(apply_rename_all("camelCase", f).unwrap(), "createdAtMs");
        assert_eq!(apply_rename_all("PascalCase", f).unwrap(), "CreatedAtMs");
        assert_eq!(apply_rename_all("kebab-case", f).unwrap(), "created-at-ms");
        assert_eq!(
            apply_rename_all("SCREAMING-KEBAB-CASE", f).unwrap(),
            "CREATED-AT-MS"
        );
        assert_eq!(
            apply_rename_all("SCREAMING_SNAKE_CASE", f).unwrap(),
            "CREATED_AT_MS"
        );
        assert_eq!(apply_rename_all("lowercase", f).unwrap(), "created_at_ms");
        assert_eq!(apply_rename_all("UPPERCASE", f).unwrap(), "CREATED_AT_MS");
        assert_eq!(apply_rename_all("snake_case", f).unwrap(), f);
        assert_eq!(apply_rename_all("Title Case", f), None);
        assert_eq!(pascal_case("table"), "Table");
    }
}
