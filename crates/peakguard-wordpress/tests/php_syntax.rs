//! The plugin's PHP: `php -l` with Debian's PHP (8.2), and the oldest syntax level it
//! promises (PHP 7.4) with glayzzle's php-parser, which Debian 12 allows where PHP 7.4
//! itself is not packaged (installed by `scripts/wp-env.sh install`). Plus the functions a
//! PHP 7.4 or WordPress 6.0 site would not have.

use peakguard_wordpress::{Settings, plugin, plugin_with_settings};
use std::io::Write;
use std::process::{Command, Stdio};

fn installed_copy() -> String {
    plugin_with_settings(&Settings {
        site: "shop \"quoted\"".into(),
        admin_url: "http://127.0.0.1:9080".into(),
        purge_token: "it's\\a-token-0123456789".into(),
        admin_bar_token: Some("bar-token-0123456789".into()),
        host: Some("shop.test".into()),
    })
}

/// Runs `cmd` with `text` on its standard input.
fn run_with_input(mut cmd: Command, text: &str) -> std::process::Output {
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} ({e}): scripts/wp-env.sh install installs it"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the plugin");
    child.wait_with_output().expect("wait")
}

/// `php -l` on `text` (from stdin); the linter's output.
fn php_lint(text: &str) -> (bool, String) {
    let mut cmd = Command::new("php");
    cmd.args(["-l", "-d", "display_errors=stderr"]);
    let out = run_with_input(cmd, text);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Parses `text` as PHP `version` with php-parser; Err carries the parser's message.
fn parse_as(text: &str, version: &str) -> Result<(), String> {
    let tools =
        std::env::var("PG_NODE_TOOLS").unwrap_or_else(|_| "/var/cache/peakguard-tests/node".into());
    let module = format!("{tools}/node_modules/php-parser");
    assert!(
        std::path::Path::new(&module).join("package.json").exists(),
        "{module} is missing: run scripts/wp-env.sh install"
    );
    let script = format!(
        "const Engine = require({module:?});\n\
         const src = require('fs').readFileSync(0, 'utf8');\n\
         const p = new Engine({{ parser: {{ php7: true, version: {version:?}, suppressErrors: false }}, ast: {{}} }});\n\
         try {{ p.parseCode(src, 'peakguard.php'); }} catch (e) {{ console.error(e.message); process.exit(1); }}\n"
    );
    let mut cmd = Command::new("node");
    cmd.args(["-e", &script]);
    let out = run_with_input(cmd, text);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn php_lints_the_shipped_and_the_installed_plugin() {
    for text in [plugin(), installed_copy()] {
        let (ok, output) = php_lint(&text);
        assert!(ok, "php -l: {output}");
        assert!(output.contains("No syntax errors"), "{output}");
    }
    let (ok, _) = php_lint("<?php function ( {");
    assert!(!ok, "the lint catches a syntax error");
}

#[test]
fn the_plugin_parses_as_php_7_4() {
    parse_as(&plugin(), "7.4").unwrap_or_else(|e| panic!("not PHP 7.4 syntax: {e}"));
    parse_as(&installed_copy(), "7.4").unwrap_or_else(|e| panic!("not PHP 7.4 syntax: {e}"));
    // The check can fail: PHP 8 syntax is refused at 7.4.
    for php8 in [
        "<?php $x = match (1) { 1 => 2 };",
        "<?php $x = $a?->b;",
        "<?php f(name: 1);",
    ] {
        assert!(parse_as(php8, "7.4").is_err(), "{php8} accepted as PHP 7.4");
    }
}

#[test]
fn the_plugin_calls_nothing_newer_than_php_7_4_or_wordpress_6_0() {
    let text = plugin();
    // PHP 8.0+ functions, and WordPress functions added after 6.0.
    for newer in [
        "str_contains(",
        "str_starts_with(",
        "str_ends_with(",
        "get_debug_type(",
        "array_is_list(",
        "fdiv(",
        "get_resource_id(",
        "wp_admin_notice(",
        "wp_get_admin_notice(",
        "wp_trigger_error(",
        "wp_cache_flush_group(",
        "wp_cache_supports(",
    ] {
        assert!(!text.contains(newer), "the plugin calls {newer}");
    }
}
