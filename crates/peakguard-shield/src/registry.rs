//! How a site's guards are made, in the order of [`crate::GUARDS`] (one name each, in
//! `lib.rs`). A guard's file holds the guard, its `pub const GUARD: GuardEntry` (how it is made
//! from a site's configuration) and, for a guard that owns its configuration, that table's
//! type and checks (`[site.shield.NAME]`, read with [`Build::table`]). Whatever must
//! outlive a reload (counters, queues, compiled rules) lives in a typed slot the shield
//! keeps per site ([`Build::slot`]).

use crate::guard::Guard;
use crate::{Shared, Shield};
use peakguard_config::{GuardTable, SiteConfig};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// How one guard is made.
pub struct GuardEntry {
    /// The guard's name: its `guard` label in metrics and the access log.
    pub name: &'static str,
    /// The `[site.shield.TABLE]` it reads ([`Build::table`]; with `check`, one it owns).
    pub table: &'static str,
    /// Makes the site's guard: `Ok(None)` when it is off for the site. An error (rules that
    /// do not compile) stops the whole configuration from being used: the running one stays.
    /// May take a while (the WAF compiles its rules): called off the async runtime.
    pub build: BuildFn,
    /// For a guard that owns `[site.shield.NAME]`: its checks, run when the configuration is
    /// read ([`config_tables`]), with problems as (key inside the table, message).
    pub check: Option<CheckFn>,
}

/// Makes a site's guard (`Ok(None)`: off for this site).
pub type BuildFn = fn(&Build<'_>) -> Result<Option<Arc<dyn Guard>>, String>;
/// Checks a guard's own table: (key inside the table, message).
pub type CheckFn = fn(&SiteConfig, &toml::Value) -> Vec<(String, String)>;

/// What a guard is made from.
pub struct Build<'a> {
    pub site: &'a SiteConfig,
    pub shared: &'a Shared,
    pub shield: &'a Shield,
    /// The entry's table.
    table: &'static str,
}

impl Build<'_> {
    /// The guard's own `[site.shield.NAME]` table, or its defaults when the site has none.
    pub fn table<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, String> {
        read_table(self.site, self.table)
    }

    /// The site's slot of type `T`, made by `init` the first time: it outlives reloads.
    pub fn slot<T: Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        self.shield.slots.site(&self.site.name, init)
    }

    /// The process's slot of type `T` (one for every site: a thread pool, a set of
    /// warnings already given).
    pub fn process_slot<T: Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        self.shield.slots.process(init)
    }
}

/// `[site.shield.NAME]` read as `T` (its defaults when absent).
pub fn read_table<T: serde::de::DeserializeOwned + Default>(
    site: &SiteConfig,
    name: &str,
) -> Result<T, String> {
    checked_table(site.shield.guards.get(name)).map_err(|problems| {
        let said: Vec<String> = problems
            .iter()
            .map(|(key, message)| match key.as_str() {
                "" => message.clone(),
                key => format!("{key}: {message}"),
            })
            .collect();
        format!("[site.shield.{name}]: {}", said.join("; "))
    })
}

/// A guard's own table, read one way by the guard, its check and whoever else needs it (the
/// edge, another guard).
pub trait GuardConfig: serde::de::DeserializeOwned + Default {
    /// Its `[site.shield.TABLE]`.
    const TABLE: &'static str;

    /// Settles what the site's profile decides where the table does not say (admission and
    /// login: `enabled`).
    fn settle(&mut self, _site: &SiteConfig, _value: Option<&toml::Value>) {}

    /// The site's table (checked when the file was read; the defaults when absent).
    fn of_site(site: &SiteConfig) -> Self {
        Self::read(site, site.shield.guards.get(Self::TABLE)).unwrap_or_default()
    }

    /// `value` read (the defaults when absent) and settled; the problems as (key inside the
    /// table, message).
    fn read(site: &SiteConfig, value: Option<&toml::Value>) -> Result<Self, Vec<(String, String)>> {
        let mut config: Self = checked_table(value)?;
        config.settle(site, value);
        Ok(config)
    }
}

/// A guard's table read as `T` for its checks (its defaults when absent); a value that
/// cannot be read is the one problem, named by its key inside the table.
pub(crate) fn checked_table<T: serde::de::DeserializeOwned + Default>(
    value: Option<&toml::Value>,
) -> Result<T, Vec<(String, String)>> {
    match value {
        None => Ok(T::default()),
        Some(value) => peakguard_config::typed::from_value(value.clone()).map_err(|p| vec![p]),
    }
}

