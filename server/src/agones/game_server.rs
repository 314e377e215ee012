//! The little of the SDK's `GameServer` (`sdkGameServer` in Agones's swagger) the
//! server acts on, read in one pure function: its state, whether it is being deleted,
//! and where players reach it.

use serde::Deserialize;

/// The port a Fleet names for the game; without one of that name, the first port.
pub(crate) const GAME_PORT_NAME: &str = "game";

/// What `GET /gameserver` says about this process's GameServer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GameServer {
    /// `Scheduled`, `RequestReady`, `Ready`, `Allocated`, `Shutdown`, …
    pub(crate) state: String,
    /// Kubernetes set a deletion timestamp: the pod is going away.
    pub(crate) deleting: bool,
    /// The node's address, once Agones has scheduled the GameServer.
    pub(crate) address: Option<String>,
    /// The game port as seen from outside the node.
    pub(crate) port: Option<u16>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    object_meta: Meta,
    #[serde(default)]
    status: Status,
}

#[derive(Default, Deserialize)]
struct Meta {
    /// An int64 in a string, per the gateway's JSON; absent or "0" when not deleted.
    #[serde(default)]
    deletion_timestamp: Option<serde_json::Value>,
}

#[derive(Default, Deserialize)]
struct Status {
    #[serde(default)]
    state: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    ports: Vec<Port>,
}

#[derive(Deserialize)]
struct Port {
    #[serde(default)]
    name: String,
    #[serde(default)]
    port: i64,
}

impl GameServer {
    /// Reads the gateway's JSON; fields it lacks are taken as unset.
    pub(crate) fn parse(body: &[u8]) -> Result<GameServer, String> {
        let wire: Wire = serde_json::from_slice(body).map_err(|err| err.to_string())?;
        let deleting = match wire.object_meta.deletion_timestamp {
            Some(serde_json::Value::String(stamp)) => !stamp.is_empty() && stamp != "0",
            Some(serde_json::Value::Number(stamp)) => stamp.as_i64() != Some(0),
            _ => false,
        };
        let ports = &wire.status.ports;
        let port = ports
            .iter()
            .find(|port| port.name == GAME_PORT_NAME)
            .or_else(|| ports.first())
            .and_then(|port| u16::try_from(port.port).ok())
            .filter(|port| *port != 0);
        let address = Some(wire.status.address).filter(|address| !address.is_empty());
        Ok(GameServer {
            state: wire.status.state,
            deleting,
            address,
            port,
        })
    }

    /// Agones is taking this GameServer down: its state says so, or its pod is being
    /// deleted.
    pub(crate) fn shutting_down(&self) -> bool {
        self.state == "Shutdown" || self.deleting
    }

    /// `http(s)://address:port`, once the GameServer has both.
    pub(crate) fn public_url(&self, tls: bool) -> Option<String> {
        let (address, port) = (self.address.as_deref()?, self.port?);
        let scheme = if tls { "https" } else { "http" };
        Some(if address.contains(':') {
            format!("{scheme}://[{address}]:{port}")
        } else {
            format!("{scheme}://{address}:{port}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's answer as Agones's REST guide shows it.
    const DOCUMENTED: &str = r#"{"object_meta":{"name":"local","namespace":"default","uid":"1234","resource_version":"v1","generation":"1","creation_timestamp":"1531795395","annotations":{"annotation":"true"},"labels":{"islocal":"true"}},"status":{"state":"Ready","address":"127.0.0.1","ports":[{"name":"default","port":7777}]}}"#;

    #[test]
    fn the_documented_answer_gives_state_and_public_url() {
        let server = GameServer::parse(DOCUMENTED.as_bytes()).expect("parses");
        assert_eq!(server.state, "Ready");
        assert!(!server.shutting_down());
        assert_eq!(
            server.public_url(false).as_deref(),
            Some("http://127.0.0.1:7777")
        );
        assert_eq!(
            server.public_url(true).as_deref(),
            Some("https://127.0.0.1:7777")
        );
    }

    #[test]
    fn the_port_named_game_wins_and_ipv6_is_bracketed() {
        let body = r#"{"status":{"state":"Scheduled","address":"fd00::7","ports":[{"name":"metrics","port":9090},{"name":"game","port":7001}]}}"#;
        let server = GameServer::parse(body.as_bytes()).expect("parses");
        assert_eq!(
            server.public_url(false).as_deref(),
            Some("http://[fd00::7]:7001")
        );
    }

    #[test]
    fn no_address_or_port_yet_gives_no_url() {
        let server = GameServer::parse(br#"{"status":{"state":"Scheduled"}}"#).expect("parses");
        assert_eq!(server.public_url(false), None);
        let server =
            GameServer::parse(br#"{"status":{"address":"10.0.0.1","ports":[{"port":0}]}}"#)
                .expect("parses");
        assert_eq!(server.public_url(false), None);
    }

    #[test]
    fn shutdown_state_or_a_deletion_timestamp_means_going_away() {
        let shutdown = GameServer::parse(br#"{"status":{"state":"Shutdown"}}"#).expect("parses");
        assert!(shutdown.shutting_down());
        let deleted = GameServer::parse(
            br#"{"object_meta":{"deletion_timestamp":"1764633600"},"status":{"state":"Allocated"}}"#,
        )
        .expect("parses");
        assert!(deleted.shutting_down());
        let not_deleted =
            GameServer::parse(br#"{"object_meta":{"deletion_timestamp":"0"},"status":{}}"#)
                .expect("parses");
        assert!(!not_deleted.shutting_down());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(GameServer::parse(b"not json").is_err());
        assert!(GameServer::parse(br#"{"status":{"ports":"many"}}"#).is_err());
    }
}
