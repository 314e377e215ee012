//! A STAND-IN for the Agones SDK server, for tests only: no Kubernetes runs here, so
//! this plays the sidecar's HTTP/JSON gateway on a loopback port. It answers the paths,
//! methods and bodies of Agones's `sdks/swagger/sdk.swagger.json` (and the Counters of
//! `beta.swagger.json`) as its REST guide documents them, keeps a GameServer the test
//! can change (state, address, ports), and records every request for the test to check.
//! It is not Agones: it checks the shape of what it is sent, not Agones's behaviour
//! beyond the state moves the SDK's calls document.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The prefix Agones gives every label and annotation the SDK sets.
pub const SDK_PREFIX: &str = "agones.dev/sdk-";

/// One request the stand-in received, and what it answered.
#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    pub status: u16,
    /// For `/ready` with a probe set: whether the game port accepted a connection
    /// at the moment Ready arrived.
    pub probe_accepted: Option<bool>,
}

#[derive(Debug)]
struct State {
    calls: Vec<Call>,
    state: String,
    address: String,
    ports: Vec<(String, u16)>,
    labels: BTreeMap<String, String>,
    /// name → (count, capacity), as a Fleet's `counters` declares them.
    counters: BTreeMap<String, (i64, i64)>,
    deletion_timestamp: Option<String>,
    ready_probe: Option<SocketAddr>,
}

/// The stand-in sidecar, serving until dropped.
#[derive(Debug)]
pub struct SdkStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for SdkStandIn {
    fn drop(&mut self) {
        // Aborting the accept task drops its set of connection tasks, which aborts them.
        self.task.abort();
    }
}

impl SdkStandIn {
    /// On a free loopback port.
    pub async fn start() -> std::io::Result<SdkStandIn> {
        SdkStandIn::start_on(0).await
    }

