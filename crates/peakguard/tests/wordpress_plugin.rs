//! The companion WordPress plugin (issue P9) against the real WordPress of
//! `scripts/wp-env.sh`, installed by `peakguard wordpress install`: an edit through the
//! REST API purges the post, the home page and its category archive and nothing else; an
//! approved comment shows; a purge the edge missed while stopped is delivered when it is
//! back; the admin bar's purges and maintenance switch and the Site Health test go through
//! the scoped admin API. Run by `scripts/test.sh`:
//! `cargo test -p peakguard --test wordpress_plugin -- --include-ignored --test-threads=1`.

mod common;

use common::wp::*;
use common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const PURGE_TOKEN: &str = "wp-plugin-purge-token-0123";
const BAR_TOKEN: &str = "wp-plugin-bar-token-0123456";
const EDITOR: &str = "pg-editor";
const EDITOR_PASS: &str = "pg-editor-pass-0123";

/// The edge's tokens and the site with its `[site.wordpress]` (the environment's
/// mu-plugins directory).
fn edge_config(wp: &Wp, cache_extra: &str) -> String {
    let dir = std::env::var("PG_E2E_DIR").expect("PG_E2E_DIR (scripts/wp-env.sh env)");
    format!(
        "{cache_extra}#END-CACHE\n\
         [[admin.tokens]]\nname = \"wordpress\"\npermissions = [\"purge\"]\ntoken = \"{PURGE_TOKEN}\"\n\
         [[admin.tokens]]\nname = \"wordpress-admin-bar\"\npermissions = [\"maintenance\", \"read\"]\ntoken = \"{BAR_TOKEN}\"\n{}",
        site(
            wp,
            &format!("[site.wordpress]\nmu_plugins = \"{dir}/mu-plugins\"\n")
        )
    )
}

/// The plugin as `peakguard wordpress install` wrote it; removed again at the end.
struct Installed {
    config: PathBuf,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_peakguard"))
            .args(["wordpress", "uninstall", "--config"])
            .arg(&self.config)
            .output();
    }
}

fn install(edge: &Edge) -> Installed {
    let config = edge.config.to_string_lossy().into_owned();
    let out = edge.cli_plain(&["wordpress", "install", "--config", &config]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "install failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("token \"wordpress\" accepted")
            && stdout.contains("token \"wordpress-admin-bar\" accepted"),
        "install checks both tokens against the admin API: {stdout}"
    );
    // Nothing an earlier run left waiting.
    script(&["php", "delete_option('peakguard_pending');"]);
    // PHP-FPM's opcache checks a file for changes every 2 s (Debian's default): wait until
    // WordPress runs this copy, the one naming this edge's admin API (its Site Health test
    // says which it reached).
    let wp = wp();
    let cookies = login(wp.origin_addr, &wp.host, "admin", "e2e-admin-pass");
    let reached = format!("127.0.0.1:{} answers", edge.admin.port());
    wait_until(
        "WordPress to run the installed copy",
        Duration::from_secs(30),
        || {
            get_as(
                wp.origin_addr,
                &wp.host,
                &cookies,
                "/wp-admin/site-health.php",
            )
            .text()
            .contains(&reached)
        },
    );
    Installed {
        config: edge.config.clone(),
    }
}

fn php(code: &str) -> String {
    script(&["php", code])
}

/// A user with `role` (created once; its password set each time).
fn ensure_user(login: &str, pass: &str, role: &str) {
    php(&format!(
        "$u = get_user_by('login', '{login}');
         if (!$u) {{ $id = wp_insert_user(array('user_login' => '{login}', 'user_pass' => '{pass}', 'role' => '{role}', 'user_email' => '{login}@example.invalid')); if (is_wp_error($id)) {{ fwrite(STDERR, $id->get_error_message()); exit(1); }} }}
         else {{ wp_set_password('{pass}', $u->ID); }}"
    ));
}

