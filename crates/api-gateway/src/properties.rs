//! Properties of token verification and of `routes.yaml` parsing, checked by the property tests
//! below (in CI) and by the `jwt` and `routes_yaml` fuzz targets (`fuzz/`, feature `fuzzing`),
//! which feed them inputs of their own. Each check panics when its property does not hold.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::SecretString;
use serde_json::Value;

use crate::auth::JwtVerifier;
use crate::configuration::AuthSettings;
use crate::routes_config::RouteTable;

/// The HS256 secret of [`verifier`].
pub const SECRET: &str = "property-check-secret-with-at-least-32-characters";

/// A verifier as deployed (audience `authenticated`, 30 s leeway) with [`SECRET`].
pub fn verifier() -> JwtVerifier {
    JwtVerifier::new(&AuthSettings {
        jwt_secret: Some(SecretString::from(SECRET)),
        ..AuthSettings::default()
    })
    .unwrap_or_else(|e| panic!("verifier: {e}"))
}

fn verify(verifier: &JwtVerifier, token: &str) -> Result<crate::auth::AuthUser, String> {
    futures::executor::block_on(verifier.verify(token)).map_err(|e| e.to_string())
}

/// Whatever its bytes, a token that was not signed with the secret is refused (and parsing it
/// never panics).
pub fn unsigned_token_is_refused(verifier: &JwtVerifier, token: &str) {
    if let Ok(user) = verify(verifier, token) {
        panic!("a token nobody signed was accepted as {user:?}: {token:?}");
    }
}

/// A token signed with the secret over any header and claims bytes is accepted only when the
/// header says HS256, `sub` is a non-empty string, `aud` names the audience, `exp` has not
/// passed and `nbf` has (both within the leeway); the caller is then exactly `sub`, and the
/// email is the claim's when it is a non-empty string.
pub fn signed_token_verdict_is_sound(verifier: &JwtVerifier, header: &[u8], claims: &[u8]) {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap_or_else(|e| panic!("signing: {e}"));
    let token = format!("{signing_input}.{signature}");
    let Ok(user) = verify(verifier, &token) else {
        return;
    };
    let header: Value = serde_json::from_slice(header)
        .unwrap_or_else(|e| panic!("accepted with a header that is not JSON ({e}): {token}"));
    assert_eq!(
        header["alg"], "HS256",
        "accepted another algorithm: {token}"
    );
    let claims: Value = serde_json::from_slice(claims)
        .unwrap_or_else(|e| panic!("accepted with claims that are not JSON ({e}): {token}"));
    assert_eq!(
        claims["sub"].as_str(),
        Some(user.user_id.as_str()),
        "the caller is not the subject: {token}"
    );
    assert!(!user.user_id.is_empty(), "an empty subject: {token}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let leeway = 30.0 + 2.0;
    let exp = claims["exp"]
        .as_f64()
        .unwrap_or_else(|| panic!("accepted without a numeric exp: {token}"));
    assert!(exp + leeway >= now, "accepted an expired token: {token}");
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf
            .as_f64()
            .unwrap_or_else(|| panic!("accepted a non-numeric nbf: {token}"));
        assert!(
            nbf - leeway <= now,
            "accepted a token not yet valid: {token}"
        );
    }
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == "authenticated",
        Value::Array(auds) => auds.iter().any(|a| a == "authenticated"),
        _ => false,
    };
    assert!(audience_ok, "accepted for another audience: {token}");
    assert_eq!(
        user.email.as_deref(),
        claims["email"].as_str().filter(|e| !e.is_empty()),
        "the email is not the claim's: {token}"
    );
}

