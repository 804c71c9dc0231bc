//! The self-contained HTML report: inline SVG charts (throughput, latency percentiles over
//! time, errors over time) and per-class and per-group tables. No script, no external asset:
//! it opens from a file, offline, in any browser.

use crate::report::Report;
use crate::stats::Summary;
use std::fmt::Write;

/// Text and attribute values in double quotes, escaped as the shield's pages are
/// (html-escape).
fn esc(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// A round step for about `n` ticks over `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
    bars: bool,
    dashed: bool,
}

/// A chart; series are drawn in order (the last on top). `integer`: counts, whole ticks.
fn chart(title: &str, unit: &str, integer: bool, series: &[Series<'_>]) -> String {
    let (w, h, left, right, top, bottom) = (860.0, 260.0, 64.0, 16.0, 36.0, 40.0);
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let mut y_step = nice_step(if y_top > 0.0 { y_top } else { 1.0 }, 5.0);
    if integer {
        y_step = y_step.max(1.0).round();
    }
    let y_max = (y_top / y_step).ceil().max(1.0) * y_step;
    let px = |x: f64| left + x / x_max * (w - left - right);
    let py = |y: f64| top + (1.0 - y / y_max) * (h - top - bottom);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{t}"><text x="{left}" y="20" class="title">{t}</text>"#,
        t = esc(title)
    );
    let mut y = 0.0;
    while y <= y_max + 1e-9 {
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{}" y1="{py}" y2="{py}" class="grid"/><text x="{}" y="{}" class="tick" text-anchor="end">{}</text>"#,
            w - right,
            left - 6.0,
            py(y) + 4.0,
            fmt_num(y),
            py = py(y)
        );
        y += y_step;
    }
    let x_step = nice_step(x_max, 8.0).max(1.0);
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="tick" text-anchor="middle">{}s</text>"#,
            px(x),
            h - bottom + 16.0,
            fmt_num(x)
        );
        x += x_step;
    }
    let _ = write!(
        s,
        r#"<text x="12" y="{}" class="tick" transform="rotate(-90 12 {})">{}</text>"#,
        h / 2.0,
        h / 2.0,
        esc(unit)
    );
    for se in series {
        if se.bars {
            let bw = ((w - left - right) / (x_max + 1.0)).max(1.0) * 0.8;
            for (x, y) in &se.points {
                if *y > 0.0 {
                    let _ = write!(
                        s,
                        r#"<rect x="{}" y="{}" width="{bw}" height="{}" fill="{}"/>"#,
                        px(*x) - bw / 2.0,
                        py(*y),
                        py(0.0) - py(*y),
                        se.color
                    );
                }
            }
        } else {
            let pts: Vec<String> = se
                .points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            let dash = if se.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                pts.join(" "),
                se.color
            );
        }
    }
    // Legend at the top right, clear of the title.
    let legend_width: f64 = series
        .iter()
        .map(|se| 24.0 + 7.5 * se.name.len() as f64)
        .sum();
    let mut lx = w - right - legend_width;
    for se in series {
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="11" width="12" height="12" fill="{}"/><text x="{}" y="21" class="tick">{}</text>"#,
            se.color,
            lx + 16.0,
            esc(se.name)
        );
        lx += 24.0 + 7.5 * se.name.len() as f64;
    }
    s.push_str("</svg></figure>");
    s
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn table(title: &str, rows: &[(String, &Summary)]) -> String {
    let mut s = format!(
        "<h2>{}</h2><table><tr><th></th><th>requests</th><th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>statuses</th></tr>",
        esc(title)
    );
    for (name, r) in rows {
        let statuses: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{:.2}%</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
            esc(name),
            r.requests,
            if r.errors > 0 { "bad" } else { "" },
            r.error_rate * 100.0,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            esc(&statuses.join(" "))
        );
    }
    s.push_str("</table>");
    s
}