/// Logs in at `addr` (the edge, or the origin directly); the cookies to send.
fn login(addr: SocketAddr, host: &str, user: &str, pass: &str) -> String {
    login_as(addr, host, user, pass)
        .into_iter()
        .filter(|c| c.starts_with("wordpress_") && !c.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The REST nonce of a logged-in session (as the block editor gets it).
fn rest_nonce(addr: SocketAddr, host: &str, cookies: &str) -> String {
    let r = get_as(
        addr,
        host,
        cookies,
        "/wp-admin/admin-ajax.php?action=rest-nonce",
    );
    assert_eq!(r.status, 200, "rest-nonce: {}", r.text());
    r.text().trim().to_string()
}

/// A REST write by a logged-in user, as the block editor sends it.
fn rest_post(addr: SocketAddr, host: &str, session: &(String, String), path: &str, json: &str) {
    rest_call(addr, host, session, "POST", path, json);
}

/// A REST call by a logged-in user (`DELETE` moves a post to the trash).
fn rest_call(
    addr: SocketAddr,
    host: &str,
    session: &(String, String),
    method: &str,
    path: &str,
    json: &str,
) {
    let r = request(
        addr,
        method,
        host,
        path,
        &[
            ("Cookie", &session.0),
            ("X-WP-Nonce", &session.1),
            ("Content-Type", "application/json"),
        ],
        json.as_bytes(),
    );
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
}

/// The purge calls the edge logged for the plugin's token (the audit log).
fn plugin_purges(edge: &Edge) -> usize {
    std::fs::read_to_string(edge.dir.join("edge.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("admin POST /purge by \"wordpress\""))
        .count()
}

/// Waits until the plugin's purge call after `before` reached the edge.
fn wait_for_purge(edge: &Edge, before: usize, within: Duration) {
    wait_until("the plugin's purge to reach the edge", within, || {
        plugin_purges(edge) > before
    });
}

/// A post in a category of its own, made for this run: (post id, slug, category slug).
fn new_post(tag: &str) -> (String, String, String) {
    let out = php(&format!(
        "$cat = wp_insert_term('PG plugin {tag}', 'category', array('slug' => 'pg-plugin-{tag}'));
         $id = wp_insert_post(array('post_title' => 'Plugin post {tag} first', 'post_name' => 'pg-plugin-post-{tag}',
             'post_status' => 'publish', 'post_author' => 1, 'post_content' => 'Body {tag} first',
             'post_category' => array($cat['term_id'])));
         echo $id;"
    ));
    let id = out.lines().last().unwrap_or_default().trim().to_string();
    assert!(id.parse::<u64>().is_ok(), "new post: {out}");
    (
        id,
        format!("/pg-plugin-post-{tag}/"),
        format!("/category/pg-plugin-{tag}/"),
    )
}

fn anon(edge: &Edge, host: &str, path: &str) -> Response {
    let r = get(edge.addr, host, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.status);
    r
}

/// Requested twice: the second answer is a hit.
fn cached(edge: &Edge, host: &str, path: &str) -> Response {
    anon(edge, host, path);
    let r = anon(edge, host, path);
    assert!(
        r.cache_status().contains("hit"),
        "{path} should be cached: {}",
        r.cache_status()
    );
    r
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn an_edit_purges_its_post_lists_and_nothing_else_and_an_approved_comment_shows() {
    let wp = wp();
    let edge = Edge::start("wp-plugin-edit", &edge_config(&wp, ""));
    let _plugin = install(&edge);
    let tag = run_id();
    let (id, post, category) = new_post(&tag);
    let unrelated = "/e2e-post-150/";
    for path in [post.as_str(), "/", category.as_str(), unrelated] {
        let r = cached(&edge, &wp.host, path);
        if path != unrelated {
            assert!(
                r.text().contains(&format!("Plugin post {tag} first")),
                "{path}"
            );
        }
    }
    let tags = anon(&edge, &wp.host, &post);
    let tags = tags.header_all("x-cache-tags").join(",");
    assert!(
        tags.contains(&format!("post-{id}")) && tags.contains("post-term-"),
        "a post's page names the post and its terms: {tags}"
    );

    // An editor changes the title through the REST API, as the block editor does.
    ensure_user(EDITOR, EDITOR_PASS, "editor");
    let cookies = login(edge.addr, &wp.host, EDITOR, EDITOR_PASS);
    let session = (cookies.clone(), rest_nonce(edge.addr, &wp.host, &cookies));
    let before = plugin_purges(&edge);
    rest_post(
        edge.addr,
        &wp.host,
        &session,
        &format!("/wp-json/wp/v2/posts/{id}"),
        &format!(r#"{{"title":"Plugin post {tag} second","content":"Body {tag} second"}}"#),
    );
    wait_for_purge(&edge, before, Duration::from_secs(30));
    for path in [post.as_str(), "/", category.as_str()] {
        let r = anon(&edge, &wp.host, path);
        assert!(
            r.text().contains(&format!("Plugin post {tag} second")),
            "{path} shows the new title on the next request ({})",
            r.cache_status()
        );
        assert!(
            !r.text().contains(&format!("Plugin post {tag} first")),
            "{path}"
        );
    }
    let r = anon(&edge, &wp.host, unrelated);
    assert!(
        r.cache_status().contains("hit"),
        "an unrelated post stays cached: {}",
        r.cache_status()
    );

    // A comment waiting for moderation, then approved by the editor.
    let comment = php(&format!(
        "echo wp_insert_comment(array('comment_post_ID' => {id}, 'comment_content' => 'Comment {tag} approved',
            'comment_approved' => 0, 'comment_author' => 'Visitor', 'comment_author_email' => 'v@example.invalid'));"
    ));
    let comment = comment
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let r = cached(&edge, &wp.host, &post);
    assert!(!r.text().contains(&format!("Comment {tag} approved")));
    let before = plugin_purges(&edge);
    rest_post(
        edge.addr,
        &wp.host,
        &session,
        &format!("/wp-json/wp/v2/comments/{comment}"),
        r#"{"status":"approved"}"#,
    );
    wait_for_purge(&edge, before, Duration::from_secs(30));
    let r = anon(&edge, &wp.host, &post);
    assert!(
        r.text().contains(&format!("Comment {tag} approved")),
        "the approved comment shows ({})",
        r.cache_status()
    );
    assert!(
        anon(&edge, &wp.host, unrelated)
            .cache_status()
            .contains("hit")
    );

    // The plugin's token purges and nothing else.
    let with = |method: &str, path: &str| {
        request(
            edge.admin,
            method,
            "admin",
            path,
            &[("Authorization", &format!("Bearer {PURGE_TOKEN}"))],
            b"",
        )
        .status
    };
    assert_eq!(with("POST", "/maintenance?state=on"), 403);
    assert_eq!(with("GET", "/metrics"), 403);
    assert_eq!(with("GET", "/status"), 403);
    assert_eq!(with("GET", "/token"), 200);
    let maintenance = edge.admin_get("/maintenance");
    assert!(
        maintenance.text().contains("\"on\":false"),
        "{}",
        maintenance.text()
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_purge_the_stopped_edge_missed_is_delivered_when_it_is_back() {
    let wp = wp();
    let [port, admin, ..] = ports();
    let dir = fresh_dir("wp-plugin-stopped");
    let config = edge_config(&wp, "");
    let mut edge = Edge::start_in(dir.to_path_buf(), port, admin, &config, false);
    let _plugin = install(&edge);
    let tag = run_id();
    let (id, post, _) = new_post(&tag);
    cached(&edge, &wp.host, &post);
    ensure_user(EDITOR, EDITOR_PASS, "editor");
    // The editor works on the origin directly: the edge is about to stop.
    let cookies = login(wp.origin_addr, &wp.host, EDITOR, EDITOR_PASS);
    let session = (
        cookies.clone(),
        rest_nonce(wp.origin_addr, &wp.host, &cookies),
    );
    edge.stop();
    let delivered_before = plugin_purges(&edge);

    let out = edge.cli_plain(&[
        "wordpress",
        "install",
        "--config",
        &edge.config.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(2), "install reports the edge down");
    assert!(String::from_utf8_lossy(&out.stdout).contains("unreachable"));

    rest_post(
        wp.origin_addr,
        &wp.host,
        &session,
        &format!("/wp-json/wp/v2/posts/{id}"),
        &format!(r#"{{"title":"Plugin post {tag} while down"}}"#),
    );
    // The editor is told, in the admin, that the purge waits.
    wait_until(
        "the admin notice of a waiting purge",
        Duration::from_secs(30),
        || {
            get_as(wp.origin_addr, &wp.host, &cookies, "/wp-admin/")
                .text()
                .contains("peakguard-pending")
        },
    );

    // Back, with its disk cache: the old page is still there until the purge arrives.
    let mut edge = Edge::start_in(dir.to_path_buf(), port, admin, &config, false);
    let stale = anon(&edge, &wp.host, &post);
    assert!(
        stale.cache_status().contains("hit")
            && stale.text().contains(&format!("Plugin post {tag} first")),
        "the restarted edge serves its stored copy: {}",
        stale.cache_status()
    );
    // The next requests WordPress serves retry the waiting purge once it is due.
    wait_until(
        "the waiting purge to be delivered",
        Duration::from_secs(120),
        || {
            get_as(edge.addr, &wp.host, &cookies, "/wp-admin/");
            plugin_purges(&edge) > delivered_before
        },
    );
    let r = anon(&edge, &wp.host, &post);
    assert!(
        r.text().contains(&format!("Plugin post {tag} while down")),
        "the edit shows once the purge arrived ({})",
        r.cache_status()
    );
    let admin_page = get_as(edge.addr, &wp.host, &cookies, "/wp-admin/");
    assert!(
        !admin_page.text().contains("peakguard-pending"),
        "the notice is gone"
    );
    edge.stop();
    edge.own_dir(dir);
}

/// Follows an admin bar link as the browser would (cookies, referer): WordPress acts and
/// redirects back.
fn click(addr: SocketAddr, host: &str, cookies: &str, link: &str, referer: &str) {
    let r = request(
        addr,
        "GET",
        host,
        link,
        &[("Cookie", cookies), ("Referer", referer)],
        b"",
    );
    assert_eq!(r.status, 302, "{link}: {}", r.text());
}

/// The `href` of the admin bar item `id` in `html`, as a path.
fn admin_bar_link(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"wp-admin-bar-{id}\""))
        .or_else(|| html.find(&format!("id='wp-admin-bar-{id}'")))
        .unwrap_or_else(|| panic!("no admin bar item {id}"));
    let rest = &html[at..];
    let href = rest.find("href=").expect("a link") + 6;
    let quote = rest[href - 1..].chars().next().unwrap_or('\'');
    let end = rest[href..].find(quote).expect("end of link");
    let url = rest[href..href + end]
        .replace("&#038;", "&")
        .replace("&amp;", "&");
    url.trim_start_matches("http://wp.test").to_string()
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn the_admin_bar_and_site_health_go_through_the_scoped_api() {
    let wp = wp();
    let edge = Edge::start("wp-plugin-bar", &edge_config(&wp, ""));
    let _plugin = install(&edge);
    let path = "/e2e-post-151/";
    cached(&edge, &wp.host, path);
    let cookies = login(edge.addr, &wp.host, "admin", "e2e-admin-pass");
    let view = |p: &str| get_as(edge.addr, &wp.host, &cookies, p);
    let page = view(path).text();
    assert!(
        page.contains("Cache: this page is stored"),
        "admin bar status"
    );

    // Purge this page.
    let purge = admin_bar_link(&page, "peakguard-purge-page");
    click(
        edge.addr,
        &wp.host,
        &cookies,
        &purge,
        &format!("http://wp.test{path}"),
    );
    let stored = edge.admin_get(&format!("/cache?url=http://wp.test{path}"));
    assert!(
        stored.text().contains("\"stored_variants\":0"),
        "{}",
        stored.text()
    );
    assert!(view(path).text().contains("Cache: this page is not stored"));

    // Purge everything: the other pages of this host go too.
    let other = "/e2e-post-154/";
    cached(&edge, &wp.host, other);
    let everything = admin_bar_link(&view(path).text(), "peakguard-purge-all");
    click(
        edge.addr,
        &wp.host,
        &cookies,
        &everything,
        "http://wp.test/wp-admin/",
    );
    assert!(
        !anon(&edge, &wp.host, other).cache_status().contains("hit"),
        "purge everything reaches every page"
    );

    // Maintenance on from the admin bar (the admin bar's own token).
    let on = admin_bar_link(&view(path).text(), "peakguard-maintenance");
    assert!(on.contains("state=on"), "{on}");
    click(
        edge.addr,
        &wp.host,
        &cookies,
        &on,
        "http://wp.test/wp-admin/",
    );
    assert!(
        edge.admin_get("/maintenance")
            .text()
            .contains("\"on\":true")
    );
    // And off again, from WordPress reached directly (visitors of the edge see maintenance).
    let origin_cookies = login(wp.origin_addr, &wp.host, "admin", "e2e-admin-pass");
    let page = get_as(wp.origin_addr, &wp.host, &origin_cookies, "/wp-admin/").text();
    assert!(page.contains("MAINTENANCE ON"), "the admin bar shows it");
    let off = admin_bar_link(&page, "peakguard-maintenance");
    assert!(off.contains("state=off"), "{off}");
    click(
        wp.origin_addr,
        &wp.host,
        &origin_cookies,
        &off,
        "http://wp.test/wp-admin/",
    );
    assert!(
        edge.admin_get("/maintenance")
            .text()
            .contains("\"on\":false")
    );
    let log = std::fs::read_to_string(edge.dir.join("edge.log")).unwrap_or_default();
    assert!(
        log.contains("admin POST /maintenance by \"wordpress-admin-bar\""),
        "each call is logged with the token's name"
    );
    assert!(log.contains("admin POST /purge by \"wordpress\""));

    // Site Health: through the edge, in front and reachable; reached directly, not in front.
    let health = view("/wp-admin/site-health.php").text();
    assert!(
        health.contains("peakguard is in front of this site and reachable"),
        "Site Health through the edge"
    );
    let direct = get_as(
        wp.origin_addr,
        &wp.host,
        &origin_cookies,
        "/wp-admin/site-health.php",
    )
    .text();
    assert!(
        direct.contains("peakguard is not in front of this site"),
        "Site Health reached directly"
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_product_price_change_purges_the_product_and_its_category() {
    let wp = wp();
    let edge = Edge::start("wp-plugin-product", &edge_config(&wp, ""));
    let _plugin = install(&edge);
    let tag = run_id();
    let out = php(&format!(
        "$cat = wp_insert_term('PG shelf {tag}', 'product_cat', array('slug' => 'pg-shelf-{tag}'));
         $id = wp_insert_post(array('post_type' => 'product', 'post_title' => 'PG product {tag}', 'post_name' => 'pg-product-{tag}',
             'post_status' => 'publish', 'post_content' => 'A product'));
         wp_set_object_terms($id, array((int) $cat['term_id']), 'product_cat');
         update_post_meta($id, '_price', '10');
         echo $id;"
    ));
    let id = out.lines().last().unwrap_or_default().trim().to_string();
    let product = format!("/product/pg-product-{tag}/");
    let shelf = format!("/product-category/pg-shelf-{tag}/");
    for p in [&product, &shelf] {
        cached(&edge, &wp.host, p);
    }
    let tags = anon(&edge, &wp.host, &product)
        .header_all("x-cache-tags")
        .join(",");
    assert!(tags.contains(&format!("product-{id}")), "{tags}");
    let before = plugin_purges(&edge);
    php(&format!("update_post_meta({id}, '_price', '12');"));
    wait_for_purge(&edge, before, Duration::from_secs(30));
    for p in [&product, &shelf] {
        let r = anon(&edge, &wp.host, p);
        assert!(
            !r.cache_status().contains("hit"),
            "{p} is purged after a price change: {}",
            r.cache_status()
        );
    }
    assert!(anon(&edge, &wp.host, "/e2e-post-152/").status == 200);
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_renamed_term_and_a_theme_setting_purge_what_shows_them() {
    let wp = wp();
    let edge = Edge::start("wp-plugin-term", &edge_config(&wp, ""));
    let _plugin = install(&edge);
    let tag = run_id();
    let (_, post, category) = new_post(&tag);
    let unrelated = "/e2e-post-153/";
    for p in [post.as_str(), category.as_str(), unrelated] {
        cached(&edge, &wp.host, p);
    }
    // The category renamed: its archive and the posts naming it; not the other posts.
    let before = plugin_purges(&edge);
    php(&format!(
        "$t = get_term_by('slug', 'pg-plugin-{tag}', 'category'); wp_update_term($t->term_id, 'category', array('name' => 'PG renamed {tag}'));"
    ));
    wait_for_purge(&edge, before, Duration::from_secs(30));
    for p in [post.as_str(), category.as_str()] {
        let r = anon(&edge, &wp.host, p);
        assert!(
            r.text().contains(&format!("PG renamed {tag}")),
            "{p} shows the new name ({})",
            r.cache_status()
        );
    }
    assert!(
        anon(&edge, &wp.host, unrelated)
            .cache_status()
            .contains("hit")
    );
    // A theme setting shows on every page: everything of this host goes.
    let before = plugin_purges(&edge);
    php(&format!("set_theme_mod('pg_test_setting', '{tag}');"));
    wait_for_purge(&edge, before, Duration::from_secs(30));
    let r = anon(&edge, &wp.host, unrelated);
    assert!(
        !r.cache_status().contains("hit"),
        "a theme setting purges every page: {}",
        r.cache_status()
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_trashed_post_leaves_its_page_and_the_lists() {
    let wp = wp();
    let edge = Edge::start("wp-plugin-trash", &edge_config(&wp, ""));
    let _plugin = install(&edge);
    let tag = run_id();
    let (id, post, category) = new_post(&tag);
    for p in [post.as_str(), "/", category.as_str()] {
        cached(&edge, &wp.host, p);
    }
    ensure_user(EDITOR, EDITOR_PASS, "editor");
    let cookies = login(edge.addr, &wp.host, EDITOR, EDITOR_PASS);
    let session = (cookies.clone(), rest_nonce(edge.addr, &wp.host, &cookies));
    let before = plugin_purges(&edge);
    rest_call(
        edge.addr,
        &wp.host,
        &session,
        "DELETE",
        &format!("/wp-json/wp/v2/posts/{id}"),
        "",
    );
    wait_for_purge(&edge, before, Duration::from_secs(30));
    assert_eq!(
        get(edge.addr, &wp.host, &post).status,
        404,
        "the trashed post's page is gone"
    );
    let home = anon(&edge, &wp.host, "/");
    assert!(
        !home.text().contains(&format!("Plugin post {tag} first")),
        "the home page no longer lists it ({})",
        home.cache_status()
    );
}
