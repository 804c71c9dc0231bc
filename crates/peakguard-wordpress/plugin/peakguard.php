<?php
/**
 * Plugin Name: peakguard
 * Description: Keeps peakguard's cache right after every edit: tags each page with what it shows, purges exactly what a change affects, and puts cache status, purges and maintenance in the admin bar. A Site Health test says whether peakguard is in front and reachable.
 * Version: {{PEAKGUARD_VERSION}}
 * Requires at least: 6.0
 * Requires PHP: 7.4
 * Author: peakguard
 * License: Apache-2.0
 *
 * A must-use plugin (wp-content/mu-plugins/), shipped with peakguard and versioned with it.
 * `peakguard wordpress install` writes it with its settings; installed by hand
 * (`peakguard wordpress plugin > wp-content/mu-plugins/peakguard.php`), it reads them from
 * wp-config.php:
 *
 *   define('PEAKGUARD_ADMIN_URL', 'http://127.0.0.1:9080'); // the edge's admin API
 *   define('PEAKGUARD_PURGE_TOKEN', '...');      // an [[admin.tokens]] entry with ["purge"]
 *   define('PEAKGUARD_ADMIN_BAR_TOKEN', '...');  // optional: ["maintenance", "read"]
 *   define('PEAKGUARD_HOST', 'shop.example');    // optional: the host the edge caches
 *                                                // this site under (default: home URL's)
 *
 * Tags (X-Cache-Tags): post-ID, post-term-TERM and post-user-AUTHOR on a single page;
 * home, term-TERM, user-AUTHOR, archive-date, archive-TYPE, feed, search and post-ID of each
 * listed post on lists; product-ID and product-cat-TERM where WooCommerce is active; rest on
 * REST API answers. A change purges the tags of what shows it (batched, sent after the
 * response); purges the edge could not take are kept and retried, and shown as a notice.
 */

defined('ABSPATH') || exit;
if (defined('PEAKGUARD_PLUGIN_VERSION')) {
    return; // a second copy (mu-plugins and plugins both): the first one serves
}

// peakguard:settings

const PEAKGUARD_PLUGIN_VERSION = '{{PEAKGUARD_VERSION}}';

/** The settings, from the constants above or wp-config.php. */
final class Peakguard_Settings
{
    public static function admin_url(): string
    {
        return defined('PEAKGUARD_ADMIN_URL') ? rtrim((string) PEAKGUARD_ADMIN_URL, '/') : '';
    }

    public static function purge_token(): string
    {
        return defined('PEAKGUARD_PURGE_TOKEN') ? (string) PEAKGUARD_PURGE_TOKEN : '';
    }

    public static function admin_bar_token(): string
    {
        return defined('PEAKGUARD_ADMIN_BAR_TOKEN') ? (string) PEAKGUARD_ADMIN_BAR_TOKEN : '';
    }

    public static function host(): string
    {
        if (defined('PEAKGUARD_HOST') && PEAKGUARD_HOST !== '') {
            return strtolower((string) PEAKGUARD_HOST);
        }
        $host = wp_parse_url(home_url('/'), PHP_URL_HOST);
        return is_string($host) ? strtolower($host) : '';
    }

    public static function configured(): bool
    {
        return self::admin_url() !== '' && self::purge_token() !== '';
    }
}

/**
 * The admin API client: one HTTP/1.0 request on its own socket, short timeouts. Not the
 * WordPress HTTP API: WP_HTTP_BLOCK_EXTERNAL (common on hardened sites) would refuse the
 * loopback address of the edge, and nothing here may wait long.
 */
