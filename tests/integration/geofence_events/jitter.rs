//! An hour at 1 Hz on a fence's edge with 15 m (1 σ) of GPS noise raises nothing under the
//! default hysteresis; the same vehicle then driving in raises exactly one enter.

use serde_json::json;

use super::{events_of, fix, kinds, send, square};
use crate::helpers::{now_ms, spawn_app};

/// xorshift64 and Box–Muller: reproducible normal noise without a dependency.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Two independent draws of N(0, σ²).
    fn pair(&mut self, sigma: f64) -> (f64, f64) {
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt() * sigma;
        let a = std::f64::consts::TAU * v;
        (r * a.cos(), r * a.sin())
    }
}

#[tokio::test]
async fn an_hour_of_15_m_jitter_across_an_edge_raises_no_event_with_the_default_hysteresis() {
    let app = spawn_app().await;
    square(&app, "yard", (0.0, -1000.0, 2000.0, 1000.0), json!({})).await;
    let vehicle = app.register(&["parked-1"]).await[0];
    let t0 = now_ms() - 2 * 3_600_000;

    // Arrives from 300 m west, then sits on the west edge (x = 0) for an hour.
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut points = vec![fix(t0, 0, -300.0, 0.0)];
    for s in 1..=3600 {
        let (dx, dy) = noise.pair(15.0);
        points.push(fix(t0, s, dx, dy));
    }
    let crossings = points
        .windows(2)
        .filter(|w| {
            (w[0]["lon"].as_f64() < Some(super::LON0)) != (w[1]["lon"].as_f64() < Some(super::LON0))
        })
        .count();
    assert!(
        crossings > 1000,
        "the track does cross the edge ({crossings} times)"
    );
    for chunk in points.chunks(100) {
        send(&app, "parked-1", chunk).await;
    }
    app.wait_settled(37).await;
    assert_eq!(
        events_of(&app, vehicle).await,
        Vec::<serde_json::Value>::new()
    );

    // Then it drives in: one enter, so judging was running all along.
    let inside: Vec<_> = (3601..3606).map(|s| fix(t0, s, 500.0, 0.0)).collect();
    send(&app, "parked-1", &inside).await;
    app.wait_settled(38).await;
    assert_eq!(kinds(&events_of(&app, vehicle).await), ["enter"]);
}
