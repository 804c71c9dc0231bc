//! `peakguard shield status` and `peakguard waiting-room …`: the admin API's answers,
//! printed for a person.

use crate::admin_client::{AdminClient, enc};
use crate::cli::{RoomAction, ShieldArgs, WaitingRoomArgs};
use anyhow::{Result, bail};
use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_room(r: &Value) {
    let opening = r["opens_at"]
        .as_u64()
        .map(|t| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
            format!(", opens at {}", humantime::format_rfc3339_seconds(at))
        })
        .unwrap_or_default();
    println!(
        "  waiting room {}: {}{opening}; {} in line ({} in the pre-queue), {} active (limit {}), {} let in of {} places given, {} not back yet",
        text(&r["site"]),
        text(&r["mode"]),
        text(&r["waiting"]),
        text(&r["prequeue"]),
        text(&r["active"]),
        match r["active_users"].as_u64() {
            Some(0) | None => "none".to_string(),
            Some(n) => n.to_string(),
        },
        text(&r["admitted"]),
        text(&r["tickets_issued"]),
        text(&r["outstanding"]),
    );
}

pub fn shield(client: &AdminClient, args: &ShieldArgs) -> Result<()> {
    let v = client.get("/shield")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for site in v["sites"].as_array().into_iter().flatten() {
        let guards: Vec<String> = site["guards"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        println!(
            "site {}: guards {}",
            text(&site["site"]),
            guards.join(" → ")
        );
    }
    for a in v["admission"].as_array().into_iter().flatten() {
        let lanes = a["waiting"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {}", text(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "  origin admission {}: {} of {}{} at the origin (peak {}); waiting: {lanes}; refused {} (timed out) + {} (lane full)",
            text(&a["site"]),
            text(&a["in_flight"]),
            text(&a["limit"]),
            if a["adaptive"] == true {
                " (adaptive)"
            } else {
                ""
            },
            text(&a["peak_in_flight"]),
            text(&a["timed_out"]),
            text(&a["lane_full"]),
        );
    }
    for r in v["waiting_rooms"].as_array().into_iter().flatten() {
        print_room(r);
    }
    Ok(())
}

pub fn waiting_room(client: &AdminClient, args: &WaitingRoomArgs) -> Result<()> {
    let site = args
        .site
        .as_deref()
        .map(|s| format!("&site={}", enc(s)))
        .unwrap_or_default();
    let change = |q: &str| client.post(&format!("/waiting-room?{q}{site}"));
    let v = match args.action {
        RoomAction::Status => {
            let v = client.get("/waiting-room")?;
            let rooms = v["rooms"].as_array().cloned().unwrap_or_default();
            if rooms.is_empty() {
                println!("no waiting room: set [site.shield.waiting_room] enabled = true");
            }
            for r in &rooms {
                print_room(r);
            }
            return Ok(());
        }
        RoomAction::RotateKey => {
            client.post("/waiting-room/rotate-key")?;
            println!(
                "waiting room: new cookie key; places in line signed with the previous key still count"
            );
            return Ok(());
        }
        RoomAction::QueueAll => change("mode=queue-all")?,
        RoomAction::Normal => change("mode=normal")?,
        RoomAction::Suspend => change("mode=suspended")?,
        RoomAction::CancelOpening => change("opens_at=none")?,
        RoomAction::OpenAt => {
            let Some(time) = &args.time else {
                bail!("open-at needs a time: peakguard waiting-room open-at 2026-12-04T18:00:00Z");
            };
            change(&format!("opens_at={}", enc(time)))?
        }
    };
    print_room(&v);
    Ok(())
}
