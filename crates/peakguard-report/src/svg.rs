//! Small inline SVG charts of our own: bars over time, their labels escaped.

use html_escape::encode_text;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

fn clock(unix: i64, long: bool) -> String {
    let t = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64),
    )
    .to_string();
    // 2026-12-07T10:00:00Z → "12-07 10:00" or "10:00".
    if long {
        format!("{} {}", &t[5..10], &t[11..16])
    } else {
        t[11..16].to_owned()
    }
}

fn number(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One bar per period (`(start, value)`, in order), the largest value and the first and
/// last times as labels, each bar titled with its time and value.
pub fn bars(label: &str, unit: &str, points: &[(i64, f64)]) -> String {
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        html_escape::encode_double_quoted_attribute(label)
    );
    let plot_w = WIDTH - LEFT - 4.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" class=\"axis\"/>",
        y = TOP + plot_h,
        x2 = WIDTH - 4.0
    ));
    out.push_str(&format!(
        "<text x=\"{x}\" y=\"{y}\" class=\"tick\" text-anchor=\"end\">{}</text>",
        encode_text(&format!("{} {unit}", number(max))),
        x = LEFT - 4.0,
        y = TOP + 10.0
    ));
    out.push_str(&format!(
        "<text x=\"{x}\" y=\"{y}\" class=\"tick\" text-anchor=\"end\">0</text>",
        x = LEFT - 4.0,
        y = TOP + plot_h
    ));
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let long = last.0 - first.0 >= 86_400;
        out.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"{y}\" class=\"tick\">{}</text><text x=\"{x}\" y=\"{y}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            clock(first.0, long),
            clock(last.0, long),
            y = HEIGHT - 6.0,
            x = WIDTH - 4.0
        ));
        let step = plot_w / points.len() as f64;
        for (i, (start, v)) in points.iter().enumerate() {
            let h = if max > 0.0 { v / max * plot_h } else { 0.0 };
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" class=\"bar\"><title>{}</title></rect>",
                encode_text(&format!("{}: {} {unit}", clock(*start, true), number(*v))),
                x = LEFT + i as f64 * step,
                y = TOP + plot_h - h,
                w = (step * 0.85).max(0.5),
            ));
        }
    } else {
        out.push_str(&format!(
            "<text x=\"{x}\" y=\"{y}\" class=\"tick\" text-anchor=\"middle\">no requests in this range</text>",
            x = WIDTH / 2.0,
            y = HEIGHT / 2.0
        ));
    }
    out.push_str("</svg>");
    out
}