final class Peakguard_Api
{
    /**
     * @return array{0:int,1:string} status (0: not reached) and body, or error text.
     */
    public static function call(string $method, string $path, string $token, float $timeout = 2.0): array
    {
        $base = Peakguard_Settings::admin_url();
        $parts = wp_parse_url($base);
        if (!is_array($parts) || empty($parts['host'])) {
            return array(0, 'PEAKGUARD_ADMIN_URL is not a URL: ' . $base);
        }
        $tls = isset($parts['scheme']) && $parts['scheme'] === 'https';
        $port = isset($parts['port']) ? (int) $parts['port'] : ($tls ? 443 : 80);
        $host = $parts['host'];
        $prefix = isset($parts['path']) ? rtrim($parts['path'], '/') : '';
        $errno = 0;
        $errstr = '';
        $socket = @fsockopen(($tls ? 'ssl://' : '') . $host, $port, $errno, $errstr, $timeout);
        if (!$socket) {
            return array(0, sprintf('cannot connect to %s: %s', $base, $errstr !== '' ? $errstr : 'error ' . $errno));
        }
        stream_set_timeout($socket, (int) ceil($timeout));
        $request = $method . ' ' . $prefix . $path . " HTTP/1.0\r\n"
            . 'Host: ' . $host . ':' . $port . "\r\n"
            . 'Authorization: Bearer ' . $token . "\r\n"
            . 'User-Agent: peakguard-wordpress/' . PEAKGUARD_PLUGIN_VERSION . "\r\n"
            . "Content-Length: 0\r\nConnection: close\r\n\r\n";
        if (fwrite($socket, $request) === false) {
            fclose($socket);
            return array(0, 'cannot write to ' . $base);
        }
        $response = '';
        while (!feof($socket) && strlen($response) < 65536) {
            $chunk = fread($socket, 8192);
            if ($chunk === false || $chunk === '') {
                $meta = stream_get_meta_data($socket);
                if (!empty($meta['timed_out'])) {
                    fclose($socket);
                    return array(0, sprintf('%s did not answer within %.1f s', $base, $timeout));
                }
                if ($chunk === false) {
                    break;
                }
                continue;
            }
            $response .= $chunk;
        }
        fclose($socket);
        if (!preg_match('#^HTTP/\d\.\d (\d{3})#', $response, $m)) {
            return array(0, $base . ' did not answer HTTP');
        }
        $split = strpos($response, "\r\n\r\n");
        return array((int) $m[1], $split === false ? '' : substr($response, $split + 4));
    }

    /** The error text of a JSON answer, or the answer itself. */
    public static function error_of(array $result): string
    {
        $decoded = json_decode($result[1], true);
        if (is_array($decoded) && isset($decoded['error'])) {
            return 'HTTP ' . $result[0] . ': ' . $decoded['error'];
        }
        return $result[0] === 0 ? $result[1] : 'HTTP ' . $result[0];
    }
}

/** What a response shows, as purge tags in X-Cache-Tags. */
final class Peakguard_Tags
{
    /** At most this many tags in one header (a list of many posts keeps its first ones). */
    const MAX = 200;

    public static function register(): void
    {
        add_action('template_redirect', array(__CLASS__, 'send'), 0);
        add_filter('rest_post_dispatch', array(__CLASS__, 'rest'), 10, 1);
    }

    public static function send(): void
    {
        if (headers_sent() || is_admin() || !in_array(self::method(), array('GET', 'HEAD'), true)) {
            return;
        }
        $tags = self::for_query();
        if ($tags) {
            // Added beside any other plugin's tags, never replacing them.
            header('X-Cache-Tags: ' . implode(',', array_slice($tags, 0, self::MAX)), false);
        }
    }

    /** @param mixed $response */
    public static function rest($response)
    {
        if ($response instanceof WP_REST_Response && self::method() === 'GET') {
            $response->header('X-Cache-Tags', 'rest');
        }
        return $response;
    }

    private static function method(): string
    {
        return isset($_SERVER['REQUEST_METHOD']) ? strtoupper((string) $_SERVER['REQUEST_METHOD']) : 'GET';
    }

    /** @return string[] */
    public static function for_query(): array
    {
        global $wp_query;
        $tags = array();
        if (is_front_page() || is_home()) {
            $tags[] = 'home';
        }
        if (is_singular()) {
            $post = get_queried_object();
            if ($post instanceof WP_Post) {
                $tags = array_merge($tags, self::of_shown_post($post));
            }
        } else {
            if (is_category() || is_tag() || is_tax()) {
                $term = get_queried_object();
                if ($term instanceof WP_Term) {
                    $tags[] = 'term-' . $term->term_id;
                    if ($term->taxonomy === 'product_cat') {
                        $tags[] = 'product-cat-' . $term->term_id;
                    }
                }
            }
            if (is_author()) {
                $tags[] = 'user-' . (int) get_queried_object_id();
            }
            if (is_date()) {
                $tags[] = 'archive-date';
            }
            if (is_post_type_archive()) {
                foreach ((array) get_query_var('post_type') as $type) {
                    $tags[] = 'archive-' . sanitize_key($type);
                }
            }
            if (is_search()) {
                $tags[] = 'search';
            }
            if (is_feed()) {
                $tags[] = 'feed';
            }
            if (is_404()) {
                $tags[] = '404';
            }
            if ($wp_query instanceof WP_Query && is_array($wp_query->posts)) {
                foreach ($wp_query->posts as $listed) {
                    if ($listed instanceof WP_Post) {
                        $tags[] = 'post-' . $listed->ID;
                    }
                }
            }
        }
        return array_values(array_unique($tags));
    }

