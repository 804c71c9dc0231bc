//! Order-preserving rollback: the shop's orders and customers are never rolled back.
//!
//! Tables that hold only order and customer data (HPOS `wc_orders*`, order items, lookups,
//! download permissions, payment tokens, carts) are not touched at all: the snapshot's copies
//! are left out of the import and the live tables stay where they are, so an order written
//! at any moment of the rollback lands where it stays.
//!
//! Orders also live in WordPress's shared tables (`shop_order*` posts and their meta, order
//! notes in the comments, customers in the users). There the live rows replace the
//! snapshot's for every order — new ones, and old ones paid, shipped or refunded since —
//! before the swap ([`Carry::Replace`]); after the swap the previous tables are read once
//! more for orders written between that copy and the swap ([`Carry::Missed`]).
//!
//! Every statement runs in the site's own database on tables named in it: a WordPress
//! database user's rights are enough.

use crate::database::{Database, sql_ident, sql_string};
use crate::error::Result;

/// Tables (without the site's prefix) that hold only order and customer data.
pub const LIVE_TABLES: &[&str] = &[
    "wc_orders",
    "wc_orders_meta",
    "wc_order_addresses",
    "wc_order_operational_data",
    "wc_order_stats",
    "wc_order_product_lookup",
    "wc_order_tax_lookup",
    "wc_order_coupon_lookup",
    "woocommerce_order_items",
    "woocommerce_order_itemmeta",
    "wc_customer_lookup",
    "woocommerce_downloadable_product_permissions",
    "wc_download_log",
    "woocommerce_payment_tokens",
    "woocommerce_payment_tokenmeta",
    "woocommerce_sessions",
];

/// Post types that are orders (`shop_order_placehold`: HPOS's id reservation).
const ORDER_TYPES: &str = "'shop_order', 'shop_order_refund', 'shop_order_placehold'";

/// Whether the live database looks like a WooCommerce shop.
pub fn has_woocommerce(db: &Database) -> Result<bool> {
    let tables = tables(db)?;
    let p = &db.table_prefix;
    Ok(tables
        .iter()
        .any(|t| *t == format!("{p}wc_orders") || *t == format!("{p}woocommerce_order_items")))
}

/// The base tables of the site's database.
pub fn tables(db: &Database) -> Result<Vec<String>> {
    Ok(db
        .query(
            None,
            &format!(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = {} AND table_type = 'BASE TABLE' ORDER BY table_name",
                sql_string(&db.name)
            ),
        )?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

/// Which order rows move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    /// Every order and customer of `from` replaces the one in `into` (orders only `into`
    /// has are removed: they were deleted since).
    Replace,
    /// Only orders `into` lacks or holds an older version of, and customers it lacks.
    Missed,
}

/// What was carried over.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Carried {
    /// Order posts (with their meta and notes) copied.
    pub orders: u64,
    pub customers: u64,
    /// Order tables that stayed live.
    pub kept_live: Vec<String>,
}

