//! Decoding of pgoutput (logical replication protocol version 1) messages, as
//! `pg_logical_slot_get_binary_changes` returns them: one message per row.
//! Only what Realtime needs: transactions, relations and row changes, values in text format.

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A transaction starts; its commit time in microseconds since 2000-01-01 UTC.
    Begin { commit_micros: i64 },
    /// The transaction committed.
    Commit,
    /// A relation's shape (sent before its first change in a decoding session).
    Relation(Relation),
    /// A row was inserted.
    Insert { relation: u32, new: Tuple },
    /// A row was updated; `old` only when the replica identity carries it.
    Update {
        relation: u32,
        old: Option<Tuple>,
        new: Tuple,
    },
    /// A row was deleted; `old` holds the replica identity (the key, or all columns).
    Delete { relation: u32, old: Tuple },
    /// Anything Realtime does not use (type, origin, truncate, logical messages).
    Other(u8),
}

/// A relation and its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// Its OID.
    pub id: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Its columns, in order.
    pub columns: Vec<RelationColumn>,
}

/// One column of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationColumn {
    /// Part of the replica identity (the primary key by default).
    pub key: bool,
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
}

/// A row's values in column order.
pub type Tuple = Vec<Datum>;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// SQL null.
    Null,
    /// A TOASTed value that did not change (not sent).
    Unchanged,
    /// The value in its text form.
    Text(String),
}

/// Why a message could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("pgoutput: {0}")]
pub struct DecodeError(&'static str);

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError("message ends early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        Ok(i64::from_be_bytes(word))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError("unterminated string"))?;
        let text = String::from_utf8(self.take(end)?.to_vec())
            .map_err(|_| DecodeError("string is not UTF-8"))?;
        self.take(1)?;
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let count = self.u16()?;
        (0..count)
            .map(|_| match self.u8()? {
                b'n' => Ok(Datum::Null),
                b'u' => Ok(Datum::Unchanged),
                b't' => {
                    let len = self.u32()? as usize;
                    String::from_utf8(self.take(len)?.to_vec())
                        .map(Datum::Text)
                        .map_err(|_| DecodeError("value is not UTF-8"))
                }
                _ => Err(DecodeError("unknown tuple value kind")),
            })
            .collect()
    }
}

/// Decodes one message.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes };
    let tag = r.u8()?;
    Ok(match tag {
        b'B' => {
            let _final_lsn = r.i64()?;
            let commit_micros = r.i64()?;
            let _xid = r.u32()?;
            Message::Begin { commit_micros }
        }
        b'C' => Message::Commit,
        b'R' => {
            let id = r.u32()?;
            let schema = r.string()?;
            let table = r.string()?;
            let _replica_identity = r.u8()?;
            let count = r.u16()?;
            let columns = (0..count)
                .map(|_| {
                    let flags = r.u8()?;
                    let name = r.string()?;
                    let type_oid = r.u32()?;
                    let _modifier = r.u32()?;
                    Ok(RelationColumn {
                        key: flags & 1 == 1,
                        name,
                        type_oid,
                    })
                })
                .collect::<Result<_, DecodeError>>()?;
            Message::Relation(Relation {
                id,
                schema,
                table,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            if r.u8()? != b'N' {
                return Err(DecodeError("insert without a new tuple"));
            }
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let mut old = None;
            let mut kind = r.u8()?;
            if kind == b'K' || kind == b'O' {
                old = Some(r.tuple()?);
                kind = r.u8()?;
            }
            if kind != b'N' {
                return Err(DecodeError("update without a new tuple"));
            }
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => Message::Delete {
                    relation,
                    old: r.tuple()?,
                },
                _ => return Err(DecodeError("delete without an old tuple")),
            }
        }
        other => Message::Other(other),
    })
}

