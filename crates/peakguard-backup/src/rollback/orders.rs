//! Order-preserving rollback: WooCommerce orders and customers created after the snapshot
//! are copied from the live database into the imported (rolled-back) one before the swap.
//!
//! Rows are carried when their primary key is not in the snapshot: ids grow, so everything
//! created since the snapshot has a key the snapshot never had. Order tables (HPOS
//! `wc_orders*`, order items, lookups) carry all such rows; shared tables carry only the
//! order part: `shop_order*` posts and their meta, customer users and their meta.

use crate::database::{Database, sql_ident};
use crate::error::Result;

/// Tables that hold only order/customer data (prefix added at run time).
const ORDER_TABLES: &[&str] = &[
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
];

/// Whether the live database looks like a WooCommerce shop.
pub fn has_woocommerce(db: &Database, live: &str) -> Result<bool> {
    let tables = tables(db, live)?;
    let p = &db.table_prefix;
    Ok(tables
        .iter()
        .any(|t| *t == format!("{p}wc_orders") || *t == format!("{p}woocommerce_order_items")))
}

pub fn tables(db: &Database, schema: &str) -> Result<Vec<String>> {
    Ok(db
        .query(
            None,
            &format!(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = {} AND table_type = 'BASE TABLE' ORDER BY table_name",
                crate::database::sql_string(schema)
            ),
        )?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

fn primary_key(db: &Database, schema: &str, table: &str) -> Result<Vec<String>> {
    Ok(db
        .query(
            None,
            &format!(
                "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = {} AND table_name = {} AND constraint_name = 'PRIMARY' ORDER BY ordinal_position",
                crate::database::sql_string(schema),
                crate::database::sql_string(table)
            ),
        )?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

/// What was carried over, per table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Carried {
    pub rows: Vec<(String, u64)>,
}

/// Copies rows created after the snapshot from `live` into `target`.
pub fn carry_over(db: &Database, live: &str, target: &str) -> Result<Carried> {
    let p = db.table_prefix.clone();
    let live_tables = tables(db, live)?;
    let target_tables = tables(db, target)?;
    let both = |t: &str| live_tables.iter().any(|x| x == t) && target_tables.iter().any(|x| x == t);
    let (l, n) = (sql_ident(live), sql_ident(target));
    let mut script = String::from("SET SESSION foreign_key_checks = 0;\n");
    let mut planned = Vec::new();
    for base in ORDER_TABLES {
        let table = format!("{p}{base}");
        if !both(&table) {
            continue;
        }
        let key = primary_key(db, live, &table)?;
        if key.is_empty() {
            continue;
        }
        let t = sql_ident(&table);
        let cond = key
            .iter()
            .map(|k| format!("n.{0} = l.{0}", sql_ident(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        script.push_str(&format!(
            "INSERT INTO {n}.{t} SELECT l.* FROM {l}.{t} l WHERE NOT EXISTS (SELECT 1 FROM {n}.{t} n WHERE {cond});\n"
        ));
        planned.push(table);
    }
    let posts = format!("{p}posts");
    let postmeta = format!("{p}postmeta");
    if both(&posts) && both(&postmeta) {
        let (tp, tm) = (sql_ident(&posts), sql_ident(&postmeta));
        script.push_str(&format!(
            "CREATE TEMPORARY TABLE pg_carried_posts AS SELECT l.ID FROM {l}.{tp} l WHERE l.post_type IN ('shop_order', 'shop_order_refund', 'shop_order_placehold') AND NOT EXISTS (SELECT 1 FROM {n}.{tp} n WHERE n.ID = l.ID);\n\
             INSERT INTO {n}.{tp} SELECT l.* FROM {l}.{tp} l JOIN pg_carried_posts c ON c.ID = l.ID;\n\
             INSERT INTO {n}.{tm} SELECT l.* FROM {l}.{tm} l JOIN pg_carried_posts c ON c.ID = l.post_id WHERE NOT EXISTS (SELECT 1 FROM {n}.{tm} n WHERE n.meta_id = l.meta_id);\n"
        ));
        planned.push(posts.clone());
        planned.push(postmeta.clone());
    }
    let users = format!("{p}users");
    let usermeta = format!("{p}usermeta");
    if both(&users) && both(&usermeta) {
        let (tu, tm) = (sql_ident(&users), sql_ident(&usermeta));
        let caps = crate::database::sql_string(&format!("{p}capabilities"));
        script.push_str(&format!(
            "CREATE TEMPORARY TABLE pg_carried_users AS SELECT l.ID FROM {l}.{tu} l WHERE NOT EXISTS (SELECT 1 FROM {n}.{tu} n WHERE n.ID = l.ID) AND EXISTS (SELECT 1 FROM {l}.{tm} m WHERE m.user_id = l.ID AND m.meta_key = {caps} AND m.meta_value LIKE '%\"customer\"%');\n\
             INSERT INTO {n}.{tu} SELECT l.* FROM {l}.{tu} l JOIN pg_carried_users c ON c.ID = l.ID;\n\
             INSERT INTO {n}.{tm} SELECT l.* FROM {l}.{tm} l JOIN pg_carried_users c ON c.ID = l.user_id WHERE NOT EXISTS (SELECT 1 FROM {n}.{tm} n WHERE n.umeta_id = l.umeta_id);\n"
        ));
        planned.push(users.clone());
        planned.push(usermeta.clone());
    }
    if planned.is_empty() {
        return Ok(Carried::default());
    }
    // Count what the snapshot lacks, then carry it in one transaction.
    let mut carried = Carried::default();
    for table in &planned {
        let before = count(db, target, table)?;
        carried.rows.push((table.clone(), before));
    }
    script = format!("START TRANSACTION;\n{script}COMMIT;\n");
    db.execute_script(Some(target), &script)?;
    for entry in &mut carried.rows {
        let after = count(db, target, &entry.0)?;
        entry.1 = after.saturating_sub(entry.1);
    }
    carried.rows.retain(|(_, n)| *n > 0);
    Ok(carried)
}

fn count(db: &Database, schema: &str, table: &str) -> Result<u64> {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM {}.{}",
        sql_ident(schema),
        sql_ident(table)
    ))
}
