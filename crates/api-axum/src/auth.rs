//! Identity: HS256 bearer tokens ([`Auth`]) and the [`Authenticated`] extractor that
//! turns `Authorization: Bearer <token>` into the domain's [`Caller`].
//!
//! A token's claims are `sub` (the user id), `exp` (always required and enforced),
//! `iat`, and optionally `role`: `"admin"`, or `"bot"` together with `bot_id`. A token
//! with no role, or `role: "user"`, is an end user's. Only HS256 is accepted, so
//! `alg: none` and tokens signed with other algorithms are refused.
//!
//! A *conversation token* ([`Auth::issue_for_conversation`]) also carries `conv`, the
//! one conversation it opens, and `user`, the user id again under the name Direct Line
//! clients read it by. It is accepted only where a conversation is named
//! ([`Auth::verify_for_conversation`], the Direct Line routes): [`Auth::verify`]
//! refuses it, so that a token handed to a browser for one conversation never opens
//! the user's others.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use confab_domain::bot::BotId;
use confab_domain::conversation::ConversationId;
use confab_domain::timestamp::Timestamp;
use confab_domain::user::{Caller, Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Clock skew tolerated when checking `exp`, in seconds. Kept small: a token must stop
/// working close to when it says it does.
const LEEWAY_SECONDS: u64 = 5;

/// Issues and verifies bearer tokens with one HS256 secret.
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are the secret; they must never reach a log.
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

/// A freshly issued token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The expiry time would be out of the representable range.
    #[error("token lifetime is too long")]
    TtlOutOfRange,
    /// Signing failed.
    #[error("cannot sign the token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// The claims confab reads and writes.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

/// The caller of a conversation token and the conversation it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationGrant {
    /// Who the token names: always an end user.
    pub caller: Caller,
    /// The one conversation the token opens.
    pub conversation: ConversationId,
}

/// Why a conversation token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantRejection {
    /// It was valid once and has expired.
    #[error("the token has expired")]
    Expired,
    /// It is malformed, forged, or not a conversation token.
    #[error("{0}")]
    Invalid(&'static str),
}

impl Auth {
    /// An authority signing and verifying with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Issues a token for `user` with `role`, valid for `ttl` from now.
    pub fn issue(
        &self,
        user: &UserId,
        role: &Role,
        ttl: Duration,
    ) -> Result<IssuedToken, IssueError> {
        let now = time::OffsetDateTime::now_utc();
        let expires = expiry(now, ttl)?;
        let exp = u64::try_from(expires.unix_timestamp()).map_err(|_| IssueError::TtlOutOfRange)?;
        let (role, bot_id) = match role {
            Role::User => (None, None),
            Role::Admin => (Some("admin".to_owned()), None),
            Role::Agent => (Some("agent".to_owned()), None),
            Role::Bot(bot) => (Some("bot".to_owned()), Some(bot.to_string())),
        };
        let claims = Claims {
            sub: user.to_string(),
            exp,
            iat: u64::try_from(now.unix_timestamp()).ok(),
            role,
            bot_id,
            conv: None,
            user: None,
        };
        self.sign(&claims, expires)
    }

    /// Issues a conversation token: `user` may read and write `conversation` and
    /// nothing else, for `ttl` from now.
    pub fn issue_for_conversation(
        &self,
        user: &UserId,
        conversation: ConversationId,
        ttl: Duration,
    ) -> Result<IssuedToken, IssueError> {
        let now = time::OffsetDateTime::now_utc();
        let expires = expiry(now, ttl)?;
        let claims = Claims {
            sub: user.to_string(),
            exp: u64::try_from(expires.unix_timestamp()).map_err(|_| IssueError::TtlOutOfRange)?,
            iat: u64::try_from(now.unix_timestamp()).ok(),
            role: None,
            bot_id: None,
            conv: Some(conversation.to_string()),
            user: Some(user.to_string()),
        };
        self.sign(&claims, expires)
    }

    fn sign(
        &self,
        claims: &Claims,
        expires: time::OffsetDateTime,
    ) -> Result<IssuedToken, IssueError> {
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(IssueError::Signing)?;
        Ok(IssuedToken {
            token,
            expires_at: Timestamp::new(expires),
        })
    }

    /// Verifies a conversation token and returns its user and conversation.
    ///
    /// # Errors
    /// [`GrantRejection::Expired`] for an expired one, and
    /// [`GrantRejection::Invalid`] for one that is malformed, forged, or not a
    /// conversation token.
    pub fn verify_for_conversation(
        &self,
        token: &str,
    ) -> Result<ConversationGrant, GrantRejection> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => GrantRejection::Expired,
                _ => GrantRejection::Invalid(rejection_reason(&error)),
            })?
            .claims;
        let conversation = claims
            .conv
            .as_deref()
            .ok_or(GrantRejection::Invalid("the token opens no conversation"))?
            .parse::<ConversationId>()
            .map_err(|_| GrantRejection::Invalid("the token's conversation is not valid"))?;
        if claims.role.is_some() || claims.bot_id.is_some() {
            return Err(GrantRejection::Invalid(
                "a conversation token carries no role",
            ));
        }
        let user_id = UserId::parse(&claims.sub)
            .map_err(|_| GrantRejection::Invalid("the token's sub is not a valid user id"))?;
        Ok(ConversationGrant {
            caller: Caller {
                user_id,
                role: Role::User,
            },
            conversation,
        })
    }

    /// Verifies a token and returns who it names.
    ///
    /// # Errors
    /// `unauthorized` when the token is malformed, expired, signed with another secret
    /// or algorithm, or names no valid user or role.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| ApiError::invalid_token(rejection_reason(&error)))?;
        let claims = data.claims;
        if claims.conv.is_some() {
            return Err(ApiError::invalid_token(
                "the token opens one Direct Line conversation only; use it under /v3/directline",
            ));
        }
        let user_id = UserId::parse(&claims.sub)
            .map_err(|_| ApiError::invalid_token("the token's sub is not a valid user id"))?;
        let role = match (claims.role.as_deref(), claims.bot_id.as_deref()) {
            (None | Some("user"), _) => Role::User,
            (Some("admin"), _) => Role::Admin,
            (Some("agent"), _) => Role::Agent,
            (Some("bot"), Some(bot)) => Role::Bot(BotId::parse(bot).map_err(|_| {
                ApiError::invalid_token("the token's bot_id is not a valid bot id")
            })?),
            (Some("bot"), None) => {
                return Err(ApiError::invalid_token("a bot token needs a bot_id"));
            }
            (Some(_), _) => return Err(ApiError::invalid_token("the token's role is unknown")),
        };
        Ok(Caller { user_id, role })
    }
}