    /**
     * A single post's page shows the post, the names of its terms and its author.
     *
     * @return string[]
     */
    private static function of_shown_post(WP_Post $post): array
    {
        $tags = array('post-' . $post->ID, 'post-user-' . (int) $post->post_author);
        foreach (Peakguard_Purges::term_ids($post) as $term_id) {
            $tags[] = 'post-term-' . $term_id;
        }
        if ($post->post_type === 'product') {
            $tags[] = 'product-' . $post->ID;
        }
        return $tags;
    }
}

/**
 * What each change purges, collected over one request and sent once, after the response.
 * Purges the edge could not take wait in the `peakguard_pending` option (bounded: past
 * MAX_PENDING tags it becomes one "purge everything") and are retried.
 */
/**
 * The order a WooCommerce confirmation page shows, for the edge's statistics: revenue per
 * campaign without any script. The edge reads X-Peakguard-Order and takes it off the
 * response; nothing of the order but its id, total and currency is sent.
 */
final class Peakguard_Orders
{
    public static function register(): void
    {
        add_action('template_redirect', array(__CLASS__, 'send'), 0);
    }

    public static function send(): void
    {
        if (headers_sent() || !function_exists('is_wc_endpoint_url') || !is_wc_endpoint_url('order-received')) {
            return;
        }
        $id = absint(get_query_var('order-received'));
        $order = $id ? wc_get_order($id) : false;
        $key = isset($_GET['key']) ? sanitize_text_field(wp_unslash($_GET['key'])) : '';
        // Only on the buyer's own confirmation (WooCommerce checks the same key to show it).
        if (!$order || $key === '' || !hash_equals((string) $order->get_order_key(), $key)) {
            return;
        }
        $currency = strtoupper((string) $order->get_currency());
        if (!preg_match('/^[A-Z]{3}$/', $currency)) {
            return;
        }
        header(sprintf(
            'X-Peakguard-Order: id=%d; total=%s; currency=%s',
            (int) $order->get_id(),
            number_format((float) $order->get_total(), 2, '.', ''),
            $currency
        ));
    }
}

final class Peakguard_Purges
{
    const MAX_PENDING = 500;
    const OPTION = 'peakguard_pending';
    /** Post types whose change shows everywhere (block theme templates, menus, styles). */
    const SITE_WIDE_TYPES = array('wp_template', 'wp_template_part', 'wp_global_styles', 'wp_navigation', 'nav_menu_item');
    /** Options whose change shows on every page. */
    const SITE_WIDE_OPTIONS = array('blogname', 'blogdescription', 'show_on_front', 'page_on_front', 'page_for_posts', 'posts_per_page', 'permalink_structure', 'date_format', 'time_format', 'sidebars_widgets', 'site_icon', 'stylesheet', 'template');
    /** WooCommerce meta that a price or stock change writes. */
    const PRODUCT_META = array('_price', '_regular_price', '_sale_price', '_stock', '_stock_status');

    /** @var array<string,bool> */
    private static $tags = array();
    /** @var bool */
    private static $all = false;
    /** @var bool */
    private static $scheduled = false;
    /** @var bool */
    private static $retry = false;

    public static function register(): void
    {
        add_action('transition_post_status', array(__CLASS__, 'on_post_status'), 10, 3);
        add_action('before_delete_post', array(__CLASS__, 'on_delete'), 10, 1);
        add_action('set_object_terms', array(__CLASS__, 'on_object_terms'), 10, 6);
        add_action('transition_comment_status', array(__CLASS__, 'on_comment_status'), 10, 3);
        add_action('wp_insert_comment', array(__CLASS__, 'on_new_comment'), 10, 2);
        add_action('edit_comment', array(__CLASS__, 'on_comment_edit'), 10, 1);
        add_action('edited_term', array(__CLASS__, 'on_term'), 10, 3);
        add_action('pre_delete_term', array(__CLASS__, 'on_term_deleted'), 10, 2);
        add_action('wp_update_nav_menu', array(__CLASS__, 'everything'), 10, 0);
        add_action('customize_save_after', array(__CLASS__, 'everything'), 10, 0);
        add_action('switch_theme', array(__CLASS__, 'everything'), 10, 0);
        add_action('updated_option', array(__CLASS__, 'on_option'), 10, 1);
        add_action('added_post_meta', array(__CLASS__, 'on_meta'), 10, 3);
        add_action('updated_post_meta', array(__CLASS__, 'on_meta'), 10, 3);
        add_action('deleted_post_meta', array(__CLASS__, 'on_meta'), 10, 3);
        foreach (array('woocommerce_product_set_stock', 'woocommerce_variation_set_stock', 'woocommerce_product_set_stock_status', 'woocommerce_variation_set_stock_status') as $hook) {
            add_action($hook, array(__CLASS__, 'on_product_stock'), 10, 1);
        }
        add_action('peakguard_retry', array(__CLASS__, 'retry_now'), 10, 0);
        // Purges waiting from an earlier request: retried after this one when they are due.
        add_action('init', array(__CLASS__, 'retry_if_due'), 1);
    }

