#!/usr/bin/env bash
# A private, real WordPress on loopback for peakguard's end-to-end tests and benchmarks:
# Debian's wordpress + nginx + PHP-FPM (4 static workers) + MariaDB, each started by us on
# our own ports and stopped by PID. Nothing host-wide is started or changed, except one
# config file /etc/wordpress/config-peakguard-e2e-HASH.php (selected by WORDPRESS_CONFIG),
# removed again by `down`.
#
#   scripts/wp-env.sh install        apt packages (idempotent)
#   scripts/wp-env.sh up             start everything, install WordPress + 200 posts
#   scripts/wp-env.sh down           stop what `up` started
#   scripts/wp-env.sh db-stop|db-start
#   scripts/wp-env.sh update-post SLUG TEXT    change a post's content (prints its ID)
#   scripts/wp-env.sh php CODE       run PHP with WordPress loaded (set a transient…)
#   scripts/wp-env.sh env            print the variables the tests read
#
# Environment: PG_E2E_DIR (default /tmp/peakguard-e2e), PG_E2E_NGINX_PORT (24180),
# PG_E2E_DB_PORT (24106), PG_E2E_FPM_PM (static, or dynamic: PHP-FPM then logs when it
# reaches max_children). WordPress answers for Host: wp.test.
set -euo pipefail

DIR=${PG_E2E_DIR:-/tmp/peakguard-e2e}
NGINX_PORT=${PG_E2E_NGINX_PORT:-24180}
DB_PORT=${PG_E2E_DB_PORT:-24106}
FPM_PM=${PG_E2E_FPM_PM:-static}
# One WordPress config per environment directory, so two environments never share one.
CONFIG_NAME=peakguard-e2e-$(printf %s "$DIR" | md5sum | cut -c1-8)
WP_CONFIG=/etc/wordpress/config-$CONFIG_NAME.php
HOST=wp.test
PHP_FPM=$(command -v php-fpm8.2 || ls /usr/sbin/php-fpm* 2>/dev/null | head -n1 || true)

log() { printf '[wp-env] %s\n' "$*" >&2; }

