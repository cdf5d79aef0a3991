//! `collection-store`: the shell tool for a database directory — list, query,
//! inspect, verify, export and import, back up and restore, follow the change
//! log. `collection-store --help` and `collection-store <command> --help`
//! describe each command.
//!
//! Exit codes: 0 success; 1 the operation failed; 2 bad usage; 3 `verify`
//! found problems (or the database is damaged); 4 `import` input is invalid
//! (nothing of the failing batch was written).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bson::Bson;
use clap::{Parser, Subcommand, ValueEnum};
use collection_store::{Database, DatabaseOptions, Error};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "collection-store",
    version,
    about = "Inspect and maintain a collection-store database directory",
    after_help = "Exit codes: 0 success, 1 failure, 2 bad usage, 3 verify found problems, 4 invalid import input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The two JSON renderings of documents.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    /// Plain JSON: numbers as numbers, other BSON types as relaxed Extended JSON.
    Json,
    /// MongoDB canonical Extended JSON: every type kept exactly (int32 vs int64, doubles, dates).
    Extjson,
}

#[derive(Subcommand)]
enum Command {
    /// List collections with their document counts and stored sizes.
    Ls { dir: PathBuf },
    /// List a collection's indexes (one JSON specification per line).
    Indexes { dir: PathBuf, collection: String },
    /// Print the documents matching a JSON filter, one per line.
    Find {
        dir: PathBuf,
        collection: String,
        /// MongoDB filter, e.g. '{"age": {"$gte": 18}}'.
        #[arg(default_value = "{}")]
        filter: String,
        /// Sort specification, e.g. '{"age": -1}'.
        #[arg(long)]
        sort: Option<String>,
        /// At most this many documents.
        #[arg(long)]
        limit: Option<u64>,
        /// Projection, e.g. '{"name": 1}'.
        #[arg(long)]
        projection: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Count the documents matching a JSON filter.
    Count {
        dir: PathBuf,
        collection: String,
        #[arg(default_value = "{}")]
        filter: String,
    },
    /// Per-table pages and entries, per-collection bytes per document, the log range.
    Stats {
        dir: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check every page, document, index entry, counter and log entry (exit 3 on problems).
    Verify { dir: PathBuf },
    /// Write a collection as JSON lines (to a file or standard output).
    Export {
        dir: PathBuf,
        collection: String,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "extjson")]
        format: Format,
        /// Filter of the documents to export.
        #[arg(long, default_value = "{}")]
        filter: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Insert JSON lines (plain JSON or Extended JSON) into a collection (the database and
    /// the collection are created when missing). A bad line is
    /// reported with its number and nothing is imported (or, with --batch, nothing of its batch).
    Import {
        dir: PathBuf,
        collection: String,
        /// Input file (default: standard input).
        #[arg(long, short = 'i')]
        input: Option<PathBuf>,
        /// Commit every N documents (default: everything in one transaction).
        #[arg(long)]
        batch: Option<usize>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Write a consistent, compacted copy of a live database to a file, without stopping writers.
    Backup { dir: PathBuf, file: PathBuf },
    /// Create a new database directory from a backup file, and verify it.
    Restore { file: PathBuf, dir: PathBuf },
    /// The change log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Write a compacted copy of a database into a new directory (free pages dropped) and
    /// report the sizes before and after; the source is left as it is.
    Compact { dir: PathBuf, to: PathBuf },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Print the last committed changes as JSON lines (and, with --follow, new ones as they commit).
    Tail {
        dir: PathBuf,
        /// How many transactions back to start.
        #[arg(short = 'n', long, default_value_t = 10)]
        entries: u64,
        /// Start after this LSN instead.
        #[arg(long)]
        after: Option<u64>,
        /// Keep printing changes as they commit (until interrupted).
        #[arg(long, short)]
        follow: bool,
    },
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = if matches!(e, Error::Corrupt { .. }) {
            3
        } else {
            1
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

type Res<T = ()> = std::result::Result<T, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("collection-store: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Opens an existing database (never creates one).
fn open(dir: &Path, read_only: bool) -> Res<Database> {
    if !dir.join("data.mdb").is_file() {
        return Err(fail(
            1,
            format!("no database at {} (no data.mdb)", dir.display()),
        ));
    }
    Ok(Database::open_with(
        dir,
        DatabaseOptions::default().read_only(read_only),
    )?)
}

fn parse_json(what: &str, s: &str) -> Res<Value> {
    serde_json::from_str(s).map_err(|e| fail(2, format!("{what} is not JSON: {e}")))
}

fn existing(db: &Database, name: &str) -> Res<collection_store::Collection> {
    if !db.list_collections()?.iter().any(|c| c == name) {
        return Err(fail(1, format!("no collection '{name}'")));
    }
    Ok(db.collection(name)?)
}

fn render(doc: bson::Document, format: Format) -> Value {
    match format {
        Format::Extjson => Bson::Document(doc).into_canonical_extjson(),
        Format::Json => Bson::Document(doc).into_relaxed_extjson(),
    }
}

fn progress(quiet: bool, len: Option<u64>, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let style =
        ProgressStyle::with_template(&format!("{what} {{bar:40}} {{pos}}/{{len}} {{per_sec}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn run(command: Command) -> Res {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match command {
        Command::Ls { dir } => {
            let db = open(&dir, true)?;
            let stats = db.stats()?;
            writeln!(
                out,
                "{:<32} {:>12} {:>14} {:>8}",
                "collection", "documents", "bytes", "indexes"
            )?;
            for c in stats.collections {
                writeln!(
                    out,
                    "{:<32} {:>12} {:>14} {:>8}",
                    c.name, c.documents, c.document_bytes, c.indexes
                )?;
            }
        }
        Command::Indexes { dir, collection } => {
            let db = open(&dir, true)?;
            for spec in existing(&db, &collection)?.list_indexes()? {
                let v = serde_json::to_value(&spec).map_err(|e| fail(1, e.to_string()))?;
                writeln!(out, "{v}")?;
            }
        }
        Command::Find {
            dir,
            collection,
            filter,
            sort,
            limit,
            projection,
            format,
        } => {
            let db = open(&dir, true)?;
            let c = existing(&db, &collection)?;
            let mut f = c.find(parse_json("the filter", &filter)?);
            if let Some(s) = sort {
                f = f.sort(parse_json("--sort", &s)?);
            }
            if let Some(l) = limit {
                f = f.limit(l);
            }
            if let Some(p) = projection {
                f = f.projection(parse_json("--projection", &p)?);
            }
            for d in f.to_vec_as::<bson::Document>()? {
                writeln!(out, "{}", render(d, format))?;
            }
        }
        Command::Count {
            dir,
            collection,
            filter,
        } => {
            let db = open(&dir, true)?;
            let n = existing(&db, &collection)?.count(parse_json("the filter", &filter)?)?;
            writeln!(out, "{n}")?;
        }
        Command::Stats { dir, json } => {
            let db = open(&dir, true)?;
            let s = db.stats()?;
            let wal_bytes = dir_bytes(&dir.join("wal"));
            if json {
                let v = json!({
                    "page_size": s.page_size,
                    "file_bytes": s.file_bytes,
                    "wal_bytes": wal_bytes,
                    "log": {"first": s.log_bounds.0, "last": s.log_bounds.1},
                    "tables": s.tables.iter().map(|t| json!({
                        "name": t.name, "entries": t.entries, "depth": t.depth,
                        "branch_pages": t.branch_pages, "leaf_pages": t.leaf_pages,
                        "overflow_pages": t.overflow_pages,
                    })).collect::<Vec<_>>(),
                    "collections": s.collections.iter().map(|c| json!({
                        "name": c.name, "documents": c.documents,
                        "document_bytes": c.document_bytes, "indexes": c.indexes,
                    })).collect::<Vec<_>>(),
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "data.mdb {} bytes, page size {}, wal/ {} bytes, log LSN {}..{}",
                    s.file_bytes, s.page_size, wal_bytes, s.log_bounds.0, s.log_bounds.1
                )?;
                writeln!(
                    out,
                    "{:<10} {:>10} {:>6} {:>8} {:>8} {:>9} {:>8}",
                    "table", "entries", "depth", "branch", "leaf", "overflow", "pages"
                )?;
                for t in &s.tables {
                    writeln!(
                        out,
                        "{:<10} {:>10} {:>6} {:>8} {:>8} {:>9} {:>8}",
                        t.name,
                        t.entries,
                        t.depth,
                        t.branch_pages,
                        t.leaf_pages,
                        t.overflow_pages,
                        t.pages()
                    )?;
                }
                writeln!(
                    out,
                    "{:<32} {:>12} {:>14} {:>10}",
                    "collection", "documents", "bytes", "bytes/doc"
                )?;
                for c in &s.collections {
                    let per = c.document_bytes.checked_div(c.documents).unwrap_or(0);
                    writeln!(
                        out,
                        "{:<32} {:>12} {:>14} {:>10}",
                        c.name, c.documents, c.document_bytes, per
                    )?;
                }
            }
        }
        Command::Verify { dir } => {
            let db = open(&dir, true)?;
            let r = db.verify()?;
            writeln!(
                out,
                "{} collections, {} documents, {} index entries, {} log entries, {} pages checked",
                r.collections, r.documents, r.index_entries, r.log_entries, r.pages
            )?;
            if !r.is_ok() {
                for p in &r.problems {
                    writeln!(out, "problem: {p}")?;
                }
                if r.unlisted > 0 {
                    writeln!(
                        out,
                        "... and {} more problems (listing stopped)",
                        r.unlisted
                    )?;
                }
                out.flush()?;
                return Err(fail(
                    3,
                    format!("{} problem(s) found", r.problems.len() as u64 + r.unlisted),
                ));
            }
            writeln!(out, "ok")?;
        }
        Command::Export {
            dir,
            collection,
            out: file,
            format,
            filter,
            quiet,
        } => {
            let db = open(&dir, true)?;
            let c = existing(&db, &collection)?;
            let docs = c
                .find(parse_json("--filter", &filter)?)
                .to_vec_as::<bson::Document>()?;
            let bar = progress(quiet, Some(docs.len() as u64), "export");
            let mut w: Box<dyn Write> = match &file {
                Some(p) => Box::new(BufWriter::new(File::create(p)?)),
                None => Box::new(&mut out),
            };
            for d in docs {
                writeln!(w, "{}", render(d, format))?;
                bar.inc(1);
            }
            w.flush()?;
            bar.finish_and_clear();
        }
        Command::Import {
            dir,
            collection,
            input,
            batch,
            quiet,
        } => {
            // Creates the database when the directory has none.
            let db = Database::open(&dir)?;
            let reader: Box<dyn BufRead> = match &input {
                Some(p) => Box::new(BufReader::new(
                    File::open(p).map_err(|e| fail(1, format!("{}: {e}", p.display())))?,
                )),
                None => Box::new(BufReader::new(std::io::stdin())),
            };
            let mut lines = Vec::new();
            for (i, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&line).map_err(|e| {
                    fail(
                        4,
                        format!("line {}: not JSON: {e}; nothing imported", i + 1),
                    )
                })?;
                if !v.is_object() {
                    return Err(fail(
                        4,
                        format!("line {}: not a JSON object; nothing imported", i + 1),
                    ));
                }
                lines.push((i + 1, v));
            }
            let bar = progress(quiet, Some(lines.len() as u64), "import");
            let size = batch.unwrap_or(usize::MAX).max(1);
            let mut done = 0usize;
            for chunk in lines.chunks(size) {
                let res = db.transaction(|tx| {
                    let c = tx.collection(&collection)?;
                    for (n, v) in chunk {
                        if let Err(e) = c.insert_one(v.clone()) {
                            return Err(Error::Aborted(format!("line {n}: {e}")));
                        }
                        bar.inc(1);
                    }
                    Ok(())
                });
                if let Err(e) = res {
                    bar.abandon();
                    let m = match e {
                        Error::Aborted(m) => m,
                        other => other.to_string(),
                    };
                    let kept = if done == 0 {
                        "nothing imported".to_string()
                    } else {
                        format!("the {done} documents before its batch were imported")
                    };
                    return Err(fail(4, format!("{m}; {kept}")));
                }
                done += chunk.len();
            }
            bar.finish_and_clear();
            writeln!(out, "imported {done} documents into '{collection}'")?;
        }
        Command::Backup { dir, file } => {
            let db = open(&dir, true)?;
            let lsn = db.snapshot_to(&file)?;
            writeln!(
                out,
                "backup of {} at LSN {lsn} written to {}",
                dir.display(),
                file.display()
            )?;
        }
        Command::Restore { file, dir } => {
            restore(&file, &dir)?;
            let db = open(&dir, false)?;
            let r = db.verify()?;
            if !r.is_ok() {
                return Err(fail(
                    3,
                    format!("the restored database has problems: {:?}", r.problems),
                ));
            }
            writeln!(
                out,
                "restored {} into {} at LSN {}; verify ok",
                file.display(),
                dir.display(),
                db.last_lsn()?
            )?;
        }
        Command::Compact { dir, to } => {
            let before = std::fs::metadata(dir.join("data.mdb"))?.len();
            let db = open(&dir, true)?;
            std::fs::create_dir(&to).map_err(|e| {
                fail(
                    1,
                    format!("{}: {e} (compact writes a new directory)", to.display()),
                )
            })?;
            let lsn = db.snapshot_to(to.join("data.mdb"))?;
            let after = std::fs::metadata(to.join("data.mdb"))?.len();
            writeln!(
                out,
                "compacted {} ({before} bytes) into {} ({after} bytes) at LSN {lsn}",
                dir.display(),
                to.display()
            )?;
        }
        Command::Log {
            command:
                LogCommand::Tail {
                    dir,
                    entries,
                    after,
                    follow,
                },
        } => {
            let db = open(&dir, true)?;
            let (first, last) = db.log_bounds()?;
            let start = match after {
                Some(a) => a,
                None => last.saturating_sub(entries).max(first.saturating_sub(1)),
            };
            let mut stream = db.watch_from(start);
            if !follow && start >= last {
                return Ok(());
            }
            out.flush()?;
            for ev in stream.by_ref() {
                let ev = ev?;
                let v = json!({
                    "lsn": ev.lsn, "timestamp_ms": ev.timestamp_ms, "op": ev.operation.name(),
                    "collection": ev.collection, "id": ev.id, "document": ev.document,
                    "detail": ev.detail,
                });
                writeln!(out, "{v}")?;
                if follow {
                    out.flush()?;
                } else if ev.lsn >= last && ev.last_in_entry {
                    break;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Total size of the files in a directory (not recursive).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Installs a backup file as `dir/data.mdb` (0600) in a new directory.
fn restore(file: &Path, dir: &Path) -> Res {
    if !file.is_file() {
        return Err(fail(1, format!("{}: not a backup file", file.display())));
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(fail(
            1,
            format!(
                "{} exists and is not empty; restore into a new directory",
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let target = dir.join("data.mdb");
    std::fs::copy(file, &target)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))?;
    }
    File::open(&target)?.sync_all()?;
    Ok(())
}
