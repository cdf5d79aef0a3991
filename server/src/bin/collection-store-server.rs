//! `collection-store-server --data DIR --listen HOST:PORT [--user NAME:PASSWORD]...`

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use collection_store_server::auth::{Credential, UsersFile};
use collection_store_server::config::{Args, Command, Config};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::HashUser { user }) = &args.command {
        return match Credential::from_flag(user) {
            Ok(c) => {
                print!(
                    "{}",
                    toml::to_string(&UsersFile { user: vec![c] }).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COLLECTION_STORE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let port_file = config.port_file.clone();
        let handle = match collection_store_server::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {}", handle.addr);
        if let Some(m) = handle.metrics_addr {
            let _ = writeln!(out, "metrics on http://{m}/metrics");
        }
        let _ = out.flush();
        if let Some(p) = port_file {
            if let Err(e) = std::fs::write(&p, handle.addr.to_string()) {
                eprintln!("error: cannot write {}: {e}", p.display());
            }
        }
        wait_for_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        handle.shutdown(Duration::from_secs(10)).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
