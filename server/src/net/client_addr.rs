//! Who a request is from. Behind a reverse proxy every TCP peer is the proxy, so the
//! client's address comes from the proxy's `Forwarded` or `X-Forwarded-For` header, but
//! only when the peer is a proxy the operator trusts (`--trusted-proxy`): anyone else
//! could name any address. The caps, the new-room limit and the logs all see this one
//! resolved address, and `client_ip` is the one place the headers are read.

use std::net::IpAddr;

use ipnet::IpNet;
use warp::Filter;
use warp::http::header::{HeaderMap, HeaderName};

use crate::net::listener::PeerAddr;

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose word on a client's address is taken (`--trusted-proxy`).
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// Parses a `--trusted-proxy` value: a CIDR (`10.0.0.0/8`, `fd00::/8`) or a bare address,
/// which stands for itself alone.
pub(crate) fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not a CIDR (like 10.0.0.0/8) or an IP address"))
}

impl TrustedProxies {
    pub(crate) fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies { nets }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request that came from `peer` with `headers`.
    ///
    /// From an untrusted peer, the peer itself, whatever the headers say. From a trusted
    /// one, the chain of hops in `Forwarded` (its `for=` parameters) or, without one, in
    /// `X-Forwarded-For`, walked from the right (the hop nearest to us): trusted hops
    /// are skipped and the first untrusted address is the client. A chain of trusted
    /// hops only ends at its leftmost. A hop that cannot be read where the walk needs it
    /// (malformed, `unknown`, obfuscated) leaves the peer: nobody can be told apart
    /// behind it, and a guess would let a client choose whose allowance it spends.
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        self.walk(headers).unwrap_or(peer)
    }

    fn walk(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let mut hops = match joined_values(headers, &FORWARDED)? {
            Some(forwarded) => forwarded_for_hops(&forwarded)?,
            None => Vec::new(),
        };
        if hops.is_empty()
            && let Some(xff) = joined_values(headers, &X_FORWARDED_FOR)?
        {
            hops = xff.split(',').map(str::to_owned).collect();
        }
        let mut leftmost = None;
        for hop in hops.iter().rev() {
            let ip = parse_node(hop)?;
            if !self.trusts(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        leftmost
    }
}

/// Every line of a header joined with commas, as RFC 9110 says repeated lines read.
/// `Ok(None)` when the header is absent; `None` when a line is not visible ASCII.
fn joined_values(headers: &HeaderMap, name: &HeaderName) -> Option<Option<String>> {
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return Some(None);
    }
    let texts = lines
        .map(|value| value.to_str().ok())
        .collect::<Option<Vec<_>>>()?;
    Some(Some(texts.join(",")))
}

/// The `for=` value of each element of a `Forwarded` header (RFC 7239), left to right,
/// unquoted; elements without one are left out. `None` if the header cannot be read:
/// an unclosed quote, a pair without `=`, or a parameter given twice in one element.
fn forwarded_for_hops(header: &str) -> Option<Vec<String>> {
    let mut hops = Vec::new();
    for element in split_outside_quotes(header, ',')? {
        let mut found = None;
        for pair in split_outside_quotes(element, ';')? {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=')?;
            if name.trim().eq_ignore_ascii_case("for") {
                if found.is_some() {
                    return None;
                }
                found = Some(unquote(value.trim())?);
            }
        }
        hops.extend(found);
    }
    Some(hops)
}

/// `text` split at each `separator` outside a quoted string; `None` if a quote is left
/// open.
fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (at, ch) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            quoted = !quoted;
        } else if ch == separator && !quoted {
            parts.push(&text[start..at]);
            start = at + ch.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// A token as it is, or a quoted string without its quotes and escapes.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            ch => out.push(ch),
        }
    }
    Some(out)
}

/// One hop's address: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711` (RFC 7239's node, whose port may also be obfuscated, `_x`).
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (host, port) = match node.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            let host = v6.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (IpAddr::V6(host), port)
        }
        None => {
            let (v4, port) = node.split_once(':')?;
            (IpAddr::V4(v4.parse().ok()?), Some(port))
        }
    };
    port.is_none_or(is_node_port).then(|| host.to_canonical())
}