    /// On `port` of loopback (0: a free one).
    pub async fn start_on(port: u16) -> std::io::Result<SdkStandIn> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            calls: Vec::new(),
            state: "Scheduled".into(),
            address: String::new(),
            ports: Vec::new(),
            labels: BTreeMap::new(),
            counters: BTreeMap::new(),
            deletion_timestamp: None,
            ready_probe: None,
        }));
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        Ok(SdkStandIn { addr, state, task })
    }

    /// What the server is given as `AGONES_SDK_HTTP_PORT`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// At each `/ready`, try to connect to `game` and record whether it accepted.
    pub fn probe_on_ready(&self, game: SocketAddr) {
        self.lock().ready_probe = Some(game);
    }

    /// The GameServer's `status.address` and one port, as Agones sets them when it
    /// schedules the GameServer.
    pub fn set_address(&self, address: &str, port_name: &str, port: u16) {
        let mut state = self.lock();
        state.address = address.to_owned();
        state.ports = vec![(port_name.to_owned(), port)];
    }

    /// The GameServer's `status.state`, as Agones would move it.
    pub fn set_state(&self, new_state: &str) {
        self.lock().state = new_state.to_owned();
    }

    /// Marks the GameServer's pod as being deleted (`object_meta.deletion_timestamp`).
    pub fn set_deleting(&self) {
        self.lock().deletion_timestamp = Some("1796169600".into());
    }

    /// Declares a Counter, as a Fleet's `spec.template.spec.counters` does.
    pub fn declare_counter(&self, name: &str, capacity: i64) {
        self.lock().counters.insert(name.to_owned(), (0, capacity));
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The requests to `path` so far.
    pub fn calls_to(&self, path: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.path == path)
            .collect()
    }

    /// A label the SDK set (`key` without the `agones.dev/sdk-` prefix).
    pub fn label(&self, key: &str) -> Option<String> {
        self.lock()
            .labels
            .get(&format!("{SDK_PREFIX}{key}"))
            .cloned()
    }

    /// A Counter's count.
    pub fn counter(&self, name: &str) -> Option<i64> {
        self.lock().counters.get(name).map(|(count, _)| *count)
    }

    /// Waits until `check` holds of the calls, polling; whether it held within `within`.
    pub async fn wait_for(&self, within: Duration, check: impl Fn(&SdkStandIn) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Finished connections are reaped as new ones come, so the set stays small.
        while connections.try_join_next().is_some() {}
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(answer(request, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let probe = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .ready_probe;
    let probe_accepted = match (path.as_str(), probe) {
        ("/ready", Some(game)) => Some(TcpStream::connect(game).await.is_ok()),
        _ => None,
    };
    let mut state = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (status, reply) = route(&mut state, &method, &path, json.as_ref());
    state.calls.push(Call {
        at: Instant::now(),
        method: method.to_string(),
        path,
        body: json.unwrap_or(Value::Null),
        status: status.as_u16(),
        probe_accepted,
    });
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    *response.status_mut() = status;
    response
}

/// The documented API: a path, its one method, and the body its swagger definition
/// gives (`sdkEmpty`, `sdkKeyValue`, a Counter update); anything else is refused.
fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let refused = |status: StatusCode, why: &str| (status, json!({ "error": why }));
    let empty = || body.is_some_and(Value::is_object);
    match (method.as_str(), path) {
        ("POST", "/ready" | "/health" | "/shutdown" | "/allocate") => {
            if !empty() {
                return refused(StatusCode::BAD_REQUEST, "the body must be {} (sdkEmpty)");
            }
            match path {
                "/ready" => state.state = "Ready".into(),
                "/shutdown" => state.state = "Shutdown".into(),
                "/allocate" => state.state = "Allocated".into(),
                _ => {}
            }
            (StatusCode::OK, json!({}))
        }
        ("PUT", "/metadata/label" | "/metadata/annotation") => {
            let pair = body
                .and_then(|body| Some((body.get("key")?.as_str()?, body.get("value")?.as_str()?)));
            let Some((key, value)) = pair else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "the body must be {\"key\", \"value\"} (sdkKeyValue)",
                );
            };
            if path == "/metadata/label" {
                state
                    .labels
                    .insert(format!("{SDK_PREFIX}{key}"), value.to_owned());
            }
            (StatusCode::OK, json!({}))
        }
        ("GET", "/gameserver") => (StatusCode::OK, game_server(state)),
        (verb, _) if path.starts_with("/v1beta1/counters/") => {
            let name = &path["/v1beta1/counters/".len()..];
            let Some(&(count, capacity)) = state.counters.get(name) else {
                return refused(
                    StatusCode::NOT_FOUND,
                    "no such Counter in the GameServer's spec",
                );
            };
            match verb {
                "GET" => (StatusCode::OK, counter_json(name, count, capacity)),
                "PATCH" => {
                    let Some(update) = body.and_then(Value::as_object) else {
                        return refused(
                            StatusCode::BAD_REQUEST,
                            "the body must be a CounterUpdateRequest",
                        );
                    };
                    let field = |key: &str| update.get(key).map(int64);
                    let (count, capacity) =
                        match (field("count"), field("capacity"), field("countDiff")) {
                            (Some(None), _, _) | (_, Some(None), _) | (_, _, Some(None)) => {
                                return refused(
                                    StatusCode::BAD_REQUEST,
                                    "int64 fields are strings of digits",
                                );
                            }
                            (new_count, new_capacity, diff) => (
                                new_count.flatten().unwrap_or(count) + diff.flatten().unwrap_or(0),
                                new_capacity.flatten().unwrap_or(capacity),
                            ),
                        };
                    if !(0..=capacity).contains(&count) {
                        return refused(
                            StatusCode::BAD_REQUEST,
                            "count out of range of the capacity",
                        );
                    }
                    state.counters.insert(name.to_owned(), (count, capacity));
                    (StatusCode::OK, counter_json(name, count, capacity))
                }
                _ => refused(StatusCode::METHOD_NOT_ALLOWED, "GET or PATCH"),
            }
        }
        (
            _,
            "/ready"
            | "/health"
            | "/shutdown"
            | "/allocate"
            | "/metadata/label"
            | "/metadata/annotation"
            | "/gameserver",
        ) => refused(StatusCode::METHOD_NOT_ALLOWED, "not the documented method"),
        _ => refused(StatusCode::NOT_FOUND, "not an SDK path"),
    }
}

