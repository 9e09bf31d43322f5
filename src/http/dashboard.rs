//! The dashboard at `/`: trust state, store size, recent refusals and security events, and "who fetched M[@V]".
//!
//! Plain server-rendered HTML: no script, no external asset, every value
//! escaped ([`esc`]). It sits behind `[auth]` like the proxy. Each part is
//! cheap on a large store: the totals are kept by the store, refusals are a
//! small in-memory ring, and a search reads only the searched module's
//! records (at most [`MAX_ROWS`] shown).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use super::{AppState, Shared};
use crate::audit;

/// Rows of a search shown at most (the CLI gives them all).
pub const MAX_ROWS: usize = 500;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A cached version the supply-chain gate now blocks, with why.
pub struct Blocked {
    pub module: String,
    pub version: String,
    pub reason: String,
}

/// The cached versions the supply-chain gate's policy or advisories now
/// refuse, as its last re-check found them (kept by the gate: no store walk
/// per page view); the dashboard lists each with its fetchers from the audit trail.
pub fn blocked_versions(st: &AppState) -> Vec<Blocked> {
    st.pipeline
        .gate()
        .blocked()
        .iter()
        .map(|r| Blocked {
            module: r.module.clone(),
            version: r.version.clone(),
            reason: r.why.clone(),
        })
        .collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;\
text-align:left;font-size:.9em;vertical-align:top}th{background:#f4f4f4}h2{margin-top:1.5em}\
.bad{color:#a00;font-weight:bold}.ok{color:#070}code{font-size:.95em}";

pub async fn page(State(st): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut h = String::with_capacity(8192);
    h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<title>modgate</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body><h1>modgate</h1>");
    trust_section(&st, &mut h);
    store_section(&st, &mut h).await;
    blocked_section(&st, &mut h).await;
    refusals_section(&st, &mut h);
    search_section(&st, &q, &mut h).await;
    h.push_str("</body></html>\n");
    let mut r = Html(h).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn trust_section(st: &AppState, h: &mut String) {
    let sumdb = st.pipeline.sumdb();
    let tree = sumdb.latest();
    h.push_str("<h2>Trust</h2><table>");
    let _ = write!(
        h,
        "<tr><th>checksum database</th><td>{}</td></tr>\
         <tr><th>trusted tree size</th><td>{}</td></tr>\
         <tr><th>trusted tree hash</th><td><code>{}</code></td></tr>",
        esc(sumdb.name()),
        tree.n,
        esc(&tree.hash.to_string()),
    );
    if let Some(a) = &st.admin {
        let (size, since) = a.tree_seen(tree.n);
        let _ = write!(
            h,
            "<tr><th>last advanced</th><td>{} (to size {size}; as seen by this process)</td></tr>",
            esc(&since)
        );
    }
    match sumdb.fork_marker() {
        Some(f) if sumdb.is_forked() => {
            let _ = write!(
                h,
                "<tr><th>fork</th><td class=\"bad\">FORKED: trusted tree {} vs presented {} \
                 (detected at unix time {}); every new verification is refused until \
                 <code>modgate trust reset --sumdb {}</code></td></tr>",
                f.old_tree_size,
                f.new_tree_size,
                f.detected_at,
                esc(sumdb.name())
            );
        }
        _ => h.push_str("<tr><th>fork</th><td class=\"ok\">none</td></tr>"),
    }
    h.push_str("</table>");
}

async fn store_section(st: &AppState, h: &mut String) {
    h.push_str("<h2>Store</h2>");
    match st.pipeline.store().totals().await {
        Ok((objects, bytes)) => {
            let _ = write!(
                h,
                "<table><tr><th>objects</th><td>{objects}</td></tr>\
                 <tr><th>bytes</th><td>{bytes} ({})</td></tr></table>",
                indicatif::HumanBytes(bytes)
            );
        }
        Err(e) => {
            let _ = write!(h, "<p class=\"bad\">{}</p>", esc(&e.to_string()));
        }
    }
}

async fn blocked_section(st: &AppState, h: &mut String) {
    h.push_str("<h2>Cached versions now blocked</h2>");
    let blocked = blocked_versions(st);
    if blocked.is_empty() {
        h.push_str("<p>None (no policy or advisory blocks a cached version).</p>");
        return;
    }
    h.push_str("<table><tr><th>module@version</th><th>why</th><th>fetched by</th></tr>");
    for b in &blocked {
        // With replicas on a bucket: who fetched it through any of them.
        let everywhere = st.admin.as_ref().and_then(|a| a.everywhere.get());
        let who = match (everywhere, &st.audit) {
            (Some(e), _) => e.fetchers(&b.module, &b.version).await,
            (None, Some(a)) => audit::fetchers(a.trail(), &b.module, &b.version),
            (None, None) => Vec::new(),
        };
        let _ = write!(
            h,
            "<tr><td>{}@{}</td><td>{}</td><td>{}</td></tr>",
            esc(&b.module),
            esc(&b.version),
            esc(&b.reason),
            esc(&who.join(", "))
        );
    }
    h.push_str("</table>");
}

fn refusals_section(st: &AppState, h: &mut String) {
    h.push_str("<h2>Recent refusals and security events</h2>");
    let recent = st
        .audit
        .as_ref()
        .map(|a| a.recent_refusals())
        .unwrap_or_default();
    if recent.is_empty() {
        h.push_str("<p>None since this server started.</p>");
        return;
    }
    h.push_str(
        "<table><tr><th>time</th><th>client</th><th>user</th><th>module@version</th>\
         <th>kind</th><th>reason</th></tr>",
    );
    for e in &recent {
        let t = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_micros(e.time_us),
        );
        let _ = write!(
            h,
            "<tr><td>{t}</td><td>{}</td><td>{}</td><td>{}@{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.client.map(|c| c.to_string()).unwrap_or_default()),
            esc(e.user.as_deref().unwrap_or("")),
            esc(&e.module),
            esc(&e.version),
            esc(e.kind),
            esc(e.reason.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>");
}

async fn search_section(st: &AppState, q: &HashMap<String, String>, h: &mut String) {
    let target = q.get("who").map(|s| s.trim()).unwrap_or("");
    let _ = write!(
        h,
        "<h2>Who fetched…</h2><form method=\"get\" action=\"/\">\
         <input name=\"who\" size=\"60\" placeholder=\"example.com/module@v1.2.3\" value=\"{}\"> \
         <button type=\"submit\">Search</button></form>",
        esc(target)
    );
    if target.is_empty() {
        return;
    }
    let Some(a) = &st.audit else {
        h.push_str("<p>This server keeps no audit trail.</p>");
        return;
    };
    let (module, version) = match audit::split_target(target) {
        Ok(x) => x,
        Err(e) => {
            let _ = write!(h, "<p class=\"bad\">{}</p>", esc(&e.to_string()));
            return;
        }
    };
    // With replicas on a bucket: every replica's records.
    if let Some(e) = st.admin.as_ref().and_then(|a| a.everywhere.get()) {
        match e.records(&module, version.as_deref()).await {
            Ok(all) => {
                let total = all.len();
                let rows = all.into_iter().take(MAX_ROWS).collect();
                return render_found(h, target, rows, total);
            }
            Err(e) => {
                let _ = write!(h, "<p class=\"bad\">{}</p>", esc(&e.to_string()));
                return;
            }
        }
    }
    let trail = a.trail().clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut rows = Vec::new();
        let mut total = 0usize;
        let r = trail.who(&module, version.as_deref(), 0, |r| {
            total += 1;
            if rows.len() < MAX_ROWS {
                rows.push(r);
            }
            true
        });
        r.map(|()| (rows, total))
    })
    .await;
    let (rows, total) = match found {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            let _ = write!(h, "<p class=\"bad\">{}</p>", esc(&e.to_string()));
            return;
        }
        Err(e) => {
            let _ = write!(h, "<p class=\"bad\">{}</p>", esc(&e.to_string()));
            return;
        }
    };
    render_found(h, target, rows, total);
}

/// The search's answer: how many records, and the first of them.
fn render_found(h: &mut String, target: &str, rows: Vec<audit::Record>, total: usize) {
    let _ = write!(
        h,
        "<p>{total} records for <code>{}</code>{}.</p>",
        esc(target),
        if total > rows.len() {
            format!(
                " (first {} shown; `modgate audit who` lists all)",
                rows.len()
            )
        } else {
            String::new()
        }
    );
    if rows.is_empty() {
        return;
    }
    h.push_str(
        "<table><tr><th>time</th><th>client</th><th>X-Forwarded-For</th><th>user</th>\
         <th>version</th><th>kind</th><th>cache</th><th>status</th><th>tree size</th>\
         <th>reason</th></tr>",
    );
    for r in &rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{} {}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.time),
            esc(r.client.as_deref().unwrap_or("")),
            esc(r.forwarded_for.as_deref().unwrap_or("")),
            esc(r.user.as_deref().unwrap_or("")),
            esc(&r.version),
            esc(&r.kind),
            esc(&r.cache),
            r.status,
            esc(&r.verdict),
            r.tree_size.map(|t| t.to_string()).unwrap_or_default(),
            esc(r.reason.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
