//! How to connect to the simulated PCN: one practice connection per practice, in the JSON shape
//! of Keel's practice directory (`keel_core::integration::PracticeConnection`), pointing at the
//! simulators' addresses with the credentials they accept.
//!
//! Every practice gets its supplier's API (EMIS-style or TPP-style) and GP Connect, both
//! enabled, with the given timeout. `keel sim serve --connections-out FILE` writes this for
//! `keel serve --connections FILE`.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::gpconnect::GpConnectSimulator;
use crate::model::{GpSystem, Pcn};
use crate::{emis, tpp};

/// Where the simulators listen.
#[derive(Debug, Clone, Copy)]
pub struct SimulatorAddresses {
    pub gp_connect: SocketAddr,
    pub emis: SocketAddr,
    pub tpp: SocketAddr,
}

/// The connections of every practice of `pcn` (a JSON array).
pub fn for_pcn(
    pcn: &Pcn,
    gp_connect: &GpConnectSimulator,
    at: SimulatorAddresses,
    timeout_ms: u64,
) -> Value {
    let practices = pcn.practices.iter().map(|p| {
        let (system, supplier_url, local) = match p.system {
            GpSystem::EmisStyle => (
                "emis-style",
                format!("http://{}{}", at.emis, emis::BASE_PATH),
                json!({
                    "emis-style.application-id": emis::session::APPLICATION_ID,
                    "emis-style.user-id": p.staff.first().map(|s| s.id.as_str()).unwrap_or(""),
                }),
            ),
            GpSystem::TppStyle => (
                "tpp-style",
                format!("http://{}{}", at.tpp, tpp::BASE_PATH),
                json!({
                    "tpp-style.application-id": tpp::session::APPLICATION_ID,
                    "tpp-style.session-token": tpp::session::STANDARD_SESSION,
                }),
            ),
        };
        let mut local = local;
        if let Some(asid) = gp_connect.asid(p.index) {
            local["gp-connect.provider-asid"] = json!(asid);
        }
        json!({
            "ods": p.ods.as_str(),
            "name": p.name,
            "system": system,
            "interfaces": [
                {"interface": system, "base_url": supplier_url, "enabled": true,
                 "version": "sim-1", "timeout_ms": timeout_ms},
                {"interface": "gp-connect",
                 "base_url": format!("http://{}{}", at.gp_connect, gp_connect.service_root(p.index).unwrap_or("")),
                 "enabled": true, "version": "1.6.2", "timeout_ms": timeout_ms},
            ],
            "local_configuration": local,
        })
    });
    Value::Array(practices.collect())
}
