//! Kernel micro-benchmarks (plain `harness = false`, no criterion): mat-vec and prefill
//! mat-mul at SmolLM2-135M shapes, and the decode attention kernels. Run: `cargo bench -p longctx-engine --bench kernels`.
//! Optional args: `--quick` (shorter runs), `--matvec` (only the mat-vec table and the decode
//! estimate), `--in-pool` (call the kernels from a rayon worker thread).

use longctx_engine::attention::{key_scores, weighted_sum};
use longctx_engine::quant::{
    kernel_name, matmul, matvec, quantize_matrix, GgmlType, MatScratch, QMatrix,
};
use std::time::Instant;

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
        })
        .collect()
}

/// Best (minimum) seconds per call over `reps` timed batches: the machine this was written on
/// is shared, and the minimum is the least noisy estimate of what the kernel can do.
fn time_it(mut f: impl FnMut(), min_secs: f64, reps: usize) -> f64 {
    f();
    let t = Instant::now();
    let mut calls = 0usize;
    while t.elapsed().as_secs_f64() < min_secs / 4.0 || calls < 2 {
        f();
        calls += 1;
    }
    let per = t.elapsed().as_secs_f64() / calls as f64;
    let batch = ((min_secs / reps as f64) / per).ceil().max(1.0) as usize;
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_secs_f64() / batch as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[0]
}

fn main() {
    if std::env::args().any(|a| a == "--in-pool") {
        // Run the whole benchmark on a rayon worker, the way an engine that wraps its forward
        // pass in `ThreadPool::install` calls the kernels (the caller joins the work).
        let pool = rayon::ThreadPoolBuilder::new()
            .build()
            .expect("thread pool");
        println!("(running inside ThreadPool::install)");
        return pool.install(run);
    }
    run()
}