/// Parsing never panics, and a table it accepts is unambiguous: the same text always gives the
/// same table, whatever order its maps are walked in.
pub fn routes_parse_is_deterministic(text: &str) {
    let Ok(first) = RouteTable::parse(text) else {
        return;
    };
    for _ in 0..4 {
        let again = RouteTable::parse(text)
            .unwrap_or_else(|e| panic!("accepted once, refused the next time ({e}): {text:?}"));
        assert_eq!(
            again, first,
            "the same routes.yaml gave another table: {text:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn claim_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            "[a-z0-9-]{0,12}".prop_map(Value::String),
            any::<i64>().prop_map(|n| json!(n)),
            (-1.0e10..1.0e10f64).prop_map(|f| json!(f)),
            prop::collection::vec("[a-z]{0,14}".prop_map(Value::String), 0..3)
                .prop_map(Value::Array),
        ]
    }

    /// Claims around the edges: times just before and after now, audiences right and wrong,
    /// subjects present, empty or of another type, plus anything at all.
    fn claims() -> impl Strategy<Value = Value> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let time = prop_oneof![
            (-120i64..120).prop_map(move |d| json!(now + d)),
            (-120i64..120).prop_map(move |d| json!(format!("{}", now + d))),
            claim_value(),
        ];
        let aud = prop_oneof![
            Just(json!("authenticated")),
            Just(json!(["anon", "authenticated"])),
            Just(json!("anon")),
            claim_value(),
        ];
        let sub = prop_oneof![Just(json!("user-1")), Just(json!("")), claim_value()];
        (
            prop::option::of(sub),
            prop::option::of(aud),
            prop::option::of(time.clone()),
            prop::option::of(time),
            prop::option::of(claim_value()),
        )
            .prop_map(|(sub, aud, exp, nbf, email)| {
                let mut map = serde_json::Map::new();
                for (name, value) in [
                    ("sub", sub),
                    ("aud", aud),
                    ("exp", exp),
                    ("nbf", nbf),
                    ("email", email),
                ] {
                    if let Some(value) = value {
                        map.insert(name.into(), value);
                    }
                }
                Value::Object(map)
            })
    }

    fn header() -> impl Strategy<Value = Value> {
        let alg = prop_oneof![
            Just("HS256"),
            Just("hs256"),
            Just("none"),
            Just("HS512"),
            Just("ES256"),
            Just("RS256"),
        ];
        (alg, prop::option::of("[a-z]{0,6}")).prop_map(|(alg, kid)| match kid {
            Some(kid) => json!({"alg": alg, "typ": "JWT", "kid": kid}),
            None => json!({"alg": alg, "typ": "JWT"}),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn signed_tokens_are_accepted_only_when_every_claim_holds(header in header(), claims in claims()) {
            signed_token_verdict_is_sound(&verifier(), header.to_string().as_bytes(), claims.to_string().as_bytes());
        }

        #[test]
        fn tokens_not_signed_with_the_secret_are_refused(parts in prop::collection::vec("[A-Za-z0-9_=-]{0,40}", 0..5)) {
            unsigned_token_is_refused(&verifier(), &parts.join("."));
        }

        #[test]
        fn routes_files_parse_to_one_table(
            // a small alphabet, so keys that differ only in case or spaces are common
            keys in prop::collection::vec(("[aAbB ]{0,3}", "[a-z.]{0,8}"), 0..6),
            external in prop::collection::vec(("[aAbB ]{0,3}", "[a-z.]{0,8}"), 0..6),
        ) {
            let section = |name: &str, entries: &[(String, String)]| {
                let mut text = format!("{name}:\n");
                for (key, topic) in entries {
                    text.push_str(&format!("  {key:?}: {topic:?}\n"));
                }
                text
            };
            let text = section("webhookRoutes", &keys) + &section("externalRoutes", &external);
            routes_parse_is_deterministic(&text);
        }
    }

    #[test]
    fn the_happy_path_is_accepted_so_the_oracle_is_exercised() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let claims =
            json!({"sub": "user-1", "aud": "authenticated", "exp": now + 60, "email": "a@b.c"});
        let header = json!({"alg": "HS256", "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        let user = verify(&verifier(), &format!("{signing_input}.{signature}")).unwrap();
        assert_eq!(user.user_id, "user-1");
    }

    #[test]
    fn a_signed_token_with_invalid_utf8_in_an_unread_claim_is_refused() {
        // The jwt_signed fuzz target's crash input: valid in every claim the gateway reads,
        // but the claims are not JSON text (byte 0xC0 inside a string).
        let header = br#"{"alg": "HS256", "typ": "JWT"}"#;
        let claims = b"{\"sub\": \"user-1\", \"aud\": \"authenticated\", \"exp\": 4102444800, \"e.ail\": \"a\xc0b.c\"}";
        signed_token_verdict_is_sound(&verifier(), header, claims);
    }
}