    /**
     * The terms of a post in its public taxonomies.
     *
     * @return int[]
     */
    public static function term_ids(WP_Post $post): array
    {
        $ids = array();
        foreach (get_object_taxonomies($post->post_type, 'objects') as $taxonomy) {
            if (!$taxonomy->public) {
                continue;
            }
            $terms = get_the_terms($post, $taxonomy->name);
            if (is_array($terms)) {
                foreach ($terms as $term) {
                    $ids[] = (int) $term->term_id;
                }
            }
        }
        return $ids;
    }

    /** @param string[] $tags */
    public static function add(array $tags): void
    {
        foreach ($tags as $tag) {
            self::$tags[$tag] = true;
        }
        self::schedule();
    }

    public static function everything(): void
    {
        self::$all = true;
        self::schedule();
    }

    /**
     * Everything a post shows up in: its page, lists, feeds, its terms' and author's
     * archives; for a product, the shop and its categories too.
     *
     * @return string[]
     */
    public static function of_post(WP_Post $post): array
    {
        $tags = array('post-' . $post->ID, 'home', 'feed', 'rest', 'archive-date',
            'archive-' . sanitize_key($post->post_type), 'user-' . (int) $post->post_author);
        foreach (self::term_ids($post) as $term_id) {
            $tags[] = 'term-' . $term_id;
        }
        if ($post->post_type === 'product') {
            $tags[] = 'product-' . $post->ID;
        }
        return $tags;
    }

    public static function on_post_status(string $new, string $old, WP_Post $post): void
    {
        if (in_array($post->post_type, self::SITE_WIDE_TYPES, true)) {
            if ($new === 'publish' || $old === 'publish') {
                self::everything();
            }
            return;
        }
        if (wp_is_post_revision($post) || wp_is_post_autosave($post) || !is_post_type_viewable($post->post_type)) {
            return;
        }
        // Published, updated while published, unpublished, trashed.
        if ($new === 'publish' || $old === 'publish') {
            self::add(self::of_post($post));
        }
    }

    /** @param int $post_id */
    public static function on_delete($post_id): void
    {
        $post = get_post($post_id);
        if ($post instanceof WP_Post && $post->post_status === 'publish' && is_post_type_viewable($post->post_type)) {
            self::add(self::of_post($post));
        }
    }

    /**
     * A published post moved between terms: both the terms it left and those it joined.
     *
     * @param int $object_id
     * @param mixed $terms
     * @param int[] $tt_ids
     * @param string $taxonomy
     * @param bool $append
     * @param int[] $old_tt_ids
     */
    public static function on_object_terms($object_id, $terms, $tt_ids, $taxonomy, $append, $old_tt_ids): void
    {
        $post = get_post($object_id);
        if (!$post instanceof WP_Post || $post->post_status !== 'publish') {
            return;
        }
        $tags = array();
        foreach (array_merge((array) $tt_ids, (array) $old_tt_ids) as $tt_id) {
            $term = get_term_by('term_taxonomy_id', (int) $tt_id, $taxonomy);
            if ($term instanceof WP_Term) {
                $tags[] = 'term-' . $term->term_id;
            }
        }
        if ($tags) {
            $tags[] = 'post-' . $post->ID;
            self::add($tags);
        }
    }

    /** @param string $new @param string $old @param WP_Comment $comment */
    public static function on_comment_status($new, $old, $comment): void
    {
        if (($new === 'approved' || $old === 'approved') && $comment instanceof WP_Comment) {
            self::add(array('post-' . (int) $comment->comment_post_ID, 'feed', 'rest'));
        }
    }

    /** @param int $id @param WP_Comment $comment */
    public static function on_new_comment($id, $comment): void
    {
        if ($comment instanceof WP_Comment && (string) $comment->comment_approved === '1') {
            self::add(array('post-' . (int) $comment->comment_post_ID, 'feed', 'rest'));
        }
    }

