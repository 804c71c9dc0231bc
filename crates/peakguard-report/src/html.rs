//! The report as one HTML page: no script, no external request (styles and charts inline),
//! readable offline and printable. Everything shown from outside (paths, referrers, sources,
//! journal lines) is escaped.

use crate::{Line, Report, svg};
use html_escape::encode_text;
use std::fmt::Write;

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:64rem;padding:0 1rem;color:#1d2327}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}\
.sub{color:#555}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.6rem;margin:1rem 0}\
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem .7rem}.card b{display:block;font-size:1.3rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border-bottom:1px solid #eee;padding:.25rem .4rem;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.chart{width:100%;height:auto}.bar{fill:#2271b1}\
.axis{stroke:#999}.tick{font-size:11px;fill:#555}.verdict{font-size:1.1rem;padding:.6rem .8rem;background:#f0f6fc;border-left:4px solid #2271b1}\
@media print{body{margin:0}.card{break-inside:avoid}h2{break-after:avoid}}";

fn card(out: &mut String, label: &str, value: &str) {
    let _ = write!(
        out,
        "<div class=\"card\">{}<b>{}</b></div>",
        encode_text(label),
        encode_text(value)
    );
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

fn ms(v: Option<u32>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("< {v} ms"))
}

fn money(cents: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

fn table(out: &mut String, title: &str, head: (&str, &str), rows: &[(String, String)]) {
    let _ = write!(out, "<h2>{}</h2>", encode_text(title));
    if rows.is_empty() {
        out.push_str("<p class=\"sub\">None in this range.</p>");
        return;
    }
    let _ = write!(
        out,
        "<table><tr><th>{}</th><th class=\"n\">{}</th></tr>",
        encode_text(head.0),
        encode_text(head.1)
    );
    for (k, v) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            encode_text(k),
            encode_text(v)
        );
    }
    out.push_str("</table>");
}

fn counted(rows: &[(String, u64)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(k, n)| (k.clone(), n.to_string()))
        .collect()
}

fn lines(out: &mut String, title: &str, lines: &[Line]) {
    let _ = write!(out, "<h2>{}</h2>", encode_text(title));
    if lines.is_empty() {
        out.push_str("<p class=\"sub\">None in this range.</p>");
        return;
    }
    out.push_str("<table><tr><th>when</th><th>who</th><th>what</th><th>site</th><th>detail</th><th>result</th></tr>");
    for l in lines {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            encode_text(&l.at),
            encode_text(&l.who),
            encode_text(&l.what),
            encode_text(l.site.as_deref().unwrap_or("")),
            encode_text(&l.detail),
            encode_text(&l.result)
        );
    }
    out.push_str("</table>");
}

/// The plain verdict on the site's speed, as the campaign view says it.
pub fn verdict(r: &Report) -> String {
    match r.total.under_200ms {
        None => "No requests in this range.".into(),
        Some(share) if share >= 0.95 => format!(
            "Fast: {:.0} % of requests answered under 200 ms.",
            share * 100.0
        ),
        Some(share) if share >= 0.8 => format!(
            "Mostly fast: {:.0} % of requests answered under 200 ms.",
            share * 100.0
        ),
        Some(share) => format!(
            "Slow: only {:.0} % of requests answered under 200 ms.",
            share * 100.0
        ),
    }
}

