//! The HTTP routes: the page and its bundle, the game WebSocket, the lobby feed's
//! WebSocket, and the endpoints operators and the lobby page read.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use tracing::Instrument;

use warp::Filter;
use warp::http::StatusCode;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Reply;

use crate::AppState;
use crate::net::caps::{CapExceeded, ConnSlot};
use crate::net::client_addr::client_ip;
use crate::net::conn::serve_socket;
use crate::net::http::get_or_head;
use crate::net::lobby::serve_lobby;
use crate::net::upgrade::{self, Handover, Handshake};

fn refuse(status: StatusCode, text: &'static str) -> warp::reply::Response {
    warp::reply::with_status(format!("{text}\n"), status).into_response()
}

/// Why a WebSocket was not admitted, as its HTTP answer says.
#[derive(Clone, Copy, Debug)]
struct NotAdmitted {
    status: StatusCode,
    text: &'static str,
}

impl NotAdmitted {
    fn into_response(self) -> warp::reply::Response {
        refuse(self.status, self.text)
    }
}

/// Admits a WebSocket (the game's or the lobby's) before its 101: a page of an allowed
/// origin, and a free connection slot.
fn admit(
    app: &Arc<AppState>,
    origin: Option<&str>,
    host: Option<&str>,
    client: IpAddr,
) -> Result<ConnSlot, NotAdmitted> {
    if !app.origins.allows(origin, host) {
        tracing::debug!(?origin, %client, "websocket from a foreign origin refused");
        return Err(NotAdmitted {
            status: StatusCode::FORBIDDEN,
            text: "origin not allowed",
        });
    }
    app.caps
        .try_take(client)
        .map_err(|exceeded| match exceeded {
            CapExceeded::Global => NotAdmitted {
                status: StatusCode::SERVICE_UNAVAILABLE,
                text: "server full",
            },
            CapExceeded::PerIp => {
                tracing::debug!(%client, "websocket over the per-address cap refused");
                NotAdmitted {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    text: "too many connections",
                }
            }
        })
}

/// A WebSocket route at `/{path}`, served by `serve` in one of the server's tasks. The
/// origin is checked and a connection slot taken before the 101 is sent (see `admit`),
/// so a refused client costs no WebSocket.
fn admitted_socket<S, Fut>(
    path: &'static str,
    app: Arc<AppState>,
    serve: S,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone
where
    S: Fn(Handover, Arc<AppState>, ConnSlot) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let proxies = app.proxies.clone();
    let with_app = warp::any().map(move || Arc::clone(&app));
    warp::path(path)
        .and(warp::path::end())
        .and(upgrade::handshake())
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and(client_ip(proxies))
        .and(with_app)
        .map(
            move |handshake: Handshake,
                  origin: Option<String>,
                  host: Option<String>,
                  client: IpAddr,
                  app: Arc<AppState>| {
                let slot = match admit(&app, origin.as_deref(), host.as_deref(), client) {
                    Ok(slot) => slot,
                    Err(refused) => return refused.into_response(),
                };
                let tasks = app.tasks.clone();
                let span = tracing::debug_span!("socket", route = path, %client);
                let serve = serve.clone();
                handshake.accept(&tasks, move |handover| {
                    serve(handover, app, slot).instrument(span)
                })
            },
        )
}

pub(crate) fn routes(
    app: Arc<AppState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let with_app = {
        let app = Arc::clone(&app);
        warp::any().map(move || Arc::clone(&app))
    };

    let ws = admitted_socket("ws", Arc::clone(&app), serve_socket);
    // The lobby's live room list: admitted exactly as the game socket is.
    let lobby = admitted_socket("lobby", Arc::clone(&app), serve_lobby);

    let echo_enabled = app.echo_route;
    let echo = warp::path("echo")
        .and(warp::path::end())
        .and_then(move || async move {
            if echo_enabled {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(upgrade::handshake())
        .and(with_app.clone())
        .map(|handshake: Handshake, app: Arc<AppState>| {
            let metrics = Arc::clone(&app.metrics);
            handshake.accept(&app.tasks, move |handover| {
                crate::net::echo::echo(handover, metrics)
            })
        });

    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .and(get_or_head())
        .map(|| "ok\n".into_response());

    let rooms = warp::path!("api" / "rooms")
        .and(get_or_head())
        .and(with_app.clone())
        .map(|app: Arc<AppState>| warp::reply::json(&app.rooms_listed()).into_response());

    // Old data: matches, players, the leaderboard.
    let history = crate::net::api::routes(Arc::clone(&app.store));
    let replays = crate::net::replay_files::routes(app.data_dir.clone());

    // On the admin listener always; here only with `--public-metrics`.
    let public_metrics = app.public_metrics;
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and_then(move || async move {
            if public_metrics {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(get_or_head())
        .and(with_app)
        .map(|app: Arc<AppState>| {
            warp::reply::with_header(
                app.metrics.render(),
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .into_response()
        });

    // The page, its bundle and the icon, whichever paths are left.
    let page = crate::net::web_files::routes(Arc::clone(&app.web_files));

    ws.or(lobby)
        .unify()
        .or(echo)
        .unify()
        .or(healthz)
        .unify()
        .or(rooms)
        .unify()
        .or(replays)
        .unify()
        .or(history)
        .unify()
        .or(metrics)
        .unify()
        .or(page)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let status = if rejection.is_not_found() {
                warp::http::StatusCode::NOT_FOUND
            } else {
                warp::http::StatusCode::BAD_REQUEST
            };
            Ok::<_, std::convert::Infallible>(
                warp::reply::with_status(format!("{status}\n"), status).into_response(),
            )
        })
        .unify()
}