/// Copies order posts, their meta and notes, and customers from the tables named
/// `<from>T` to those named `<into>T` (prefixes of the live names: "" for the live tables).
pub fn carry(db: &Database, from: &str, into: &str, how: Carry) -> Result<Carried> {
    let p = db.table_prefix.clone();
    let present = tables(db)?;
    let name = |prefix: &str, t: &str| format!("{prefix}{p}{t}");
    let both = |t: &str| present.contains(&name(from, t)) && present.contains(&name(into, t));
    let f = |t: &str| sql_ident(&name(from, t));
    let i = |t: &str| sql_ident(&name(into, t));
    let mut sql = String::from(
        "SET SESSION foreign_key_checks = 0;\nSTART TRANSACTION;\n\
         CREATE TEMPORARY TABLE pg_orders (id BIGINT UNSIGNED PRIMARY KEY);\n\
         CREATE TEMPORARY TABLE pg_gone (id BIGINT UNSIGNED PRIMARY KEY);\n\
         CREATE TEMPORARY TABLE pg_notes (id BIGINT UNSIGNED PRIMARY KEY);\n\
         CREATE TEMPORARY TABLE pg_customers (id BIGINT UNSIGNED PRIMARY KEY);\n",
    );
    let orders = both("posts") && both("postmeta");
    if orders {
        let (fp, ip) = (f("posts"), i("posts"));
        match how {
            Carry::Replace => sql.push_str(&format!(
                "INSERT INTO pg_orders SELECT ID FROM {fp} WHERE post_type IN ({ORDER_TYPES});\n\
                 INSERT INTO pg_gone SELECT ID FROM {ip} WHERE post_type IN ({ORDER_TYPES});\n"
            )),
            Carry::Missed => sql.push_str(&format!(
                "INSERT INTO pg_orders SELECT l.ID FROM {fp} l LEFT JOIN {ip} n ON n.ID = l.ID \
                 WHERE l.post_type IN ({ORDER_TYPES}) AND (n.ID IS NULL OR l.post_modified_gmt > n.post_modified_gmt);\n"
            )),
        }
        if both("comments") && both("commentmeta") {
            let (fc, ic) = (f("comments"), i("comments"));
            sql.push_str(&format!(
                "INSERT IGNORE INTO pg_notes SELECT c.comment_ID FROM {fc} c JOIN pg_orders o ON o.id = c.comment_post_ID;\n\
                 INSERT IGNORE INTO pg_notes SELECT c.comment_ID FROM {ic} c JOIN pg_orders o ON o.id = c.comment_post_ID;\n\
                 INSERT IGNORE INTO pg_notes SELECT c.comment_ID FROM {ic} c JOIN pg_gone o ON o.id = c.comment_post_ID;\n\
                 DELETE m FROM {icm} m JOIN pg_notes n ON n.id = m.comment_id;\n\
                 DELETE c FROM {ic} c JOIN pg_notes n ON n.id = c.comment_ID;\n",
                icm = i("commentmeta"),
            ));
        }
        let ipm = i("postmeta");
        for set in ["pg_orders", "pg_gone"] {
            sql.push_str(&format!(
                "DELETE m FROM {ipm} m JOIN {set} o ON o.id = m.post_id;\n\
                 DELETE p FROM {ip} p JOIN {set} o ON o.id = p.ID;\n"
            ));
        }
        sql.push_str(&format!(
            "INSERT INTO {ip} SELECT l.* FROM {fp} l JOIN pg_orders o ON o.id = l.ID;\n\
             INSERT INTO {ipm} SELECT l.* FROM {fpm} l JOIN pg_orders o ON o.id = l.post_id;\n",
            fpm = f("postmeta"),
        ));
        if both("comments") && both("commentmeta") {
            sql.push_str(&format!(
                "INSERT INTO {ic} SELECT l.* FROM {fc} l JOIN pg_orders o ON o.id = l.comment_post_ID;\n\
                 INSERT INTO {icm} SELECT m.* FROM {fcm} m JOIN {fc} l ON l.comment_ID = m.comment_id JOIN pg_orders o ON o.id = l.comment_post_ID;\n",
                ic = i("comments"),
                fc = f("comments"),
                icm = i("commentmeta"),
                fcm = f("commentmeta"),
            ));
        }
    }
    if both("users") && both("usermeta") {
        let (fu, iu, fm, im) = (f("users"), i("users"), f("usermeta"), i("usermeta"));
        let caps = sql_string(&format!("{p}capabilities"));
        let missing = match how {
            Carry::Replace => "",
            Carry::Missed => " AND NOT EXISTS (SELECT 1 FROM __IU__ n WHERE n.ID = l.ID)",
        }
        .replace("__IU__", &iu);
        sql.push_str(&format!(
            "INSERT INTO pg_customers SELECT l.ID FROM {fu} l WHERE EXISTS (SELECT 1 FROM {fm} m WHERE m.user_id = l.ID AND m.meta_key = {caps} AND m.meta_value LIKE '%\"customer\"%'){missing};\n\
             DELETE m FROM {im} m JOIN pg_customers c ON c.id = m.user_id;\n\
             DELETE u FROM {iu} u JOIN pg_customers c ON c.id = u.ID;\n\
             INSERT INTO {iu} SELECT l.* FROM {fu} l JOIN pg_customers c ON c.id = l.ID;\n\
             INSERT INTO {im} SELECT l.* FROM {fm} l JOIN pg_customers c ON c.id = l.user_id;\n"
        ));
    }
    sql.push_str(
        "SELECT (SELECT COUNT(*) FROM pg_orders), (SELECT COUNT(*) FROM pg_customers);\nCOMMIT;\n",
    );
    let rows = db.query(Some(&db.name), &sql)?;
    let cell = |i: usize| {
        rows.last()
            .and_then(|r| r.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Carried {
        orders: cell(0),
        customers: cell(1),
        kept_live: Vec::new(),
    })
}

/// The live tables (of `tables`) that a rollback keeping orders leaves in place.
pub fn kept_live(db: &Database, tables: &[String]) -> Vec<String> {
    LIVE_TABLES
        .iter()
        .map(|t| format!("{}{t}", db.table_prefix))
        .filter(|t| tables.contains(t))
        .collect()
}
