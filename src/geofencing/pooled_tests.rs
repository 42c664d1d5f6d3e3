//! The pool answers what the tree answers, whether it covers a query or falls back (`near`
//! within a margin a fraction of a percent wider).

use serde_json::json;
use uuid::Uuid;

use crate::domain::geofence::judge::{Fences, Judged};
use crate::domain::geofence::Fence;
use crate::domain::LatLon;
use crate::geofencing::{Fenced, Geofences, Neighbourhood, Neighbourhoods, Pooled};
use crate::store::geofences::Loaded;
use crate::test_rng::Rng;

fn loaded(i: u128, ring: Vec<[f64; 2]>) -> Loaded {
    let body = json!({"type": "Feature", "properties": {"name": format!("f{i}")},
        "geometry": {"type": "Polygon", "coordinates": [ring]}});
    Loaded::unsaved(
        Uuid::from_u128(i),
        Fence::from_json(body).expect("a valid fence"),
    )
}

/// Squares from 20 m to 2 km across, in a 0.2° box at 60° N.
fn fences(rng: &mut Rng) -> Geofences {
    let set = Geofences::default();
    let all = (0..3000u128)
        .map(|i| {
            let (x, y) = (10.0 + 0.2 * rng.next(), 60.0 + 0.1 * rng.next());
            let h = (0.0002 + 0.02 * rng.next().powi(3)) / 2.0;
            let ring = vec![
                [x - h, y - h / 2.0],
                [x + h, y - h / 2.0],
                [x + h, y + h / 2.0],
                [x - h, y + h / 2.0],
                [x - h, y - h / 2.0],
            ];
            loaded(i, ring)
        })
        .collect();
    set.replace_all(all);
    set
}

