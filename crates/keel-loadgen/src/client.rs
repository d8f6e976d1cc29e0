//! HTTP/1.1 connections to the target, and a small client for the requests outside the hot loop
//! (discovery, sampling, import).

use crate::target::Target;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

/// The media type sent and accepted.
pub const FHIR_JSON: &str = "application/fhir+json";

/// One HTTP/1.1 connection: the sender and the connection future that does its I/O (which must
/// be polled, by the same task or another, for requests to make progress).
pub type Conn<B> = (SendRequest<B>, Connection<TokioIo<TcpStream>, B>);

/// Opens one keep-alive HTTP/1.1 connection to the target.
pub async fn connect<B>(target: &Target) -> Result<Conn<B>, String>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {} failed: {e}", target.addr))
}

/// A response read whole.
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A client for occasional requests: one connection, reopened when it breaks.
pub struct Client {
    target: Target,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
    host: HeaderValue,
}

impl Client {
    pub fn new(target: &Target, timeout: Duration) -> Client {
        Client {
            target: target.clone(),
            timeout,
            sender: None,
            host: target.host_header(),
        }
    }

    /// `GET` of an origin-form request target.
    pub async fn get(&mut self, path_and_query: &str) -> Result<Response, String> {
        self.send(Method::GET, path_and_query, None).await
    }

    /// `POST` of a FHIR JSON body to an origin-form request target.
    pub async fn post(&mut self, path_and_query: &str, body: Bytes) -> Result<Response, String> {
        self.send(Method::POST, path_and_query, Some(body)).await
    }

    async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<Response, String> {
        let uri = self.target.uri(path_and_query)?;
        let what = format!("{method} {path_and_query}");
        let exchange = async {
            let mut sender = match self.sender.take() {
                Some(s) if !s.is_closed() => s,
                _ => {
                    let (sender, conn) = connect::<Full<Bytes>>(&self.target).await?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    sender
                }
            };
            sender.ready().await.map_err(|e| format!("{what}: {e}"))?;
            let mut request = Request::new(Full::new(body.clone().unwrap_or_default()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri;
            let headers = request.headers_mut();
            headers.insert(HOST, self.host.clone());
            headers.insert(ACCEPT, HeaderValue::from_static(FHIR_JSON));
            if body.is_some() {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
            }
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("{what}: {e}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{what}: reading the body: {e}"))?
                .to_bytes();
            self.sender = Some(sender);
            Ok(Response { status, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                self.sender = None;
                Err(format!(
                    "{} {path_and_query}: no response within {:?}",
                    method, self.timeout
                ))
            }
        }
    }
}