/// A guard that the WordPress profile turns on and the http profile off: `enabled` as the
/// table gives it, else by the site's profile.
pub(crate) fn on_by_profile(site: &SiteConfig, value: Option<&toml::Value>) -> bool {
    value
        .and_then(|v| v.get("enabled"))
        .and_then(toml::Value::as_bool)
        .unwrap_or(site.profile != peakguard_config::Profile::Http)
}

/// The tables guards own, for [`peakguard_config::parse_with`] and `load_with`.
pub fn config_tables() -> Vec<GuardTable> {
    crate::GUARDS
        .iter()
        .filter_map(|g| {
            g.check.map(|check| GuardTable {
                name: g.table,
                check,
            })
        })
        .collect()
}

/// Makes every guard of a site, in [`crate::GUARDS`] order. The error names the guard.
pub(crate) fn build_all(
    shield: &Shield,
    site: &SiteConfig,
    shared: &Shared,
) -> Result<Vec<Arc<dyn Guard>>, (&'static str, String)> {
    let mut guards = Vec::new();
    for entry in crate::GUARDS {
        let b = Build {
            site,
            shared,
            shield,
            table: entry.table,
        };
        if let Some(guard) = (entry.build)(&b).map_err(|e| (entry.name, e))? {
            guards.push(guard);
        }
    }
    Ok(guards)
}

type Slot = Arc<dyn Any + Send + Sync>;

/// The state guards keep across reloads, by site and type. Bounded by the site names
/// configured over the process's life times the guards' slot types.
#[derive(Default)]
pub struct Slots {
    sites: parking_lot::Mutex<HashMap<(String, TypeId), Slot>>,
    process: parking_lot::Mutex<HashMap<TypeId, Slot>>,
}

impl Slots {
    pub fn site<T: Send + Sync + 'static>(&self, site: &str, init: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self.sites.lock();
        let slot = map
            .entry((site.to_string(), TypeId::of::<T>()))
            .or_insert_with(|| Arc::new(init()));
        downcast(slot)
    }

    pub fn process<T: Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self.process.lock();
        let slot = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(init()));
        downcast(slot)
    }

    /// The site's slot of type `T`, if it was ever made.
    pub fn get<T: Send + Sync + 'static>(&self, site: &str) -> Option<Arc<T>> {
        self.sites
            .lock()
            .get(&(site.to_string(), TypeId::of::<T>()))
            .map(downcast)
    }

    /// Every site's slot of type `T`, by site name.
    pub fn all<T: Send + Sync + 'static>(&self) -> Vec<(String, Arc<T>)> {
        let mut out: Vec<(String, Arc<T>)> = self
            .sites
            .lock()
            .iter()
            .filter(|((_, t), _)| *t == TypeId::of::<T>())
            .map(|((site, _), slot)| (site.clone(), downcast(slot)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn downcast<T: Send + Sync + 'static>(slot: &Slot) -> Arc<T> {
    match slot.clone().downcast::<T>() {
        Ok(t) => t,
        // The map is keyed by the type's id: the slot is of that type.
        Err(_) => unreachable!("a slot keyed by a type holds that type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_site_and_type_and_kept() {
        let slots = Slots::default();
        let a = slots.site("a", || 1u32);
        assert_eq!(*slots.site("a", || 2u32), 1, "made once");
        assert_eq!(*slots.site("b", || 2u32), 2);
        assert_eq!(*slots.site("a", || String::from("x")), "x");
        assert!(Arc::ptr_eq(&a, &slots.get::<u32>("a").expect("kept")));
        let all: Vec<(String, u32)> = slots
            .all::<u32>()
            .into_iter()
            .map(|(s, v)| (s, *v))
            .collect();
        assert_eq!(all, [("a".to_string(), 1), ("b".to_string(), 2)]);
        assert_eq!(*slots.process(|| 7u8), 7);
        assert_eq!(*slots.process(|| 8u8), 7);
    }

    #[test]
    fn every_guard_has_a_distinct_name() {
        let mut names: Vec<&str> = crate::GUARDS.iter().map(|g| g.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "two guards share a name");
    }
}