    /** @param int $id */
    public static function on_comment_edit($id): void
    {
        $comment = get_comment($id);
        if ($comment instanceof WP_Comment && (string) $comment->comment_approved === '1') {
            self::add(array('post-' . (int) $comment->comment_post_ID, 'rest'));
        }
    }

    /** @param int $term_id @param int $tt_id @param string $taxonomy */
    public static function on_term($term_id, $tt_id, $taxonomy): void
    {
        $tags = array('term-' . (int) $term_id, 'post-term-' . (int) $term_id, 'rest');
        if ($taxonomy === 'nav_menu') {
            self::everything();
            return;
        }
        if ($taxonomy === 'product_cat') {
            $tags[] = 'product-cat-' . (int) $term_id;
        }
        self::add($tags);
    }

    /** @param int $term_id @param string $taxonomy */
    public static function on_term_deleted($term_id, $taxonomy): void
    {
        self::on_term($term_id, 0, $taxonomy);
    }

    /** @param string $option */
    public static function on_option($option): void
    {
        if (in_array($option, self::SITE_WIDE_OPTIONS, true)
            || strpos($option, 'widget_') === 0
            || strpos($option, 'theme_mods_') === 0) {
            self::everything();
        }
    }

    /** @param int $meta_id @param int $object_id @param string $meta_key */
    public static function on_meta($meta_id, $object_id, $meta_key): void
    {
        if (in_array($meta_key, self::PRODUCT_META, true)) {
            self::product_changed((int) $object_id);
        }
    }

    /** @param mixed $product a WC_Product */
    public static function on_product_stock($product): void
    {
        if (is_object($product) && method_exists($product, 'get_id')) {
            self::product_changed((int) $product->get_id());
        }
    }

    private static function product_changed(int $id): void
    {
        $post = get_post($id);
        if (!$post instanceof WP_Post) {
            return;
        }
        if ($post->post_type === 'product_variation' && $post->post_parent) {
            $post = get_post($post->post_parent);
            if (!$post instanceof WP_Post) {
                return;
            }
        }
        if ($post->post_type !== 'product' || $post->post_status !== 'publish') {
            return;
        }
        $tags = self::of_post($post);
        foreach (self::term_ids($post) as $term_id) {
            $tags[] = 'product-cat-' . $term_id;
        }
        self::add($tags);
    }

    private static function schedule(): void
    {
        if (self::$scheduled) {
            return;
        }
        self::$scheduled = true;
        // A PHP shutdown function registered now runs after WordPress's own `shutdown`
        // action: the page is complete by then.
        register_shutdown_function(array(__CLASS__, 'flush'));
    }

    /** Purges waiting from earlier requests are retried after this one, when due. */
    public static function retry_if_due(): void
    {
        $pending = get_option(self::OPTION);
        if (is_array($pending) && (int) ($pending['next'] ?? 0) <= time()) {
            self::$retry = true;
            self::schedule();
        }
    }

    /** The cron hook and the notice's "retry now": purge what waits, now. */
    public static function retry_now(): bool
    {
        self::$retry = true;
        return self::deliver(false);
    }

    /** After the response: the client has its answer before the edge is called. */
    public static function flush(): void
    {
        if (function_exists('fastcgi_finish_request')) {
            while (ob_get_level() > 0) {
                if (!@ob_end_flush()) {
                    break; // a buffer that cannot be removed: fastcgi_finish_request sends it
                }
            }
            fastcgi_finish_request();
            self::deliver(true);
        } else {
            self::deliver(false);
        }
    }

    /**
     * Sends this request's purges and any that wait; on failure keeps them for later.
     * With `$patient` (the client already has its answer), three tries over two seconds.
     */
    private static function deliver(bool $patient): bool
    {
        if (!Peakguard_Settings::configured()) {
            return false; // nothing to send to; waiting purges stay where they are
        }
        $tags = array_keys(self::$tags);
        $all = self::$all;
        self::$tags = array();
        self::$all = false;
        $waiting = null;
        if (self::$retry) {
            self::$retry = false;
            $waiting = self::take_pending();
            if (is_array($waiting)) {
                $all = $all || !empty($waiting['all']);
                $tags = array_values(array_unique(array_merge($tags, (array) $waiting['tags'])));
            }
        }
        if (!$all && !$tags) {
            return true;
        }
        if (count($tags) > self::MAX_PENDING) {
            $all = true;
        }
        $error = '';
        $delays = $patient ? array(0, 500000, 1500000) : array(0);
        foreach ($delays as $delay) {
            if ($delay) {
                usleep($delay);
            }
            $error = self::send($all, $tags);
            if ($error === '') {
                return true;
            }
        }
        self::keep_pending($all, $tags, $error, is_array($waiting) ? $waiting : null);
        return false;
    }

