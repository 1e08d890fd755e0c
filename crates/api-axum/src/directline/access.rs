//! Who a Direct Line request is from: a *secret*, which the deployer's own server
//! holds and which opens every conversation of its bot, or a *conversation token*,
//! which a browser holds and which opens one conversation.

use axum::http::HeaderMap;
use confab_domain::bot::{Bot, BotId};
use confab_domain::conversation::{Conversation, ConversationId};
use confab_domain::user::{Caller, Role, UserId};

use super::error::DirectLineError;
use crate::config::DirectLineSecret;
use crate::state::AppState;

/// The credential a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A configured secret, which stands for its bot.
    Secret(BotId),
    /// A conversation token.
    Token(crate::auth::ConversationGrant),
}

/// A conversation the credential opens, with who acts in it.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    /// The conversation's user, as whom the request acts.
    pub caller: Caller,
    pub conversation: Conversation,
}

/// Reads `Authorization: Bearer …` (or, for the stream, the `t` query parameter the
/// stream URL carries) as a secret or a conversation token.
///
/// # Errors
/// 401 without credentials; 403 for a value that is neither a configured secret nor
/// a valid conversation token (`TokenExpired` when it has expired).
pub(crate) fn credential(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Credential, DirectLineError> {
    let presented = match query_token.filter(|token| !token.is_empty()) {
        Some(token) => token,
        None => crate::auth::bearer_token(headers)
            .map_err(|_| DirectLineError::missing_credentials())?,
    };
    if let Some(bot) = secret_bot(&state.config.directline.secrets, presented) {
        return Ok(Credential::Secret(bot));
    }
    Ok(Credential::Token(
        state.auth.verify_for_conversation(presented)?,
    ))
}

/// The bot whose secret `presented` is. Every configured secret is compared in full,
/// in time that does not depend on where the bytes differ, so that timing tells an
/// attacker nothing about a secret's prefix.
fn secret_bot(secrets: &[DirectLineSecret], presented: &str) -> Option<BotId> {
    secrets
        .iter()
        .filter(|secret| constant_time_eq(secret.expose().as_bytes(), presented.as_bytes()))
        .map(|secret| secret.bot_id.clone())
        .next_back()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Opens conversation `id` with `credential`: a token must be the conversation's own,
/// a secret its bot's.
///
/// # Errors
/// 403 for a token of another conversation; 404 when the conversation does not
/// exist, was deleted, or belongs to another bot than the secret's.
pub(crate) async fn open(
    state: &AppState,
    credential: &Credential,
    id: ConversationId,
) -> Result<Opened, DirectLineError> {
    let conversation = match credential {
        Credential::Token(grant) => {
            if grant.conversation != id {
                return Err(DirectLineError::forbidden(
                    "the token opens another conversation",
                ));
            }
            state.service.conversation(&grant.caller, id).await?
        }
        Credential::Secret(bot) => {
            // The bot's view: the domain shows a bot its own conversations only, so a
            // secret never reaches another bot's.
            state.service.conversation(&bot_caller(bot)?, id).await?
        }
    };
    Ok(Opened {
        caller: Caller::user(conversation.user_id.clone()),
        conversation,
    })
}

fn bot_caller(bot: &BotId) -> Result<Caller, DirectLineError> {
    let user_id = UserId::parse(bot.as_str())
        .map_err(|_| DirectLineError::forbidden("the secret's bot id is not usable"))?;
    Ok(Caller {
        user_id,
        role: Role::Bot(bot.clone()),
    })
}

/// The bot's display name, for the activities' `from.name`; its id when the bot is
/// gone (its conversations stay). Asked only where activities are written.
pub(crate) async fn bot_name(state: &AppState, bot: &BotId) -> String {
    match state.service.bot(bot).await {
        Ok(Bot { name, .. }) => name.as_str().to_owned(),
        Err(_) => bot.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_compared_whole() {
        let secrets = vec![
            DirectLineSecret::new(BotId::parse("echo").expect("id"), "s3cret-echo-0123456789"),
            DirectLineSecret::new(BotId::parse("demo").expect("id"), "s3cret-demo-0123456789"),
        ];
        assert_eq!(
            secret_bot(&secrets, "s3cret-demo-0123456789"),
            Some(BotId::parse("demo").expect("id"))
        );
        assert_eq!(secret_bot(&secrets, "s3cret-demo-012345678"), None);
        assert_eq!(secret_bot(&secrets, "s3cret-demo-01234567890"), None);
        assert_eq!(secret_bot(&secrets, ""), None);
    }
}
