//! A coarse picture of a fence over its bounding box: 16 × 16 cells, each known to lie wholly
//! inside, wholly outside, or to meet an edge. `contains` answers a point in a cell of the first
//! two kinds from the picture (64 bytes beside the box) without reading an edge: for the
//! benchmark's 50-vertex stars, about two points in three of those within the box.
//!
//! Exact, not approximate: a cell no edge's box meets holds no boundary, so all its points are
//! on the side of its centre, which the edges decide once. "Its points" are those the query
//! files in it, by the same monotone arithmetic that files the edges' boxes (as with bands), so
//! rounding at a cell border can only file a point and an edge together, never apart.

use geo::Coord;

use super::Edges;

/// Cells along each side.
const SIDE: usize = 16;
const WORDS: usize = SIDE * SIDE / 64;

#[derive(Debug, Default)]
pub(super) struct Grid {
    /// Cells per degree; 0 when the fence has no area to picture (every point asks the edges).
    per_x: f64,
    per_y: f64,
    inside: [u64; WORDS],
    outside: [u64; WORDS],
}

impl Grid {
    /// The picture of `edges`: each cell meeting no edge's box is decided by its centre.
    pub fn of(edges: &Edges) -> Grid {
        let (width, height) = (edges.east - edges.west, edges.north - edges.south);
        if !(width > 0.0 && height > 0.0) {
            return Grid::default();
        }
        let mut grid = Grid {
            per_x: SIDE as f64 / width,
            per_y: SIDE as f64 / height,
            ..Grid::default()
        };
        let mut boundary = [0u64; WORDS];
        for i in edges.all() {
            let (a, b) = edges.edge(i);
            let (i0, i1) = (
                grid.column(edges, a.x.min(b.x)),
                grid.column(edges, a.x.max(b.x)),
            );
            let (j0, j1) = (grid.row(edges, a.y.min(b.y)), grid.row(edges, a.y.max(b.y)));
            for j in j0..=j1 {
                for i in i0..=i1 {
                    set(&mut boundary, j * SIDE + i);
                }
            }
        }
        for j in 0..SIDE {
            for i in 0..SIDE {
                let k = j * SIDE + i;
                let centre = Coord {
                    x: edges.west + (i as f64 + 0.5) / grid.per_x,
                    y: edges.south + (j as f64 + 0.5) / grid.per_y,
                };
                // A centre that rounds into another cell leaves its cell to the edges.
                let filed = grid.column(edges, centre.x) == i && grid.row(edges, centre.y) == j;
                if is_set(&boundary, k) || !filed {
                    continue;
                }
                if edges.by_edges(centre) {
                    set(&mut grid.inside, k);
                } else {
                    set(&mut grid.outside, k);
                }
            }
        }
        grid
    }

    /// Whether `p` (within the box) is inside, if its cell says; `None`: ask the edges.
    #[inline]
    pub fn inside(&self, edges: &Edges, p: Coord) -> Option<bool> {
        if self.per_x == 0.0 {
            return None;
        }
        let k = self.row(edges, p.y) * SIDE + self.column(edges, p.x);
        if is_set(&self.inside, k) {
            Some(true)
        } else if is_set(&self.outside, k) {
            Some(false)
        } else {
            None
        }
    }

    fn column(&self, edges: &Edges, x: f64) -> usize {
        cell((x - edges.west) * self.per_x)
    }

    fn row(&self, edges: &Edges, y: f64) -> usize {
        cell((y - edges.south) * self.per_y)
    }
}

/// Truncation is the floor for k ≥ 0 (as in `band_of`); monotone in `k`.
fn cell(k: f64) -> usize {
    if k > 0.0 {
        (k as usize).min(SIDE - 1)
    } else {
        0
    }
}

fn set(bits: &mut [u64; WORDS], k: usize) {
    bits[k / 64] |= 1 << (k % 64);
}