    /** @param string[] $tags @return string '' when the edge took the purge, else why not */
    private static function send(bool $all, array $tags): string
    {
        $host = rawurlencode(Peakguard_Settings::host());
        $query = $all ? 'all=1' : 'tags=' . rawurlencode(implode(',', $tags));
        $result = Peakguard_Api::call('POST', '/purge?' . $query . '&host=' . $host, Peakguard_Settings::purge_token());
        return $result[0] === 200 ? '' : Peakguard_Api::error_of($result);
    }

    /** Takes the waiting purges (others see none until they are put back on failure). */
    private static function take_pending(): ?array
    {
        global $wpdb;
        $lock = 'peakguard_pending_' . get_current_blog_id();
        if ((int) $wpdb->get_var($wpdb->prepare('SELECT GET_LOCK(%s, 2)', $lock)) !== 1) {
            return null;
        }
        wp_cache_delete(self::OPTION, 'options');
        wp_cache_delete('alloptions', 'options');
        $pending = get_option(self::OPTION);
        if (is_array($pending)) {
            delete_option(self::OPTION);
        }
        $wpdb->query($wpdb->prepare('SELECT RELEASE_LOCK(%s)', $lock));
        return is_array($pending) ? $pending : null;
    }

    /** @param string[] $tags */
    private static function keep_pending(bool $all, array $tags, string $error, ?array $was): void
    {
        global $wpdb;
        $lock = 'peakguard_pending_' . get_current_blog_id();
        $locked = (int) $wpdb->get_var($wpdb->prepare('SELECT GET_LOCK(%s, 2)', $lock)) === 1;
        wp_cache_delete(self::OPTION, 'options');
        wp_cache_delete('alloptions', 'options');
        $pending = get_option(self::OPTION);
        if (!is_array($pending)) {
            $pending = array('all' => false, 'tags' => array(), 'since' => $was ? (int) $was['since'] : time(), 'attempts' => $was ? (int) $was['attempts'] : 0);
        }
        $pending['all'] = !empty($pending['all']) || $all;
        $pending['tags'] = array_values(array_unique(array_merge((array) $pending['tags'], $tags)));
        if (count($pending['tags']) > self::MAX_PENDING) {
            $pending['all'] = true;
        }
        if ($pending['all']) {
            $pending['tags'] = array();
        }
        $pending['attempts'] = (int) $pending['attempts'] + 1;
        $pending['error'] = $error;
        $pending['last'] = time();
        // 10 s, 20 s, 40 s … at most 5 minutes between tries.
        $pending['next'] = time() + min(300, 10 * (1 << min(5, $pending['attempts'] - 1)));
        // Autoloaded: checking for waiting purges costs no query on each request.
        update_option(self::OPTION, $pending, true);
        if ($locked) {
            $wpdb->query($wpdb->prepare('SELECT RELEASE_LOCK(%s)', $lock));
        }
        if (!wp_next_scheduled('peakguard_retry')) {
            wp_schedule_single_event($pending['next'], 'peakguard_retry');
        }
    }
}

/** The admin bar, the admin notice of purges that wait, the admin-post actions. */
final class Peakguard_Admin
{
    public static function register(): void
    {
        add_action('admin_bar_menu', array(__CLASS__, 'admin_bar'), 100);
        add_action('admin_notices', array(__CLASS__, 'notices'));
        foreach (array('purge_page', 'purge_all', 'maintenance', 'retry') as $action) {
            add_action('admin_post_peakguard_' . $action, array(__CLASS__, 'action_' . $action));
        }
    }

    private static function allowed(): bool
    {
        return current_user_can('manage_options');
    }

    /** The URL visitors request for the page being shown. */
    private static function current_url(): string
    {
        $uri = isset($_SERVER['REQUEST_URI']) ? (string) wp_unslash($_SERVER['REQUEST_URI']) : '/';
        return 'http://' . Peakguard_Settings::host() . $uri;
    }

    private static function action_url(string $action, array $args = array()): string
    {
        $args['action'] = 'peakguard_' . $action;
        return wp_nonce_url(add_query_arg(array_map('rawurlencode', $args), admin_url('admin-post.php')), 'peakguard_' . $action);
    }

