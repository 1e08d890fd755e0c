//! [`AppState`]: every dependency a handler uses, as a typed field. A handler that
//! needs something the state does not carry does not compile, so a wiring mistake
//! cannot turn into a 503 at run time.

use std::sync::Arc;

use axum::extract::FromRef;
use confab_domain::admin::AdminService;
use confab_domain::admin::BotAdmin;
use confab_domain::service::ConversationService;
use confab_domain::webhooks::WebhookAdmin;

use crate::auth::Auth;
use crate::config::ApiConfig;
use crate::limits::Limiter;
use crate::shutdown::Shutdown;

/// What every handler shares; cheap to clone (reference counts).
#[derive(Clone)]
pub struct AppState {
    /// The use cases of users.
    pub service: Arc<ConversationService>,
    /// The use cases of administrators: actions on a selection, exports, analytics.
    pub admin: Arc<AdminService>,
    /// The bot registry's changes (administrators).
    pub bot_admin: Arc<BotAdmin>,
    /// The webhook subscriptions and their deliveries (administrators).
    pub webhooks: Arc<WebhookAdmin>,
    /// Token issuing and verification.
    pub auth: Arc<Auth>,
    /// Send rate and sockets per user.
    pub limiter: Limiter,
    /// The signal that closes WebSockets when the server stops.
    pub shutdown: Shutdown,
    /// Settings, shared: the state is cloned for every request, and the settings
    /// hold strings (origins, Direct Line secrets).
    pub config: Arc<ApiConfig>,
}

/// Lets the [`Authenticated`](crate::Authenticated) extractor find the verifier
/// without knowing the rest of the state.
impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.auth)
    }
}