fn is_set(bits: &[u64; WORDS], k: usize) -> bool {
    bits[k / 64] & (1 << (k % 64)) != 0
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;

    use super::*;
    use crate::geofencing::edges::Edge;
    use crate::test_rng::Rng;

    /// A closed ring through `pts`, as edges.
    fn ring(pts: &[[f64; 2]]) -> Vec<Edge> {
        let c = |p: [f64; 2]| Coord { x: p[0], y: p[1] };
        let n = pts.len();
        (0..n)
            .map(|i| Edge::new(c(pts[i]), c(pts[(i + 1) % n])))
            .collect()
    }

    fn star(rng: &mut Rng, centre: [f64; 2], r: f64, n: usize) -> Vec<[f64; 2]> {
        (0..n)
            .map(|i| {
                let angle = (i as f64 + 0.5 * rng.next()) / n as f64 * TAU;
                let radius = r * (1.0 - 0.4 * rng.next());
                [
                    centre[0] + 2.0 * radius * angle.cos(),
                    centre[1] + radius * angle.sin(),
                ]
            })
            .collect()
    }

    /// The picture never contradicts the edges: random points in the box, points on cell
    /// borders, vertices and edge midpoints (the boundary), on stars, a star with a hole, two
    /// parts, a rectangle and a 4-vertex diamond; and it answers most points of a star itself.
    #[test]
    fn cells_answer_as_the_edges_do() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut asked, mut answered) = (0, 0);
        for shape in 0..60 {
            let (x, y) = (10.0 + rng.next(), 60.0 + rng.next());
            let r = 0.002 + 0.01 * rng.next();
            let outer = star(&mut rng, [x, y], r, 12 + shape * 3);
            let mut edges = ring(&outer);
            match shape % 4 {
                1 => edges.extend(ring(&star(&mut rng, [x, y], 0.0008, 9))),
                2 => edges.extend(ring(&star(&mut rng, [x + 0.05, y], 0.003, 20))),
                3 if shape % 8 == 3 => {
                    edges = ring(&[[x, y], [x + 0.01, y], [x + 0.01, y + 0.004], [x, y + 0.004]])
                }
                3 => {
                    edges = ring(&[
                        [x, y],
                        [x + 0.01, y + 0.005],
                        [x, y + 0.01],
                        [x - 0.01, y + 0.005],
                    ])
                }
                _ => {}
            }
            let fence = Edges::new(edges.clone());
            assert!(fence.grid.per_x > 0.0, "shape {shape}: pictured");
            let (w, s) = (fence.west, fence.south);
            let (dx, dy) = (fence.east - w, fence.north - s);
            let mut probes: Vec<Coord> = (0..2000)
                .map(|_| Coord {
                    x: w + dx * rng.next(),
                    y: s + dy * rng.next(),
                })
                .collect();
            for k in 0..=SIDE {
                let at = k as f64 / SIDE as f64;
                probes.push(Coord {
                    x: w + dx * at,
                    y: s + dy * rng.next(),
                });
                probes.push(Coord {
                    x: w + dx * rng.next(),
                    y: s + dy * at,
                });
            }
            for e in &edges {
                probes.push(e.a);
                probes.push(Coord {
                    x: (e.a.x + e.b.x) / 2.0,
                    y: (e.a.y + e.b.y) / 2.0,
                });
            }
            for p in probes {
                let by_edges = fence.by_edges(p);
                assert_eq!(fence.contains(p), by_edges, "shape {shape}, {p:?}");
                if let Some(inside) = fence.grid.inside(&fence, p) {
                    assert_eq!(inside, by_edges, "shape {shape}, {p:?}: the cell");
                    answered += usize::from(shape % 4 == 0);
                }
                asked += usize::from(shape % 4 == 0);
            }
        }
        assert!(
            answered * 2 > asked,
            "the cells answered {answered} of {asked} points in stars' boxes"
        );
    }
}
