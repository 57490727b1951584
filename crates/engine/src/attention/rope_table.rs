//! Memoised RoPE cos/sin rows for integer rotation distances.
//!
//! Re-rotating cached keys (slot-renumbered policies, virtual positions) asks for the same few
//! thousand distances on every layer, every KV head and every decode step; computing 2·n_rot/2
//! transcendentals per key each time dominated decoding for those policies. Rows are computed
//! by [`rope::cos_sin`](crate::rope::cos_sin) exactly as before, so results are bit-identical.

use std::collections::HashMap;

use crate::rope::{self, RopeParams};

/// Most rows kept per RoPE setting before the table starts over (bounds its memory: at
/// n_rot = 128 this is 8 MiB).
const MAX_ROWS: usize = 8192;

/// cos/sin rows per distinct [`RopeParams`] (Gemma 3 alternates two bases between layers).
#[derive(Default)]
pub(crate) struct RopeTable {
    tables: Vec<(ParamsKey, Rows)>,
}

/// The bits of a RoPE setting that change the rows.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ParamsKey {
    base: u32,
    freq_scale: u32,
    n_rot: usize,
}

#[derive(Default)]
struct Rows {
    index: HashMap<i64, usize>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// cos and sin (n_rot/2 values each) for rotating by `delta` positions.
    pub(crate) fn get(&mut self, rope: &RopeParams, delta: i64) -> (&[f32], &[f32]) {
        let key = ParamsKey {
            base: rope.base.to_bits(),
            freq_scale: rope.freq_scale.to_bits(),
            n_rot: rope.n_rot,
        };
        let at = match self.tables.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.tables.push((key, Rows::default()));
                self.tables.len() - 1
            }
        };
        let rows = &mut self.tables[at].1;
        let half = rope.n_rot / 2;
        let row = match rows.index.get(&delta) {
            Some(&r) => r,
            None => {
                if rows.index.len() >= MAX_ROWS {
                    rows.index.clear();
                    rows.cos.clear();
                    rows.sin.clear();
                }
                let r = rows.index.len();
                rows.cos.resize((r + 1) * half, 0.0);
                rows.sin.resize((r + 1) * half, 0.0);
                rope::cos_sin(
                    rope,
                    delta as f64,
                    &mut rows.cos[r * half..],
                    &mut rows.sin[r * half..],
                );
                rows.index.insert(delta, r);
                r
            }
        };
        (
            &rows.cos[row * half..(row + 1) * half],
            &rows.sin[row * half..(row + 1) * half],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_equal_direct_computation_across_settings_and_restarts() {
        let a = RopeParams {
            base: 10000.0,
            freq_scale: 1.0,
            n_rot: 8,
            neox: false,
        };
        let b = RopeParams { base: 1e6, ..a };
        let mut table = RopeTable::default();
        let direct = |rope: &RopeParams, delta: i64| {
            let (mut c, mut s) = (vec![0.0; 4], vec![0.0; 4]);
            rope::cos_sin(rope, delta as f64, &mut c, &mut s);
            (c, s)
        };
        // More distinct distances than the table keeps, in two settings, twice over.
        for round in 0..2 {
            for delta in -5..MAX_ROWS as i64 + 50 {
                for rope in [&a, &b] {
                    let (c, s) = table.get(rope, delta * (round + 1));
                    let (dc, ds) = direct(rope, delta * (round + 1));
                    assert_eq!((c, s), (&dc[..], &ds[..]), "delta {delta}");
                }
            }
        }
        assert_eq!(table.tables.len(), 2);
        assert!(table.tables.iter().all(|(_, r)| r.index.len() <= MAX_ROWS));
    }
}
