//! Serving a simulator: its router behind the fault layer, the fault admin endpoint beside
//! it, on a bound address in a background task. Every simulator is served this way, so each
//! has the same fault controls ([`crate::faults`]).

use std::net::SocketAddr;

use axum::Router;

use crate::faults::{FaultHandle, FaultLayer, admin_router};

/// `api` behind a [`FaultLayer`] over `faults`, plus `/_admin/faults` outside the layer (an
/// outage never blocks the endpoint that ends it).
pub fn with_faults(api: Router, faults: FaultHandle) -> Router {
    api.layer(FaultLayer::new(faults.clone()))
        .merge(admin_router(faults))
}

/// Serves `api` with `faults` on `addr` (e.g. `127.0.0.1:0`) in a background task; returns
/// the bound address. `name` names the simulator in the log if the server stops.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve(
    name: &'static str,
    api: Router,
    addr: SocketAddr,
    faults: FaultHandle,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = with_faults(api, faults);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(simulator = name, error = %e, "simulator stopped");
        }
    });
    Ok((local, handle))
}
