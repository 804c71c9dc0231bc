//! A kind's own keys (a probe's, a notifier's): read as the kind's settings struct, with each
//! problem named by its key — an unknown key on its own, a wrong type by its key even through
//! a flattened struct — and an unknown key that another kind has named as that kind's.

use peakguard_config::OwnKeys;
use peakguard_config::typed::from_value;
use serde::de::DeserializeOwned;

/// Problems of a kind's keys, as (key, what is wrong and what to write).
pub type Problems = Vec<(String, String)>;

/// Whose keys: a kind's name, and what it is a kind of (`"probe"`, `"notifier"`).
#[derive(Clone, Copy)]
pub struct Kind<'a> {
    pub name: &'a str,
    pub of: &'static str,
}

/// How the message of a key no field of the kind takes begins.
pub(crate) const UNKNOWN_KEY: &str = "unknown key";

/// A kind's own keys read as `T`, or one sentence saying what is wrong (for a run: the
/// configuration was checked when it was loaded, so this only fails for one built by hand).
pub fn own_settings<T: DeserializeOwned>(kind: Kind<'_>, keys: &OwnKeys) -> Result<T, String> {
    // Checked keys (every run of a loaded configuration) read at once; the key-by-key reading
    // is only for saying what is wrong.
    if let Ok(settings) = from_value::<T>(toml::Value::Table(keys.table().clone())) {
        return Ok(settings);
    }
    match read_settings::<T>(kind, keys) {
        (Some(settings), problems) if problems.is_empty() => Ok(settings),
        (_, problems) => Err(problems
            .iter()
            .map(|(k, m)| format!("{k}: {m}"))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Reads a kind's own keys as `T`: each key `T` has no field for is a problem of its own, the
/// others are read (so a wrong value is reported beside an unknown key), and a wrong type
/// names its key.
pub(crate) fn read_settings<T: DeserializeOwned>(
    Kind { name: kind, of }: Kind<'_>,
    keys: &OwnKeys,
) -> (Option<T>, Problems) {
    let alone = |key: &str, value: &toml::Value| {
        from_value::<T>(toml::Value::Table(toml::Table::from_iter([(
            key.to_string(),
            value.clone(),
        )])))
        .err()
        .map(|(_, message)| message)
    };
    let mut problems = Vec::new();
    let mut known = toml::Table::new();
    for (key, value) in keys.table() {
        match alone(key, value) {
            Some(m) if m.starts_with("unknown field") => problems.push((
                key.clone(),
                format!("{UNKNOWN_KEY} `{key}` for kind = \"{kind}\""),
            )),
            _ => {
                known.insert(key.clone(), value.clone());
            }
        }
    }
    match from_value::<T>(toml::Value::Table(known.clone())) {
        Ok(settings) => (Some(settings), problems),
        Err((key, message)) => {
            let key = match key {
                key if !key.is_empty() => key,
                // A key read through a flattened struct: the one that fails alone.
                _ => between_backticks(&message, "missing field `")
                    .or_else(|| {
                        known.iter().find_map(|(k, v)| {
                            alone(k, v)
                                .filter(|m| !m.starts_with("missing field"))
                                .map(|_| k.clone())
                        })
                    })
                    .unwrap_or_else(|| "kind".to_string()),
            };
            let message = match between_backticks(&message, "missing field `") {
                Some(field) => format!("a {kind} {of} needs `{field}`"),
                None => message,
            };
            problems.push((key, message));
            (None, problems)
        }
    }
}

/// `NAME` in `"...PREFIXNAME`..."`.
fn between_backticks(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split_once('`').map(|(name, _)| name.to_string())
}

/// A kind that reads and checks its own keys (a probe's, a notifier's).
pub trait KeyedKind: Sync {
    /// Its `kind = "..."`.
    fn kind(&self) -> &'static str;
    /// Problems of its own keys: unknown ones, wrong types, wrong values.
    fn check(&self, keys: &OwnKeys) -> Problems;
}

/// The problems of `kind`'s own `keys`, each unknown key named after the other `kinds` that
/// have it (`path` belongs to kind = "disk", not "tcp").
pub(crate) fn check_among<'k>(
    kind: &dyn KeyedKind,
    keys: &OwnKeys,
    kinds: impl Iterator<Item = &'k dyn KeyedKind> + Clone,
) -> Problems {
    let mut problems = kind.check(keys);
    let kind = kind.kind();
    for (key, message) in problems.iter_mut() {
        if !message.starts_with(UNKNOWN_KEY) {
            continue;
        }
        let Some(value) = keys.table().get(key.as_str()) else {
            continue;
        };
        let alone: OwnKeys = toml::Table::from_iter([(key.clone(), value.clone())]).into();
        let owners: Vec<String> = kinds
            .clone()
            .filter(|other| other.kind() != kind)
            .filter(|other| {
                !other
                    .check(&alone)
                    .iter()
                    .any(|(k, m)| k == key && m.starts_with(UNKNOWN_KEY))
            })
            .map(|other| format!("\"{}\"", other.kind()))
            .collect();
        if !owners.is_empty() {
            *message = format!(
                "`{key}` belongs to kind = {}, not \"{kind}\"",
                owners.join(" or ")
            );
        }
    }
    problems
}
