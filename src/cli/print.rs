//! The admin API's answers as people read them: aligned tables and short messages. (`--json` prints the answers
//! as they are.)

use serde_json::Value;
use std::fmt::Write;

/// A JSON value as a table cell: strings bare, null as "-", lists joined.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Rows of `body[list]` as aligned columns under upper-case headings.
fn table(body: &Value, list: &str, columns: &[&str]) -> String {
    let rows: Vec<Vec<String>> = body[list]
        .as_array()
        .map(|items| items.iter().map(|item| columns.iter().map(|c| text(&item[*c])).collect()).collect())
        .unwrap_or_default();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|r| r[i].chars().count()).chain([c.len()]).max().unwrap_or(0).min(60))
        .collect();
    let line = |cells: Vec<String>| {
        let cells: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// A query string from the options that are set.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", escape(v)))).collect();
    if set.is_empty() { String::new() } else { format!("?{}", set.join("&")) }
}

/// Percent-encoding for a path segment or query value.
pub fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn certificates(body: &Value) -> String {
    let mut out = table(body, "certificates", &["id", "serial", "status", "not_after", "names"]);
    if let Some(cursor) = body["next_cursor"].as_str() {
        let _ = writeln!(out, "more: --cursor {cursor}");
    }
    out
}

pub fn certificate(c: &Value) -> String {
    let mut out = String::new();
    for field in
        ["id", "serial", "status", "source", "profile", "subject", "names", "issuer_dn", "not_before", "not_after"]
    {
        let _ = writeln!(out, "{field:<12} {}", text(&c[field]));
    }
    for field in
        ["cert_sha256", "spki_sha256", "account_id", "owner", "replaces_id", "replaced_by_id", "renewal_due_at"]
    {
        if !c[field].is_null() {
            let _ = writeln!(out, "{field:<12} {}", text(&c[field]));
        }
    }
    if let Some(pem) = c["pem"].as_str() {
        out.push_str(pem);
    }
    out
}

/// An issued certificate: its chain, PEM, as `openssl` and servers take it.
pub fn chain(issued: &Value) -> String {
    text(&issued["chain_pem"])
}

pub fn revocation(report: &Value) -> String {
    let mut out = String::new();
    let reason = text(&report["reason"]);
    let revoked = report["revoked"].as_array().cloned().unwrap_or_default();
    let unchanged = report["unchanged"].as_array().cloned().unwrap_or_default();
    for r in &revoked {
        let _ = writeln!(out, "revoked   {:>8}  {}  ({reason})", text(&r["id"]), text(&r["serial"]));
    }
    for id in &unchanged {
        let _ = writeln!(out, "unchanged {:>8}  (already revoked, or never issued)", text(id));
    }
    let _ = writeln!(out, "{} revoked, {} unchanged", revoked.len(), unchanged.len());
    out
}

pub fn renewals(body: &Value) -> String {
    let mut out = String::new();
    for c in body["due"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "renewal due now: {:>8}  {}  {}", text(&c["id"]), text(&c["serial"]), text(&c["names"]));
    }
    out
}

pub fn groups(body: &Value) -> String {
    table(body, "groups", &["name", "policy", "updated_at"])
}

pub fn group(g: &Value) -> String {
    format!("{}  {}\n", text(&g["name"]), g["policy"])
}

pub fn group_created(g: &Value) -> String {
    format!("created group {} (id {})\n", text(&g["name"]), text(&g["id"]))
}

pub fn deny_list(body: &Value) -> String {
    format!("{}\n", body["deny"])
}

pub fn credentials(body: &Value) -> String {
    table(body, "credentials", &["key_id", "group", "created_at", "used_by_account"])
}

pub fn new_credential(eab: &Value) -> String {
    let (key_id, hmac, group) = (text(&eab["key_id"]), text(&eab["hmac_key"]), text(&eab["group"]));
    format!(
        "key id:   {key_id}\nhmac key: {hmac}\ngroup:    {group}\n\
         (the HMAC key is shown only now; certbot: --eab-kid {key_id} --eab-hmac-key {hmac})\n"
    )
}

pub fn accounts(body: &Value) -> String {
    let mut out = table(body, "accounts", &["id", "status", "group", "contacts", "created_at"]);
    if !body["next_after"].is_null() {
        let _ = writeln!(out, "more: --after {}", text(&body["next_after"]));
    }
    out
}

