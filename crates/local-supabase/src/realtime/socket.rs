//! Realtime's Phoenix v2 websocket (`/realtime/v1/websocket?apikey=…&vsn=2.0.0`), the part
//! supabase-js uses for `postgres_changes`: join with bindings (echoed with ids), heartbeats,
//! `access_token` updates and leave. Frames are `[join_ref, ref, topic, event, payload]`.
//!
//! Each change is offered to each channel whose bindings match it, and sent only if the row is
//! visible to the channel's token: the row is looked up by its key as that role with those
//! claims, so the table's row level security decides, as on Supabase. Deletes cannot be
//! re-checked (the row is gone), so only service-role channels receive them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::broadcast::error::RecvError;

use super::capture::{Change, Kind};
use crate::AppState;
use crate::keys::{DbRole, Verified};

/// `GET /realtime/v1/websocket`: the API key rides in the query (browsers cannot set headers
/// on a websocket).
pub async fn upgrade(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(api) = params
        .get("apikey")
        .and_then(|key| state.keys.verify(key).ok())
    else {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Invalid API key"})),
        )
            .into_response();
    };
    upgrade.on_upgrade(move |socket| session(state, socket, api))
}

/// One `postgres_changes` binding of a channel.
#[derive(Debug, Clone)]
struct Binding {
    id: u64,
    event: String,
    schema: String,
    table: Option<String>,
    filter: Option<Filter>,
}

/// `column=operator.value`, the filters Realtime accepts.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    column: String,
    operator: String,
    value: String,
}

impl Filter {
    fn parse(text: &str) -> Option<Self> {
        let (column, rest) = text.split_once('=')?;
        let (operator, value) = rest.split_once('.')?;
        matches!(operator, "eq" | "neq" | "lt" | "lte" | "gt" | "gte" | "in").then(|| Self {
            column: column.trim().to_owned(),
            operator: operator.to_owned(),
            value: value.to_owned(),
        })
    }

    fn accepts(&self, record: &serde_json::Map<String, Value>) -> bool {
        let Some(value) = record.get(&self.column) else {
            return false;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => return false,
            other => other.to_string(),
        };
        let ordered = || match (text.parse::<f64>(), self.value.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b),
            _ => Some(text.as_str().cmp(self.value.as_str())),
        };
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self.operator.as_str() {
            "eq" => text == self.value,
            "neq" => text != self.value,
            "lt" => ordered() == Some(Less),
            "lte" => matches!(ordered(), Some(Less | Equal)),
            "gt" => ordered() == Some(Greater),
            "gte" => matches!(ordered(), Some(Greater | Equal)),
            "in" => self
                .value
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .any(|v| v.trim().trim_matches('"') == text),
            _ => false,
        }
    }
}

impl Binding {
    fn matches(&self, change: &Change) -> bool {
        (self.event == "*" || self.event == change.kind.as_str())
            && (self.schema == "*" || self.schema == change.schema)
            && self
                .table
                .as_ref()
                .is_none_or(|t| t == "*" || *t == change.table)
            && self.filter.as_ref().is_none_or(|f| {
                f.accepts(if change.kind == Kind::Delete {
                    &change.old_record
                } else {
                    &change.record
                })
            })
    }
}

/// A joined channel.
#[derive(Debug)]
struct Channel {
    caller: Verified,
    bindings: Vec<Binding>,
}

fn reply(
    join_ref: &Value,
    reference: &Value,
    topic: &str,
    status: &str,
    response: Value,
) -> String {
    json!([join_ref, reference, topic, "phx_reply", {"status": status, "response": response}])
        .to_string()
}

async fn session(state: AppState, socket: WebSocket, api: Verified) {
    let (mut sink, mut stream) = socket.split();
    let mut changes = state.changes.subscribe();
    let mut channels: HashMap<String, Channel> = HashMap::new();
    let mut next_id = 1u64;
    loop {
        let outgoing: Vec<String> = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    handle_frame(&state, &api, &mut channels, &mut next_id, text.as_str())
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Binary(_))) => Vec::new(),
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
            },
            change = changes.recv() => match change {
                Ok(change) => deliver(&state.pool, &channels, &change).await,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "realtime: a slow socket missed changes");
                    Vec::new()
                }
                Err(RecvError::Closed) => break,
            },
        };
        for text in outgoing {
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}

