//! HTTP/1.1 `GET` over a plain TCP socket, blocking: one-off requests for the server's
//! `/metrics` and `/api/rooms`, and keep-alive connections for the runs that load the
//! REST API. The harness needs no HTTP library for requests to its own local server.

use std::io::{BufRead, BufReader, Write};
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
    /// The server serves HTTPS only, which this client does not speak.
    #[error("GET {path}: the server serves HTTPS only")]
    TlsOnly { path: String },
    /// The server answered with a status other than 200.
    #[error("GET {path}: {status_line}")]
    Status { path: String, status_line: String },
}

/// A response as read off the wire, whatever its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The whole first line, e.g. `HTTP/1.1 404 Not Found`, for error messages.
    pub status_line: String,
    pub body: String,
}

/// `GET path` from `addr` on a connection of its own; the body, if the status was 200.
pub fn get(addr: SocketAddr, path: &str) -> Result<String, HttpError> {
    get_checked(addr, path, "")
}

/// `GET path` with one header more (`Authorization`, say), on a connection of its own;
/// the body, if the status was 200.
pub fn get_with_header(
    addr: SocketAddr,
    path: &str,
    (name, value): (&str, &str),
) -> Result<String, HttpError> {
    get_checked(addr, path, &format!("{name}: {value}\r\n"))
}

/// `GET path` with `extra` header lines (each ending in CRLF); the body, if 200.
fn get_checked(addr: SocketAddr, path: &str, extra: &str) -> Result<String, HttpError> {
    let mut connection = Connection::open(addr)?;
    let response = connection.request_with(path, "close", extra)?;
    if response.status != 200 {
        return Err(HttpError::Status {
            path: path.to_owned(),
            status_line: response.status_line,
        });
    }
    Ok(response.body)
}

/// One keep-alive connection: `GET`s one after another on the same socket, each read to
/// the end of its body before the next is sent, as a browser's connection does. After
/// an error the connection is in an unknown state: open another.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> Result<Connection, HttpError> {
        let connect_error = |source| HttpError::Connect { addr, source };
        let stream = TcpStream::connect_timeout(&addr, PATIENCE).map_err(connect_error)?;
        stream
            .set_read_timeout(Some(PATIENCE))
            .and_then(|()| stream.set_write_timeout(Some(PATIENCE)))
            // Requests are small and each waits for its answer: Nagle would only delay them.
            .and_then(|()| stream.set_nodelay(true))
            .map_err(connect_error)?;
        Ok(Connection {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// `GET path`, keeping the connection open; the response, whatever its status.
    pub fn get(&mut self, path: &str) -> Result<Response, HttpError> {
        self.request(path, "keep-alive")
    }

    fn request(&mut self, path: &str, connection_header: &str) -> Result<Response, HttpError> {
        self.request_with(path, connection_header, "")
    }

    /// A `GET` with `extra` header lines (each ending in CRLF).
    fn request_with(
        &mut self,
        path: &str,
        connection_header: &str,
        extra: &str,
    ) -> Result<Response, HttpError> {
        let addr = self.addr;
        let io_error = |source| HttpError::Io {
            addr,
            path: path.to_owned(),
            source,
        };
        write!(
            self.reader.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: {connection_header}\r\n{extra}\r\n"
        )
        .map_err(io_error)?;
        read_response(&mut self.reader).map_err(|err| match err {
            ReadError::Io(source) => io_error(source),
            ReadError::Malformed(detail) => HttpError::Malformed {
                path: path.to_owned(),
                detail: detail.to_owned(),
            },
        })
    }
}

/// Why a response could not be read.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    Malformed(&'static str),
}

impl From<std::io::Error> for ReadError {
    fn from(err: std::io::Error) -> ReadError {
        ReadError::Io(err)
    }
}

