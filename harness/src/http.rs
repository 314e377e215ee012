//! A blocking HTTP/1.1 `GET` over a plain TCP socket, enough for the server's `/metrics`
//! and `/api/rooms`: the harness needs no HTTP library for two local requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Long enough for a `/metrics` scrape of a server that is busy with thousands of bots.
const PATIENCE: Duration = Duration::from_secs(10);

/// Why a `GET` did not return a body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing accepted the connection in time.
    #[error("connect {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The request could not be written or the response read in time.
    #[error("GET {path} from {addr}: {source}")]
    Io {
        addr: SocketAddr,
        path: String,
        source: std::io::Error,
    },
    /// The response was not an HTTP response this client understands.
    #[error("GET {path}: malformed response: {detail}")]
    Malformed { path: String, detail: String },
    /// The server answered with a status other than 200.
    #[error("GET {path}: {status_line}")]
    Status { path: String, status_line: String },
}

/// `GET path` from `addr`; the body, if the status was 200.
pub fn get(addr: SocketAddr, path: &str) -> Result<String, HttpError> {
    let io_error = |source| HttpError::Io {
        addr,
        path: path.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)
        .map_err(|source| HttpError::Connect { addr, source })?;
    stream.set_read_timeout(Some(PATIENCE)).map_err(io_error)?;
    stream.set_write_timeout(Some(PATIENCE)).map_err(io_error)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io_error)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io_error)?;
    body_of(path, &String::from_utf8_lossy(&response))
}

/// The body of a whole response read until the server closed, after checking its status.
fn body_of(path: &str, response: &str) -> Result<String, HttpError> {
    let malformed = |detail: &str| HttpError::Malformed {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let mut head_lines = head.lines();
    let status_line = head_lines.next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(HttpError::Status {
            path: path.to_owned(),
            status_line: status_line.to_owned(),
        });
    }
    let chunked = head_lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        dechunk(body).ok_or_else(|| malformed("bad chunked body"))
    } else {
        Ok(body.to_owned())
    }
}

/// Joins the chunks of a chunked body; `None` if the framing is broken.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size_line, after) = rest.split_once("\r\n")?;
        let size_hex = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_body_is_returned_after_the_headers() {
        let response = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(body_of("/x", response).ok().as_deref(), Some("hello"));
    }

    #[test]
    fn chunked_body_is_joined() {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(
            body_of("/x", response).ok().as_deref(),
            Some("hello world"),
            "the two chunks should be joined without their sizes"
        );
    }

    #[test]
    fn status_other_than_200_is_an_error() {
        let response = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert!(
            matches!(body_of("/nope", response), Err(HttpError::Status { status_line, .. }) if status_line.contains("404")),
            "a 404 should be reported with its status line"
        );
    }
}
