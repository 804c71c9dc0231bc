//! Which rule set and plugins a site's WAF is planned with, and the editor/visitor split of
//! the WordPress plugin, on the shared CRS 4.28 tree and Debian's CRS 3.3.

use super::plan::{EDITOR_EXCLUSIONS_V3, EDITOR_EXCLUSIONS_V4, EDITOR_EXTRA, settings};
use super::*;
use peakguard_config::WafConfig;
use std::path::{Path, PathBuf};

fn shared_crs4() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs-4")
}

fn config(crs_dir: Option<PathBuf>, plugins: Vec<String>) -> WafConfig {
    WafConfig {
        crs_dir,
        plugins,
        ..WafConfig::default()
    }
}

#[test]
fn crs4_finds_the_wordpress_plugin_or_warns_and_crs3_refuses_plugins() {
    let home = tempfile::tempdir().expect("tmp");
    // CRS 4, the plugin not installed: a warning, no plugin, no editor split.
    let plan4 = plan(
        &config(Some(shared_crs4()), vec![]),
        true,
        home.path(),
        None,
    )
    .expect("plan");
    assert_eq!(plan4.crs.version.to_string(), "4.28.0");
    assert!(plan4.plugins.is_empty() && !plan4.wordpress_plugin);
    assert!(
        plan4
            .warnings
            .iter()
            .any(|w| w.contains("wordpress-rule-exclusions")),
        "{:?}",
        plan4.warnings
    );
    // Named by directory: loaded, the editors' part split off, no warning.
    let dir = shared_crs4().join("plugins-available/wordpress-rule-exclusions");
    let with = config(Some(shared_crs4()), vec![dir.display().to_string()]);
    let planned = plan(&with, true, home.path(), None).expect("plan");
    assert!(planned.wordpress_plugin && planned.warnings.is_empty());
    let visitor = settings(&with, &planned, false);
    let editor = settings(&with, &planned, true);
    assert_eq!(visitor.extra_after, EDITOR_EXCLUSIONS_V4);
    assert!(editor.extra_after.is_empty() && editor.extra_before == EDITOR_EXTRA);
    // WordPress off (an `http` site): the plugin is not split, nothing of ours is added.
    let off = plan(&with, false, home.path(), None).expect("plan");
    assert!(!off.wordpress_plugin);
    assert!(settings(&with, &off, true).extra_before.is_empty());
    // A different plugin file changes the key: a reload rebuilds.
    assert_ne!(plan4.key, planned.key);
    assert_eq!(
        planned.key,
        plan(&with, true, home.path(), None).expect("plan").key,
        "nothing changed, nothing rebuilt"
    );
    // A plugin that is not there: refused, with what to do.
    let missing = plan(
        &config(Some(shared_crs4()), vec!["fake-bot".into()]),
        true,
        home.path(),
        None,
    )
    .err()
    .expect("missing plugin");
    assert!(
        missing.contains("peakguard waf plugin install"),
        "{missing}"
    );

    // CRS 3.3 (Debian's): no plugins, a warning that the figures are for CRS 4.
    let debian = Some(PathBuf::from(peakguard_waf::crs::DEBIAN_CRS));
    let plan3 = plan(&config(debian.clone(), vec![]), true, home.path(), None).expect("plan");
    assert!(plan3.warnings.iter().any(|w| w.contains("BENCHMARKS.md")));
    assert_eq!(
        settings(&config(debian.clone(), vec![]), &plan3, false).extra_after,
        EDITOR_EXCLUSIONS_V3
    );
    let err = plan(&config(debian, vec!["x".into()]), true, home.path(), None)
        .err()
        .expect("CRS 3 has no plugins");
    assert!(err.contains("no plugins"), "{err}");
}
