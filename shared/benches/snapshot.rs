//! The per-tick costs, sized by entities in a room (half players, half projectiles):
//! one world step, and one snapshot encoded for 16 recipients sharing a baseline.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use shared::codec::{encode_snapshot, encode_snapshot_body};
use shared::game::World;
use shared::game::{InputFrame, buttons};
use shared::protocol::{SnapshotHeader, TickRef};
use shared::snapshot::{QState, diff};
use shared::{Map, PlayerId, Seq};

const DT: f32 = 1.0 / 60.0;
const RECIPIENTS: usize = 16;

fn arena() -> Map {
    serde_json::from_str(include_str!("../../assets/maps/arena.json"))
        .expect("the shipped arena parses")
}

/// Inputs that keep every player moving, turning and firing.
fn inputs(world: &World, seq: u32) -> Vec<(PlayerId, InputFrame)> {
    world
        .players()
        .iter()
        .map(|p| {
            let turn = (seq.wrapping_mul(31) + u32::from(p.id.0) * 7) % 628;
            let held = [buttons::UP, buttons::RIGHT, buttons::DOWN, buttons::LEFT]
                [(seq / 40 + u32::from(p.id.0)) as usize % 4];
            (
                p.id,
                InputFrame {
                    seq: Seq(seq),
                    buttons: held | buttons::FIRE,
                    aim: turn as f32 / 100.0,
                    view: None,
                },
            )
        })
        .collect()
}

/// A world with about `n_entities` entities, half of them projectiles, mid-game.
fn world_with(n_entities: usize) -> (World, u32) {
    let mut world = World::new(arena());
    for id in 1..=(n_entities / 2) as u8 {
        world.add_player(PlayerId(id));
    }
    let mut seq = 0;
    while world.projectiles().len() < n_entities / 2 && seq < 600 {
        seq += 1;
        world.step(&inputs(&world, seq), DT, &mut Vec::new());
    }
    (world, seq)
}

fn step(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");
    for n_entities in [16, 64, 256] {
        let (world, seq) = world_with(n_entities);
        let frame = inputs(&world, seq + 1);
        group.bench_with_input(
            BenchmarkId::from_parameter(n_entities),
            &n_entities,
            |b, _| {
                b.iter_batched_ref(
                    || world.clone(),
                    |world| world.step(black_box(&frame), DT, &mut Vec::new()),
                    criterion::BatchSize::SmallInput,
                );
            },
        );
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_for_16_recipients");
    for n_entities in [16, 64, 256] {
        let (mut world, seq) = world_with(n_entities);
        let baseline = QState::of_world(&world);
        world.step(&inputs(&world, seq + 1), DT, &mut Vec::new());
        world.step(&inputs(&world, seq + 2), DT, &mut Vec::new());
        group.bench_with_input(
            BenchmarkId::from_parameter(n_entities),
            &n_entities,
            |b, _| {
                b.iter(|| {
                    let state = QState::of_world(black_box(&world));
                    let body = encode_snapshot_body(&diff(Some(&baseline), &state));
                    let mut total = 0;
                    for recipient in 0..RECIPIENTS {
                        let header = SnapshotHeader {
                            tick: TickRef::Delta {
                                baseline_low: baseline.tick.0 as u16,
                                after: 2,
                            },
                            ack_input_low: recipient as u16,
                            own_vel: Some([recipient as i16, 3]),
                        };
                        total += encode_snapshot(&header, &body).len();
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, step, encode);
criterion_main!(benches);