    /** @param WP_Admin_Bar $bar */
    public static function admin_bar($bar): void
    {
        if (!self::allowed() || !Peakguard_Settings::configured()) {
            return;
        }
        $status = 'peakguard';
        $maintenance = null;
        $read_token = Peakguard_Settings::admin_bar_token();
        if ($read_token !== '') {
            $m = Peakguard_Api::call('GET', '/maintenance', $read_token, 1.0);
            if ($m[0] === 200) {
                $decoded = json_decode($m[1], true);
                $maintenance = is_array($decoded) && !empty($decoded['on']);
            }
            if (!is_admin()) {
                $c = Peakguard_Api::call('GET', '/cache?url=' . rawurlencode(self::current_url()), $read_token, 1.0);
                $decoded = json_decode($c[1], true);
                if ($c[0] === 200 && is_array($decoded)) {
                    $status = (int) $decoded['stored_variants'] > 0 ? 'Cache: this page is stored' : 'Cache: this page is not stored';
                } else {
                    $status = 'Cache: edge unreachable';
                }
            }
        }
        if ($maintenance) {
            $status .= ' · MAINTENANCE ON';
        }
        $bar->add_node(array('id' => 'peakguard', 'title' => esc_html($status), 'href' => false));
        if (!is_admin()) {
            $bar->add_node(array('parent' => 'peakguard', 'id' => 'peakguard-purge-page', 'title' => 'Purge this page',
                'href' => self::action_url('purge_page', array('url' => self::current_url()))));
        }
        $bar->add_node(array('parent' => 'peakguard', 'id' => 'peakguard-purge-all', 'title' => 'Purge everything',
            'href' => self::action_url('purge_all')));
        if ($read_token !== '' && $maintenance !== null) {
            $bar->add_node(array('parent' => 'peakguard', 'id' => 'peakguard-maintenance',
                'title' => $maintenance ? 'Maintenance: switch off' : 'Maintenance: switch on',
                'href' => self::action_url('maintenance', array('state' => $maintenance ? 'off' : 'on'))));
        }
    }

    private static function done(string $message): void
    {
        $back = wp_get_referer();
        if (!$back) {
            $back = admin_url();
        }
        set_transient('peakguard_notice_' . get_current_user_id(), $message, 300);
        wp_safe_redirect($back);
        exit;
    }

    private static function check(string $action): void
    {
        if (!self::allowed()) {
            wp_die('peakguard: only administrators may do this.', 403);
        }
        check_admin_referer('peakguard_' . $action);
    }

    public static function action_purge_page(): void
    {
        self::check('purge_page');
        $url = isset($_GET['url']) ? esc_url_raw(wp_unslash((string) $_GET['url'])) : '';
        $r = Peakguard_Api::call('POST', '/purge?url=' . rawurlencode($url), Peakguard_Settings::purge_token());
        self::done($r[0] === 200 ? 'peakguard: purged ' . $url : 'peakguard: the purge failed: ' . Peakguard_Api::error_of($r));
    }

    public static function action_purge_all(): void
    {
        self::check('purge_all');
        $r = Peakguard_Api::call('POST', '/purge?all=1&host=' . rawurlencode(Peakguard_Settings::host()), Peakguard_Settings::purge_token());
        self::done($r[0] === 200 ? 'peakguard: purged everything of ' . Peakguard_Settings::host() : 'peakguard: the purge failed: ' . Peakguard_Api::error_of($r));
    }

    public static function action_maintenance(): void
    {
        self::check('maintenance');
        $state = (isset($_GET['state']) && $_GET['state'] === 'on') ? 'on' : 'off';
        $r = Peakguard_Api::call('POST', '/maintenance?state=' . $state, Peakguard_Settings::admin_bar_token());
        self::done($r[0] === 200 ? 'peakguard: maintenance is ' . $state : 'peakguard: maintenance could not be switched ' . $state . ': ' . Peakguard_Api::error_of($r));
    }

    public static function action_retry(): void
    {
        if (!current_user_can('edit_posts')) {
            wp_die('peakguard: you may not do this.', 403);
        }
        check_admin_referer('peakguard_retry');
        self::done(Peakguard_Purges::retry_now() ? 'peakguard: the waiting purges were delivered' : 'peakguard: the edge is still unreachable; the purges keep waiting');
    }

