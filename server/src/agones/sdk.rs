//! The Agones SDK server's HTTP/JSON gateway, on loopback at `AGONES_SDK_HTTP_PORT`:
//! the REST paths, methods and bodies of Agones's `sdk.swagger.json` and
//! `beta.swagger.json`. The gateway rather than gRPC: the `agones` crate needs protoc
//! and a gRPC stack to build, and these calls are a handful of small JSON requests a
//! second at most, which hyper (already serving the game) makes as well.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::game_server::GameServer;

/// The longest one call may take: the sidecar is on loopback, so anything slower is
/// a sidecar in trouble, and the caller's retry is better than a wait.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call to the SDK server failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SdkError {
    #[error("cannot reach the SDK server: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP exchange with the SDK server failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the SDK server did not answer within {CALL_TIMEOUT:?}")]
    Timeout,
    #[error("the SDK server answered {status}: {body}")]
    Refused { status: StatusCode, body: String },
    #[error("the SDK server's GameServer cannot be read: {0}")]
    GameServer(String),
}

/// The gateway's address. Each call opens its own loopback connection and drives it
/// to the end within the call, so no task outlives a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sdk {
    port: u16,
}

impl Sdk {
    pub(crate) fn new(port: u16) -> Sdk {
        Sdk { port }
    }

    /// `POST /ready`: the GameServer may be allocated.
    pub(crate) async fn ready(&self) -> Result<(), SdkError> {
        self.call(Method::POST, "/ready", &json!({}))
            .await
            .map(drop)
    }

    /// `POST /health`: one health ping.
    pub(crate) async fn health(&self) -> Result<(), SdkError> {
        self.call(Method::POST, "/health", &json!({}))
            .await
            .map(drop)
    }

    /// `POST /shutdown`: Agones may delete the pod.
    pub(crate) async fn shutdown(&self) -> Result<(), SdkError> {
        self.call(Method::POST, "/shutdown", &json!({}))
            .await
            .map(drop)
    }

    /// `PUT /metadata/label`: Agones stores it as `agones.dev/sdk-<key>`.
    pub(crate) async fn set_label(&self, key: &str, value: &str) -> Result<(), SdkError> {
        self.call(
            Method::PUT,
            "/metadata/label",
            &json!({ "key": key, "value": value }),
        )
        .await
        .map(drop)
    }

    /// `PATCH /v1beta1/counters/<name>` setting the count (int64s travel as strings).
    pub(crate) async fn set_counter(&self, name: &str, count: u64) -> Result<(), SdkError> {
        self.call(
            Method::PATCH,
            &format!("/v1beta1/counters/{name}"),
            &json!({ "count": count.to_string() }),
        )
        .await
        .map(drop)
    }

    /// `GET /gameserver`: the GameServer this process runs as.
    pub(crate) async fn game_server(&self) -> Result<GameServer, SdkError> {
        let body = self.call(Method::GET, "/gameserver", &Value::Null).await?;
        GameServer::parse(&body).map_err(SdkError::GameServer)
    }

    /// One request and its whole answer; anything but a 2xx is an error.
    async fn call(&self, method: Method, path: &str, body: &Value) -> Result<Bytes, SdkError> {
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, format!("localhost:{}", self.port))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|err| SdkError::GameServer(format!("a request could not be built: {err}")))?;
        let port = self.port;
        let exchange = async move {
            let stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(SdkError::Connect)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let answer = async move {
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                // Dropping the sender here lets the connection below finish.
                Ok::<_, SdkError>((status, body))
            };
            // The connection is driven here, beside the exchange, not in a task of its own.
            let (answer, _) = tokio::join!(answer, connection);
            answer
        };
        let (status, body) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| SdkError::Timeout)??;
        if !status.is_success() {
            return Err(SdkError::Refused {
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        Ok(body)
    }
}