/// An int64 as the gateway takes it: a string of digits (protobuf's JSON), or a number.
fn int64(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

fn counter_json(name: &str, count: i64, capacity: i64) -> Value {
    json!({ "name": name, "count": count.to_string(), "capacity": capacity.to_string() })
}

/// `sdkGameServer` as the gateway writes it (snake_case, int64s as strings).
fn game_server(state: &State) -> Value {
    let mut meta = json!({
        "name": "stand-in",
        "namespace": "default",
        "uid": "stand-in-uid",
        "labels": state.labels,
    });
    if let Some(stamp) = &state.deletion_timestamp {
        meta["deletion_timestamp"] = json!(stamp);
    }
    let ports: Vec<Value> = state
        .ports
        .iter()
        .map(|(name, port)| json!({ "name": name, "port": port }))
        .collect();
    json!({
        "object_meta": meta,
        "status": { "state": state.state, "address": state.address, "ports": ports },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            calls: Vec::new(),
            state: "Scheduled".into(),
            address: String::new(),
            ports: Vec::new(),
            labels: BTreeMap::new(),
            counters: BTreeMap::from([("players".to_owned(), (0, 10))]),
            deletion_timestamp: None,
            ready_probe: None,
        }
    }

    #[test]
    fn the_documented_calls_move_the_state_and_the_metadata() {
        let mut state = state();
        let post = Method::POST;
        assert_eq!(
            route(&mut state, &post, "/ready", Some(&json!({}))).0,
            StatusCode::OK
        );
        assert_eq!(state.state, "Ready");
        let label = json!({ "key": "players", "value": "3" });
        assert_eq!(
            route(&mut state, &Method::PUT, "/metadata/label", Some(&label)).0,
            StatusCode::OK
        );
        assert_eq!(
            state
                .labels
                .get("agones.dev/sdk-players")
                .map(String::as_str),
            Some("3")
        );
        let update = json!({ "count": "4" });
        let (status, reply) = route(
            &mut state,
            &Method::PATCH,
            "/v1beta1/counters/players",
            Some(&update),
        );
        assert_eq!(
            (status, reply["count"].as_str()),
            (StatusCode::OK, Some("4"))
        );
        assert_eq!(
            route(&mut state, &post, "/shutdown", Some(&json!({}))).0,
            StatusCode::OK
        );
        assert_eq!(game_server(&state)["status"]["state"], "Shutdown");
    }

    #[test]
    fn undocumented_methods_bodies_and_paths_are_refused() {
        let mut state = state();
        assert_eq!(
            route(&mut state, &Method::GET, "/ready", None).0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            route(&mut state, &Method::POST, "/health", None).0,
            StatusCode::BAD_REQUEST
        );
        let half = json!({ "key": "players" });
        assert_eq!(
            route(&mut state, &Method::PUT, "/metadata/label", Some(&half)).0,
            StatusCode::BAD_REQUEST
        );
        let unknown = json!({ "count": "1" });
        assert_eq!(
            route(
                &mut state,
                &Method::PATCH,
                "/v1beta1/counters/rooms",
                Some(&unknown)
            )
            .0,
            StatusCode::NOT_FOUND
        );
        let too_many = json!({ "count": "11" });
        assert_eq!(
            route(
                &mut state,
                &Method::PATCH,
                "/v1beta1/counters/players",
                Some(&too_many)
            )
            .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            route(&mut state, &Method::POST, "/unready", Some(&json!({}))).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(state.state, "Scheduled", "nothing refused moved the state");
    }
}
