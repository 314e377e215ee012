use std::time::Duration;

use shared::consts::tuning::PLAYER_MAX_SPEED;
use shared::consts::{CHAT_BURST, CHAT_MAX_CHARS, MAX_INPUT_CREDIT};
use shared::game::{InputFrame, buttons};
use shared::protocol::{ClientMsg, ServerMsg};
use shared::view::Snapshot;
use shared::{PlayerId, Seq};

use crate::support::*;

fn frame(seq: u32, held: u8) -> InputFrame {
    InputFrame {
        seq: Seq(seq),
        buttons: held,
        aim: 0.0,
        view: None,
    }
}

fn position(snapshot: &Snapshot, id: PlayerId) -> glam::Vec2 {
    snapshot
        .players
        .iter()
        .find(|p| p.id == id)
        .expect("the player is in the snapshot")
        .pos
}

/// Sideways, away from the nearer side wall.
fn sideways(snapshot: &Snapshot, id: PlayerId) -> u8 {
    if position(snapshot, id).x < 1600.0 {
        buttons::RIGHT
    } else {
        buttons::LEFT
    }
}

#[tokio::test]
async fn inputs_sent_faster_than_the_tick_rate_buy_no_extra_movement() {
    let server = start_server(|config| config.tick_hz = 60).await;
    let mut others = vec![join_room(&server, "ann", "speed").await];
    let mut hacker = join_room(&server, "hacker", "speed").await;
    let id = hacker.welcome.player_id;
    let start = next_snapshot(&mut hacker).await;
    let held = sideways(&start, id);

    // Four inputs per tick for a second: four times the honest rate.
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / 60.0));
    let mut seq = 0;
    for _ in 0..60 {
        ticker.tick().await;
        for _ in 0..4 {
            seq += 1;
            hacker
                .send_input(frame(seq, held))
                .await
                .expect("send input");
        }
    }
    let last_seq = Seq(seq);
    let end = recv_until(&mut hacker, |_, view| {
        view.snapshot
            .as_ref()
            .filter(|s| s.ack_input == last_seq)
            .cloned()
    })
    .await;
    let ticks = end.tick.since(start.tick) as f32;
    let moved = (position(&end, id) - position(&start, id)).length();
    // At most one input per tick, plus the banked credit, each at most top speed.
    let limit = PLAYER_MAX_SPEED / 60.0 * (ticks + MAX_INPUT_CREDIT as f32) * 1.01;
    assert!(moved > 20.0, "the inputs did move the player ({moved})");
    assert!(
        moved <= limit,
        "moved {moved} in {ticks} ticks; an honest client moves at most {limit}"
    );
    still_playing(&mut others).await;
    still_playing(std::slice::from_mut(&mut hacker)).await;
}

#[tokio::test]
async fn replayed_old_and_far_future_sequence_numbers_are_ignored() {
    let server = start_server(|_| {}).await;
    let mut others = vec![join_room(&server, "ann", "replay").await];
    let mut player = join_room(&server, "replayer", "replay").await;
    let id = player.welcome.player_id;
    let start = next_snapshot(&mut player).await;
    let held = sideways(&start, id);
    for seq in 1..=20 {
        player.send_input(frame(seq, held)).await.expect("send");
    }
    let applied = recv_until(&mut player, |_, view| {
        view.snapshot
            .as_ref()
            .filter(|s| s.ack_input == Seq(20))
            .cloned()
    })
    .await;
    let resting_at = position(&applied, id);

    // The same inputs again, a duplicate of the last, and one implausibly far ahead.
    for seq in (1..=20).chain([20, 20 + 5_000]) {
        player
            .send_input(frame(seq, held))
            .await
            .expect("send replay");
    }
    for _ in 0..10 {
        let later = next_snapshot(&mut player).await;
        assert_eq!(later.ack_input, Seq(20), "replays are not applied");
        assert_eq!(position(&later, id), resting_at, "replays move nothing");
    }
    // The stream goes on from where it was.
    player.send_input(frame(21, held)).await.expect("send next");
    recv_until(&mut player, |_, view| {
        view.snapshot
            .as_ref()
            .filter(|s| s.ack_input == Seq(21))
            .map(|_| ())
    })
    .await;
    still_playing(&mut others).await;
}

