//! The wagate binary: configuration, logging, open, serve.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wagate::config::LogFormat;

/// jemalloc, not glibc's malloc: a delivery allocates on one runtime thread and frees on the
/// other, and glibc then locks the other thread's arena (a third of the futex calls, a quarter of
/// the CPU in a webhook drain). Measured in docs/benchmarks.md; mimalloc was faster still but
/// broke the 1,000-session memory target.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = wagate::Config::parse();
    init_log(config.log_format);
    if config.print_openapi {
        println!("{}", wagate::api::openapi_json());
        return std::process::ExitCode::SUCCESS;
    }
    if let Some(command) = &config.command {
        return match wagate::backup::cli::run(&config, command).await {
            Ok(done) => {
                println!("{done}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wagate: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let (state, generated_key) = match wagate::open(&config).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(key) = generated_key {
        println!("WAHA_API_KEY was not set; generated API key for this run: {key}");
        println!("Send it as the X-Api-Key header (or set WAHA_API_KEY, or WAHA_NO_API_KEY=true).");
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.listen, "cannot listen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "wagate listening; Swagger UI at http://{addr}/");
    if let Err(e) = wagate::run(listener, state, stop_signal()).await {
        tracing::error!("server failed: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// The log on stderr: `RUST_LOG` filters (default `info`); text with colours only on a terminal,
/// or one JSON object per line.
fn init_log(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => log.json().with_current_span(false).init(),
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// SIGTERM (how Docker, systemd and Kubernetes stop a process) or Ctrl-C.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops cleanly");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
