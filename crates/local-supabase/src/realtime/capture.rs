//! Row changes of the `supabase_realtime` publication, read by logical decoding.
//!
//! A dedicated connection owns a temporary pgoutput slot (it disappears with the connection,
//! so a stopped server leaves no WAL behind) and polls it with
//! `pg_logical_slot_get_binary_changes`; each committed transaction's changes are broadcast to
//! the websocket sessions, which decide per subscriber what it may see.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Number, Value};
use sqlx::{Connection, PgConnection};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::pgoutput::{self, Datum, Message, Relation};

/// The kind of a change, as Realtime names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `INSERT`
    Insert,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
}

impl Kind {
    /// Realtime's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// A key column's value, to find the row again under a subscriber's role.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// Column name.
    pub column: String,
    /// Its type name (`int8`, `uuid`, …).
    pub type_name: String,
    /// The value in text form.
    pub text: String,
}

/// One committed row change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
    /// What happened.
    pub kind: Kind,
    /// Commit time (RFC 3339, UTC).
    pub commit_timestamp: String,
    /// Column names and type names, in table order.
    pub columns: Vec<(String, String)>,
    /// The new row (inserts and updates).
    pub record: Map<String, Value>,
    /// The old row as far as the replica identity carries it (updates and deletes).
    pub old_record: Map<String, Value>,
    /// The row's key (the replica identity of the new row, or of the old one for deletes).
    pub key: Vec<KeyValue>,
}

/// A relation with its columns' type names resolved.
#[derive(Debug, Clone)]
struct Shape {
    relation: Relation,
    type_names: Vec<String>,
}

/// A text value as JSON of its column's type, as Realtime sends records.
pub fn to_json(type_name: &str, text: &str) -> Value {
    match type_name {
        "int2" | "int4" | "int8" | "oid" => text
            .parse::<i64>()
            .map_or_else(|_| Value::String(text.to_owned()), Value::from),
        "float4" | "float8" | "numeric" => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(text.to_owned()), Value::Number),
        "bool" => Value::Bool(text == "t"),
        "json" | "jsonb" => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        }
        "timestamp" | "timestamptz" => Value::String(iso_timestamp(text)),
        _ => Value::String(text.to_owned()),
    }
}

/// Postgres' text form of a timestamp (`2026-12-01 11:38:25.377021+00`) in the ISO 8601 form
/// `to_jsonb` gives it and REST returns (`2026-12-01T11:38:25.377021+00:00`).
fn iso_timestamp(text: &str) -> String {
    let mut iso = text.replacen(' ', "T", 1);
    // An offset of whole hours comes as `+HH`; ISO (and JavaScript's Date) want `+HH:MM`.
    let bytes = iso.as_bytes();
    if bytes.len() >= 3 {
        let sign = bytes[bytes.len() - 3];
        let tail_is_digits = bytes[bytes.len() - 2..].iter().all(u8::is_ascii_digit);
        if (sign == b'+' || sign == b'-') && tail_is_digits && iso.contains('T') {
            iso.push_str(":00");
        }
    }
    iso
}

fn row(shape: &Shape, tuple: &[Datum]) -> (Map<String, Value>, Vec<KeyValue>) {
    let mut record = Map::new();
    let mut key = Vec::new();
    for ((column, type_name), datum) in shape
        .relation
        .columns
        .iter()
        .zip(&shape.type_names)
        .zip(tuple)
    {
        let value = match datum {
            Datum::Null => Value::Null,
            // An unchanged TOASTed value is not in the WAL; Realtime leaves it out too.
            Datum::Unchanged => continue,
            Datum::Text(text) => {
                if column.key {
                    key.push(KeyValue {
                        column: column.name.clone(),
                        type_name: type_name.clone(),
                        text: text.clone(),
                    });
                }
                to_json(type_name, text)
            }
        };
        record.insert(column.name.clone(), value);
    }
    (record, key)
}

/// Turns decoded messages into changes; keeps relation shapes across polls.
#[derive(Debug, Default)]
struct Assembler {
    shapes: HashMap<u32, Shape>,
    commit_timestamp: String,
    pending: Vec<Change>,
}

impl Assembler {
    fn change(
        &self,
        relation: u32,
        kind: Kind,
        new: Option<&[Datum]>,
        old: Option<&[Datum]>,
    ) -> Option<Change> {
        let shape = self.shapes.get(&relation)?;
        let (record, new_key) = new.map(|t| row(shape, t)).unwrap_or_default();
        let (old_record, old_key) = old.map(|t| row(shape, t)).unwrap_or_default();
        Some(Change {
            schema: shape.relation.schema.clone(),
            table: shape.relation.table.clone(),
            kind,
            commit_timestamp: self.commit_timestamp.clone(),
            columns: shape
                .relation
                .columns
                .iter()
                .zip(&shape.type_names)
                .map(|(c, t)| (c.name.clone(), t.clone()))
                .collect(),
            record,
            old_record,
            key: if kind == Kind::Delete {
                old_key
            } else {
                new_key
            },
        })
    }

