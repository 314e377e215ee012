//! The admin listener and the operations console, over real sockets: who may use the
//! API and the console's WebSocket, what they answer, and what the actions do to
//! players (a kick's close code, a broadcast, a drain).

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use shared::protocol::{CloseReason, ServerMsg};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::*;

const TOKEN: &str = "test-operators-token-0123456789";

/// A token file of its own for one server.
fn token_file() -> PathBuf {
    let dir = fresh_data_dir();
    std::fs::create_dir_all(&dir).expect("make a folder for the token");
    let path = dir.join("admin.token");
    std::fs::write(&path, format!("{TOKEN}\n")).expect("write the token file");
    path
}

async fn console_server(tweak: impl FnOnce(&mut server::Config)) -> TestServer {
    let path = token_file();
    start_server(move |config| {
        config.admin_token_file = Some(path);
        tweak(config);
    })
    .await
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn json_of(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|err| {
        panic!(
            "a JSON body ({err}): {}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

/// Logs in through the form and returns the session cookie (`name=value`).
async fn log_in(server: &TestServer) -> String {
    let form = format!("token={TOKEN}&name=ann");
    let response = http_send(
        server.admin_addr(),
        "POST",
        "/admin/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 303, "a right token logs in");
    let cookie = response.header("set-cookie").expect("a session cookie");
    cookie
        .split(';')
        .next()
        .expect("a cookie's first part is its value")
        .to_owned()
}

/// Opens the console's WebSocket with `headers`; the handshake's status on refusal.
async fn open_console(
    server: &TestServer,
    headers: &[(&str, &str)],
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let mut request = format!("ws://{}/admin/ws", server.admin_addr())
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        let name =
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("a header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("the handshake failed otherwise: {err}"),
    }
}

/// The next text message on a console socket, as JSON.
async fn next_json(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let msg = timeout(PATIENCE, socket.next())
            .await
            .expect("the console is pushed something within the patience")
            .expect("the socket stays open")
            .expect("a message");
        if let tungstenite::Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}

#[tokio::test]
async fn the_console_is_off_without_a_token_file_but_metrics_are_served() {
    let server = start_server(|_| {}).await;
    let (status, body) = http_get_at(server.admin_addr(), "/admin").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("--admin-token-file"),
        "says how to turn it on: {body}"
    );
    let (status, _) = http_get_at(server.admin_addr(), "/admin/api/rooms").await;
    assert_eq!(status, 404, "no API either");
    let (status, _) = http_get_at(server.admin_addr(), "/metrics").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_api_refuses_no_token_a_wrong_token_and_a_foreign_origin() {
    let server = console_server(|_| {}).await;
    let _ann = join_room(&server, "ann", "alpha").await;
    let addr = server.admin_addr();
    let none = http_request(addr, "GET", "/admin/api/rooms", &[]).await;
    assert_eq!(none.status, 401, "no token");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = http_request(
        addr,
        "GET",
        "/admin/api/rooms",
        &[("Authorization", "Bearer not-the-token-at-all")],
    )
    .await;
    assert_eq!(wrong.status, 401, "a wrong token");
    let right = bearer();
    let foreign = http_request(
        addr,
        "GET",
        "/admin/api/rooms",
        &[("Authorization", &right), ("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(foreign.status, 403, "a foreign origin, even with the token");
    let kick = http_send(
        addr,
        "POST",
        "/admin/api/rooms/alpha/players/1/kick",
        &[("Authorization", "Bearer wrong")],
        b"",
    )
    .await;
    assert_eq!(kick.status, 401, "no action without the token");

    let ok = http_request(
        addr,
        "GET",
        "/admin/api/rooms",
        &[("Authorization", &right)],
    )
    .await;
    assert_eq!(ok.status, 200);
    let rooms = json_of(&ok);
    let alpha = &rooms[0];
    assert_eq!(alpha["id"], "alpha");
    assert_eq!(alpha["players"], 1);
    assert_eq!(alpha["phase"], "playing");
    assert!(
        alpha.get("tick_p99_ms").is_some(),
        "each room says its tick p99: {alpha}"
    );
}

#[tokio::test]
async fn the_console_socket_needs_a_session_from_its_own_page() {
    let server = console_server(|_| {}).await;
    let own = format!("http://{}", server.admin_addr());
    assert_eq!(
        open_console(&server, &[("Origin", &own)]).await.err(),
        Some(401),
        "no session"
    );
    let forged = "skirmish_admin=0000000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(
        open_console(&server, &[("Origin", &own), ("Cookie", forged)])
            .await
            .err(),
        Some(401),
        "a session that does not exist"
    );
    let cookie = log_in(&server).await;
    assert_eq!(
        open_console(
            &server,
            &[("Origin", "http://evil.example"), ("Cookie", &cookie)]
        )
        .await
        .err(),
        Some(403),
        "a foreign page, even with the cookie"
    );
    assert_eq!(
        open_console(&server, &[("Cookie", &cookie)]).await.err(),
        Some(403),
        "a cookie without an origin"
    );
    assert_eq!(
        open_console(&server, &[("Authorization", "Bearer wrong-token")])
            .await
            .err(),
        Some(401),
        "a wrong token"
    );
    let mut socket = open_console(&server, &[("Origin", &own), ("Cookie", &cookie)])
        .await
        .expect("the console's own page with its session");
    let history = next_json(&mut socket).await;
    assert_eq!(history["type"], "history", "the charts' past comes first");
    let sample = next_json(&mut socket).await;
    assert_eq!(sample["type"], "sample");
    let next = next_json(&mut socket).await;
    assert!(
        next["seq"].as_u64() > sample["seq"].as_u64(),
        "a new sample is pushed every second"
    );
    assert!(next["data"]["server"]["uptime_s"].as_f64().is_some());
}

#[tokio::test]
async fn the_console_socket_closes_on_a_message_it_cannot_read() {
    let server = console_server(|_| {}).await;
    let mut socket = open_console(&server, &[("Authorization", &bearer())])
        .await
        .expect("the token opens it");
    use futures_util::SinkExt;
    socket
        .send(tungstenite::Message::text("{\"inspect\": 5}"))
        .await
        .expect("send");
    let closed = timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed within the patience");
    assert_eq!(
        closed.map(|frame| u16::from(frame.code)),
        Some(1007),
        "bad input costs only that socket, with a close code"
    );
    let (status, _) = http_get_at(server.admin_addr(), "/metrics").await;
    assert_eq!(status, 200, "and nothing else");
}

#[tokio::test]
async fn a_kick_closes_the_player_with_4008_frees_the_seat_and_is_audited() {
    let server = console_server(|_| {}).await;
    let mut victim = join_room(&server, "victim", "alpha").await;
    let mut other = join_room(&server, "other", "alpha").await;
    let addr = server.admin_addr();
    let auth = bearer();
    let room = http_request(
        addr,
        "GET",
        "/admin/api/rooms/alpha",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(room.status, 200);
    let room = json_of(&room);
    let players = room["players"].as_array().expect("a list of players");
    let listed = players
        .iter()
        .find(|p| p["name"] == "victim")
        .expect("the victim is listed");
    for field in [
        "id",
        "name",
        "ping_ms",
        "bytes_in_per_s",
        "inputs_per_s",
        "ack_lag_ms",
    ] {
        assert!(
            listed.get(field).is_some(),
            "each player has {field}: {listed}"
        );
    }
    let id = listed["id"].as_u64().expect("a numeric id");
    assert_eq!(id, u64::from(victim.welcome.player_id.0));

    let kicked = http_send(
        addr,
        "POST",
        &format!("/admin/api/rooms/alpha/players/{id}/kick"),
        &[("Authorization", &auth)],
        br#"{"reason":"testing"}"#,
    )
    .await;
    assert_eq!(
        kicked.status,
        200,
        "{}",
        String::from_utf8_lossy(&kicked.body)
    );
    let said = recv_until(&mut victim, |msg, _| match msg {
        ServerMsg::Disconnect { reason, detail } => Some((*reason, detail.clone())),
        _ => None,
    })
    .await;
    assert_eq!(said.0, CloseReason::Kicked);
    assert!(
        said.1.starts_with("kicked by an operator"),
        "the reason says who: {}",
        said.1
    );
    let closed = timeout(PATIENCE, async {
        while let Ok(Some(_)) = victim.recv().await {}
        victim.conn.close.clone()
    })
    .await
    .expect("the connection closes");
    assert_eq!(closed.map(|(code, _)| code), Some(4008));
    recv_until(&mut other, |msg, _| match msg {
        ServerMsg::PlayerLeft { id: left } if u64::from(left.0) == id => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(
        server.rooms()[0].players,
        1,
        "the kicked player's seat is not held"
    );

    let again = http_send(
        addr,
        "POST",
        &format!("/admin/api/rooms/alpha/players/{id}/kick"),
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(again.status, 404, "nobody left to kick");
    let bad = http_send(
        addr,
        "POST",
        "/admin/api/rooms/alpha/players/0/kick",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(bad.status, 400, "a player id is checked");

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let entry = loop {
        let audit =
            http_request(addr, "GET", "/admin/api/audit", &[("Authorization", &auth)]).await;
        let audit = json_of(&audit);
        if let Some(entry) = audit["entries"].as_array().and_then(|e| e.first()).cloned() {
            break entry;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the kick is written to the audit log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["action"], "kick");
    assert_eq!(entry["target"], format!("alpha/{id}"));
    assert_eq!(entry["detail"], "testing");
    assert!(
        entry["who"]
            .as_str()
            .is_some_and(|who| who.contains("127.0.0.1")),
        "who: {entry}"
    );
    assert!(entry["at_ms"].as_i64().is_some_and(|at| at > 0), "when");
}

#[tokio::test]
async fn a_broadcast_reaches_every_player_in_every_room() {
    let server = console_server(|_| {}).await;
    let mut ann = join_room(&server, "ann", "alpha").await;
    let mut bob = join_room(&server, "bob", "beta").await;
    let sent = http_send(
        server.admin_addr(),
        "POST",
        "/admin/api/broadcast",
        &[("Authorization", &bearer())],
        br#"{"text":"maintenance at noon"}"#,
    )
    .await;
    assert_eq!(sent.status, 200);
    assert_eq!(json_of(&sent)["rooms"], 2);
    for player in [&mut ann, &mut bob] {
        let text = recv_until(player, |msg, _| match msg {
            ServerMsg::Announcement { text } => Some(text.clone()),
            _ => None,
        })
        .await;
        assert_eq!(text, "maintenance at noon");
    }
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_a_wrong_token_is_refused() {
    let server = console_server(|_| {}).await;
    let addr = server.admin_addr();
    let wrong = http_send(
        addr,
        "POST",
        "/admin/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"token=nope&name=ann",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.header("set-cookie"), None);
    let right = http_send(
        addr,
        "POST",
        "/admin/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={TOKEN}").as_bytes(),
    )
    .await;
    let cookie = right.header("set-cookie").expect("a cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().expect("its value");
    let page = http_request(addr, "GET", "/admin", &[("Cookie", session)]).await;
    assert_eq!(page.status, 200);
    assert!(
        String::from_utf8_lossy(&page.body).contains("console.js"),
        "the console itself, not the login form"
    );
    let posted_without_origin = http_send(
        addr,
        "POST",
        "/admin/api/drain",
        &[("Cookie", session)],
        b"",
    )
    .await;
    assert_eq!(
        posted_without_origin.status, 403,
        "an action on the cookie alone must come from the console's page"
    );
}

#[tokio::test]
async fn draining_refuses_newcomers_and_closes_rooms_as_their_matches_end() {
    let server = console_server(|config| {
        config.match_time_limit_secs = 5.0;
        config.match_results_secs = 1.0;
    })
    .await;
    let mut ann = join_room(&server, "ann", "alpha").await;
    let drained = http_send(
        server.admin_addr(),
        "POST",
        "/admin/api/drain",
        &[("Authorization", &bearer())],
        b"",
    )
    .await;
    assert_eq!(drained.status, 200);
    let refused = client::native::Connection::join(
        &server.ws_url(),
        client::native::Hello::new("late").in_room("beta"),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(client::native::NetError::Refused {
                reason: CloseReason::ServerShutdown,
                ..
            })
        ),
        "a newcomer is told the server is going away: {refused:?}"
    );
    // The match runs out (5 s), its results stand (1 s), then the room lets ann go.
    let said = timeout(Duration::from_secs(15), async {
        loop {
            match ann.recv().await {
                Ok(Some(ServerMsg::Disconnect { reason, .. })) => return Some(reason),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the room closes once its match is over");
    assert_eq!(said, Some(CloseReason::ServerShutdown));
    timeout(PATIENCE, server.drained())
        .await
        .expect("the server says it is drained once its last room closed");
}

#[tokio::test]
async fn the_binary_names_its_admin_listener_on_its_second_line() {
    let _turn = serial().await;
    let token = token_file();
    let token = token.to_str().expect("a UTF-8 path");
    let server = ServerProcess::start(&["--admin-token-file", token]);
    let rooms = http_request(
        server.admin_addr,
        "GET",
        "/admin/api/rooms",
        &[("Authorization", &bearer())],
    )
    .await;
    assert_eq!(
        rooms.status, 200,
        "the second line names the admin listener"
    );
    let (status, _) = http_get_at(server.addr, "/metrics").await;
    assert_eq!(status, 404, "the public port does not serve /metrics");
}

#[tokio::test]
async fn a_console_message_over_the_size_limit_closes_the_socket_with_1009() {
    let server = console_server(|_| {}).await;
    let mut socket = open_console(&server, &[("Authorization", &bearer())])
        .await
        .expect("the token opens it");
    use futures_util::SinkExt;
    let huge = format!("{{\"inspect\":\"{}\"}}", "a".repeat(4 * 1024));
    socket
        .send(tungstenite::Message::text(huge))
        .await
        .expect("send");
    let closed = timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed within the patience");
    assert_eq!(
        closed.map(|frame| u16::from(frame.code)),
        Some(1009),
        "the game socket's size limit holds here too"
    );
}

#[tokio::test]
async fn with_postgres_for_matches_the_audit_log_stays_in_the_data_directory() {
    let test = "with_postgres_for_matches_the_audit_log_stays_in_the_data_directory";
    let Some(bin) = test_postgres::bin_dir(test) else {
        return;
    };
    let postgres = test_postgres::Postgres::start(&bin).expect("a private PostgreSQL starts");
    let url = postgres.create_database("skirmish").expect("a database");
    let data_dir = fresh_data_dir();
    let server = console_server({
        let data_dir = data_dir.clone();
        move |config| {
            config.database = Some(url.parse().expect("a database URL"));
            config.data_dir = data_dir;
        }
    })
    .await;
    let sent = http_send(
        server.admin_addr(),
        "POST",
        "/admin/api/broadcast",
        &[("Authorization", &bearer())],
        br#"{"text":"matches go to postgres"}"#,
    )
    .await;
    assert_eq!(sent.status, 200);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let entry = loop {
        let audit = http_request(
            server.admin_addr(),
            "GET",
            "/admin/api/audit",
            &[("Authorization", &bearer())],
        )
        .await;
        assert_eq!(audit.status, 200, "the audit log reads beside PostgreSQL");
        if let Some(entry) = json_of(&audit)["entries"]
            .as_array()
            .and_then(|e| e.first())
            .cloned()
        {
            break entry;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broadcast is written to the audit log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["action"], "broadcast");
    assert_eq!(entry["detail"], "matches go to postgres");
    assert!(
        data_dir.join(server::store::DB_FILE).is_file(),
        "the audit log is kept in the data directory's SQLite file"
    );
}

#[tokio::test]
async fn with_tls_on_the_public_port_the_binary_still_names_a_plain_http_admin_listener() {
    let _turn = serial().await;
    let certs = TestCerts::new();
    let token = token_file();
    let mut args: Vec<String> = certs.flags();
    args.extend(["--admin-token-file".into(), token.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&args);
    assert!(
        server.ws_url.starts_with("wss://"),
        "the first line says https: {}",
        server.ws_url
    );
    let rooms = http_request(
        server.admin_addr,
        "GET",
        "/admin/api/rooms",
        &[("Authorization", &bearer())],
    )
    .await;
    assert_eq!(rooms.status, 200, "the admin listener answers plain HTTP");
    let (status, _) = http_get_at(server.admin_addr, "/metrics").await;
    assert_eq!(status, 200, "and serves /metrics");
}