fn is_node_port(port: &str) -> bool {
    let obfuscated = port.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    obfuscated || (port.len() <= 5 && port.parse::<u16>().is_ok())
}

/// The resolved client address of each request, for the routes that count or log by it.
pub(crate) fn client_ip(
    proxies: TrustedProxies,
) -> impl Filter<Extract = (IpAddr,), Error = warp::Rejection> + Clone {
    warp::ext::get::<PeerAddr>()
        .and(warp::header::headers_cloned())
        .map(move |peer: PeerAddr, headers: HeaderMap| proxies.client_ip(peer.0.ip(), &headers))
}

#[cfg(test)]
mod tests {
    use warp::http::HeaderValue;

    use super::*;

    const PROXY: &str = "10.0.0.5";
    const CLIENT: &str = "203.0.113.7";

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            nets.iter()
                .map(|net| parse_trusted_proxy(net).expect("a CIDR"))
                .collect(),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in lines {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        headers
    }

    /// The address resolved for a request from `PROXY`, trusted as 10.0.0.0/8.
    fn through_proxy(lines: &[(&str, &str)]) -> IpAddr {
        proxies(&["10.0.0.0/8"]).client_ip(ip(PROXY), &headers(lines))
    }

    #[test]
    fn trusted_proxy_flags_take_cidrs_and_bare_addresses() {
        assert_eq!(
            parse_trusted_proxy("10.1.2.3/8").map(|net| net.to_string()),
            Ok("10.0.0.0/8".to_owned())
        );
        assert_eq!(
            parse_trusted_proxy("::1").map(|net| net.to_string()),
            Ok("::1/128".to_owned())
        );
        assert_eq!(
            parse_trusted_proxy("192.0.2.1").map(|net| net.to_string()),
            Ok("192.0.2.1/32".to_owned())
        );
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0/8", "::1/129"] {
            assert!(parse_trusted_proxy(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let forged = headers(&[
            ("x-forwarded-for", CLIENT),
            ("forwarded", "for=198.51.100.1"),
        ]);
        let peer = ip("192.0.2.50");
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(peer, &forged), peer);
        assert_eq!(
            TrustedProxies::default().client_ip(ip(PROXY), &forged),
            ip(PROXY),
            "with no trusted proxy, nothing forwarded is believed"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_in_x_forwarded_for() {
        assert_eq!(through_proxy(&[("x-forwarded-for", CLIENT)]), ip(CLIENT));
        assert_eq!(
            through_proxy(&[("x-forwarded-for", " 2001:db8::7 ")]),
            ip("2001:db8::7")
        );
        assert_eq!(
            through_proxy(&[("x-forwarded-for", "[2001:db8::7]:4711")]),
            ip("2001:db8::7")
        );
        assert_eq!(
            through_proxy(&[("x-forwarded-for", "203.0.113.7:4711")]),
            ip(CLIENT)
        );
    }

    #[test]
    fn the_chain_is_walked_from_the_right_past_trusted_hops() {
        assert_eq!(
            through_proxy(&[("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.0.0.9")]),
            ip(CLIENT),
            "10.0.0.9 is trusted, so the hop before it is the client; what the client \
             itself wrote further left is not believed"
        );
        assert_eq!(
            through_proxy(&[
                ("x-forwarded-for", "198.51.100.9"),
                ("x-forwarded-for", "203.0.113.7, 10.0.0.9"),
            ]),
            ip(CLIENT),
            "repeated header lines read as one list, in order"
        );
        assert_eq!(
            through_proxy(&[("x-forwarded-for", "10.0.0.7, 10.0.0.9")]),
            ip("10.0.0.7"),
            "a chain of trusted hops ends at its leftmost"
        );
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for() {
        assert_eq!(
            through_proxy(&[
                ("forwarded", "for=203.0.113.7;proto=https;by=10.0.0.5"),
                ("x-forwarded-for", "198.51.100.9"),
            ]),
            ip(CLIENT)
        );
        assert_eq!(
            through_proxy(&[
                ("forwarded", "proto=https"),
                ("x-forwarded-for", "203.0.113.7"),
            ]),
            ip(CLIENT),
            "a Forwarded header that names no hop leaves X-Forwarded-For"
        );
    }

    #[test]
    fn forwarded_takes_quoted_ipv6_with_ports_and_any_case() {
        for header in [
            r#"for="[2001:db8:cafe::17]:4711""#,
            r#"For="[2001:db8:cafe::17]""#,
            r#"for="[2001:db8:cafe::17]:_hidden"; proto=http"#,
            r#"for=198.51.100.9, FOR="[2001:db8:cafe::17]""#,
            r#"for="[2001:db8:cafe::17]", for=10.0.0.9;by="[::1]:80""#,
        ] {
            assert_eq!(
                through_proxy(&[("forwarded", header)]),
                ip("2001:db8:cafe::17"),
                "{header}"
            );
        }
        assert_eq!(
            through_proxy(&[("forwarded", r#"for="[::1]:8080""#)]),
            ip("::1")
        );
        assert_eq!(
            through_proxy(&[("forwarded", r#"for="203.0.113.7:4711""#)]),
            ip(CLIENT)
        );
        assert_eq!(
            through_proxy(&[(
                "forwarded",
                r#"for=192.0.2.1;x="a, \"b\"; c", for=203.0.113.7"#
            )]),
            ip(CLIENT),
            "commas and semicolons inside quoted strings do not split"
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_read_as_ipv4() {
        let mapped_proxy = ip("::ffff:10.0.0.5");
        let forwarded = headers(&[("x-forwarded-for", "::ffff:203.0.113.7")]);
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client_ip(mapped_proxy, &forwarded),
            ip(CLIENT),
            "a proxy seen through a dual-stack socket is still trusted"
        );
    }

    #[test]
    fn malformed_or_unknown_hops_leave_the_peer() {
        for (name, value) in [
            ("x-forwarded-for", ""),
            ("x-forwarded-for", "not an address"),
            ("x-forwarded-for", "203.0.113.7:99999"),
            ("x-forwarded-for", "203.0.113.7, "),
            ("x-forwarded-for", "[2001:db8::1"),
            ("x-forwarded-for", "2001:db8::1]:80"),
            ("x-forwarded-for", "unknown"),
            ("forwarded", "for=unknown"),
            ("forwarded", "for=_hidden"),
            ("forwarded", r#"for="203.0.113.7"#),
            ("forwarded", "for"),
            ("forwarded", "for=203.0.113.7;for=198.51.100.1"),
            ("forwarded", r#"for="[2001:db8::1]:""#),
            ("forwarded", r#"for=[2001:db8::1"#),
            ("forwarded", r#"for=a"b"#),
        ] {
            assert_eq!(
                through_proxy(&[(name, value)]),
                ip(PROXY),
                "{name}: {value:?} leaves the peer"
            );
        }
        assert_eq!(through_proxy(&[]), ip(PROXY), "no header leaves the peer");
    }

    #[test]
    fn garbage_beyond_the_client_is_never_read() {
        assert_eq!(
            through_proxy(&[("x-forwarded-for", "garbage, [::, 203.0.113.7")]),
            ip(CLIENT),
            "what a client wrote before its proxy's word cannot move its address"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_header_resolves_to_an_address_without_panicking(
            // The pieces of real headers, in any order, reach the parsers' corners
            // more often than arbitrary text does.
            forwarded in r#"(for=|For=|by=|,|;| |"|\\|\[|\]|:|_|[0-9a-f.]{1,4}|unknown|[ -~]){0,24}"#,
            xff in r#"(,| |\[|\]|:|[0-9a-f.]{1,4}|[ -~]){0,24}"#,
        ) {
            let lines = [("forwarded", forwarded.as_str()), ("x-forwarded-for", xff.as_str())];
            let _ = through_proxy(&lines);
            proptest::prop_assert_eq!(
                proxies(&["10.0.0.0/8"]).client_ip(ip("192.0.2.50"), &headers(&lines)),
                ip("192.0.2.50"),
                "an untrusted peer is always itself"
            );
        }
    }

    #[test]
    fn header_bytes_that_are_not_text_leave_the_peer() {
        let mut odd = HeaderMap::new();
        odd.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"203.0.113.7\xff").expect("an opaque header value"),
        );
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client_ip(ip(PROXY), &odd),
            ip(PROXY)
        );
    }
}
