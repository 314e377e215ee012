//! The server behind Caddy, configured exactly as docs/DEPLOY.md says: the page and the
//! game come through it, bots play through it, and with `--trusted-proxy` the caps count
//! each client by its own address. Loopback has many addresses, so clients connecting
//! to Caddy from 127.0.0.2 and 127.0.0.3 are different clients from one machine.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use client::bots::{BotsConfig, run};
use e2e::caddy::Caddy;
use e2e::{PATIENCE, Setup};
use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ClientMsg, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

const ROOM: &str = "proxied";
/// Bots and the test's own players, all through Caddy.
const BOTS: usize = 2;
/// Sockets one address may hold, so the bots (all from 127.0.0.1) use up theirs.
const PER_ADDRESS: usize = 2;

type Socket = WebSocketStream<TcpStream>;

async fn connect_from(source: [u8; 4], to: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(source), 0))?;
    Ok(socket.connect(to).await?)
}

/// Joins the room through `caddy` from `source`: the socket once welcomed, or the HTTP
/// status that refused the upgrade.
async fn join_from(
    caddy: &Caddy,
    source: [u8; 4],
    name: &str,
) -> anyhow::Result<Result<Socket, u16>> {
    let stream = connect_from(source, caddy.addr).await?;
    let mut socket = match tokio_tungstenite::client_async(caddy.ws_url(), stream).await {
        Ok((socket, _)) => socket,
        Err(tungstenite::Error::Http(response)) => return Ok(Err(response.status().as_u16())),
        Err(err) => return Err(err.into()),
    };
    let hello = shared::codec::encode_client(&ClientMsg::Hello {
        protocol: shared::consts::PROTOCOL_VERSION,
        name: name.into(),
        room: Some(ROOM.into()),
        token: None,
        resume: None,
        reservation: None,
        spectate: false,
    });
    socket.send(Message::binary(hello)).await?;
    timeout(PATIENCE, async {
        while let Some(frame) = socket.next().await {
            if let Message::Binary(bytes) = frame?
                && let Ok(ServerMsg::Welcome(_)) = shared::codec::decode_server(&bytes)
            {
                return Ok(());
            }
        }
        anyhow::bail!("{name}: closed before the welcome")
    })
    .await??;
    Ok(Ok(socket))
}

/// `GET path` through `caddy`, with `Accept-Encoding` if given: the head (lowercased)
/// and the body.
async fn get(
    caddy: &Caddy,
    path: &str,
    accept_encoding: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let mut stream = TcpStream::connect(caddy.addr).await?;
    let accept = accept_encoding.map_or(String::new(), |codings| {
        format!("Accept-Encoding: {codings}\r\n")
    });
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{accept}Connection: close\r\n\r\n",
        caddy.addr
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((head.to_ascii_lowercase(), body.to_owned()))
}

async fn players_in_room(server: &server::Server, n_players: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rooms = server.rooms();
        if rooms
            .iter()
            .any(|room| room.id == ROOM && usize::from(room.players) == n_players)
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{n_players} players in {ROOM} within {PATIENCE:?}; rooms: {rooms:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Caddy and the browser bundle: `cargo xtask test` prepares both and runs it"]
async fn bots_play_through_caddy_and_each_client_has_its_own_allowance() -> anyhow::Result<()> {
    let setup = Setup::from_env();
    let server = setup
        .start_server_with(|config| {
            config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
            config.max_connections_per_ip = PER_ADDRESS;
        })
        .await?;
    let caddy = Caddy::start(
        &Caddy::program_from_env(),
        &setup
            .artifacts
            .join(format!("caddy-{}", std::process::id())),
        server.addr,
    )
    .await?;
    let checked = async {
        let (head, page) = get(&caddy, "/", None).await?;
        anyhow::ensure!(
            head.starts_with("http/1.1 200") && page.contains("client"),
            "the page comes through Caddy: {head}"
        );
        let (head, _) = get(&caddy, "/", Some("br")).await?;
        anyhow::ensure!(
            head.contains("content-encoding: br") && head.contains("vary: accept-encoding"),
            "the server's brotli copy comes through Caddy as it is: {head}"
        );
        let bots = tokio::spawn(run(BotsConfig {
            url: caddy.ws_url(),
            count: BOTS,
            duration: Duration::from_secs(8),
            room: Some(ROOM.to_owned()),
            name_prefix: "bot".into(),
            seed: 12,
            ramp: Duration::from_millis(200),
            idle: false,
        trust: client::native::Trust::public(),
        }));
        players_in_room(&server, BOTS).await?;

        let third_from_bots = join_from(&caddy, [127, 0, 0, 1], "local").await?;
        anyhow::ensure!(
            matches!(third_from_bots, Err(429)),
            "127.0.0.1 has used its {PER_ADDRESS} sockets on the bots"
        );
        let mut kept = Vec::new();
        for (source, name) in [([127, 0, 0, 2], "two-a"), ([127, 0, 0, 2], "two-b"), ([127, 0, 0, 3], "three")] {
            match join_from(&caddy, source, name).await? {
                Ok(socket) => kept.push(socket),
                Err(status) => anyhow::bail!(
                    "{name} from {source:?} was refused with {status}: the server counted Caddy's address, not the client's"
                ),
            }
        }
        let over = join_from(&caddy, [127, 0, 0, 2], "two-c").await?;
        anyhow::ensure!(
            matches!(over, Err(429)),
            "a third socket from 127.0.0.2 is over its allowance"
        );
        players_in_room(&server, BOTS + kept.len()).await?;

        let report = bots.await?;
        eprintln!("bots through caddy: {report:?}");
        anyhow::ensure!(
            report.connected == BOTS && report.failed == 0 && report.disconnects == 0,
            "every bot played to the end through Caddy: {report:?}"
        );
        anyhow::ensure!(
            report.snapshots_per_bot_per_s > 20.0,
            "snapshots reach the bots through Caddy at the snapshot rate: {report:?}"
        );
        Ok(())
    }
    .await;
    if checked.is_err() {
        eprintln!("caddy's log:\n{}", caddy.log_text());
    }
    server.shutdown().await;
    checked
}
