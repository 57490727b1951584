//! Small element-wise kernels of the forward pass: RMSNorm, activations, softmax (RoPE lives in
//! [`crate::rope`]; its functions are re-exported here under their old names).

pub use crate::rope::{apply as rope_apply, cos_sin as rope_cos_sin};

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
    fn softmax_and_lse() {
        let mut x = [0.0f32, 1.0f32.ln(), 2.0f32.ln()];
        let lse = softmax_inplace(&mut x);
        assert!((lse - 4.0f32.ln()).abs() < 1e-6);
        assert!((x[0] - 0.25).abs() < 1e-6 && (x[2] - 0.5).abs() < 1e-6);
    }
}
