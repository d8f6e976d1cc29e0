//! The server under test: its base URL, resolved once, and the loopback-only policy.

use hyper::Uri;
use hyper::header::HeaderValue;
use std::net::{IpAddr, SocketAddr};

/// Where requests go. Every request of a run is sent to `addr` with `Host: authority`; nothing
/// else is ever contacted.
#[derive(Clone, Debug)]
pub struct Target {
    /// The base URL as given, without a trailing slash.
    pub base_url: String,
    /// `host[:port]` as written in the base URL, for the `Host` header.
    pub authority: String,
    /// The address connected to.
    pub addr: SocketAddr,
    /// The path of the base URL without a trailing slash (`/fhir`, or empty for the root).
    pub base_path: String,
}

impl Target {
    /// Parses and resolves `base`. Hosts that are not loopback addresses are refused unless
    /// `allow_remote`; a name is accepted only if it resolves to loopback addresses only.
    pub async fn resolve(base: &str, allow_remote: bool) -> Result<Target, String> {
        let parsed = parse_base(base)?;
        let addrs: Vec<SocketAddr> = match parsed.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, parsed.port)],
            Err(_) => tokio::net::lookup_host((parsed.host.as_str(), parsed.port))
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", parsed.host))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("{} resolves to no address", parsed.host));
        }
        if !allow_remote && addrs.iter().any(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "refusing to load {}: not a loopback address (benchmarks here target 127.0.0.0/8, localhost or [::1]; \
                 pass --allow-remote to target another host you are responsible for)",
                parsed.host
            ));
        }
        // Prefer IPv4: servers in this project listen on 127.0.0.1.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .copied()
            .unwrap_or(addrs[0]);
        Ok(Target {
            base_url: parsed.base_url,
            authority: parsed.authority,
            addr,
            base_path: parsed.path,
        })
    }

    /// A target for an already-known address (tests).
    pub fn for_addr(addr: SocketAddr, base_path: &str) -> Target {
        let base_path = base_path.trim_end_matches('/').to_string();
        Target {
            base_url: format!("http://{addr}{base_path}"),
            authority: addr.to_string(),
            addr,
            base_path,
        }
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> HeaderValue {
        HeaderValue::from_str(&self.authority)
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"))
    }

    /// The origin-form request target for `relative` (a path below the base, with or without a
    /// leading slash, optionally with a query).
    pub fn path_for(&self, relative: &str) -> String {
        let relative = relative.trim_start_matches('/');
        if relative.is_empty() {
            format!("{}/", self.base_path)
        } else {
            format!("{}/{relative}", self.base_path)
        }
    }

    /// The origin-form request target of a link a server returned (for example a paging `next`
    /// link): the path and query of an absolute URL, whatever its host (it is sent to this
    /// target), or a path relative to the base.
    pub fn path_of_link(&self, link: &str) -> String {
        if let Some(rest) = link
            .strip_prefix("http://")
            .or_else(|| link.strip_prefix("https://"))
        {
            match rest.find('/') {
                Some(i) => rest[i..].to_string(),
                None => "/".to_string(),
            }
        } else if link.starts_with('/') {
            link.to_string()
        } else {
            self.path_for(link)
        }
    }

    /// Parses an origin-form request target into a URI.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, String> {
        Uri::try_from(path_and_query)
            .map_err(|e| format!("not a valid request target {path_and_query:?}: {e}"))
    }
}

struct ParsedBase {
    base_url: String,
    authority: String,
    host: String,
    port: u16,
    path: String,
}

fn parse_base(base: &str) -> Result<ParsedBase, String> {
    let base_url = base.trim().trim_end_matches('/').to_string();
    let uri: Uri = base_url
        .parse()
        .map_err(|e| format!("not a URL: {base:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https is not supported: keel-loadgen speaks plain HTTP to a local server".into(),
            );
        }
        _ => {
            return Err(format!(
                "the base URL must start with http:// (got {base:?})"
            ));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("no host in {base:?}"))?;
    if authority.as_str().contains('@') {
        return Err("credentials in the base URL are not supported".into());
    }
    if uri.query().is_some() {
        return Err(format!("the base URL must not have a query: {base:?}"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(80);
    let path = uri.path().trim_end_matches('/').to_string();
    Ok(ParsedBase {
        base_url,
        authority: authority.as_str().to_string(),
        host,
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_only_unless_allowed() {
        let t = Target::resolve("http://127.0.0.1:8080/fhir/", false)
            .await
            .expect("loopback");
        assert_eq!(t.base_path, "/fhir");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.base_url, "http://127.0.0.1:8080/fhir");
        let t = Target::resolve("http://[::1]:9/fhir", false)
            .await
            .expect("v6 loopback");
        assert_eq!(t.addr.port(), 9);
        let t = Target::resolve("http://127.1.2.3", false)
            .await
            .expect("127/8");
        assert_eq!(t.addr.port(), 80);
        assert_eq!(t.base_path, "");
        for remote in [
            "http://10.0.0.1/fhir",
            "http://192.168.1.5:8080/fhir",
            "http://8.8.8.8/fhir",
        ] {
            let err = Target::resolve(remote, false).await.expect_err(remote);
            assert!(err.contains("--allow-remote"), "{err}");
        }
        // Allowed by the flag: resolving a literal address sends nothing.
        assert!(Target::resolve("http://10.0.0.1/fhir", true).await.is_ok());
        assert!(
            Target::resolve("https://127.0.0.1/fhir", false)
                .await
                .is_err()
        );
        assert!(
            Target::resolve("ftp://127.0.0.1/fhir", false)
                .await
                .is_err()
        );
        assert!(
            Target::resolve("http://127.0.0.1/fhir?x=1", false)
                .await
                .is_err()
        );
    }

    #[test]
    fn links_stay_on_the_target() {
        let t = Target::for_addr("127.0.0.1:8080".parse().expect("addr"), "/fhir/");
        assert_eq!(t.path_for("Patient/1"), "/fhir/Patient/1");
        assert_eq!(t.path_for("/Patient?x=1"), "/fhir/Patient?x=1");
        assert_eq!(
            t.path_of_link("http://example.org:9/fhir/Patient?_page=2"),
            "/fhir/Patient?_page=2"
        );
        assert_eq!(
            t.path_of_link("/fhir/Patient?_page=3"),
            "/fhir/Patient?_page=3"
        );
        assert_eq!(t.path_of_link("Patient?_page=4"), "/fhir/Patient?_page=4");
        assert_eq!(t.path_of_link("http://example.org"), "/");
    }
}