    public static function notices(): void
    {
        if (!current_user_can('edit_posts')) {
            return;
        }
        $key = 'peakguard_notice_' . get_current_user_id();
        $message = get_transient($key);
        if (is_string($message) && $message !== '') {
            delete_transient($key);
            printf('<div class="notice notice-info is-dismissible"><p>%s</p></div>', esc_html($message));
        }
        if (!Peakguard_Settings::configured()) {
            if (current_user_can('manage_options')) {
                echo '<div class="notice notice-warning"><p>' . esc_html('peakguard: the plugin has no settings, so the cache is not purged after edits. Run `peakguard wordpress install` on the server, or define PEAKGUARD_ADMIN_URL and PEAKGUARD_PURGE_TOKEN in wp-config.php.') . '</p></div>';
            }
            return;
        }
        $pending = get_option(Peakguard_Purges::OPTION);
        if (!is_array($pending)) {
            return;
        }
        $what = !empty($pending['all']) ? 'a purge of the whole site' : sprintf('purges of %d tag(s)', count((array) $pending['tags']));
        printf(
            '<div class="notice notice-error peakguard-pending"><p>%s <a href="%s">%s</a></p></div>',
            esc_html(sprintf(
                'peakguard: %s could not be delivered to the edge since %s (%d attempt(s); last error: %s). Visitors may see old pages until they are; they are retried on their own.',
                $what,
                wp_date('Y-m-d H:i:s', (int) $pending['since']),
                (int) $pending['attempts'],
                (string) ($pending['error'] ?? '')
            )),
            esc_url(wp_nonce_url(admin_url('admin-post.php?action=peakguard_retry'), 'peakguard_retry')),
            esc_html('Retry now')
        );
    }
}

/** Site Health: is peakguard in front of the site, and does its admin API answer? */
final class Peakguard_Health
{
    public static function register(): void
    {
        add_filter('site_status_tests', array(__CLASS__, 'tests'));
    }

    /** @param array $tests */
    public static function tests($tests)
    {
        $tests['direct']['peakguard'] = array('label' => 'peakguard', 'test' => array(__CLASS__, 'run'));
        return $tests;
    }

    public static function run(): array
    {
        $result = array(
            'label' => 'peakguard is in front of this site and reachable',
            'status' => 'good',
            'badge' => array('label' => 'Performance', 'color' => 'blue'),
            'description' => '',
            'actions' => '',
            'test' => 'peakguard',
        );
        $problems = array();
        $in_front = isset($_SERVER['HTTP_X_PEAKGUARD_EDGE']);
        if (!$in_front) {
            $problems[] = 'This page did not come through peakguard (no X-Peakguard-Edge header): visitors may reach WordPress directly, uncached and unprotected.';
        }
        if (!Peakguard_Settings::configured()) {
            $problems[] = 'The plugin has no settings (PEAKGUARD_ADMIN_URL, PEAKGUARD_PURGE_TOKEN): edits are not purged from the cache. Run `peakguard wordpress install` on the server.';
        } else {
            $r = Peakguard_Api::call('GET', '/token', Peakguard_Settings::purge_token());
            $who = json_decode($r[1], true);
            if ($r[0] !== 200 || !is_array($who)) {
                $problems[] = sprintf('The admin API at %s does not answer the purge token: %s.', Peakguard_Settings::admin_url(), Peakguard_Api::error_of($r));
            } else {
                $edge_version = (string) ($who['version'] ?? '');
                if ($edge_version !== '' && $edge_version !== PEAKGUARD_PLUGIN_VERSION) {
                    $problems[] = sprintf('This plugin is version %s and the edge %s: run `peakguard wordpress install` again so they match.', PEAKGUARD_PLUGIN_VERSION, $edge_version);
                }
                $result['description'] .= sprintf('<p>%s</p>', esc_html(sprintf(
                    'The admin API at %s answers (peakguard %s, token "%s" with %s).',
                    Peakguard_Settings::admin_url(),
                    (string) ($who['version'] ?? '?'),
                    (string) ($who['name'] ?? '?'),
                    implode(', ', (array) ($who['permissions'] ?? array()))
                )));
            }
            $pending = get_option(Peakguard_Purges::OPTION);
            if (is_array($pending)) {
                $problems[] = sprintf('Purges have been waiting for the edge since %s.', wp_date('Y-m-d H:i:s', (int) $pending['since']));
            }
        }
        if ($problems) {
            $result['status'] = 'critical';
            $result['label'] = $in_front ? 'peakguard is in front of this site but cannot be reached' : 'peakguard is not in front of this site, or not reachable';
            foreach ($problems as $p) {
                $result['description'] .= sprintf('<p>%s</p>', esc_html($p));
            }
        }
        return $result;
    }
}

Peakguard_Tags::register();
Peakguard_Orders::register();
Peakguard_Purges::register();
Peakguard_Admin::register();
Peakguard_Health::register();
