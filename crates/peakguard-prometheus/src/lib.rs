//! peakguard's one Prometheus text writer (exposition format 0.0.4): every crate's
//! `/metrics` part goes through [`Exposition`], so a family's `# HELP`/`# TYPE` lines, label
//! escaping (backslash, double quote, newline) and special values (`+Inf`, `NaN`) are written
//! one way. Owns: formatting only. Must not touch: the metrics' storage (atomics stay with
//! their owners: the hit path never waits on a registry), sockets, files.
//!
//! Why not the `prometheus-client` crate: it writes OpenMetrics text (`# EOF`, its own
//! counter naming), which would rename or reformat every line dashboards and tests read
//! today; values here are plain atomics read at scrape time, so a writer is all that is
//! needed. Its output is checked by `promtool check metrics` in the edge's tests.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt::Write;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(u64),
    Signed(i64),
    Float(f64),
}

macro_rules! value_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$v(v.into())
            }
        }
    )*};
}
value_from!(u64 => Int, u32 => Int, u16 => Int, u8 => Int, i64 => Signed, i32 => Signed, f64 => Float);

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// A label value as the text format wants it: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A help text as the text format wants it: `\` → `\\`, newline → `\n`.
fn escape_help(text: &str) -> Cow<'_, str> {
    if !text.contains(['\\', '\n']) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace('\\', "\\\\").replace('\n', "\\n"))
}

/// Writes families into a text the caller owns (several crates add to one `/metrics`).
pub struct Exposition<'a> {
    out: &'a mut String,
}

impl<'a> Exposition<'a> {
    pub fn new(out: &'a mut String) -> Self {
        Exposition { out }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Write each family once per text.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> Family<'_> {
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            escape_help(help),
            kind.as_str()
        );
        Family {
            out: self.out,
            name: name.to_string(),
        }
    }

    /// A family with a single sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Into<Value>) {
        self.family(name, kind, help).sample(&[], value);
    }
}

/// The samples of one family.
pub struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl Family<'_> {
    /// One sample: `name{labels} value`. Label values are escaped here.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        self.sample_of("", labels, value)
    }

    /// A histogram's `_bucket`, `_sum` or `_count` sample (`suffix` includes the `_`).
    pub fn sample_of(
        &mut self,
        suffix: &str,
        labels: &[(&str, &str)],
        value: impl Into<Value>,
    ) -> &mut Self {
        self.out.push_str(&self.name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", value.into());
        self
    }

    /// A whole histogram from its cumulative buckets (upper bound, count), sum and count.
    pub fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        for (bound, cumulative) in buckets {
            let le = Value::Float(*bound).to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample_of("_bucket", &with_le, *cumulative);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample_of("_bucket", &with_le, count);
        self.sample_of("_sum", labels, sum);
        self.sample_of("_count", labels, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut out = String::new();
        let mut e = Exposition::new(&mut out);
        e.family("x_total", Kind::Counter, "Things\ncounted \\ here.")
            .sample(&[("site", "a\"b\\c\nd"), ("k", "v")], 3u64)
            .sample(&[], 0u64);
        e.single("g", Kind::Gauge, "A gauge.", f64::INFINITY);
        e.single("n", Kind::Gauge, "Not a number.", f64::NAN);
        e.family("h_seconds", Kind::Histogram, "A histogram.")
            .histogram(&[("site", "s")], &[(0.5, 1), (1.0, 2)], 1.25, 3);
        assert_eq!(
            out,
            "# HELP x_total Things\\ncounted \\\\ here.\n# TYPE x_total counter\n\
             x_total{site=\"a\\\"b\\\\c\\nd\",k=\"v\"} 3\nx_total 0\n\
             # HELP g A gauge.\n# TYPE g gauge\ng +Inf\n\
             # HELP n Not a number.\n# TYPE n gauge\nn NaN\n\
             # HELP h_seconds A histogram.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{site=\"s\",le=\"0.5\"} 1\nh_seconds_bucket{site=\"s\",le=\"1\"} 2\n\
             h_seconds_bucket{site=\"s\",le=\"+Inf\"} 3\nh_seconds_sum{site=\"s\"} 1.25\n\
             h_seconds_count{site=\"s\"} 3\n"
        );
    }

    #[test]
    fn plain_values_are_borrowed() {
        assert!(matches!(escape_label("shop"), Cow::Borrowed("shop")));
    }
}
