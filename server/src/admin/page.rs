//! The console's page, its login form and its assets, embedded in the binary: the
//! console loads nothing from anywhere but the admin listener (uPlot is vendored in
//! `console/vendor/` with its license).

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use crate::admin::Console;
use crate::admin::api::{Facts, text};

const CONSOLE_HTML: &str = include_str!("console/console.html");
const LOGIN_HTML: &str = include_str!("console/login.html");

/// Served at `/admin/assets/NAME`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("console/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("console/console.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("console/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("console/vendor/uPlot.min.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../../assets/favicon.svg"),
    ),
];

/// Everything the console's pages load comes from here; nothing may frame them.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: StatusCode, body: String) -> Response {
    let mut response = warp::reply::with_status(warp::reply::html(body), status).into_response();
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The console for a logged-in operator, the login form for anyone else.
pub(crate) fn console_or_login(console: &Console, facts: &Facts) -> Response {
    let logged_in = facts
        .creds
        .session
        .as_deref()
        .and_then(|session| console.auth.session(session));
    match logged_in {
        Some(_) => html(StatusCode::OK, CONSOLE_HTML.to_owned()),
        None => login(StatusCode::OK, None),
    }
}

/// The login form, with a fixed message (never anything the client sent) if one is given.
pub(crate) fn login(status: StatusCode, message: Option<&str>) -> Response {
    let message = message.map(escape).unwrap_or_default();
    html(status, LOGIN_HTML.replace("{{message}}", &message))
}

pub(crate) fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, body)) => {
            let mut response = (*body).into_response();
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