/// The fences found, as a set (the pool adds them unsorted and may add one twice).
fn ids(found: &[&Fenced]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = found.iter().map(|f| Judged::id(*f)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A pool's `near` answers every fence the tree answers, and nothing the tree would not
/// answer with the margin 1 % wider: the pool converts the margin to degrees once, at its
/// cover's most poleward latitude, which may widen it by a fraction of a percent.
fn assert_near(set: &crate::geofencing::Set, pooled: &Pooled, p: LatLon, context: &str) {
    let margin = set.max_hysteresis_m();
    let (mut want, mut wider, mut got) = (Vec::new(), Vec::new(), Vec::new());
    set.near(p, margin, &mut want);
    set.near(p, margin * 1.01, &mut wider);
    pooled.near(p, margin, &mut got);
    let (want, wider, got) = (ids(&want), ids(&wider), ids(&got));
    assert!(
        want.iter().all(|f| got.contains(f)) && got.iter().all(|f| wider.contains(f)),
        "{context}: near answered {got:?}, the tree {want:?} ({wider:?} 1 % wider)"
    );
}

#[test]
fn pooled_queries_answer_what_the_tree_answers() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fences = fences(&mut rng);
    let set = fences.read();
    let margin = set.max_hysteresis_m();
    let (mut covered, mut hits) = (0, 0);
    for trip in 0..2000 {
        // Steps from 1 m to ~10 km: tight groups are pooled, wide ones fall back to the tree.
        let step = 0.00001 * 10f64.powf(4.0 * rng.next());
        let (mut x, mut y) = (10.0 + 0.2 * rng.next(), 60.0 + 0.1 * rng.next());
        let fixes: Vec<LatLon> = (0..10)
            .map(|_| {
                x += step * (rng.next() - 0.5);
                y += step * (rng.next() - 0.5);
                LatLon::new(y, x).unwrap()
            })
            .collect();
        let mut neighbourhood = Neighbourhood::default();
        let pooled = neighbourhood.around(&set, fixes.iter().copied());
        covered += usize::from(pooled.cover.is_some());
        for (k, p) in fixes.iter().enumerate() {
            assert_near(&set, &pooled, *p, &format!("trip {trip}, fix {k}"));
            let mut near = Vec::new();
            set.near(*p, margin, &mut near);
            hits += near.len();
            if k > 0 {
                let (mut want, mut got) = (Vec::new(), Vec::new());
                set.along(fixes[k - 1], *p, &mut want);
                pooled.along(fixes[k - 1], *p, &mut got);
                assert_eq!(ids(&got), ids(&want), "trip {trip}, fix {k}: along");
            }
        }
    }
    assert!(
        covered > 500 && covered < 2000,
        "{covered} of 2000 trips pooled"
    );
    assert!(
        hits > 1000,
        "{hits} fences near the fixes: the test must meet fences"
    );
}

/// A vehicle's neighbourhood kept from batch to batch: each batch is answered as the tree
/// answers it, most without a walk; a fence created next to the vehicle (a new generation of
/// the set) is in the very next batch's answers.
#[test]
fn a_kept_neighbourhood_answers_what_the_tree_answers_until_the_set_changes() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let fences = fences(&mut rng);
    let (mut batches, mut walks, mut hits) = (0, 0, 0);
    for trip in 0..200 {
        let mut neighbourhood = Neighbourhood::default();
        let (mut x, mut y) = (10.05 + 0.1 * rng.next(), 60.02 + 0.06 * rng.next());
        let heading = std::f64::consts::TAU * rng.next();
        // 10 m a fix (1 Hz at 36 km/h), ten fixes a batch, twenty batches.
        let (dx, dy) = (
            10.0 * heading.cos() / 55_800.0,
            10.0 * heading.sin() / 111_400.0,
        );
        for batch in 0..20 {
            let fixes: Vec<LatLon> = (0..10)
                .map(|_| {
                    (x, y) = (x + dx, y + dy);
                    LatLon::new(y, x).unwrap()
                })
                .collect();
            let set = fences.read();
            let before = neighbourhood.cover.map(|c| (c, neighbourhood.generation));
            let pooled = neighbourhood.around(&set, fixes.iter().copied());
            assert!(pooled.cover.is_some(), "trip {trip}, batch {batch}: pooled");
            batches += 1;
            walks += usize::from(before != pooled.cover.map(|c| (c, set.generation())));
            for p in &fixes {
                assert_near(&set, &pooled, *p, &format!("trip {trip}, batch {batch}"));
                let mut want = Vec::new();
                set.near(*p, set.max_hysteresis_m(), &mut want);
                hits += want.len();
            }
        }
        if trip % 20 == 0 {
            // A fence around where the vehicle is now: the next batch must see it.
            let h = 0.0005;
            let id = 10_000 + trip as u128;
            let ring = vec![
                [x - h, y - h],
                [x + h, y - h],
                [x + h, y + h],
                [x - h, y + h],
                [x - h, y - h],
            ];
            fences.apply(Uuid::from_u128(id), Some(loaded(id, ring)));
            let set = fences.read();
            let p = LatLon::new(y + dy, x + dx).unwrap();
            let pooled = neighbourhood.around(&set, [p]);
            let mut got = Vec::new();
            pooled.near(p, set.max_hysteresis_m(), &mut got);
            assert!(
                ids(&got).contains(&Uuid::from_u128(id)),
                "trip {trip}: a fence created next to the vehicle is in its next answer"
            );
        }
    }
    assert!(
        hits > 1000,
        "{hits} fences near the fixes: the test must meet fences"
    );
    assert!(
        walks * 2 < batches,
        "{walks} tree walks for {batches} batches: the neighbourhood must be kept"
    );
}

/// Kept neighbourhoods come back to the vehicle's next batch; once any batch has walked a newer
/// set, those taken from older ones are dropped, and one put back late from an older set is not
/// kept.
#[test]
fn neighbourhoods_of_an_older_set_are_not_kept() {
    let mut rng = Rng(0x51_7cc1_b727_220a);
    let fences = fences(&mut rng);
    let kept = Neighbourhoods::default();
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let at = |lon: f64| [LatLon::new(60.05, lon).unwrap()];
    let mut taken = kept.take([a, b]);
    {
        let set = fences.read();
        for (v, n) in &mut taken {
            let lon = if *v == a { 10.05 } else { 10.15 };
            assert!(n.around(&set, at(lon)).cover.is_some());
        }
    }
    kept.put_back(taken);
    assert_eq!(kept.held().0, 2);
    let mut again = kept.take([a]);
    assert!(again[0].1.cover.is_some(), "a's neighbourhood came back");
    let mut late = kept.take([b]);
    assert_eq!(kept.held().0, 0);

    fences.apply(Uuid::from_u128(99_999), None::<Loaded>);
    let set = fences.read();
    let pooled = again[0].1.around(&set, at(10.05));
    assert!(pooled.cover.is_some());
    drop(set);
    kept.put_back(again);
    kept.put_back(std::mem::take(&mut late));
    assert_eq!(kept.held().0, 1, "b's neighbourhood is of the older set");
    assert!(kept.take([b])[0].1.cover.is_none());
}
