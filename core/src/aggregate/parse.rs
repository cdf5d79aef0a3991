//! Parsing a pipeline: JSON → [`Pipeline`] (a source and typed stages). Every
//! stage, expression and variable is validated here, before anything runs;
//! errors name the stage (`stage 2 ($group): ...`) and are
//! [`crate::Error::InvalidPipeline`] (or `InvalidFilter`/`InvalidSort`/
//! `InvalidRegex` for a `$match` filter or a `$sort` specification).

use serde_json::{json, Value};

use super::expr::{self, describe, Expr, Scope};
use super::plan::SourceSpec;
use super::stage::facet::FacetSpec;
use super::stage::group::{BucketSpec, GroupSpec};
use super::stage::lookup::LookupSpec;
use super::stage::matching::MatchSpec;
use super::stage::shape::{ShapeKind, ShapeSpec};
use super::stage::unwind::UnwindSpec;
use super::stage::Label;
use crate::error::{Error, Result};
use crate::query::sort::SortSpec;

/// A parsed stage.
#[derive(Debug, Clone)]
pub(crate) enum StageSpec {
    /// `$match`.
    Match(MatchSpec),
    /// `$project`, `$addFields`/`$set`, `$unset`.
    Shape(ShapeSpec),
    /// `$replaceRoot`/`$replaceWith`: the new root.
    ReplaceRoot(Expr),
    /// `$group` (and the first half of `$sortByCount`).
    Group(GroupSpec),
    /// `$bucket`.
    Bucket(BucketSpec),
    /// `$sort` (and the second half of `$sortByCount`).
    Sort {
        /// The sort.
        spec: SortSpec,
    },
    /// `$skip`.
    Skip(u64),
    /// `$limit`.
    Limit(u64),
    /// `$count`: the output field.
    Count(String),
    /// `$unwind`.
    Unwind(UnwindSpec),
    /// `$lookup`.
    Lookup(Box<LookupSpec>),
    /// `$facet`.
    Facet(FacetSpec),
}

/// A stage with its position, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// Where it is.
    pub(crate) label: Label,
    /// What it does.
    pub(crate) spec: StageSpec,
}

/// A parsed pipeline: the part the planner runs, then the stages.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    /// The leading stages run by the planner and executor.
    pub(crate) source: SourceSpec,
    /// The remaining stages.
    pub(crate) stages: Vec<Located>,
}

const SUPPORTED: &str =
    "$match $project $addFields $set $unset $group $sort $limit $skip $unwind $lookup \
    $count $sortByCount $replaceRoot $replaceWith $facet $bucket";

impl Pipeline {
    /// Parses a top-level pipeline (a JSON array of stage objects).
    pub(crate) fn parse(v: &Value) -> Result<Pipeline> {
        let mut scope = Scope::default();
        let mut stages = parse_stages(v, &mut scope, None, true)?;
        let source = SourceSpec::absorb(&mut stages);
        Ok(Pipeline { source, stages })
    }

    /// Parses the pipeline of a `$lookup` in `within`, with its `let`
    /// variables in `scope`.
    pub(crate) fn parse_nested(
        v: &Value,
        scope: &mut Scope,
        within: &Label,
        allow_facet: bool,
    ) -> Result<Pipeline> {
        let mut stages = parse_stages(v, scope, Some(within), allow_facet)?;
        let source = SourceSpec::absorb(&mut stages);
        Ok(Pipeline { source, stages })
    }

    /// The pipeline `[]`.
    pub(crate) fn empty() -> Pipeline {
        let mut stages = Vec::new();
        Pipeline {
            source: SourceSpec::absorb(&mut stages),
            stages,
        }
    }
}

fn stage_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "$match" => "$match",
        "$project" => "$project",
        "$addFields" => "$addFields",
        "$set" => "$set",
        "$unset" => "$unset",
        "$group" => "$group",
        "$sort" => "$sort",
        "$limit" => "$limit",
        "$skip" => "$skip",
        "$unwind" => "$unwind",
        "$lookup" => "$lookup",
        "$count" => "$count",
        "$sortByCount" => "$sortByCount",
        "$replaceRoot" => "$replaceRoot",
        "$replaceWith" => "$replaceWith",
        "$facet" => "$facet",
        "$bucket" => "$bucket",
        _ => return None,
    })
}

