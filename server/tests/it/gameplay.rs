use std::time::Duration;

use shared::game::{InputFrame, buttons};
use shared::protocol::{ClientMsg, ServerMsg};
use shared::{PlayerId, Seq};
use tokio::time::Instant;

use crate::support::*;

#[tokio::test]
async fn snapshots_arrive_at_the_configured_rate() {
    let server = start_server(|config| {
        config.tick_hz = 60;
        config.snapshot_hz = 20;
    })
    .await;
    let mut conn = join(&server, "ann").await;
    let first = next_snapshot(&mut conn).await;
    let started = Instant::now();
    let mut previous = first.tick;
    let mut exact_gaps = 0;
    for _ in 0..20 {
        let snapshot = next_snapshot(&mut conn).await;
        let gap = snapshot.tick.since(previous);
        // 60 Hz ticks / 20 Hz snapshots: every 3rd tick. A client that falls behind
        // skips to the newest snapshot, so a gap may be a larger multiple of 3.
        assert!(
            gap > 0 && gap % 3 == 0,
            "snapshots come every 3rd tick, got a gap of {gap}"
        );
        exact_gaps += usize::from(gap == 3);
        previous = snapshot.tick;
    }
    assert!(
        exact_gaps >= 15,
        "most gaps should be exactly 3 ticks ({exact_gaps} of 20 were)"
    );
    // 20 snapshots at 20 Hz take about a second; allow a wide margin for a busy machine.
    let elapsed = started.elapsed();
    assert!(
        elapsed > Duration::from_millis(700) && elapsed < Duration::from_secs(3),
        "20 snapshots took {elapsed:?}"
    );
}

#[tokio::test]
async fn input_moves_that_player_in_a_later_snapshot() {
    let server = start_server(|_| {}).await;
    let mut mover = join_room(&server, "mover", "moves").await;
    let mut watcher = join_room(&server, "watcher", "moves").await;
    let mover_id = mover.welcome.player_id;
    let watcher_id = watcher.welcome.player_id;
    let start = snapshot_showing(&mut mover, &[mover_id, watcher_id]).await;
    let start_pos = |id: PlayerId| start.players.iter().find(|p| p.id == id).map(|p| p.pos);
    let (mover_start, watcher_start) = (
        start_pos(mover_id).expect("mover"),
        start_pos(watcher_id).expect("watcher"),
    );

    // Hold RIGHT (or LEFT, away from a wall we might start against) for 20 inputs.
    let held = if mover_start.x < 1600.0 {
        buttons::RIGHT
    } else {
        buttons::LEFT
    };
    for seq in 1..=20 {
        let input = InputFrame {
            seq: Seq(seq),
            buttons: held,
            aim: 0.0,
            view: None,
        };
        let input = mover.view.input_message(input);
        mover.send(&input).await.expect("send input");
    }
    let moved = recv_until(&mut mover, |_, view| {
        view.snapshot.clone().filter(|s| s.ack_input == Seq(20))
    })
    .await;
    let mover_now = moved
        .players
        .iter()
        .find(|p| p.id == mover_id)
        .expect("mover")
        .pos;
    let moved_x = mover_now.x - mover_start.x;
    assert!(
        moved_x.abs() > 20.0,
        "20 inputs of {held} should move the player; moved {moved_x}"
    );
    assert_eq!(mover_now.y, mover_start.y, "only sideways keys were held");
    let watcher_now = moved
        .players
        .iter()
        .find(|p| p.id == watcher_id)
        .expect("watcher")
        .pos;
    assert_eq!(watcher_now, watcher_start, "the other player did not move");

    let seen = recv_until(&mut watcher, |_, view| {
        view.snapshot
            .clone()
            .filter(|s| s.tick.since(moved.tick) >= 0)
    })
    .await;
    let seen_pos = seen
        .players
        .iter()
        .find(|p| p.id == mover_id)
        .expect("mover")
        .pos;
    assert_eq!(
        seen_pos, mover_now,
        "the watcher sees the same authoritative position"
    );
}

#[tokio::test]
async fn two_clients_see_each_other_and_a_leaver_disappears() {
    let server = start_server(|_| {}).await;
    let mut ann = join_room(&server, "ann", "pair").await;
    let bob = join_room(&server, "bob", "pair").await;
    let bob_id = bob.welcome.player_id;
    assert_eq!(
        bob.welcome.roster.len(),
        2,
        "bob's welcome lists ann and bob"
    );

    let joined = recv_until(&mut ann, |msg, _| match msg {
        ServerMsg::PlayerJoined { id, name } => Some((*id, name.clone())),
        _ => None,
    })
    .await;
    assert_eq!(joined, (bob_id, "bob".to_owned()));
    let both = recv_until(&mut ann, |_, view| {
        view.snapshot.clone().filter(|s| s.players.len() == 2)
    })
    .await;
    assert!(both.players.iter().any(|p| p.id == bob_id));

    bob.close().await.expect("bob leaves cleanly");
    let left = recv_until(&mut ann, |msg, _| match msg {
        ServerMsg::PlayerLeft { id } => Some(*id),
        _ => None,
    })
    .await;
    assert_eq!(left, bob_id);
    let after = next_snapshot(&mut ann).await;
    assert!(
        after.players.iter().all(|p| p.id != bob_id),
        "bob is gone from snapshots"
    );
    assert_eq!(after.players.len(), 1);
}

#[tokio::test]
async fn a_full_room_sends_newcomers_to_a_new_room() {
    let server = start_server(|config| config.room_capacity = 2).await;
    let first = join(&server, "p1").await;
    let second = join(&server, "p2").await;
    let third = join(&server, "p3").await;
    assert_eq!(
        first.welcome.room, second.welcome.room,
        "join-or-create fills the open room first"
    );
    assert_ne!(
        third.welcome.room, first.welcome.room,
        "the third player gets a new room"
    );
    let rooms = server.rooms();
    assert_eq!(rooms.len(), 2);
}

#[tokio::test]
async fn a_named_room_that_is_full_refuses() {
    let server = start_server(|config| config.room_capacity = 1).await;
    let _first = join_room(&server, "p1", "tiny").await;
    let refused = client::native::Connection::join(
        &server.ws_url(),
        client::native::Hello::new("p2").in_room("tiny"),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(client::native::NetError::Refused {
                reason: shared::protocol::CloseReason::RoomFull,
                ..
            })
        ),
        "got {refused:?}"
    );
}

#[tokio::test]
async fn chat_reaches_the_room_stamped_with_the_sender() {
    let server = start_server(|_| {}).await;
    let mut ann = join_room(&server, "ann", "talk").await;
    let mut bob = join_room(&server, "bob", "talk").await;
    ann.send(&ClientMsg::Chat {
        text: "  hello\u{202E} bob ".into(),
    })
    .await
    .expect("send chat");
    for conn in [&mut ann, &mut bob] {
        let line = recv_until(conn, |msg, _| match msg {
            ServerMsg::Chat { from, name, text } => Some((*from, name.clone(), text.clone())),
            _ => None,
        })
        .await;
        assert_eq!(line.1, "ann");
        assert_eq!(
            line.2, "hello bob",
            "chat is trimmed and stripped of bidi controls"
        );
    }
}

#[tokio::test]
async fn an_empty_room_closes_after_its_grace_period() {
    let server = start_server(|config| config.room_grace_secs = 0.2).await;
    let conn = join_room(&server, "solo", "brief").await;
    assert_eq!(server.rooms().len(), 1);
    conn.close().await.expect("leave");
    let deadline = Instant::now() + PATIENCE;
    while !server.rooms().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the empty room should close after its grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