/// Reads one response and no more: its body ends where its `Content-Length` or its last
/// chunk says, so the next response on a keep-alive connection starts just after it.
/// Only a response with neither is read until the server closes.
fn read_response(reader: &mut impl BufRead) -> Result<Response, ReadError> {
    let status_line = read_line(reader)?;
    if status_line.is_empty() {
        return Err(ReadError::Malformed(
            "the connection closed before a response",
        ));
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(ReadError::Malformed("no status code"))?;
    let mut content_length = None;
    let mut chunked = false;
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Malformed("a header line without a colon"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| ReadError::Malformed("bad content-length"))?;
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    // 1xx, 204 and 304 never have a body, whatever the headers say.
    let bodiless = status < 200 || status == 204 || status == 304;
    let body = if bodiless {
        Vec::new()
    } else if chunked {
        read_chunks(reader)?
    } else if let Some(length) = content_length {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        body
    };
    Ok(Response {
        status,
        status_line,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A line without its `\r\n`; empty at the end of the headers, or if the stream ended.
fn read_line(reader: &mut impl BufRead) -> Result<String, ReadError> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The chunks of a chunked body, joined, and its trailer skipped.
fn read_chunks(reader: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader)?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| ReadError::Malformed("bad chunk size"))?;
        if size == 0 {
            // Trailer fields, if any, then the empty line that ends the body.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Err(ReadError::Malformed("a chunk longer than its size"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn read(bytes: &str) -> Result<Response, ReadError> {
        read_response(&mut bytes.as_bytes())
    }

    #[test]
    fn plain_body_is_returned_after_the_headers() {
        let response = read("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
        assert_eq!(response.ok().map(|r| r.body).as_deref(), Some("hello"));
    }

    #[test]
    fn chunked_body_is_joined() {
        let response = read(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        );
        assert_eq!(
            response.ok().map(|r| r.body).as_deref(),
            Some("hello world"),
            "the two chunks should be joined without their sizes"
        );
    }

    #[test]
    fn a_body_without_length_runs_until_the_server_closes() {
        let response = read("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it");
        assert_eq!(response.ok().map(|r| r.body).as_deref(), Some("all of it"));
    }

    #[test]
    fn each_response_ends_where_its_framing_says_so_the_next_can_be_read() {
        let mut wire = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\none\
                        HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n\
                        HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n\
                        HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntwo"
            .as_bytes();
        let mut next = || read_response(&mut wire).ok().map(|r| (r.status, r.body));
        assert_eq!(next(), Some((200, "one".into())));
        assert_eq!(next(), Some((304, String::new())), "a 304 has no body");
        assert_eq!(next(), Some((503, "busy".into())));
        assert_eq!(next(), Some((200, "two".into())));
    }

    #[test]
    fn a_closed_connection_or_a_garbled_answer_is_malformed() {
        assert!(matches!(read(""), Err(ReadError::Malformed(_))));
        assert!(matches!(
            read("HTTP/1.1 OK\r\n\r\n"),
            Err(ReadError::Malformed("no status code"))
        ));
        assert!(
            matches!(
                read("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort"),
                Err(ReadError::Io(_))
            ),
            "a body cut short is an I/O error"
        );
    }

    /// A one-connection server that answers every request with its path.
    fn echo_paths_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            loop {
                let Ok(request_line) = read_line(&mut reader) else {
                    return;
                };
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut closing = false;
                while let Ok(header) = read_line(&mut reader) {
                    if header.is_empty() {
                        break;
                    }
                    closing |= header.eq_ignore_ascii_case("connection: close");
                }
                let status = if path == "/missing" {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{path}",
                    path.len()
                );
                if reader.get_mut().write_all(answer.as_bytes()).is_err()
                    || closing
                    || path.is_empty()
                {
                    return;
                }
            }
        });
        addr
    }

    #[test]
    fn a_keep_alive_connection_carries_many_requests_and_any_status() {
        let mut connection = Connection::open(echo_paths_server()).expect("connect");
        for path in ["/a", "/missing", "/b"] {
            let response = connection
                .get(path)
                .expect("an answer on the same connection");
            assert_eq!(
                response.body, path,
                "each answer belongs to its own request"
            );
        }
        assert_eq!(
            connection.get("/missing").map(|r| r.status).ok(),
            Some(404),
            "a keep-alive GET hands back any status"
        );
    }

    #[test]
    fn a_one_off_get_is_an_error_unless_the_status_is_200() {
        assert_eq!(get(echo_paths_server(), "/ok").ok().as_deref(), Some("/ok"));
        assert!(
            matches!(get(echo_paths_server(), "/missing"), Err(HttpError::Status { status_line, .. }) if status_line.contains("404")),
            "a 404 should be reported with its status line"
        );
    }
}