    /// Feeds one message; returns the transaction's changes at its commit.
    fn feed(&mut self, message: Message) -> Vec<Change> {
        let change = match message {
            Message::Begin { commit_micros } => {
                self.commit_timestamp = pgoutput::postgres_time(commit_micros);
                self.pending.clear();
                None
            }
            Message::Commit => return std::mem::take(&mut self.pending),
            Message::Insert { relation, new } => {
                self.change(relation, Kind::Insert, Some(&new), None)
            }
            Message::Update { relation, old, new } => {
                self.change(relation, Kind::Update, Some(&new), old.as_deref())
            }
            Message::Delete { relation, old } => {
                self.change(relation, Kind::Delete, None, Some(&old))
            }
            Message::Relation(_) | Message::Other(_) => None,
        };
        self.pending.extend(change);
        Vec::new()
    }
}

/// Captures changes until `shutdown`, reconnecting with a growing delay when the database goes
/// away (changes committed while no slot existed are not replayed, as with a Realtime restart).
pub async fn run(
    database_url: String,
    changes: broadcast::Sender<Arc<Change>>,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = capture(&database_url, &changes) => {
                if let Err(error) = result {
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "realtime: change capture stopped");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn capture(
    database_url: &str,
    changes: &broadcast::Sender<Arc<Change>>,
) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(database_url).await?;
    let slot = format!("local_supabase_{}", uuid::Uuid::new_v4().simple());
    sqlx::query("select pg_create_logical_replication_slot($1, 'pgoutput', true)")
        .bind(&slot)
        .execute(&mut conn)
        .await?;
    tracing::info!(%slot, "realtime: capturing changes of publication supabase_realtime");
    let mut assembler = Assembler::default();
    loop {
        let messages: Vec<Vec<u8>> = sqlx::query_scalar(
            "select data from pg_logical_slot_get_binary_changes($1, null, null, \
             'proto_version', '1', 'publication_names', 'supabase_realtime')",
        )
        .bind(&slot)
        .fetch_all(&mut conn)
        .await?;
        let idle = messages.is_empty();
        for bytes in messages {
            let message = match pgoutput::decode(&bytes) {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "realtime: skipped an undecodable message");
                    continue;
                }
            };
            if let Message::Relation(relation) = &message {
                let type_names = type_names(&mut conn, relation).await?;
                assembler.shapes.insert(
                    relation.id,
                    Shape {
                        relation: relation.clone(),
                        type_names,
                    },
                );
            }
            for change in assembler.feed(message) {
                // No receivers is fine: nobody is subscribed.
                let _ = changes.send(Arc::new(change));
            }
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn type_names(
    conn: &mut PgConnection,
    relation: &Relation,
) -> Result<Vec<String>, sqlx::Error> {
    let oids: Vec<i64> = relation
        .columns
        .iter()
        .map(|c| i64::from(c.type_oid))
        .collect();
    let names: HashMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
        "select oid::int8, typname::text from pg_type where oid::int8 = any($1)",
    )
    .bind(&oids)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    Ok(oids
        .iter()
        .map(|oid| names.get(oid).cloned().unwrap_or_else(|| "text".to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::pgoutput::RelationColumn;

    #[test]
    fn values_become_json_of_their_type() {
        assert_eq!(to_json("int8", "42"), Value::from(42));
        assert_eq!(to_json("bool", "t"), Value::Bool(true));
        assert_eq!(to_json("jsonb", "{\"a\":1}"), serde_json::json!({"a": 1}));
        assert_eq!(to_json("uuid", "u-1"), Value::from("u-1"));
        assert_eq!(to_json("numeric", "NaN"), Value::from("NaN"));
        assert_eq!(
            to_json("timestamptz", "2026-12-01 11:38:25.377021+00"),
            Value::from("2026-12-01T11:38:25.377021+00:00")
        );
        assert_eq!(
            to_json("timestamptz", "2026-12-01 11:38:25+05:30"),
            Value::from("2026-12-01T11:38:25+05:30")
        );
        assert_eq!(
            to_json("timestamp", "2026-12-01 11:38:25.5"),
            Value::from("2026-12-01T11:38:25.5")
        );
    }

    #[test]
    fn a_transaction_yields_its_changes_at_commit_with_keys() {
        let mut assembler = Assembler::default();
        assembler.shapes.insert(
            1,
            Shape {
                relation: Relation {
                    id: 1,
                    schema: "public".into(),
                    table: "t".into(),
                    columns: vec![
                        RelationColumn {
                            key: true,
                            name: "id".into(),
                            type_oid: 20,
                        },
                        RelationColumn {
                            key: false,
                            name: "body".into(),
                            type_oid: 25,
                        },
                    ],
                },
                type_names: vec!["int8".into(), "text".into()],
            },
        );
        assert!(
            assembler
                .feed(Message::Begin { commit_micros: 0 })
                .is_empty()
        );
        assert!(
            assembler
                .feed(Message::Insert {
                    relation: 1,
                    new: vec![Datum::Text("5".into()), Datum::Null]
                })
                .is_empty()
        );
        assert!(
            assembler
                .feed(Message::Delete {
                    relation: 1,
                    old: vec![Datum::Text("4".into()), Datum::Null]
                })
                .is_empty()
        );
        let changes = assembler.feed(Message::Commit);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].kind, Kind::Insert);
        assert_eq!(changes[0].record.get("id"), Some(&Value::from(5)));
        assert_eq!(changes[0].record.get("body"), Some(&Value::Null));
        assert_eq!(changes[0].key[0].text, "5");
        assert_eq!(changes[1].kind, Kind::Delete);
        assert_eq!(changes[1].key[0].text, "4");
        assert_eq!(changes[0].commit_timestamp, "2000-01-01T00:00:00.000Z");
        assert!(assembler.feed(Message::Commit).is_empty(), "nothing twice");
    }
}