pub fn render(r: &Report) -> String {
    let t = &r.total;
    let pts = |f: fn(&crate::stats::Second) -> f64| {
        r.series
            .iter()
            .map(|s| (s.t as f64, f(s)))
            .collect::<Vec<_>>()
    };
    let line = |name, color, points, dashed| Series {
        name,
        color,
        points,
        bars: false,
        dashed,
    };
    let throughput = chart(
        "Throughput (requests per second)",
        "req/s",
        true,
        &[
            line("completed", "#2271b1", pts(|s| s.completed as f64), false),
            line("scheduled", "#8c8f94", pts(|s| s.scheduled as f64), true),
        ],
    );
    let latency = chart(
        "Latency from the intended send time",
        "ms",
        false,
        &[
            line("max", "#d63638", pts(|s| s.max_ms), true),
            line("p99", "#dba617", pts(|s| s.p99_ms), false),
            line("p50", "#00a32a", pts(|s| s.p50_ms), false),
        ],
    );
    let errors = chart(
        "Errors per second",
        "errors",
        true,
        &[Series {
            name: "errors",
            color: "#d63638",
            points: pts(|s| s.errors as f64),
            bars: true,
            dashed: false,
        }],
    );
    let classes: Vec<(String, &Summary)> = r.classes.iter().map(|(k, v)| (k.clone(), v)).collect();
    let mut groups: Vec<(String, &Summary)> =
        r.groups.iter().map(|(k, v)| (k.clone(), v)).collect();
    groups.push(("(all)".into(), &r.total));
    let card = |label: &str, value: String| {
        format!(
            "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
            esc(&value),
            esc(label)
        )
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rehearsal of {target}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#1d2327;padding:0 1rem}}
h1{{font-size:1.5rem;margin-bottom:.2rem}} .sub{{color:#646970;margin-top:0}}
.cards{{display:flex;gap:1rem;flex-wrap:wrap;margin:1.5rem 0}} .card{{background:#f6f7f7;border-radius:8px;padding:.8rem 1.2rem;min-width:8rem}}
.card .v{{font-size:1.4rem;font-weight:600}} .card .l{{color:#646970;font-size:.85rem}}
figure{{margin:1.5rem 0}} svg .title{{font-weight:600;font-size:14px}} svg .tick{{font-size:11px;fill:#646970}} svg .grid{{stroke:#e0e0e0}}
table{{border-collapse:collapse;width:100%;font-size:.9rem}} th,td{{padding:.35rem .6rem;border-bottom:1px solid #e0e0e0;text-align:right}} th:first-child,td:first-child{{text-align:left}}
td.bad{{color:#d63638;font-weight:600}}
</style></head><body>
<h1>Rehearsal of {target}</h1>
<p class="sub">{started} · profile <code>{profile}</code> · {duration:.0} s · concurrency cap {conc}</p>
<div class="cards">{c1}{c2}{c3}{c4}{c5}{c6}</div>
{throughput}{latency}{errors}
{classes}{groups}
<p class="sub">Latency is measured from the time each request was scheduled to start (open model), so a server
that stalls shows the stall instead of hiding it. Generated by peakguard rehearse.</p>
</body></html>
"#,
        target = esc(&r.target),
        started = esc(&r.started_at),
        profile = esc(&r.profile),
        duration = r.duration_s,
        conc = r.concurrency,
        c1 = card("requests", r.sent.to_string()),
        c2 = card("achieved req/s", format!("{:.1}", r.achieved_rps)),
        c3 = card("p50", format!("{:.1} ms", t.p50_ms)),
        c4 = card("p99", format!("{:.1} ms", t.p99_ms)),
        c5 = card(
            "errors",
            format!("{} ({:.2}%)", t.errors, t.error_rate * 100.0)
        ),
        c6 = card("not sent", r.not_sent.to_string()),
        classes = table("Traffic classes", &classes),
        groups = table("URL groups", &groups),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn nice_steps() {
        assert_eq!(super::nice_step(100.0, 5.0), 20.0);
        assert_eq!(super::nice_step(7.0, 5.0), 2.0);
        assert_eq!(super::nice_step(0.9, 5.0), 0.2);
    }
}