/// The token a channel acts with: the join's `access_token` if given, else the API key's.
fn caller_for(state: &AppState, api: &Verified, token: Option<&str>) -> Result<Verified, String> {
    match token {
        Some(token) => state.keys.verify(token).map_err(|error| error.to_string()),
        None => Ok(api.clone()),
    }
}

fn handle_frame(
    state: &AppState,
    api: &Verified,
    channels: &mut HashMap<String, Channel>,
    next_id: &mut u64,
    text: &str,
) -> Vec<String> {
    let Ok(Value::Array(frame)) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let [join_ref, reference, topic, event, payload] = match <[Value; 5]>::try_from(frame) {
        Ok(parts) => parts,
        Err(_) => return Vec::new(),
    };
    let (Some(topic), Some(event)) = (topic.as_str(), event.as_str()) else {
        return Vec::new();
    };
    let ok = |response: Value| vec![reply(&join_ref, &reference, topic, "ok", response)];
    let error = |reason: String| {
        vec![reply(
            &join_ref,
            &reference,
            topic,
            "error",
            json!({"reason": reason}),
        )]
    };
    match (topic, event) {
        ("phoenix", "heartbeat") => ok(json!({})),
        (_, "phx_join") => {
            let token = payload.get("access_token").and_then(Value::as_str);
            let caller = match caller_for(state, api, token) {
                Ok(caller) => caller,
                Err(reason) => return error(reason),
            };
            let requested = payload
                .pointer("/config/postgres_changes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut bindings = Vec::new();
            let mut echoed = Vec::new();
            for binding in requested {
                let filter_text = binding.get("filter").and_then(Value::as_str);
                let filter = match filter_text.map(|f| Filter::parse(f).ok_or(f)) {
                    Some(Err(bad)) => return error(format!("invalid filter: {bad}")),
                    Some(Ok(filter)) => Some(filter),
                    None => None,
                };
                let id = *next_id;
                *next_id += 1;
                let text = |key: &str| binding.get(key).and_then(Value::as_str).map(str::to_owned);
                bindings.push(Binding {
                    id,
                    event: text("event").unwrap_or_else(|| "*".to_owned()),
                    schema: text("schema").unwrap_or_else(|| "public".to_owned()),
                    table: text("table"),
                    filter,
                });
                // Echo exactly what was asked (supabase-js compares field by field) plus the id.
                let mut echo = binding.clone();
                echo["id"] = json!(id);
                echoed.push(echo);
            }
            channels.insert(topic.to_owned(), Channel { caller, bindings });
            ok(json!({"postgres_changes": echoed}))
        }
        (_, "access_token") => {
            let token = payload.get("access_token").and_then(Value::as_str);
            let Some(channel) = channels.get_mut(topic) else {
                return error("not joined".to_owned());
            };
            match caller_for(state, api, token) {
                Ok(caller) => {
                    channel.caller = caller;
                    ok(json!({}))
                }
                Err(reason) => {
                    // Fail closed: a channel whose new token is refused sees nothing more.
                    channels.remove(topic);
                    let mut out = error(reason);
                    out.push(json!([join_ref, null, topic, "phx_close", {}]).to_string());
                    out
                }
            }
        }
        (_, "phx_leave") => {
            channels.remove(topic);
            let mut out = ok(json!({}));
            out.push(json!([join_ref, null, topic, "phx_close", {}]).to_string());
            out
        }
        // Broadcast and presence are not served locally; acknowledge so the client moves on.
        (_, "broadcast" | "presence") => ok(json!({})),
        _ => error(format!("unsupported event {event}")),
    }
}

async fn deliver(
    pool: &PgPool,
    channels: &HashMap<String, Channel>,
    change: &Arc<Change>,
) -> Vec<String> {
    let mut out = Vec::new();
    let now = chrono::Utc::now().timestamp();
    for (topic, channel) in channels {
        let ids: Vec<u64> = channel
            .bindings
            .iter()
            .filter(|b| b.matches(change))
            .map(|b| b.id)
            .collect();
        if ids.is_empty() || channel.caller.expired_at(now) {
            continue;
        }
        let visible = match (channel.caller.role, change.kind) {
            (DbRole::ServiceRole, _) => true,
            (_, Kind::Delete) => false,
            _ => visible_to(pool, &channel.caller, change).await,
        };
        if !visible {
            continue;
        }
        let columns: Vec<Value> = change
            .columns
            .iter()
            .map(|(name, ty)| json!({"name": name, "type": ty}))
            .collect();
        let mut data = json!({
            "schema": change.schema,
            "table": change.table,
            "commit_timestamp": change.commit_timestamp,
            "type": change.kind.as_str(),
            "columns": columns,
            "record": change.record,
            "errors": null,
        });
        if change.kind != Kind::Insert {
            data["old_record"] = Value::Object(change.old_record.clone());
        }
        out.push(
            json!([null, null, topic, "postgres_changes", {"ids": ids, "data": data}]).to_string(),
        );
    }
    out
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether the changed row can be read by `caller` (its role, its claims, the table's RLS).
async fn visible_to(pool: &PgPool, caller: &Verified, change: &Change) -> bool {
    // A type name is spliced into a cast: only plain names (from the catalogue) qualify.
    let plain = |name: &str| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if change.key.is_empty() || !change.key.iter().all(|k| plain(&k.type_name)) {
        return false;
    }
    let conditions: Vec<String> = change
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{} = ${}::{}", quoted(&k.column), i + 1, k.type_name))
        .collect();
    let sql = format!(
        "select exists(select 1 from {}.{} where {})",
        quoted(&change.schema),
        quoted(&change.table),
        conditions.join(" and ")
    );
    let check = async {
        let mut tx = pool.begin().await?;
        sqlx::query(&format!("set local role {}", caller.role.as_sql()))
            .execute(&mut *tx)
            .await?;
        sqlx::query("select set_config('request.jwt.claims', $1, true)")
            .bind(caller.claims.to_string())
            .execute(&mut *tx)
            .await?;
        let mut query = sqlx::query_scalar::<_, bool>(&sql);
        for key in &change.key {
            query = query.bind(key.text.clone());
        }
        let visible = query.fetch_one(&mut *tx).await?;
        tx.rollback().await?;
        Ok::<_, sqlx::Error>(visible)
    };
    match check.await {
        Ok(visible) => visible,
        Err(error) => {
            // Fail closed: a row that cannot be checked is not sent.
            tracing::warn!(%error, table = %change.table, "realtime: visibility check failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, Value)]) -> serde_json::Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn filters_compare_like_realtime() {
        let row = record(&[("user_id", json!("a")), ("amount", json!(5))]);
        assert!(Filter::parse("user_id=eq.a").unwrap().accepts(&row));
        assert!(!Filter::parse("user_id=eq.b").unwrap().accepts(&row));
        assert!(Filter::parse("amount=gt.4").unwrap().accepts(&row));
        assert!(!Filter::parse("amount=gt.10").unwrap().accepts(&row));
        assert!(Filter::parse("user_id=in.(b,a)").unwrap().accepts(&row));
        assert!(!Filter::parse("missing=eq.a").unwrap().accepts(&row));
        assert!(Filter::parse("user_id=like.a").is_none());
        assert!(Filter::parse("no-operator").is_none());
    }

    #[test]
    fn bindings_match_event_schema_table_and_filter() {
        let change = Change {
            schema: "public".into(),
            table: "user_notifications".into(),
            kind: Kind::Insert,
            commit_timestamp: String::new(),
            columns: Vec::new(),
            record: record(&[("event_type", json!("user.message"))]),
            old_record: serde_json::Map::new(),
            key: Vec::new(),
        };
        let binding = |event: &str, table: Option<&str>, filter: Option<&str>| Binding {
            id: 1,
            event: event.into(),
            schema: "public".into(),
            table: table.map(Into::into),
            filter: filter.and_then(Filter::parse),
        };
        assert!(binding("INSERT", Some("user_notifications"), None).matches(&change));
        assert!(binding("*", None, None).matches(&change));
        assert!(!binding("UPDATE", Some("user_notifications"), None).matches(&change));
        assert!(!binding("INSERT", Some("media_files"), None).matches(&change));
        assert!(
            binding(
                "INSERT",
                Some("user_notifications"),
                Some("event_type=eq.user.message")
            )
            .matches(&change)
        );
        assert!(
            !binding(
                "INSERT",
                Some("user_notifications"),
                Some("event_type=eq.identity.login")
            )
            .matches(&change)
        );
    }
}
