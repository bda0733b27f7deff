//! The wagate binary: configuration, logging, open, serve.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc, not glibc's malloc: a delivery allocates on one runtime thread and frees on the
/// other, and glibc then locks the other thread's arena (a third of the futex calls, a quarter of
/// the CPU in a webhook drain). Measured in docs/benchmarks.md; mimalloc was faster still but
/// broke the 1,000-session memory target.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = wagate::Config::parse();
    if config.print_openapi {
        println!("{}", wagate::api::openapi_json());
        return std::process::ExitCode::SUCCESS;
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
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = wagate::run(listener, state, shutdown).await {
        tracing::error!("server failed: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