pub fn audit(body: &Value) -> String {
    let mut out = String::new();
    for e in body["entries"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:>6}  {}  {:<18} {:<24} {}  {}",
            text(&e["seq"]),
            text(&e["at"]),
            text(&e["actor"]),
            text(&e["action"]),
            text(&e["subject"]),
            e["details"]
        );
    }
    out
}

pub fn verification(report: &Value) -> String {
    match report["first_broken"].as_object() {
        Some(broken) => {
            format!("audit log BROKEN at entry {}: {}\n", text(&broken["seq"].clone()), text(&broken["reason"].clone()))
        }
        None => {
            format!("audit log intact: {} entries, head {}\n", text(&report["entries"]), text(&report["head_hash"]))
        }
    }
}

pub fn tokens(body: &Value) -> String {
    table(body, "tokens", &["id", "name", "scope", "created_at", "last_used_at", "revoked_at"])
}

pub fn new_token(token: &Value) -> String {
    format!("{}\n", text(&token["token"]))
}

/// Managed certificates, with their renewal state flattened into columns.
pub fn domains(body: &Value) -> String {
    let rows: Vec<Value> = body["domains"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "domain": d["domain"], "status": d["status"], "key_type": d["key_type"],
                        "certificate": d["current_certificate_id"], "next_renewal": d["renewal"]["next_attempt_at"],
                        "failures": d["renewal"]["failures"], "last_error": d["renewal"]["last_error"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let columns = ["domain", "status", "key_type", "certificate", "next_renewal", "failures", "last_error"];
    let mut out = table(&serde_json::json!({ "rows": rows }), "rows", &columns);
    if let Some(cursor) = body["next_cursor"].as_str() {
        let _ = writeln!(out, "more: --cursor {cursor}");
    }
    out
}

/// A managed certificate: what it is, its renewal state, its current certificate and its recent rotations.
pub fn domain(view: &Value) -> String {
    let d = &view["domain"];
    let mut out = String::new();
    for field in ["domain", "names", "status", "issuer", "profile", "key_type", "group", "lifetime_secs"] {
        let _ = writeln!(out, "{field:<16} {}", text(&d[field]));
    }
    let r = &d["renewal"];
    for (label, value) in [
        ("next_renewal", &r["next_attempt_at"]),
        ("renewal_reason", &r["reason"]),
        ("failures", &r["failures"]),
        ("last_error", &r["last_error"]),
        ("last_attempt", &r["last_attempt_at"]),
    ] {
        let _ = writeln!(out, "{label:<16} {}", text(value));
    }
    let c = &view["certificate"];
    if !c.is_null() {
        for field in ["id", "serial", "status", "not_before", "not_after"] {
            let _ = writeln!(out, "{:<16} {}", format!("certificate.{field}"), text(&c[field]));
        }
    }
    out.push('\n');
    out.push_str(&table(view, "rotations", &["id", "reason", "status", "new_certificate_id", "triggered_at", "error"]));
    out
}

pub fn rotation(answer: &Value) -> String {
    let r = &answer["rotation"];
    let how = if answer["created"].as_bool().unwrap_or(false) { "queued" } else { "already in flight" };
    format!("rotation {} ({}, {}): {how}\n", text(&r["id"]), text(&r["reason"]), text(&r["status"]))
}

/// Certificates expiring soon, with who renews them.
pub fn expiring(body: &Value) -> String {
    let rows: Vec<Value> = body["certificates"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let c = &e["certificate"];
                    let m = &e["managed"];
                    serde_json::json!({
                        "id": c["id"], "not_after": c["not_after"], "status": c["status"], "source": c["source"],
                        "names": c["names"],
                        "managed": if m.is_null() { Value::String("-".into()) } else { m["domain"].clone() },
                        "next_renewal": m["next_attempt_at"], "failures": m["failures"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let columns = ["id", "not_after", "status", "source", "names", "managed", "next_renewal", "failures"];
    let mut out = table(&serde_json::json!({ "rows": rows }), "rows", &columns);
    if let Some(cursor) = body["next_cursor"].as_str() {
        let _ = writeln!(out, "more: --cursor {cursor}");
    }
    out
}
