//! The HTTP routes: the page and its bundle, the game WebSocket, and the endpoints
//! operators and the lobby page read.

use std::sync::Arc;

use shared::consts::MAX_CLIENT_MSG_BYTES;
use warp::Filter;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Reply;

use crate::AppState;
use crate::conn::serve_socket;

const PLACEHOLDER_PAGE: &str = include_str!("placeholder.html");

pub fn routes(
    app: Arc<AppState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let with_app = {
        let app = Arc::clone(&app);
        warp::any().map(move || Arc::clone(&app))
    };

    let ws = warp::path("ws")
        .and(warp::path::end())
        .and(warp::ws())
        .and(with_app.clone())
        .map(|ws: warp::ws::Ws, app: Arc<AppState>| {
            ws.max_message_size(MAX_CLIENT_MSG_BYTES)
                .max_frame_size(MAX_CLIENT_MSG_BYTES)
                .on_upgrade(move |socket| serve_socket(socket, app))
                .into_response()
        });

    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| "ok\n".into_response());

    let rooms = warp::path!("api" / "rooms")
        .and(warp::get())
        .and(with_app.clone())
        .map(|app: Arc<AppState>| warp::reply::json(&app.lobby.list()).into_response());

    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_app)
        .map(|app: Arc<AppState>| {
            warp::reply::with_header(
                app.metrics.render(),
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .into_response()
        });

    let page = match app.web_root.clone() {
        Some(root) => warp::get()
            .and(warp::fs::dir(root))
            .map(Reply::into_response)
            .boxed(),
        None => warp::get()
            .and(warp::path::end())
            .map(|| warp::reply::html(PLACEHOLDER_PAGE).into_response())
            .boxed(),
    };

    ws.or(healthz)
        .unify()
        .or(rooms)
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
