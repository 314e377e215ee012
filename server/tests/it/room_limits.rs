//! The bounds on rooms: how many may exist, how fast one address may open them, and
//! what a flood of new rooms costs everybody else (nothing).

use std::time::Duration;

use client::native::{Connection, Hello, NetError};
use shared::protocol::CloseReason;

use crate::support::*;

/// Joins `room` as `name`, returning the refusal if there is one.
async fn try_join(server: &server::Server, name: &str, room: &str) -> Result<Connection, NetError> {
    Connection::join(&server.ws_url(), Hello::new(name).in_room(room)).await
}

fn refusal(joined: Result<Connection, NetError>) -> (CloseReason, String) {
    match joined {
        Err(NetError::Refused { reason, detail }) => (reason, detail),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn opening_rooms_by_name_is_rate_limited_per_address() {
    let server = start_server(|config| config.new_rooms_per_minute = 3).await;
    let mut kept = Vec::new();
    for n in 0..3 {
        kept.push(join_room(&server, &format!("p{n}"), &format!("room{n}")).await);
    }
    let (reason, detail) = refusal(try_join(&server, "p3", "room3").await);
    assert_eq!(reason, CloseReason::TooManyNewRooms);
    assert!(
        detail.contains("wait"),
        "the reason says what to do: {detail}"
    );
    assert_eq!(CloseReason::TooManyNewRooms.close_code(), 4005);

    // Joining a room that exists opens nothing, and quick play is not counted.
    kept.push(join_room(&server, "guest", "room0").await);
    kept.push(join(&server, "quick").await);
    assert_eq!(
        server.rooms().len(),
        4,
        "three named rooms and one quick-play room"
    );

    let (_, metrics) = http_get_at(server.admin_addr(), "/metrics").await;
    assert!(
        metrics.contains(r#"skirmish_disconnects_total{reason="too_many_new_rooms"} 1"#),
        "refusals are counted under a snake_case reason:\n{metrics}"
    );
}

#[tokio::test]
async fn past_the_room_cap_new_rooms_are_refused_in_plain_words() {
    let server = start_server(|config| config.max_rooms = 2).await;
    let _a = join_room(&server, "a", "alpha").await;
    let _b = join_room(&server, "b", "beta").await;
    let (reason, detail) = refusal(try_join(&server, "c", "gamma").await);
    assert_eq!(reason, CloseReason::RoomLimit);
    assert_eq!(CloseReason::RoomLimit.close_code(), 4004);
    assert!(detail.contains("rooms"), "{detail}");
    let _second_in_alpha = join_room(&server, "d", "alpha").await;
    assert_eq!(server.rooms().len(), 2);
}

#[tokio::test]
async fn a_flood_of_new_rooms_is_refused_and_players_elsewhere_notice_nothing() {
    let server = start_server(|_| {}).await;
    let mut players = Vec::new();
    for n in 0..4 {
        players.push(join_room(&server, &format!("p{n}"), "main").await);
    }
    let flooding = {
        let url = server.ws_url();
        tokio::spawn(async move {
            let mut refused = 0;
            // Sixty sockets at a time, each asking for a room of its own.
            for wave in 0..5 {
                let joins = (0..60).map(|n| {
                    let url = url.clone();
                    async move {
                        let hello = Hello::new("flood").in_room(format!("f{wave}-{n}"));
                        Connection::join(&url, hello).await
                    }
                });
                for joined in futures_util::future::join_all(joins).await {
                    if let Err(NetError::Refused { reason, .. }) = joined {
                        assert_eq!(reason, CloseReason::TooManyNewRooms);
                        refused += 1;
                    }
                }
            }
            refused
        })
    };
    for player in &mut players {
        let snapshots = count_snapshots(player, Duration::from_millis(500)).await;
        assert!(
            snapshots >= 5,
            "{snapshots} snapshots in 0.5 s during the flood"
        );
    }
    let refused = flooding.await.expect("the flood ran");
    assert!(refused >= 280, "{refused} of 300 flood joins were refused");
    let rooms = server.rooms().len();
    assert!(rooms <= 1 + 20, "{rooms} rooms after the flood");
    still_playing(&mut players).await;
}