fn run() {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs = if quick { 0.2 } else { 1.0 };
    let matvec_only = std::env::args().any(|a| a == "--matvec");
    println!(
        "kernel set: {}   rayon threads: {}",
        kernel_name(),
        rayon::current_num_threads()
    );

    // SmolLM2-135M shapes for the 32-block types; 576 is not a multiple of 256, so the
    // k-quants use Qwen2-like 1024-wide shapes.
    let mv_shapes = [(576usize, 576usize), (1536, 576), (576, 1536), (49152, 576)];
    let k_shapes = [
        (1024usize, 1024usize),
        (4096, 1024),
        (1024, 4096),
        (32768, 1024),
    ];
    let types = [
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q5_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ];
    // Decode attention, one query head over n cached keys and values (d = 64, SmolLM2's head).
    println!("\ndecode attention, one head, d = 64      us/call   K+V read GB/s");
    for n in [2048usize, 8192, 32768] {
        let d = 64;
        let q = rand_vec(d, 11);
        let keys = rand_vec(n * d, 12);
        let values = rand_vec(n * d, 13);
        let (mut scores, mut o) = (vec![0f32; n], vec![0f32; d]);
        let t = time_it(
            || {
                key_scores(&q, &keys, d, 0.125, &mut scores);
                weighted_sum(&scores, &values, d, &mut o);
            },
            secs,
            5,
        );
        println!(
            "scores + weighted sum, {n:>6} keys     {:>9.1} {:>15.1}",
            t * 1e6,
            (2 * n * d * 4) as f64 / t * 1e-9
        );
    }

    println!("\nmatvec (rows x cols)          type   us/call   GFLOP/s   weight GB/s");
    let mut scratch = MatScratch::new();
    for ty in types {
        let shapes = if ty.block_size() == 256 {
            &k_shapes
        } else {
            &mv_shapes
        };
        for &(rows, cols) in shapes {
            let data =
                quantize_matrix(ty, &rand_vec(rows * cols, 1), rows, cols).expect("quantizes");
            let w = QMatrix::new(ty, rows, cols, &data).expect("a consistent matrix");
            let x = rand_vec(cols, 2);
            let mut out = vec![0f32; rows];
            let t = time_it(
                || matvec(&w, &x, &mut out, &mut scratch).expect("matvec"),
                secs,
                7,
            );
            println!(
                "matvec {:>6} x {:<6}        {:<5} {:>9.2} {:>9.2} {:>13.2}",
                rows,
                cols,
                ty.name(),
                t * 1e6,
                2.0 * (rows * cols) as f64 / t * 1e-9,
                data.len() as f64 / t * 1e-9
            );
        }
    }

    // SmolLM2-135M per-layer projections: q, k, v, o, gate, up, down.
    let layer = [
        (576usize, 576usize),
        (192, 576),
        (192, 576),
        (576, 576),
        (1536, 576),
        (1536, 576),
        (576, 1536),
    ];
    // Decode estimate: every SmolLM2-135M projection once (Q4_1) + the tied Q8_0 lm_head.
    {
        let layer = [
            (576usize, 576usize),
            (192, 576),
            (192, 576),
            (576, 576),
            (1536, 576),
            (1536, 576),
            (576, 1536),
        ];
        let mut total = 0.0;
        for &(rows, cols) in &layer {
            let data = quantize_matrix(GgmlType::Q4_1, &rand_vec(rows * cols, 9), rows, cols)
                .expect("quantizes");
            let w = QMatrix::new(GgmlType::Q4_1, rows, cols, &data).expect("a consistent matrix");
            let x = rand_vec(cols, 10);
            let mut out = vec![0f32; rows];
            total += 30.0
                * time_it(
                    || matvec(&w, &x, &mut out, &mut scratch).expect("matvec"),
                    secs / 2.0,
                    5,
                );
        }
        let (rows, cols) = (49152usize, 576usize);
        let data = quantize_matrix(GgmlType::Q8_0, &rand_vec(rows * cols, 11), rows, cols)
            .expect("quantizes");
        let w = QMatrix::new(GgmlType::Q8_0, rows, cols, &data).expect("a consistent matrix");
        let x = rand_vec(cols, 12);
        let mut out = vec![0f32; rows];
        total += time_it(
            || matvec(&w, &x, &mut out, &mut scratch).expect("matvec"),
            secs / 2.0,
            5,
        );
        println!(
            "\ndecode estimate, SmolLM2-135M Q4_1 (210 projections + Q8_0 lm_head): {:.2} ms/token = {:.0} tok/s (mat-vecs only)",
            total * 1e3,
            1.0 / total
        );
    }
    if matvec_only {
        return;
    }
    println!(
        "\nmatmul batch scaling, 1536 x 576 Q4_1 (fixed costs: activation quantization, packing)"
    );
    {
        let (rows, cols) = (1536usize, 576usize);
        let data = quantize_matrix(GgmlType::Q4_1, &rand_vec(rows * cols, 5), rows, cols)
            .expect("quantizes");
        let w = QMatrix::new(GgmlType::Q4_1, rows, cols, &data).expect("a consistent matrix");
        for nt in [1usize, 2, 4, 8, 32, 128, 512] {
            let x = rand_vec(nt * cols, 6);
            let mut out = vec![0f32; nt * rows];
            let t = time_it(
                || matmul(&w, &x, nt, &mut out, &mut scratch).expect("matmul"),
                secs,
                5,
            );
            println!(
                "  n_tokens {:>4}: {:>9.1} us  {:>8.1} us/token  {:>7.1} GFLOP/s",
                nt,
                t * 1e6,
                t * 1e6 / nt as f64,
                2.0 * (nt * rows * cols) as f64 / t * 1e-9
            );
        }
    }

    let nt = 512;
    println!("\nmatmul, {nt} tokens (rows x cols)  type   ms/call   GFLOP/s");
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0] {
        let mut layer_secs = 0.0;
        let mut seen = Vec::new();
        for &(rows, cols) in &layer {
            let data =
                quantize_matrix(ty, &rand_vec(rows * cols, 3), rows, cols).expect("quantizes");
            let w = QMatrix::new(ty, rows, cols, &data).expect("a consistent matrix");
            let x = rand_vec(nt * cols, 4);
            let mut out = vec![0f32; nt * rows];
            let t = time_it(
                || matmul(&w, &x, nt, &mut out, &mut scratch).expect("matmul"),
                secs,
                5,
            );
            layer_secs += t;
            if !seen.contains(&(rows, cols)) {
                seen.push((rows, cols));
                println!(
                    "matmul {:>6} x {:<6}             {:<5} {:>8.2} {:>9.1}",
                    rows,
                    cols,
                    ty.name(),
                    t * 1e3,
                    2.0 * (nt * rows * cols) as f64 / t * 1e-9
                );
            }
        }
        let model = layer_secs * 30.0;
        println!(
            "  -> SmolLM2-135M ({ty}) 30 layers x 7 projections, {nt} tokens: {:.1} ms = {:.0} tok/s (projections only)",
            model * 1e3,
            nt as f64 / model
        );
    }

    // Qwen2.5-0.5B Q4_K_M-style tensors (ffn_gate/up in Q5_0, ffn_down in Q4_K or Q6_K).
    println!("\nmatmul, {nt} tokens, Qwen2.5-0.5B shapes");
    for (ty, rows, cols) in [
        (GgmlType::Q5_0, 4864usize, 896usize),
        (GgmlType::Q4_K, 896, 4864),
        (GgmlType::Q6_K, 896, 4864),
    ] {
        let data = quantize_matrix(ty, &rand_vec(rows * cols, 7), rows, cols).expect("quantizes");
        let w = QMatrix::new(ty, rows, cols, &data).expect("a consistent matrix");
        let x = rand_vec(nt * cols, 8);
        let mut out = vec![0f32; nt * rows];
        let t = time_it(
            || matmul(&w, &x, nt, &mut out, &mut scratch).expect("matmul"),
            secs,
            5,
        );
        println!(
            "matmul {:>6} x {:<6}             {:<5} {:>8.2} {:>9.1}",
            rows,
            cols,
            ty.name(),
            t * 1e3,
            2.0 * (nt * rows * cols) as f64 / t * 1e-9
        );
    }
}
