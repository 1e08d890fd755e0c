//! The credentials every protected operation must refuse with 401: none at all,
//! malformed headers, and tokens forged for the very caller the call would succeed
//! for (expired, signed with another secret, `alg: none`, another algorithm, a
//! payload swapped under a real signature). A server that skipped a check would
//! answer those with the caller's success, so a 401 proves the check ran.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::SECRET;

/// Who a forged token claims to be.
#[derive(Debug, Clone)]
pub struct Claimant {
    /// The `sub` claim.
    pub user: String,
    /// Whether it claims `role: "admin"`.
    pub admin: bool,
}

/// An `Authorization` header to send, or none.
#[derive(Debug, Clone)]
pub struct Credential {
    /// What it is, for failure messages.
    pub name: &'static str,
    /// The whole header value; `None` sends no header.
    pub header: Option<String>,
}

impl Credential {
    /// A valid bearer token.
    pub fn bearer(name: &'static str, token: &str) -> Self {
        Self {
            name,
            header: Some(format!("Bearer {token}")),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn claims(claimant: &Claimant, exp: u64) -> Value {
    let mut claims = json!({ "sub": claimant.user, "exp": exp, "iat": now() });
    if claimant.admin {
        claims["role"] = json!("admin");
    }
    claims
}

fn signed(algorithm: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token signed")
}

/// Base64url without padding, as JWTs encode their parts. Written here because an
/// unsigned token is exactly what no JWT library will produce.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Every credential that must get 401, forged for `claimant`.
pub fn refused(claimant: &Claimant) -> Vec<Credential> {
    let valid = claims(claimant, now() + 3600);
    let header = |name, token: String| Credential {
        name,
        header: Some(format!("Bearer {token}")),
    };
    let unsigned = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(valid.to_string().as_bytes())
    );
    // A real signature of an end user's claims under a payload that claims more.
    let user = Claimant {
        user: claimant.user.clone(),
        admin: false,
    };
    let genuine = signed(Algorithm::HS256, SECRET, &claims(&user, now() + 3600));
    let mut parts = genuine.split('.');
    let (head, _, signature) = (
        parts.next().expect("header"),
        parts.next().expect("payload"),
        parts.next().expect("signature"),
    );
    let mut elevated = valid.clone();
    elevated["role"] = json!("admin");
    let swapped = format!(
        "{head}.{}.{signature}",
        base64url(elevated.to_string().as_bytes())
    );
    vec![
        Credential {
            name: "no Authorization header",
            header: None,
        },
        Credential {
            name: "an empty bearer token",
            header: Some("Bearer ".to_owned()),
        },
        Credential {
            name: "another scheme (Basic)",
            header: Some("Basic cm9vdDpyb290".to_owned()),
        },
        header("a malformed token", "not-a-jwt".to_owned()),
        header("three parts of garbage", "a.b.c".to_owned()),
        header(
            "an expired token",
            signed(Algorithm::HS256, SECRET, &claims(claimant, now() - 3600)),
        ),
        header(
            "a token signed with another secret",
            signed(
                Algorithm::HS256,
                "another-secret-another-secret-another",
                &valid,
            ),
        ),
        header("an alg: none token", unsigned),
        header(
            "a token signed with HS512 and the right secret",
            signed(Algorithm::HS512, SECRET, &valid),
        ),
        header("a signature under a swapped payload", swapped),
    ]
}

#[test]
fn base64url_matches_rfc_4648_test_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(base64url(plain.as_bytes()), encoded);
    }
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}
