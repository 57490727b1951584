//! Rotary position embedding: per-layer parameters and the rotation itself. A ground-floor
//! module (it uses nothing else of the crate) so the model, attention and the policies can all
//! share it without importing one another.

/// Rotary position embedding parameters of one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeParams {
    /// θ base (`rope.freq_base`).
    pub base: f32,
    /// Linear position scale (1 / `rope.scaling.factor` for linear scaling).
    pub freq_scale: f32,
    /// Number of rotated dimensions of each head (≤ head_dim).
    pub n_rot: usize,
    /// Half-split pairing (i, i + n_rot/2) instead of adjacent pairs (2i, 2i+1).
    pub neox: bool,
}

/// Per-pair rotation angles' cos/sin for one position.
///
/// Angles are computed in f64 so very large positions keep precision in the fast pairs.
pub fn cos_sin(rope: &RopeParams, pos: f64, cos: &mut [f32], sin: &mut [f32]) {
    let half = rope.n_rot / 2;
    let theta_scale = (rope.base as f64).powf(-2.0 / rope.n_rot as f64);
    let mut theta = pos * rope.freq_scale as f64;
    for i in 0..half {
        cos[i] = theta.cos() as f32;
        sin[i] = theta.sin() as f32;
        theta *= theta_scale;
    }
}

/// Rotates one head vector in place with precomputed cos/sin (from [`cos_sin`]).
pub fn apply(rope: &RopeParams, head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = rope.n_rot / 2;
    if rope.neox {
        for i in 0..half {
            let (a, b) = (head[i], head[i + half]);
            head[i] = a * cos[i] - b * sin[i];
            head[i + half] = a * sin[i] + b * cos[i];
        }
    } else {
        for i in 0..half {
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * cos[i] - b * sin[i];
            head[2 * i + 1] = a * sin[i] + b * cos[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_pairs_and_preserves_norm() {
        let rope = RopeParams {
            base: 10000.0,
            freq_scale: 1.0,
            n_rot: 4,
            neox: false,
        };
        let mut cos = [0.0; 2];
        let mut sin = [0.0; 2];
        cos_sin(&rope, 1.0, &mut cos, &mut sin);
        let mut h = [1.0f32, 0.0, 0.0, 1.0];
        apply(&rope, &mut h, &cos, &sin);
        // Pair 0 rotates by 1 rad, pair 1 by 10000^(-1/2) = 0.01 rad.
        assert!((h[0] - 1f32.cos()).abs() < 1e-6 && (h[1] - 1f32.sin()).abs() < 1e-6);
        assert!((h[2] + 0.01f32.sin()).abs() < 1e-6 && (h[3] - 0.01f32.cos()).abs() < 1e-6);

        let neox = RopeParams { neox: true, ..rope };
        let mut h = [1.0f32, 0.0, 0.0, 1.0];
        apply(&neox, &mut h, &cos, &sin);
        // NEOX pairs (0,2) and (1,3).
        assert!((h[0] - 1f32.cos()).abs() < 1e-6 && (h[2] - 1f32.sin()).abs() < 1e-6);
        assert!((h[1] + 0.01f32.sin()).abs() < 1e-6 && (h[3] - 0.01f32.cos()).abs() < 1e-6);
    }
}
