//! Behind a reverse proxy: the client address a trusted proxy names is the one the caps
//! and the new-room limit count, and what anyone else forwards is ignored. Loopback has
//! many addresses, so 127.0.0.1 plays the proxy and 127.0.0.2 a client that forges.

use std::net::IpAddr;

use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ClientMsg, CloseReason, ServerMsg};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::*;

const PROXY: [u8; 4] = [127, 0, 0, 1];
const STRANGER: [u8; 4] = [127, 0, 0, 2];

fn trusting_loopback_one(config: &mut server::Config) {
    config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
}

/// The status of a WebSocket upgrade from `source` that carries `header`. The socket is
/// returned so a slot it took stays taken.
async fn upgrade(
    server: &server::Server,
    source: [u8; 4],
    header: &str,
) -> (u16, tokio::net::TcpStream) {
    let (status, _, socket) =
        raw_upgrade_from(server, IpAddr::from(source), &format!("{header}\r\n")).await;
    (status, socket)
}

#[tokio::test]
async fn the_per_address_cap_counts_the_client_a_trusted_proxy_names() {
    let server = start_server(|config| {
        trusting_loopback_one(config);
        config.max_connections_per_ip = 1;
    })
    .await;
    let (first, _first) = upgrade(&server, PROXY, "X-Forwarded-For: 203.0.113.7").await;
    let (second, _second) = upgrade(&server, PROXY, "X-Forwarded-For: 203.0.113.8").await;
    assert_eq!(
        (first, second),
        (101, 101),
        "two clients behind one proxy have an allowance each"
    );
    let (again, _again) = upgrade(
        &server,
        PROXY,
        r#"Forwarded: for="203.0.113.7:4711";proto=http"#,
    )
    .await;
    assert_eq!(
        again, 429,
        "the first client again, named in Forwarded this time, is over its cap"
    );
}

#[tokio::test]
async fn what_an_untrusted_peer_forwards_is_ignored() {
    let server = start_server(|config| {
        trusting_loopback_one(config);
        config.max_connections_per_ip = 1;
    })
    .await;
    let (first, _first) = upgrade(&server, STRANGER, "X-Forwarded-For: 203.0.113.7").await;
    let (forged, _forged) = upgrade(&server, STRANGER, "X-Forwarded-For: 203.0.113.8").await;
    assert_eq!(
        (first, forged),
        (101, 429),
        "a peer that is no trusted proxy is counted as itself, whatever it forwards"
    );
    let (proxied, _proxied) = upgrade(&server, PROXY, "X-Forwarded-For: 127.0.0.2").await;
    assert_eq!(
        proxied, 429,
        "the same address through the proxy shares the allowance it spent directly"
    );
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_headers_change_nothing() {
    let server = start_server(|config| config.max_connections_per_ip = 1).await;
    let (first, _first) = upgrade(&server, PROXY, "X-Forwarded-For: 203.0.113.7").await;
    let (second, _second) = upgrade(&server, PROXY, "X-Forwarded-For: 203.0.113.8").await;
    assert_eq!((first, second), (101, 429));
}

/// Joins `room` over a socket from `source` whose upgrade carries `forwarded_for` as
/// `X-Forwarded-For`; the refusal's close code if the server refuses.
async fn join_from(
    server: &server::Server,
    source: [u8; 4],
    forwarded_for: &str,
    room: &str,
) -> Result<(), u16> {
    let stream = connect_from(IpAddr::from(source), server.addr).await;
    let mut request = server.ws_url().into_client_request().expect("a request");
    request.headers_mut().insert(
        "x-forwarded-for",
        HeaderValue::from_str(forwarded_for).expect("a header value"),
    );
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("upgrade");
    let hello = shared::codec::encode_client(&ClientMsg::Hello {
        protocol: shared::consts::PROTOCOL_VERSION,
        name: "player".into(),
        room: Some(room.into()),
        token: None,
        resume: None,
        reservation: None,
        spectate: false,
    });
    socket.send(Message::binary(hello)).await.expect("hello");
    timeout(PATIENCE, async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Binary(bytes)) => {
                    if let Ok(ServerMsg::Welcome(_)) = shared::codec::decode_server(&bytes) {
                        return Ok(());
                    }
                }
                Ok(Message::Close(close)) => {
                    return Err(close.map_or(1005, |close| u16::from(close.code)));
                }
                Ok(_) => {}
                Err(err) => panic!("the join failed below the protocol: {err}"),
            }
        }
        panic!("the socket ended with neither a welcome nor a close frame")
    })
    .await
    .expect("a welcome or a refusal within patience")
}

#[tokio::test]
async fn the_new_room_limit_counts_the_client_a_trusted_proxy_names() {
    let server = start_server(|config| {
        trusting_loopback_one(config);
        config.new_rooms_per_minute = 1;
    })
    .await;
    let too_many = Err(CloseReason::TooManyNewRooms.close_code());
    assert_eq!(
        join_from(&server, PROXY, "203.0.113.7", "one").await,
        Ok(())
    );
    assert_eq!(
        join_from(&server, PROXY, "203.0.113.7", "two").await,
        too_many,
        "the same client's second new room is over the limit"
    );
    assert_eq!(
        join_from(&server, PROXY, "203.0.113.8", "three").await,
        Ok(()),
        "another client behind the same proxy has a limit of its own"
    );
    assert_eq!(
        join_from(&server, STRANGER, "198.51.100.1", "four").await,
        Ok(())
    );
    assert_eq!(
        join_from(&server, STRANGER, "198.51.100.2", "five").await,
        too_many,
        "an untrusted peer's forwarded address is not believed"
    );
}
