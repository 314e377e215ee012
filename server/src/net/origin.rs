//! The Origin allow-list for the game WebSocket: a page on another site must not be
//! able to open a socket in its visitor's name (cross-site WebSocket hijacking).

use warp::http::Uri;
use warp::http::uri::Authority;

/// A web origin: scheme, host and port (the scheme's default when not written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// Parses `scheme://host[:port]` (no path); `None` for anything else, `null` included.
pub(crate) fn parse_origin(text: &str) -> Option<Origin> {
    let uri: Uri = text.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return None;
    }
    let port = authority.port_u16().or_else(|| default_port(&scheme))?;
    Some(Origin {
        host: authority.host().to_ascii_lowercase(),
        scheme,
        port,
    })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Which pages may open the game WebSocket.
#[derive(Clone, Debug, Default)]
pub(crate) struct OriginPolicy {
    extra: Vec<Origin>,
}

impl OriginPolicy {
    /// Same-origin and localhost, plus each of `extra` (the `--allow-origin` flags);
    /// an error names the first that is not an origin.
    pub(crate) fn new(extra: &[String]) -> anyhow::Result<OriginPolicy> {
        let extra = extra
            .iter()
            .map(|text| {
                parse_origin(text).ok_or_else(|| {
                    anyhow::anyhow!("--allow-origin {text:?} is not scheme://host[:port]")
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(OriginPolicy { extra })
    }

    /// Whether a request with this `Origin` header, sent to this `Host`, may upgrade.
    /// No `Origin` at all means no browser is involved (bots, tools), and so nothing
    /// can be hijacked; browsers always send one on a WebSocket handshake.
    pub(crate) fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let Some(origin) = parse_origin(origin) else {
            return false;
        };
        if matches!(origin.host.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
            return true;
        }
        if self.extra.contains(&origin) {
            return true;
        }
        host.and_then(|host| host.parse::<Authority>().ok())
            .is_some_and(|host| {
                host.host().eq_ignore_ascii_case(&origin.host)
                    && host.port_u16().or_else(|| default_port(&origin.scheme)) == Some(origin.port)
            })
    }
}

/// Whether `origin` is the origin of the page served at `host` itself: the only pages
/// the admin console's cookie may act for. No `localhost` exception: another local
/// service's page is another site.
pub(crate) fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(origin) = parse_origin(origin) else {
        return false;
    };
    host.and_then(|host| host.parse::<Authority>().ok())
        .is_some_and(|host| {
            host.host().eq_ignore_ascii_case(&origin.host)
                && host.port_u16().or_else(|| default_port(&origin.scheme)) == Some(origin.port)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_is_exact() {
        assert!(is_same_origin(
            "http://127.0.0.1:9090",
            Some("127.0.0.1:9090")
        ));
        assert!(!is_same_origin(
            "http://127.0.0.1:8080",
            Some("127.0.0.1:9090")
        ));
        assert!(!is_same_origin(
            "http://localhost:9090",
            Some("127.0.0.1:9090")
        ));
        assert!(!is_same_origin("null", Some("127.0.0.1:9090")));
        assert!(!is_same_origin("http://127.0.0.1:9090", None));
    }

    #[test]
    fn same_origin_and_localhost_are_allowed_by_default() {
        let policy = OriginPolicy::default();
        assert!(policy.allows(Some("https://game.example"), Some("game.example")));
        assert!(policy.allows(Some("http://game.example:8080"), Some("game.example:8080")));
        assert!(policy.allows(Some("http://localhost:3000"), Some("game.example")));
        assert!(policy.allows(Some("http://127.0.0.1:9"), Some("127.0.0.1:8080")));
        assert!(
            policy.allows(None, Some("game.example")),
            "no browser, nothing to hijack"
        );
    }

    #[test]
    fn other_sites_and_opaque_origins_are_refused() {
        let policy = OriginPolicy::default();
        assert!(!policy.allows(Some("https://evil.example"), Some("game.example")));
        assert!(!policy.allows(Some("http://game.example:8081"), Some("game.example:8080")));
        assert!(!policy.allows(Some("null"), Some("game.example")));
        assert!(!policy.allows(Some("https://game.example"), None));
    }

    #[test]
    fn allow_origin_adds_exact_origins() {
        let policy = OriginPolicy::new(&["https://play.example".to_owned()]).expect("an origin");
        assert!(OriginPolicy::new(&["not an origin".to_owned()]).is_err());
        assert!(policy.allows(Some("https://play.example"), Some("backend:8080")));
        assert!(policy.allows(Some("https://PLAY.example:443"), Some("backend:8080")));
        assert!(!policy.allows(Some("http://play.example"), Some("backend:8080")));
    }
}
