//! `keel serve`: the FHIR API over HTTP.

use clap::Args;
use keel_api::AppState;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Concurrent store calls (and so reader connections) at most.
const MAX_STORE_THREADS: usize = 16;

#[derive(Args)]
pub struct ServeArgs {
    /// Data directory of the embedded database.
    #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "KEEL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Public base URL of the FHIR API (default: derived from the Host header).
    #[arg(long, env = "KEEL_BASE_URL")]
    base_url: Option<String>,
    /// Worker threads for the HTTP server (default: one per core).
    #[arg(long, env = "KEEL_WORKERS")]
    workers: Option<usize>,
}

pub fn run(args: ServeArgs) -> Result<ExitCode, String> {
    let fhir = crate::open_service(&args.data, keel_store::Durability::EveryCommit)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // Store calls run on the blocking pool, one pooled database connection each: bounding the
    // pool bounds the connections and their page caches (memory).
    runtime.enable_all().max_blocking_threads(MAX_STORE_THREADS);
    if let Some(n) = args.workers {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let instance = format!("{:x}", std::process::id());
        let state = Arc::new(AppState::new(fhir, args.base_url, instance));
        // The exact line end-to-end tests and scripts wait for.
        println!("keel: listening on http://{local}/fhir");
        tracing::info!(%local, data = %args.data.display(), "keel serve started");
        axum::serve(listener, keel_api::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("server error: {e}"))?;
        tracing::info!("keel serve stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
