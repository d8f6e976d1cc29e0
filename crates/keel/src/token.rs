//! `keel token`: prints a bearer token for a CIS2-style user, signed by the development
//! issuer of the data directory, for the demo and tests. Refuses a production data directory.

use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::data_environment;
use crate::dev_issuer::{DevIssuer, ISSUER};

/// The audience `keel serve` expects unless told otherwise.
pub const DEFAULT_AUDIENCE: &str = "keel";

#[derive(Args)]
pub struct TokenArgs {
    /// Data directory whose development issuer signs the token.
    #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
    data: PathBuf,
    /// National RBAC access role code of the selected role (`R8000`, or `S8000:G8000:R8000`).
    #[arg(long)]
    role: String,
    /// ODS code of the selected role's organisation.
    #[arg(long)]
    org: String,
    /// The user's id (`nhsid_useruid`).
    #[arg(long)]
    user: String,
    /// The purpose of use the token states (`direct-care`, `administration`,
    /// `secondary-use`, `operations`).
    #[arg(long)]
    purpose: Option<String>,
    /// National RBAC activity codes of the role (repeatable).
    #[arg(long = "activity")]
    activities: Vec<String>,
    /// The audience (`aud`).
    #[arg(long, default_value = DEFAULT_AUDIENCE)]
    audience: String,
    /// Seconds the token is valid for.
    #[arg(long, default_value_t = 3600)]
    lifetime_secs: u64,
}

pub fn run(args: TokenArgs) -> Result<ExitCode, String> {
    data_environment::require_development(&args.data, "keel token")?;
    if let Some(code) = &args.purpose {
        keel_api::auth::purpose_from_code(code)
            .ok_or_else(|| format!("--purpose '{code}' is not a purpose Keel knows"))?;
    }
    keel_model::OdsCode::parse(&args.org).map_err(|e| format!("--org: {e}"))?;
    let issuer = DevIssuer::open_or_create(&args.data)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?
        .as_secs();
    let role_id = format!("dev-{}-{}", args.user, args.role);
    let mut claims = json!({
        "iss": ISSUER,
        "aud": args.audience,
        "sub": args.user,
        "iat": now,
        "nbf": now,
        "exp": now + args.lifetime_secs,
        "nhsid_useruid": args.user,
        "selected_roleid": role_id,
        "nhsid_nrbac_roles": [{
            "person_roleid": role_id,
            "org_code": args.org,
            "role_code": args.role,
            "activity_codes": args.activities,
        }],
    });
    if let Some(purpose) = args.purpose {
        claims["purpose_of_use"] = json!(purpose);
    }
    println!("{}", issuer.sign(&claims)?);
    Ok(ExitCode::SUCCESS)
}
