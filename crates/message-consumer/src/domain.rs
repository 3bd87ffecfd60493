//! A user message event turned into a `user_notifications` row, column for column as the Go
//! service wrote it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an event cannot become a notification (permanent: the event goes to the dead-letter topic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    /// The decoded record is not an object with the expected fields.
    #[error("field `{0}` is missing or not a string")]
    Field(&'static str),
    /// `visibility` is neither `broadcast` nor `direct`.
    #[error("visibility {0:?} is not broadcast or direct")]
    Visibility(String),
    /// A direct message without a recipient would be visible to nobody but its sender.
    #[error("a direct message needs a recipient_id")]
    MissingRecipient,
}

/// One row of `public.user_notifications`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Author.
    pub user_id: String,
    /// JSON text `{"email":…,"message":…}`.
    pub payload: String,
    /// The event's `timestamp`, verbatim.
    pub event_time: String,
    /// `broadcast` or `direct`.
    pub visibility: String,
    /// Recipient of a direct message.
    pub recipient_id: Option<String>,
    /// The event's identity (see [`crate::handlers::event_key`]), so a redelivery inserts nothing.
    pub idempotency_key: String,
}

/// The `event_type` every row written here carries.
pub const EVENT_TYPE: &str = "user.message";

/// `public.user.message.events` (`avro/public/user/message.events.avsc`) as decoded, borrowed
/// from the decoded record. Every field is optional here because this is where a bad event is
/// told apart from a good one: [`Notification::from_event`] names the field that is missing.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMessageEvent<'a> {
    /// Author (the gateway sets it from the token).
    #[serde(borrow, default)]
    pub user_id: Option<&'a str>,
    /// Author's email.
    #[serde(borrow, default)]
    pub email: Option<&'a str>,
    /// The text.
    #[serde(borrow, default)]
    pub message: Option<&'a str>,
    /// When it was sent, kept verbatim as the row's `event_time`.
    #[serde(borrow, default)]
    pub timestamp: Option<&'a str>,
    /// `broadcast` (the default) or `direct`.
    #[serde(borrow, default)]
    pub visibility: Option<&'a str>,
    /// Recipient of a direct message.
    #[serde(borrow, default)]
    pub recipient_id: Option<&'a str>,
}

fn required<'a>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, InvalidEvent> {
    value.ok_or(InvalidEvent::Field(field))
}

impl Notification {
    /// Validates a decoded `UserMessageEvent`. `event_key` identifies the event.
    pub fn from_event(event: &Value, event_key: String) -> Result<Self, InvalidEvent> {
        // A record whose fields have other types than the contract's is as unusable as one
        // without them; it is named by its first field.
        let event =
            UserMessageEvent::deserialize(event).map_err(|_| InvalidEvent::Field("user_id"))?;
        let user_id = required(event.user_id, "user_id")?;
        if user_id.is_empty() {
            return Err(InvalidEvent::Field("user_id"));
        }
        let email = required(event.email, "email")?;
        let message = required(event.message, "message")?;
        let event_time = required(event.timestamp, "timestamp")?;
        let visibility = match event.visibility.unwrap_or_default() {
            "" | "broadcast" => "broadcast",
            "direct" => "direct",
            other => return Err(InvalidEvent::Visibility(other.to_owned())),
        };
        let recipient_id = event
            .recipient_id
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        if visibility == "direct" && recipient_id.is_none() {
            return Err(InvalidEvent::MissingRecipient);
        }
        Ok(Self {
            user_id: user_id.to_owned(),
            payload: payload_json(email, message),
            event_time: event_time.to_owned(),
            visibility: visibility.to_owned(),
            recipient_id,
            idempotency_key: event_key,
        })
    }
}