pub fn html(r: &Report) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>",
        encode_text(&r.title)
    );
    let _ = write!(
        out,
        "<h1>{}</h1><p class=\"sub\">{} · {} to {} · by {}</p>",
        encode_text(&r.title),
        encode_text(r.site.as_deref().unwrap_or("every site")),
        encode_text(&r.from),
        encode_text(&r.to),
        r.resolution
    );
    let _ = write!(out, "<p class=\"verdict\">{}</p>", encode_text(&verdict(r)));
    let t = &r.total;
    out.push_str("<div class=\"cards\">");
    card(&mut out, "requests", &t.requests.to_string());
    card(&mut out, "visitors (daily)", &t.visitors.to_string());
    card(&mut out, "conversions", &t.conversions.to_string());
    let mut revenue: std::collections::BTreeMap<&str, u64> = Default::default();
    for (key, cents) in &t.revenue_cents {
        *revenue
            .entry(key.rsplit(" · ").next().unwrap_or(""))
            .or_default() += cents;
    }
    for (currency, cents) in &revenue {
        card(&mut out, "revenue", &money(*cents, currency));
    }
    card(
        &mut out,
        "peak",
        &format!("{:.1} req/s", r.peak_requests_per_second),
    );
    card(&mut out, "cache hit ratio", &pct(t.hit_ratio));
    card(
        &mut out,
        "p50 / p99",
        &format!("{} / {}", ms(t.client_p50_ms), ms(t.client_p99_ms)),
    );
    card(
        &mut out,
        "errors seen (5xx)",
        &format!("{} ({})", r.server_errors, pct(r.server_error_rate)),
    );
    card(
        &mut out,
        "waiting-room pages",
        &r.waiting_room_pages.to_string(),
    );
    out.push_str("</div>");

    if let Some(c) = &r.campaign {
        let _ = write!(
            out,
            "<h2>Campaign: {}</h2><div class=\"cards\">",
            encode_text(&c.name)
        );
        card(&mut out, "visits", &c.visits.to_string());
        card(&mut out, "conversions", &c.conversions.to_string());
        card(&mut out, "conversion rate", &pct(c.conversion_rate));
        for (currency, cents) in &c.revenue_cents {
            card(&mut out, "revenue", &money(*cents, currency));
        }
        if let Some(cost) = c.cost_cents {
            card(&mut out, "cost", &money(cost, &c.currency));
        }
        card(
            &mut out,
            "cost per acquisition",
            &c.cost_per_acquisition_cents
                .map_or_else(|| "–".into(), |v| money(v, &c.currency)),
        );
        out.push_str("</div>");
    }

    let unit = if r.resolution == "minute" {
        "a minute"
    } else {
        "an hour"
    };
    let series = |f: &dyn Fn(&crate::Point) -> f64| -> Vec<(i64, f64)> {
        r.series.iter().map(|p| (p.start, f(p))).collect()
    };
    let _ = write!(out, "<h2>Requests, {unit}</h2>");
    out.push_str(&svg::bars(
        "requests",
        "req",
        &series(&|p| p.requests as f64),
    ));
    let _ = write!(out, "<h2>New visitors, {unit}</h2>");
    out.push_str(&svg::bars(
        "visitors",
        "visitors",
        &series(&|p| p.visitors as f64),
    ));
    let _ = write!(out, "<h2>Slowest 1 % of requests (p99), {unit}</h2>");
    out.push_str(&svg::bars(
        "p99 latency",
        "ms",
        &series(&|p| f64::from(p.client_p99_ms.unwrap_or(0))),
    ));
    let _ = write!(out, "<h2>Errors visitors saw (5xx), {unit}</h2>");
    out.push_str(&svg::bars(
        "5xx",
        "errors",
        &series(&|p| p.server_errors as f64),
    ));

    table(
        &mut out,
        "Traffic by source",
        ("source / medium / campaign", "visits"),
        &counted(&t.sources),
    );
    table(
        &mut out,
        "Conversions by source",
        ("source / medium / campaign", "conversions"),
        &counted(&t.conversions_by_source),
    );
    let revenue_rows: Vec<(String, String)> = t
        .revenue_cents
        .iter()
        .map(|(k, cents)| {
            let (source, currency) = k.rsplit_once(" · ").unwrap_or((k.as_str(), ""));
            (source.to_owned(), money(*cents, currency))
        })
        .collect();
    table(
        &mut out,
        "Revenue by source",
        ("source / medium / campaign", "revenue"),
        &revenue_rows,
    );
    table(
        &mut out,
        "Top pages",
        ("page", "views"),
        &counted(&t.top_pages),
    );
    table(
        &mut out,
        "Referring sites",
        ("site", "requests"),
        &counted(&t.referrers),
    );
    table(
        &mut out,
        "Refused by the shield",
        ("guard", "requests"),
        &counted(&t.refusals),
    );
    lines(&mut out, "Alerts", &r.alerts);
    lines(
        &mut out,
        "Every intervention (the journal)",
        &r.interventions,
    );
    out.push_str("<p class=\"sub\">Made by peakguard report. Counting rules: see the README (Statistics).</p></body></html>");
    out
}