install_packages() {
  local need=()
  for bin in nginx mariadbd php wrk curl cmake promtool prometheus prometheus-alertmanager varnishd chromium openssl restic rclone; do
    command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
  done
  # The monitor's tests deliver e-mail to a real SMTP server (aiosmtpd, Debian's python3).
  /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
  # The WAF: libmodsecurity (linked at build time through pkg-config), Debian's Core Rule Set,
  # and nginx's ModSecurity module for the side-by-side benchmark.
  [ -f /usr/include/modsecurity/modsecurity.h ] || need+=(libmodsecurity-dev)
  [ -d /usr/share/modsecurity-crs/rules ] || need+=(modsecurity-crs)
  command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
  [ -f /usr/share/nginx/modules-available/mod-http-modsecurity.conf ] || [ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || need+=(libnginx-mod-http-modsecurity)
  # CRS releases: gpgv verifies signatures (peakguard waf crs install), gpg makes the test's
  # signing key.
  command -v gpgv >/dev/null 2>&1 || need+=(gpgv)
  command -v gpg >/dev/null 2>&1 || need+=(gnupg)
  # The monitor's dns probe is tested against a real DNS server on loopback.
  command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
  [ -n "$PHP_FPM" ] || need+=(php-fpm)
  [ -d /usr/share/wordpress ] || need+=(wordpress)
  php -m 2>/dev/null | grep -qi '^simplexml$' || need+=(php-xml)   # WordPress sitemaps need SimpleXML
  install_node_tools
  if [ ${#need[@]} -eq 0 ]; then log "packages present"; return; fi
  log "installing Debian packages (missing: ${need[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # php-fpm first, or apt pulls in Apache's PHP module for `wordpress`.
  apt-get install -y -q php-fpm >/dev/null
  apt-get install -y -q cmake wordpress php-mysql php-xml mariadb-server nginx wrk curl prometheus prometheus-alertmanager python3-aiosmtpd pkg-config libmodsecurity-dev modsecurity-crs libnginx-mod-http-modsecurity varnish openssl chromium restic rclone gpgv gnupg dnsmasq-base >/dev/null
  PHP_FPM=$(command -v php-fpm8.2 || ls /usr/sbin/php-fpm* | head -n1)
}

# The PHP parser the plugin's syntax test checks PHP 7.4 compatibility with (Debian 12 ships
# PHP 8.2 only): glayzzle's php-parser from the npm registry, pinned, in a root-owned directory.
NODE_TOOLS=${PG_NODE_TOOLS:-/var/cache/peakguard-tests/node}
install_node_tools() {
  [ -f "$NODE_TOOLS/node_modules/php-parser/package.json" ] && return
  command -v npm >/dev/null 2>&1 || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null; }
  log "installing php-parser (npm) into $NODE_TOOLS"
  mkdir -p "$NODE_TOOLS"
  chmod 755 "$NODE_TOOLS" "$(dirname "$NODE_TOOLS")"
  npm install --silent --no-audit --no-fund --prefix "$NODE_TOOLS" php-parser@3.7.0 >/dev/null
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

db_start() {
  if pid_alive "$DIR/mysql.pid"; then return; fi
  if [ ! -d "$DIR/mysql/mysql" ]; then
    log "initialising MariaDB in $DIR/mysql"
    mariadb-install-db --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=normal >"$DIR/mysql-install.log" 2>&1
  fi
  cat >"$DIR/my.cnf" <<CNF
[mariadbd]
user=root
datadir=$DIR/mysql
socket=$DIR/run/mysql.sock
pid-file=$DIR/mysql.pid
port=$DB_PORT
bind-address=127.0.0.1
log-error=$DIR/mysql-error.log
skip-name-resolve
innodb_buffer_pool_size=128M
CNF
  mariadbd --defaults-file="$DIR/my.cnf" >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    mariadb-admin --socket="$DIR/run/mysql.sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb-admin --socket="$DIR/run/mysql.sock" -uroot ping >/dev/null || { log "MariaDB did not start; see $DIR/mysql-error.log"; exit 1; }
  chmod 755 "$DIR/run"
}

db_stop() {
  if pid_alive "$DIR/mysql.pid"; then
    local pid; pid=$(cat "$DIR/mysql.pid")
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}

write_configs() {
  mkdir -p "$DIR/run" "$DIR/mu-plugins" "$DIR/nginx-tmp"
  chmod 755 "$DIR" "$DIR/run" "$DIR/mu-plugins"
  cat >"$WP_CONFIG" <<PHP
<?php
// Written by peakguard's scripts/wp-env.sh for end-to-end tests. Safe to delete.
define('DB_NAME', 'peakguard_e2e');
define('DB_USER', 'wp');
define('DB_PASSWORD', 'wp-e2e');
define('DB_HOST', 'localhost:$DIR/run/mysql.sock');
define('WP_HOME', 'http://$HOST');
define('WP_SITEURL', 'http://$HOST');
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WPMU_PLUGIN_DIR', '$DIR/mu-plugins');
\$table_prefix = 'wp_';
PHP
  # Purge tags for the edge: the home page and each post carry their own tag.
  cat >"$DIR/mu-plugins/peakguard-tags.php" <<'PHP'
<?php
add_action('template_redirect', function () {
    if (headers_sent()) { return; }
    $tags = array();
    if (is_front_page() || is_home()) { $tags[] = 'home'; }
    if (is_singular()) { $tags[] = 'post-' . get_queried_object_id(); }
    if ($tags) { header('X-Cache-Tags: ' . implode(',', $tags), false); }
});
PHP
  # A small shop for the shield's tests (WooCommerce is not packaged): /cart/ and /checkout/
  # do real database work and are never cacheable, `?add-to-cart=ID` issues the cart cookies
  # as WooCommerce does, and `?pg_sleep=MS` (at most 10 s) makes any request slow.
  cat >"$DIR/mu-plugins/peakguard-test-shop.php" <<'PHP'
<?php
// Where WooCommerce is not installed (it is not packaged for Debian): its product post type
// and category taxonomy, so the companion plugin's product purges can be exercised.
add_action('init', function () {
    if (class_exists('WooCommerce') || post_type_exists('product')) { return; }
    register_post_type('product', array('public' => true, 'has_archive' => 'shop', 'rewrite' => array('slug' => 'product'), 'label' => 'Products'));
    register_taxonomy('product_cat', 'product', array('public' => true, 'rewrite' => array('slug' => 'product-category'), 'label' => 'Product categories'));
}, 0);
add_action('init', function () {
    if (isset($_GET['pg_sleep'])) {
        usleep(min(10000, max(0, (int) $_GET['pg_sleep'])) * 1000);
    }
    if (isset($_GET['add-to-cart'])) {
        setcookie('woocommerce_items_in_cart', '1', 0, '/');
        setcookie('wp_woocommerce_session_pg', wp_generate_password(24, false), 0, '/');
    }
    $path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
    if ($path === '/cart/' || $path === '/checkout/') {
        global $wpdb;
        $count = (int) $wpdb->get_var("SELECT COUNT(*) FROM {$wpdb->posts} WHERE post_status = 'publish'");
        nocache_headers();
        header('Content-Type: text/html; charset=utf-8');
        echo '<!doctype html><title>' . esc_html($path) . '</title><p>' . esc_html($path) . " with $count products</p>";
        exit;
    }
});
PHP
  cat >"$DIR/php-fpm.conf" <<CNF
[global]
pid = $DIR/php-fpm.pid
error_log = $DIR/php-fpm.log
daemonize = yes
[wp]
user = www-data
group = www-data
listen = $DIR/run/php.sock
listen.mode = 0666
pm = $FPM_PM
pm.max_children = 4
pm.start_servers = 2
pm.min_spare_servers = 1
pm.max_spare_servers = 3
pm.status_path = /fpm-status
; The status page has its own hidden pool: asking for it never takes one of the 4 workers,
; and it answers while every worker is busy.
pm.status_listen = $DIR/run/php-status.sock
clear_env = no
CNF
  cat >"$DIR/nginx.conf" <<CNF
user www-data;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
events { worker_connections 8192; }
http {
  include /etc/nginx/mime.types;
  # The combined format plus when each request ended and how long it took, so tests can
  # tell how many requests the origin worked on at once.
  log_format timed '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" end=\$msec rt=\$request_time';
  access_log $DIR/nginx-access.log timed;
  sendfile on;
  tcp_nopush off;
  keepalive_requests 100000;
  client_body_temp_path $DIR/nginx-tmp/body;
  fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
  proxy_temp_path $DIR/nginx-tmp/proxy;
  uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
  scgi_temp_path $DIR/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    server_name _;
    root /usr/share/wordpress;
    index index.php;
    client_max_body_size 512m;
    location /wp-content/ { alias /var/lib/wordpress/wp-content/; }
    location /static/ { alias $DIR/static/; }
    # PHP-FPM's own status (active processes, max children reached), loopback only.
    location = /fpm-status {
      allow 127.0.0.1; deny all;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_NAME /fpm-status;
      fastcgi_param SCRIPT_FILENAME /fpm-status;
      fastcgi_pass unix:$DIR/run/php-status.sock;
    }
    location / { try_files \$uri \$uri/ /index.php?\$args; }
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_param HTTP_HOST \$http_host;
      fastcgi_param WORDPRESS_CONFIG $CONFIG_NAME;
      fastcgi_pass unix:$DIR/run/php.sock;
    }
  }
}
CNF
}

wp_php() {
  # Runs PHP with WordPress loaded (as the install page would), code from stdin.
  HTTP_HOST=$HOST php -d error_reporting=E_ALL -d display_errors=stderr -r '
$_SERVER["HTTP_HOST"] = "'$HOST'";
$_SERVER["WORDPRESS_CONFIG"] = "'$CONFIG_NAME'";
$_SERVER["REQUEST_URI"] = "/";
$_SERVER["SERVER_NAME"] = "'$HOST'";
$_SERVER["SERVER_PORT"] = "80";
if (!function_exists("wp_mail")) { function wp_mail() { return true; } }
define("WP_INSTALLING", true);
require "/usr/share/wordpress/wp-load.php";
require_once ABSPATH . "wp-admin/includes/upgrade.php";
eval(stream_get_contents(STDIN));'
}

install_wordpress() {
  mariadb --socket="$DIR/run/mysql.sock" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS peakguard_e2e;
CREATE USER IF NOT EXISTS 'wp'@'localhost' IDENTIFIED BY 'wp-e2e';
GRANT ALL ON \`peakguard\\_e2e%\`.* TO 'wp'@'localhost';
SQL
  wp_php <<'PHP'
if (!is_blog_installed()) {
    wp_install('peakguard e2e', 'admin', 'admin@example.invalid', true, '', 'e2e-admin-pass');
}
update_option('permalink_structure', '/%postname%/');
flush_rewrite_rules(false);
$have = (int) wp_count_posts()->publish;
for ($i = $have; $i < 200; $i++) {
    wp_insert_post(array(
        'post_title' => "E2E post $i",
        'post_name' => "e2e-post-$i",
        'post_status' => 'publish',
        'post_content' => str_repeat("Campaign day content for post $i. ", 40),
    ));
}
echo "posts: " . wp_count_posts()->publish . "\n";
PHP
}

up() {
  install_packages
  mkdir -p "$DIR"
  write_configs
  db_start
  install_wordpress >&2
  if ! pid_alive "$DIR/php-fpm.pid"; then "$PHP_FPM" -R -y "$DIR/php-fpm.conf"; fi
  mkdir -p "$DIR/static"; head -c 20000 /dev/zero | tr '\0' 'x' >"$DIR/static/20k.html"
  if ! pid_alive "$DIR/nginx.pid"; then nginx -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/nginx-error.log"; fi
  for _ in $(seq 1 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "http://127.0.0.1:$NGINX_PORT/" || true)
    [ "$code" = 200 ] && break
    sleep 0.2
  done
  [ "$code" = 200 ] || { log "WordPress does not answer 200 on 127.0.0.1:$NGINX_PORT (got $code); see $DIR/*.log"; exit 1; }
  log "WordPress is up: http://127.0.0.1:$NGINX_PORT/ (Host: $HOST)"
}

down() {
  for p in nginx php-fpm; do
    if pid_alive "$DIR/$p.pid"; then kill "$(cat "$DIR/$p.pid")"; fi
  done
  db_stop
  rm -f "$WP_CONFIG"
}

case "${1:-}" in
  install) install_packages ;;
  up) up ;;
  down) down ;;
  db-stop) db_stop ;;
  db-start) db_start ;;
  update-post)
    slug=$2 text=$3
    printf '$p = get_page_by_path(%s, OBJECT, "post"); wp_update_post(array("ID" => $p->ID, "post_content" => %s)); echo $p->ID;' \
      "$(php -r 'echo var_export($argv[1], true);' "$slug")" "$(php -r 'echo var_export($argv[1], true);' "$text")" | wp_php ;;
  php) printf '%s' "$2" | wp_php ;;
  env)
    echo "PG_E2E_DIR=$DIR"
    echo "PG_E2E_ORIGIN=http://127.0.0.1:$NGINX_PORT"
    echo "PG_E2E_HOST=$HOST"
    echo "PG_E2E_ACCESS_LOG=$DIR/nginx-access.log"
    echo "WP_CONFIG=$WP_CONFIG"
    echo "PG_NODE_TOOLS=$NODE_TOOLS" ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
