//! Small element-wise kernels of the forward pass: RMSNorm, RoPE, activations, softmax.

use crate::model::config::RopeParams;

/// `out = x / sqrt(mean(x²) + eps) * w`, the RMSNorm every supported architecture uses.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (mean_sq + eps).sqrt();
    for ((o, xi), wi) in out.iter_mut().zip(x).zip(w) {
        *o = xi * inv * wi;
    }
}

/// RMSNorm in place.
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (mean_sq + eps).sqrt();
    for (xi, wi) in x.iter_mut().zip(w) {
        *xi = *xi * inv * wi;
    }
}

/// Per-pair rotation angles' cos/sin for one position.
///
/// Angles are computed in f64 so very large positions keep precision in the fast pairs.
pub fn rope_cos_sin(rope: &RopeParams, pos: f64, cos: &mut [f32], sin: &mut [f32]) {
    let half = rope.n_rot / 2;
    let theta_scale = (rope.base as f64).powf(-2.0 / rope.n_rot as f64);
    let mut theta = pos * rope.freq_scale as f64;
    for i in 0..half {
        cos[i] = theta.cos() as f32;
        sin[i] = theta.sin() as f32;
        theta *= theta_scale;
    }
}

/// Rotates one head vector in place with precomputed cos/sin (from [`rope_cos_sin`]).
pub fn rope_apply(rope: &RopeParams, head: &mut [f32], cos: &[f32], sin: &[f32]) {
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

/// SwiGLU gate: `gate = silu(gate) * up`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// GELU (tanh approximation, as ggml) gate: `gate = gelu(gate) * up`.
pub fn gelu_mul(gate: &mut [f32], up: &[f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044715;
    for (g, u) in gate.iter_mut().zip(up) {
        let x = *g;
        let y = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh());
        *g = y * u;
    }
}

/// Numerically stable softmax in place; returns log-sum-exp of the input.
pub fn softmax_inplace(x: &mut [f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        x.iter_mut().for_each(|v| *v = 0.0);
        return f32::NEG_INFINITY;
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
    max + sum.ln()
}

/// Log-softmax value of `logits[target]`.
pub fn log_softmax_at(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    logits[target] as f64 - max - sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_hand_computed() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let w = [1.0f32, 1.0, 2.0, 0.5];
        let mut out = [0.0; 4];
        rms_norm(&x, &w, 0.0, &mut out);
        // mean(x²) = 30/4 = 7.5
        let inv = 1.0 / 7.5f32.sqrt();
        assert_eq!(out, [inv, 2.0 * inv, 6.0 * inv, 2.0 * inv]);
    }

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
        rope_cos_sin(&rope, 1.0, &mut cos, &mut sin);
        let mut h = [1.0f32, 0.0, 0.0, 1.0];
        rope_apply(&rope, &mut h, &cos, &sin);
        // Pair 0 rotates by 1 rad, pair 1 by 10000^(-1/2) = 0.01 rad.
        assert!((h[0] - 1f32.cos()).abs() < 1e-6 && (h[1] - 1f32.sin()).abs() < 1e-6);
        assert!((h[2] + 0.01f32.sin()).abs() < 1e-6 && (h[3] - 0.01f32.cos()).abs() < 1e-6);

        let neox = RopeParams { neox: true, ..rope };
        let mut h = [1.0f32, 0.0, 0.0, 1.0];
        rope_apply(&neox, &mut h, &cos, &sin);
        // NEOX pairs (0,2) and (1,3).
        assert!((h[0] - 1f32.cos()).abs() < 1e-6 && (h[2] - 1f32.sin()).abs() < 1e-6);
        assert!((h[1] + 0.01f32.sin()).abs() < 1e-6 && (h[3] - 0.01f32.cos()).abs() < 1e-6);
    }

    #[test]
    fn softmax_and_lse() {
        let mut x = [0.0f32, 1.0f32.ln(), 2.0f32.ln()];
        let lse = softmax_inplace(&mut x);
        assert!((lse - 4.0f32.ln()).abs() < 1e-6);
        assert!((x[0] - 0.25).abs() < 1e-6 && (x[2] - 0.5).abs() < 1e-6);
    }
}