/// When a token issued at `now` for `ttl` expires, cut to the whole second `exp` holds.
fn expiry(now: time::OffsetDateTime, ttl: Duration) -> Result<time::OffsetDateTime, IssueError> {
    let ttl = time::Duration::try_from(ttl).map_err(|_| IssueError::TtlOutOfRange)?;
    now.checked_add(ttl)
        .ok_or(IssueError::TtlOutOfRange)?
        .replace_millisecond(0)
        .map_err(|_| IssueError::TtlOutOfRange)
}

/// Says why a token was refused without echoing anything from it.
fn rejection_reason(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::InvalidSignature => "the token's signature is not valid",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm is not accepted"
        }
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
        _ => "the token is malformed",
    }
}

/// The bearer token of `Authorization: Bearer <token>`. The scheme is matched
/// case-insensitively, as RFC 9110 requires.
///
/// # Errors
/// `unauthorized` (with a plain `Bearer` challenge) when the header is missing, not
/// ASCII, of another scheme, or has an empty token.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .map(|(scheme, token)| (scheme, token.trim()))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .map(|(_, token)| token)
        .ok_or_else(ApiError::missing_token)
}

/// Extracts the verified caller from `Authorization: Bearer <token>`; rejects with
/// 401 `unauthorized` and `WWW-Authenticate: Bearer` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(pub Caller);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<Auth>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Arc::<Auth>::from_ref(state)
            .verify(bearer_token(&parts.headers)?)
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id).expect("valid user id")
    }

    #[test]
    fn an_issued_token_verifies_to_the_same_caller_and_role() {
        let auth = Auth::new(b"secret");
        let bot = BotId::parse("support").expect("valid bot id");
        for role in [Role::User, Role::Admin, Role::Agent, Role::Bot(bot)] {
            let issued = auth
                .issue(&user("alice"), &role, Duration::from_secs(60))
                .expect("issued");
            let caller = auth.verify(&issued.token).expect("verified");
            assert_eq!(caller.user_id, user("alice"));
            assert_eq!(caller.role, role);
        }
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let issued = Auth::new(b"other")
            .issue(&user("alice"), &Role::Admin, Duration::from_secs(60))
            .expect("issued");
        let error = Auth::new(b"secret")
            .verify(&issued.token)
            .expect_err("forged token accepted");
        assert_eq!(error.code().as_str(), "unauthorized");
    }

    #[test]
    fn a_conversation_token_opens_its_conversation_and_nothing_else() {
        let auth = Auth::new(b"secret");
        let conversation = ConversationId::from_uuid(uuid::Uuid::from_u128(7));
        let issued = auth
            .issue_for_conversation(&user("dl_alice"), conversation, Duration::from_secs(60))
            .expect("issued");
        let grant = auth
            .verify_for_conversation(&issued.token)
            .expect("verified");
        assert_eq!(grant.conversation, conversation);
        assert_eq!(grant.caller.user_id, user("dl_alice"));
        assert_eq!(grant.caller.role, Role::User);
        let refused = auth
            .verify(&issued.token)
            .expect_err("scoped token opened the API");
        assert_eq!(refused.code().as_str(), "unauthorized");
    }

    #[test]
    fn an_ordinary_token_is_no_conversation_token() {
        let auth = Auth::new(b"secret");
        let issued = auth
            .issue(&user("alice"), &Role::Admin, Duration::from_secs(60))
            .expect("issued");
        assert!(matches!(
            auth.verify_for_conversation(&issued.token),
            Err(GrantRejection::Invalid(_))
        ));
    }

    #[test]
    fn an_expired_conversation_token_says_so() {
        let auth = Auth::new(b"secret");
        let claims = Claims {
            sub: "dl_alice".to_owned(),
            exp: 1_000_000,
            iat: None,
            role: None,
            bot_id: None,
            conv: Some(uuid::Uuid::from_u128(7).to_string()),
            user: None,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &auth.encoding)
            .expect("signed");
        assert_eq!(
            auth.verify_for_conversation(&token),
            Err(GrantRejection::Expired)
        );
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // {"alg":"none","typ":"JWT"} . {"sub":"alice","exp":4102444800,"role":"admin"} .
        let token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.\
                     eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwicm9sZSI6ImFkbWluIn0.";
        assert!(Auth::new(b"secret").verify(token).is_err());
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_only_from_the_bearer_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Ok("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert!(bearer_token(&headers).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().expect("header"));
        assert!(bearer_token(&headers).is_err());
        headers.remove(header::AUTHORIZATION);
        assert!(bearer_token(&headers).is_err());
    }
}