/// Microseconds since 2000-01-01 (Postgres' epoch) as an RFC 3339 UTC time.
pub fn postgres_time(micros: i64) -> String {
    const POSTGRES_EPOCH_UNIX_SECS: i64 = 946_684_800;
    let unix_micros = micros.saturating_add(POSTGRES_EPOCH_UNIX_SECS * 1_000_000);
    chrono::DateTime::from_timestamp_micros(unix_micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TupleData: a column count, then each value (`None` is SQL null).
    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut out = (values.len() as u16).to_be_bytes().to_vec();
        for value in values {
            match value {
                Some(text) => {
                    out.push(b't');
                    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
                None => out.push(b'n'),
            }
        }
        out
    }

    /// A row-change message on relation 16385: its tag, then each (kind, tuple) section.
    fn change(tag: u8, sections: &[(u8, &[Option<&str>])]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&16_385u32.to_be_bytes());
        for (kind, values) in sections {
            out.push(*kind);
            out.extend(tuple(values));
        }
        out
    }

    #[test]
    fn relation_insert_update_delete_and_begin_decode() {
        let mut relation = vec![b'R'];
        relation.extend_from_slice(&16_385u32.to_be_bytes());
        relation.extend_from_slice(b"public\0user_notifications\0");
        relation.push(b'd');
        relation.extend_from_slice(&2u16.to_be_bytes());
        relation.push(1);
        relation.extend_from_slice(b"id\0");
        relation.extend_from_slice(&20u32.to_be_bytes());
        relation.extend_from_slice(&u32::MAX.to_be_bytes());
        relation.push(0);
        relation.extend_from_slice(b"payload\0");
        relation.extend_from_slice(&3802u32.to_be_bytes());
        relation.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode(&relation).unwrap(),
            Message::Relation(Relation {
                id: 16_385,
                schema: "public".into(),
                table: "user_notifications".into(),
                columns: vec![
                    RelationColumn {
                        key: true,
                        name: "id".into(),
                        type_oid: 20
                    },
                    RelationColumn {
                        key: false,
                        name: "payload".into(),
                        type_oid: 3802
                    },
                ],
            })
        );

        assert_eq!(
            decode(&change(b'I', &[(b'N', &[Some("7"), None])])).unwrap(),
            Message::Insert {
                relation: 16_385,
                new: vec![Datum::Text("7".into()), Datum::Null]
            }
        );
        let mut unchanged = change(b'U', &[(b'K', &[Some("7"), None]), (b'N', &[Some("8")])]);
        // the second column of the new tuple: an unchanged TOASTed value
        let count_at = unchanged.len() - tuple(&[Some("8")]).len();
        unchanged[count_at + 1] = 2;
        unchanged.push(b'u');
        assert_eq!(
            decode(&unchanged).unwrap(),
            Message::Update {
                relation: 16_385,
                old: Some(vec![Datum::Text("7".into()), Datum::Null]),
                new: vec![Datum::Text("8".into()), Datum::Unchanged],
            }
        );
        assert_eq!(
            decode(&change(b'D', &[(b'K', &[Some("8")])])).unwrap(),
            Message::Delete {
                relation: 16_385,
                old: vec![Datum::Text("8".into())]
            }
        );

        let mut begin = vec![b'B'];
        begin.extend_from_slice(&0i64.to_be_bytes());
        begin.extend_from_slice(&1_000_000i64.to_be_bytes());
        begin.extend_from_slice(&9u32.to_be_bytes());
        assert_eq!(
            decode(&begin).unwrap(),
            Message::Begin {
                commit_micros: 1_000_000
            }
        );
        assert_eq!(postgres_time(1_000_000), "2000-01-01T00:00:01.000Z");
    }

    #[test]
    fn truncated_or_unknown_input_is_an_error_not_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[b'I', 0, 0]).is_err());
        assert!(decode(&[b'R', 0, 0, 0, 1, b'p']).is_err());
        let mut insert = vec![b'I', 0, 0, 0, 1, b'N', 0, 1, b't', 0, 0, 0, 9, b'x'];
        assert!(decode(&insert).is_err());
        insert[8] = b'?';
        assert!(decode(&insert).is_err());
        assert_eq!(decode(b"Y").unwrap(), Message::Other(b'Y'));
    }
}
