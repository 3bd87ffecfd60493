//! Test tokens: HS256 with the test secret, ES256 with the fixture keys.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::fakes::JWT_SECRET;

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "aud": "authenticated", "role": "authenticated", "iat": now(), "exp": now() + 3600})
}

pub fn hs256(claims: &Value) -> String {
    hs256_with(claims, JWT_SECRET)
}

pub fn hs256_with(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn token(sub: &str) -> String {
    hs256(&claims(sub))
}

pub fn expired(sub: &str) -> String {
    let mut c = claims(sub);
    c["exp"] = json!(now() - 3600);
    hs256(&c)
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// ES256 token signed with fixture key `a` or `b`, with an optional `kid`.
pub fn es256(key: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    let pem = fixture(&format!("es256-{key}.pk8.pem"));
    let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    encode(&header, claims, &encoding).unwrap()
}

/// The JWKS document for fixture key `key` under `kid`.
pub fn jwk(key: &str, kid: &str) -> Value {
    let xy = fixture(&format!("es256-{key}.xy"));
    let mut lines = xy.lines();
    let (x, y) = (
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    );
    json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"})
}

/// A token with `alg: none` and no signature.
pub fn unsigned(sub: &str) -> String {
    use base64_url::encode as b64;
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims(sub).to_string().as_bytes());
    format!("{header}.{payload}.")
}

mod base64_url {
    /// Unpadded base64url, enough for hand-made tokens.
    pub fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }
}
