//! The plain-HTTP listener of `--redirect-http`: every request is answered with a 301
//! to the same path and query on the HTTPS port, so `http://` links and typed addresses
//! land on the game.

use warp::Filter;
use warp::http::header::LOCATION;
use warp::http::uri::Authority;
use warp::http::{HeaderValue, StatusCode};
use warp::path::FullPath;
use warp::reply::{Reply, Response};

/// Answers every request with a redirect to the HTTPS server on `https_port`.
pub(crate) fn routes(
    https_port: u16,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::any()
        .and(warp::header::optional::<String>("host"))
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(move |host: Option<String>, path: FullPath, query: String| {
            let target = host
                .as_deref()
                .and_then(|host| location(host, https_port, path.as_str(), &query));
            match target.and_then(|target| HeaderValue::from_str(&target).ok()) {
                Some(target) => {
                    let mut response =
                        warp::reply::with_status("", StatusCode::MOVED_PERMANENTLY).into_response();
                    response.headers_mut().insert(LOCATION, target);
                    response
                }
                None => warp::reply::with_status(
                    "a Host header naming this server is needed\n",
                    StatusCode::BAD_REQUEST,
                )
                .into_response(),
            }
        })
}

/// The HTTPS address of a request for `path?query` sent with `Host: host`: the same
/// host name, the HTTPS port (left out when it is 443), the same path and query.
/// `None` when the Host header is not a host.
pub(crate) fn location(host: &str, https_port: u16, path: &str, query: &str) -> Option<String> {
    let authority: Authority = host.trim().parse().ok()?;
    // Authority also takes `user@host` and a port that is not a number, which a Host
    // header never holds.
    let has_port = authority.as_str().len() > authority.host().len();
    if authority.as_str().contains('@')
        || authority.host().is_empty()
        || (has_port && authority.port_u16().is_none())
    {
        return None;
    }
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    Some(format!("https://{}{port}{path}{query}", authority.host()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_replaced_and_the_path_and_query_kept() {
        assert_eq!(
            location("play.example.com:8080", 8443, "/", "").as_deref(),
            Some("https://play.example.com:8443/")
        );
        assert_eq!(
            location("play.example.com", 443, "/api/rooms", "limit=5").as_deref(),
            Some("https://play.example.com/api/rooms?limit=5")
        );
        assert_eq!(
            location("[::1]:80", 8443, "/ws", "").as_deref(),
            Some("https://[::1]:8443/ws")
        );
    }

    #[test]
    fn a_host_header_that_is_not_a_host_gets_no_redirect() {
        for host in ["", "evil.com@good.com", "a b", "host:port", "/path"] {
            assert_eq!(location(host, 8443, "/", ""), None, "{host:?}");
        }
    }
}