#[tokio::test]
async fn nothing_in_a_message_can_act_for_another_player() {
    let server = start_server(|_| {}).await;
    let mut victim = join_room(&server, "victim", "spoof").await;
    let victim_id = victim.welcome.player_id;
    let mut attacker = join_room(&server, "attacker", "spoof").await;
    let attacker_id = attacker.welcome.player_id;
    let start = snapshot_showing(&mut victim, &[victim_id, attacker_id]).await;
    let victim_at = position(&start, victim_id);

    // The attacker's inputs move the attacker alone and count against its own sequence.
    let held = sideways(&start, attacker_id);
    for seq in 1..=10 {
        attacker.send_input(frame(seq, held)).await.expect("send");
    }
    // Chat saying it is from the victim is still stamped with the attacker.
    attacker
        .send(&ClientMsg::Chat {
            text: "victim: I give up".into(),
        })
        .await
        .expect("chat");
    let line = recv_until(&mut victim, |msg, _| match msg {
        ServerMsg::Chat { from, name, .. } => Some((*from, name.clone())),
        _ => None,
    })
    .await;
    assert_eq!(line, (attacker_id, "attacker".to_owned()));
    let attacker_start = position(&start, attacker_id);
    let seen = recv_until(&mut victim, |_, view| {
        view.snapshot
            .as_ref()
            .filter(|s| position(s, attacker_id) != attacker_start)
            .cloned()
    })
    .await;
    assert_eq!(
        seen.ack_input,
        Seq(0),
        "the victim's own input stream is untouched"
    );
    assert_eq!(
        position(&seen, victim_id),
        victim_at,
        "the victim did not move"
    );

    // An input with a player id appended does not decode, and a second hello (to
    // become someone else) is refused: both end the attacker's connection.
    let baseline = Baseline::take(&server);
    let mut forger = join_room(&server, "forger", "spoof").await;
    let mut forged = shared::codec::encode_client(&ClientMsg::Input {
        ack: None,
        frames: vec![frame(1, held)],
    });
    forged.extend_from_slice(&victim_id.0.to_le_bytes());
    forger.send_raw(forged).await.expect("send forged");
    let (close, _) = expect_closed(&mut forger).await;
    assert_eq!(close.map(|(code, _)| code), Some(1007));
    drop(forger);
    attacker
        .send(&ClientMsg::Hello {
            protocol: shared::consts::PROTOCOL_VERSION,
            name: "victim".into(),
            room: Some("spoof".into()),
            token: None,
            resume: None,
            reservation: None,
            spectate: false,
        })
        .await
        .expect("second hello");
    let (close, _) = expect_closed(&mut attacker).await;
    assert_eq!(close.map(|(code, _)| code), Some(1007));
    drop(attacker);
    still_playing(std::slice::from_mut(&mut victim)).await;
    // The room removes them at its next tick; a snapshot from before may be in flight.
    let after = recv_until(&mut victim, |_, view| {
        view.snapshot.clone().filter(|s| s.players.len() == 1)
    })
    .await;
    assert_eq!(after.players[0].id, victim_id);
    // The forger's seat and socket are given back; the attacker's too.
    let mut restored = baseline;
    restored.forget_players(1);
    restored.assert_restored(&server).await;
}

#[tokio::test]
async fn chat_abuse_is_cut_short_stripped_and_throttled() {
    let server = start_server(|_| {}).await;
    let mut listener = join_room(&server, "ann", "chat").await;
    let mut spammer = join_room(&server, "spammer", "chat").await;
    let spammer_id = spammer.welcome.player_id;
    let abusive = format!(
        "\u{202E}{}\u{0007}\u{200F}{}",
        "a".repeat(CHAT_MAX_CHARS),
        "b".repeat(CHAT_MAX_CHARS)
    );
    for _ in 0..(CHAT_BURST * 4) {
        spammer
            .send(&ClientMsg::Chat {
                text: abusive.clone(),
            })
            .await
            .expect("chat");
    }
    let notice = recv_until(&mut spammer, |msg, _| match msg {
        ServerMsg::Notice { text } => Some(text.clone()),
        _ => None,
    })
    .await;
    assert!(
        notice.contains("chat limit"),
        "the spammer is told: {notice}"
    );

    let mut lines = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Ok(Some(ServerMsg::Chat { from, text, .. })) = listener.recv().await {
                lines.push((from, text));
            }
        }
    })
    .await;
    assert_eq!(
        lines.len(),
        CHAT_BURST as usize,
        "only the burst reaches the room"
    );
    for (from, text) in &lines {
        assert_eq!(*from, spammer_id, "stamped with the sender");
        assert_eq!(text.chars().count(), CHAT_MAX_CHARS, "cut to the limit");
        assert!(
            text.chars().all(|c| c == 'a'),
            "controls and bidi characters are gone: {text:?}"
        );
    }
    // Chat over its own limit is throttled, not a reason to drop the player.
    still_playing(&mut [listener, spammer]).await;
}
