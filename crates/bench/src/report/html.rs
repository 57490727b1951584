//! The HTML rendering of a [`Report`]: one self-contained page (inline CSS, SVG heatmaps).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{depth_label, effective_text, length_label, short_sha, Heatmap, Report};

impl Report {
    /// The self-contained HTML report.
    pub fn html(&self) -> String {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>longctx benchmark report</title>\n<style>");
        h.push_str(CSS);
        h.push_str("</style></head><body>\n<header><h1>longctx benchmark report</h1>");
        let _ = write!(
            h,
            "<p class=\"sub\">{} run(s). Scores are mean × 100, rounded to 2 decimals as upstream; error rows count as 0. Effective length = longest length whose average over the family's tasks stays ≥ <b>{}</b> at every length up to it (RULER uses 85.6, Llama-2-7B's score at 4K).</p></header>",
            self.runs.len(),
            self.threshold
        );
        h.push('\n');
        if self.runs.is_empty() {
            h.push_str("<p>No runs in the database.</p>");
        }
        if self.runs.len() > 1 {
            h.push_str("<section><h2>Comparison across runs</h2>");
            if let Some(m) = self.shared_model() {
                let _ = write!(h, "<p>model: {}</p>", esc(m));
            }
            let (header, rows) = self.comparison_rows();
            html_table(&mut h, &header, &rows, true);
            h.push_str("</section>\n");
        }
        for r in &self.runs {
            let run = &r.run;
            let _ = write!(h, "<section class=\"run\"><h2>{}</h2>", esc(&run.label()));
            h.push_str("<dl class=\"meta\">");
            for (k, v) in [
                ("model", run.model.clone()),
                ("model sha256", short_sha(&run.model_sha)),
                ("backend", run.backend.clone()),
                ("policy", run.policy.clone()),
                (
                    "policy options",
                    if run.policy_options.is_empty() {
                        "—".into()
                    } else {
                        run.policy_options.clone()
                    },
                ),
                ("chat template", run.chat_template.clone()),
                ("truncation", run.truncation.clone()),
                ("sampling", run.sampling.clone()),
                ("seed", run.seed.to_string()),
                ("git commit", run.git_commit.clone()),
                ("longctx", run.version.clone()),
                ("started", run.started_at.clone()),
                (
                    "finished",
                    run.finished_at.clone().unwrap_or_else(|| "—".into()),
                ),
                ("status", run.status.clone()),
            ] {
                let _ = write!(h, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(&v));
            }
            h.push_str("</dl>");
            h.push_str("<h3>Tasks</h3>");
            let rows: Vec<Vec<String>> = r
                .tasks
                .iter()
                .map(|t| {
                    vec![
                        t.task.clone(),
                        t.metric.clone(),
                        t.n.to_string(),
                        format!("{:.2}", t.score),
                        t.errors.to_string(),
                        t.truncated.to_string(),
                    ]
                })
                .chain(std::iter::once(vec![
                    "average".into(),
                    String::new(),
                    String::new(),
                    format!("{:.2}", r.average),
                    String::new(),
                    String::new(),
                ]))
                .collect();
            let header: Vec<String> = ["task", "metric", "n", "score", "errors", "truncated"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            html_table(&mut h, &header, &rows, false);
            if !r.families.is_empty() {
                h.push_str("<h3>Per length (RULER-style averages)</h3>");
                let lens: BTreeSet<u64> = r.lengths.iter().map(|l| l.length).collect();
                let mut header = vec!["task".to_string()];
                header.extend(lens.iter().map(|l| length_label(*l)));
                let tasks: BTreeSet<&str> = r.lengths.iter().map(|l| l.task.as_str()).collect();
                let mut rows: Vec<Vec<String>> = tasks
                    .iter()
                    .map(|t| {
                        let mut row = vec![t.to_string()];
                        row.extend(lens.iter().map(|l| {
                            r.lengths
                                .iter()
                                .find(|x| x.task == *t && x.length == *l)
                                .map_or("-".into(), |c| format!("{:.2}", c.score))
                        }));
                        row
                    })
                    .collect();
                for f in &r.families {
                    let mut row = vec![format!("{} average", f.family)];
                    row.extend(lens.iter().map(|l| {
                        f.lengths
                            .iter()
                            .find(|(x, _, _)| x == l)
                            .map_or("-".into(), |(_, a, _)| format!("{a:.2}"))
                    }));
                    rows.push(row);
                }
                html_table(&mut h, &header, &rows, true);
                h.push_str("<ul class=\"eff\">");
                for f in &r.families {
                    let _ = write!(h, "<li>{}</li>", esc(&effective_text(f, self.threshold)));
                }
                h.push_str("</ul>");
            }
            if !r.heatmaps.is_empty() {
                h.push_str("<h3>Needle heatmaps (depth × length)</h3><div class=\"maps\">");
                for m in &r.heatmaps {
                    heatmap_svg(&mut h, m, &run.policy);
                }
                h.push_str("</div>");
            }
            h.push_str("</section>\n");
        }
        h.push_str("<footer>Generated by <code>longctx bench report</code>. Self-contained: no external assets.</footer></body></html>\n");
        h
    }
}

const CSS: &str = "
:root{--fg:#1d2433;--muted:#5b6475;--line:#e3e7ee;--bg:#f7f8fb;--card:#fff;--accent:#2f6fde}
*{box-sizing:border-box}body{margin:0;padding:24px 32px;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header h1{margin:0 0 4px;font-size:24px}.sub{color:var(--muted);max-width:980px;margin:0 0 18px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:0 0 20px;box-shadow:0 1px 2px rgba(20,30,60,.05)}
h2{font-size:18px;margin:0 0 10px}h3{font-size:15px;margin:18px 0 8px;color:#33405a}
dl.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:6px 16px;margin:0}
dl.meta div{border-left:3px solid var(--line);padding-left:8px}dt{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:4px 0 8px;font-variant-numeric:tabular-nums}
th,td{padding:5px 12px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#eef2f8;font-weight:600;color:#33405a}th:first-child,td:first-child{text-align:left}
tr:last-child td{border-bottom:none}tbody tr:hover{background:#f3f6fc}
td.score{font-weight:600}ul.eff{margin:6px 0;padding-left:20px}
.maps{display:flex;flex-wrap:wrap;gap:18px}.map{border:1px solid var(--line);border-radius:8px;padding:8px;background:#fff}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
footer{color:var(--muted);font-size:12px;margin-top:12px}
";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Cells that parse as numbers in 0..=100 are tinted by score when `tint`.
fn html_table(h: &mut String, header: &[String], rows: &[Vec<String>], tint: bool) {
    h.push_str("<table><thead><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for r in rows {
        h.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            match c.parse::<f64>() {
                Ok(v) if tint && i > 0 && (0.0..=100.0).contains(&v) => {
                    let _ = write!(
                        h,
                        "<td class=\"score\" style=\"background:{}33\">{}</td>",
                        colour(v),
                        esc(c)
                    );
                }
                _ => {
                    let _ = write!(h, "<td>{}</td>", esc(c));
                }
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
}

/// Red (0) → yellow (50) → green (100), as `#rrggbb`.
pub fn colour(score: f64) -> String {
    let t = (score / 100.0).clamp(0.0, 1.0);
    let stops = [
        (215.0, 48.0, 39.0),
        (254.0, 224.0, 139.0),
        (26.0, 152.0, 80.0),
    ];
    let (a, b, u) = if t < 0.5 {
        (stops[0], stops[1], t * 2.0)
    } else {
        (stops[1], stops[2], (t - 0.5) * 2.0)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// One heatmap as inline SVG: rows = depths, columns = lengths, the score in each cell, and a
/// colour legend.
fn heatmap_svg(h: &mut String, m: &Heatmap, policy: &str) {
    let (cw, ch, left, top) = (64.0, 28.0, 70.0, 44.0);
    let width = left + cw * m.lengths.len() as f64 + 90.0;
    let height = top + ch * m.depths.len() as f64 + 26.0;
    let _ = write!(
        h,
        "<div class=\"map\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"heatmap {}\" data-task=\"{}\">",
        esc(&m.task),
        esc(&m.task)
    );
    let _ = write!(
        h,
        "<text x=\"{left}\" y=\"16\" font-size=\"13\" font-weight=\"600\" fill=\"#1d2433\">{} · {}</text>",
        esc(&m.task),
        esc(policy)
    );
    for (j, l) in m.lengths.iter().enumerate() {
        let x = left + cw * j as f64 + cw / 2.0;
        let _ = write!(
            h,
            "<text x=\"{x}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6475\">{}</text>",
            top - 6.0,
            length_label(*l)
        );
    }
    let _ = write!(
        h,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6475\">context length (tokens)</text>",
        left + cw * m.lengths.len() as f64 / 2.0,
        top + ch * m.depths.len() as f64 + 18.0
    );
    for (i, d) in m.depths.iter().enumerate() {
        let y = top + ch * i as f64;
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6475\">{}</text>",
            left - 8.0,
            y + ch / 2.0 + 4.0,
            depth_label(*d)
        );
        for (j, l) in m.lengths.iter().enumerate() {
            let x = left + cw * j as f64;
            match m.cells.get(&(*d, *l)) {
                Some((score, n)) => {
                    let fg = if (20.0..=80.0).contains(score) {
                        "#1d2433"
                    } else {
                        "#ffffff"
                    };
                    let _ = write!(
                        h,
                        "<g class=\"cell\" data-depth=\"{}\" data-length=\"{l}\" data-score=\"{score:.2}\"><rect x=\"{x}\" y=\"{y}\" width=\"{cw}\" height=\"{ch}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1.5\" rx=\"3\"><title>depth {}, length {}: {score:.2} (n={n})</title></rect><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{fg}\">{score:.1}</text></g>",
                        depth_label(*d),
                        colour(*score),
                        depth_label(*d),
                        length_label(*l),
                        x + cw / 2.0,
                        y + ch / 2.0 + 4.0
                    );
                }
                None => {
                    let _ = write!(
                        h,
                        "<rect x=\"{x}\" y=\"{y}\" width=\"{cw}\" height=\"{ch}\" fill=\"#eef0f4\" stroke=\"#fff\" stroke-width=\"1.5\" rx=\"3\"/>"
                    );
                }
            }
        }
    }
    // Legend: a vertical gradient 0..100.
    let lx = left + cw * m.lengths.len() as f64 + 24.0;
    let lh = (ch * m.depths.len() as f64).max(60.0);
    let id = format!(
        "g{}",
        m.task
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    );
    let _ = write!(
        h,
        "<defs><linearGradient id=\"{id}\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\"><stop offset=\"0\" stop-color=\"{}\"/><stop offset=\"0.5\" stop-color=\"{}\"/><stop offset=\"1\" stop-color=\"{}\"/></linearGradient></defs><rect class=\"legend\" x=\"{lx}\" y=\"{top}\" width=\"12\" height=\"{lh}\" fill=\"url(#{id})\" rx=\"2\"/>",
        colour(0.0),
        colour(50.0),
        colour(100.0)
    );
    for (v, frac) in [(100, 0.0), (50, 0.5), (0, 1.0)] {
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#5b6475\">{v}</text>",
            lx + 16.0,
            top + lh * frac + 4.0
        );
    }
    h.push_str("</svg></div>");
}