fn whole(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// Parses the stages of a pipeline; `within` labels a sub-pipeline.
pub(crate) fn parse_stages(
    v: &Value,
    scope: &mut Scope,
    within: Option<&Label>,
    allow_facet: bool,
) -> Result<Vec<Located>> {
    let where_ = || within.map_or(String::new(), |l| format!(" (in {})", l.text()));
    let Value::Array(items) = v else {
        return Err(Error::InvalidPipeline(format!(
            "a pipeline must be an array of stage objects such as [{{\"$match\": {{...}}}}]{}, got {}",
            where_(),
            describe(v)
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pos = i + 1;
        let stage = match item {
            Value::Object(m) if m.len() == 1 => m.iter().next(),
            _ => None,
        };
        let Some((key, arg)) = stage else {
            return Err(Error::InvalidPipeline(format!(
                "stage {pos}{}: a stage is an object with exactly one field, the stage name \
                 ({{\"$group\": {{...}}}}), got {}",
                where_(),
                describe(item)
            )));
        };
        let Some(name) = stage_name(key) else {
            let why = match key.as_str() {
                "$out" | "$merge" => "writing from a pipeline is not supported".to_string(),
                "$function" | "$accumulator" | "$where" => {
                    "collection-store never executes code found in a query".to_string()
                }
                _ => format!("supported stages are {SUPPORTED}"),
            };
            return Err(Error::InvalidPipeline(format!(
                "stage {pos}{}: unknown or unsupported stage '{key}'; {why}",
                where_()
            )));
        };
        let label = Label::new(pos, name, within);
        let bad = |m: String| label.invalid(m);
        match name {
            "$match" => out.push(Located {
                spec: StageSpec::Match(MatchSpec::parse(arg, scope, &label)?),
                label,
            }),
            "$project" | "$addFields" | "$set" => {
                let kind = if name == "$project" {
                    ShapeKind::Project
                } else {
                    ShapeKind::AddFields
                };
                let spec = ShapeSpec::parse(kind, arg, scope).map_err(bad)?;
                out.push(Located {
                    spec: StageSpec::Shape(spec),
                    label,
                });
            }
            "$unset" => out.push(Located {
                spec: StageSpec::Shape(ShapeSpec::parse_unset(arg).map_err(bad)?),
                label,
            }),
            "$replaceRoot" | "$replaceWith" => {
                let e = if name == "$replaceRoot" {
                    let m = expr::object_args("$replaceRoot", arg, &["newRoot"], &["newRoot"])
                        .map_err(bad)?;
                    m["newRoot"]
                } else {
                    arg
                };
                let root = expr::parse(e, scope).map_err(|m| bad(format!("'newRoot': {m}")))?;
                out.push(Located {
                    spec: StageSpec::ReplaceRoot(root),
                    label,
                });
            }
            "$group" => out.push(Located {
                spec: StageSpec::Group(GroupSpec::parse(arg, scope).map_err(bad)?),
                label,
            }),
            "$bucket" => out.push(Located {
                spec: StageSpec::Bucket(BucketSpec::parse(arg, scope).map_err(bad)?),
                label,
            }),
            "$sortByCount" => {
                let ok = matches!(arg, Value::String(s) if s.starts_with('$'))
                    || matches!(arg, Value::Object(m) if m.keys().next().is_some_and(|k| k.starts_with('$')));
                if !ok {
                    return Err(bad(format!(
                        "$sortByCount takes a field path (\"$tags\") or an operator expression, got {}",
                        describe(arg)
                    )));
                }
                let id = expr::parse(arg, scope).map_err(bad)?;
                out.push(Located {
                    spec: StageSpec::Group(GroupSpec::count_by(id)),
                    label: label.clone(),
                });
                out.push(Located {
                    spec: StageSpec::Sort {
                        spec: SortSpec::parse(&json!({"count": -1}))?,
                    },
                    label,
                });
            }
            "$sort" => {
                if matches!(arg, Value::Object(m) if m.is_empty()) {
                    return Err(bad("$sort needs at least one field".into()));
                }
                let spec = SortSpec::parse(arg).map_err(|e| match e {
                    Error::InvalidSort(m) => Error::InvalidSort(format!("in {}: {m}", label.text())),
                    other => other,
                })?;
                out.push(Located {
                    spec: StageSpec::Sort { spec },
                    label,
                });
            }
            "$limit" => match whole(arg) {
                Some(n) if n > 0 => out.push(Located {
                    spec: StageSpec::Limit(n as u64),
                    label,
                }),
                _ => {
                    return Err(bad(format!(
                        "$limit takes a positive whole number, got {}",
                        describe(arg)
                    )))
                }
            },
            "$skip" => match whole(arg) {
                Some(n) if n >= 0 => out.push(Located {
                    spec: StageSpec::Skip(n as u64),
                    label,
                }),
                _ => {
                    return Err(bad(format!(
                        "$skip takes a non-negative whole number, got {}",
                        describe(arg)
                    )))
                }
            },
            "$count" => match arg {
                Value::String(s)
                    if !s.is_empty() && !s.starts_with('$') && !s.contains('.') && !s.contains('\0') =>
                {
                    out.push(Located {
                        spec: StageSpec::Count(s.clone()),
                        label,
                    })
                }
                other => {
                    return Err(bad(format!(
                        "$count takes the name of the output field (non-empty, no leading '$', no '.'), got {}",
                        describe(other)
                    )))
                }
            },
            "$unwind" => out.push(Located {
                spec: StageSpec::Unwind(UnwindSpec::parse(arg).map_err(bad)?),
                label,
            }),
            "$lookup" => {
                let spec = LookupSpec::parse(arg, scope, &label)?;
                out.push(Located {
                    spec: StageSpec::Lookup(Box::new(spec)),
                    label,
                });
            }
            "$facet" => {
                if !allow_facet {
                    return Err(bad("$facet cannot be used inside a $facet sub-pipeline".into()));
                }
                let spec = FacetSpec::parse(arg, scope, &label)?;
                out.push(Located {
                    spec: StageSpec::Facet(spec),
                    label,
                });
            }
            _ => return Err(bad(format!("unsupported stage '{key}'"))),
        }
    }
    Ok(out)
}