/// `{"email":"…","message":"…"}` with the keys in that order and `<`, `>`, `&`, U+2028, U+2029
/// escaped as `\u003c`… — byte-identical to what the original (Go) service stored, so readers
/// that compare payloads keep working.
pub fn payload_json(email: &str, message: &str) -> String {
    let raw = format!(
        "{{\"email\":{},\"message\":{}}}",
        Value::from(email),
        Value::from(message)
    );
    // Only string contents can contain these characters (the keys and punctuation cannot).
    raw.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(visibility: Value, recipient: Value) -> Value {
        json!({"user_id":"u1","email":"a@b.c","message":"hi","timestamp":"2026-02-25T10:00:00.000Z","visibility":visibility,"recipient_id":recipient})
    }

    #[test]
    fn rows_follow_the_original_mapping() {
        let cases = [
            (json!("broadcast"), json!(null), "broadcast", None),
            (json!(""), json!(null), "broadcast", None),
            (json!(null), json!(""), "broadcast", None),
            (json!("direct"), json!("u2"), "direct", Some("u2")),
            (json!("broadcast"), json!("u2"), "broadcast", Some("u2")),
        ];
        for (visibility, recipient, expected_visibility, expected_recipient) in cases {
            let row = Notification::from_event(
                &event(visibility.clone(), recipient.clone()),
                "t:0:1".into(),
            )
            .unwrap_or_else(|e| panic!("{visibility} {recipient}: {e}"));
            assert_eq!(row.visibility, expected_visibility);
            assert_eq!(row.recipient_id.as_deref(), expected_recipient);
            assert_eq!(row.event_time, "2026-02-25T10:00:00.000Z");
            assert_eq!(row.payload, r#"{"email":"a@b.c","message":"hi"}"#);
            assert_eq!(row.idempotency_key, "t:0:1");
        }
    }

    #[test]
    fn invalid_events_are_rejected() {
        let cases = [
            (
                event(json!("public"), json!(null)),
                InvalidEvent::Visibility("public".into()),
            ),
            (
                event(json!("direct"), json!(null)),
                InvalidEvent::MissingRecipient,
            ),
            (
                event(json!("direct"), json!("")),
                InvalidEvent::MissingRecipient,
            ),
            (
                json!({"email":"e","message":"m","timestamp":"t"}),
                InvalidEvent::Field("user_id"),
            ),
            (
                json!({"user_id":"","email":"e","message":"m","timestamp":"t"}),
                InvalidEvent::Field("user_id"),
            ),
            (
                json!({"user_id":"u","email":"e","timestamp":"t"}),
                InvalidEvent::Field("message"),
            ),
            (json!("not a record"), InvalidEvent::Field("user_id")),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Notification::from_event(&input, "k".into()),
                Err(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn the_event_fits_its_contract() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../avro/public/user/message.events.avsc"
        );
        let schema =
            apache_avro::Schema::parse_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let event = UserMessageEvent {
            user_id: Some("u1"),
            email: Some("a@b.c"),
            message: Some("hi"),
            timestamp: Some("2026-02-25T10:00:00.000Z"),
            visibility: Some("direct"),
            recipient_id: Some("u2"),
        };
        let document = serde_json::to_value(&event).unwrap();
        let value = substrate::avro::json_to_avro(&schema, &document).unwrap();
        let bytes = substrate::avro::encode_datum(&schema, value).unwrap();
        let decoded = substrate::avro::decode_datum(&schema, &mut bytes.as_slice()).unwrap();
        let json = substrate::avro::avro_to_json(&decoded);
        assert_eq!(UserMessageEvent::deserialize(&json).unwrap(), event);
        let row = Notification::from_event(&json, "k".into()).unwrap();
        assert_eq!(
            (row.visibility.as_str(), row.recipient_id.as_deref()),
            ("direct", Some("u2"))
        );
    }

    #[test]
    fn payload_escapes_html_characters_like_the_original() {
        assert_eq!(
            payload_json("a&b@c.d", "<b>\"hi\"</b>\u{2028}"),
            r#"{"email":"a\u0026b@c.d","message":"\u003cb\u003e\"hi\"\u003c/b\u003e\u2028"}"#
        );
        let parsed: Value = serde_json::from_str(&payload_json("x", "<&>")).unwrap_or_default();
        assert_eq!(
            parsed["message"], "<&>",
            "still valid JSON with the same text"
        );
    }
}
