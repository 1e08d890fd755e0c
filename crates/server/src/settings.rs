//! Loading [`Config`]: the defaults, then `confab.toml`, then `CONFAB_*` environment
//! variables, then command-line flags; a later source overrides an earlier one key by
//! key.
//!
//! Environment variables name a key in upper case after `CONFAB_`, with `__` between a
//! table and its key: `CONFAB_LISTEN`, `CONFAB_DATABASE_URL`,
//! `CONFAB_WS__IDLE_TIMEOUT`, `CONFAB_LIMITS__CORS_ORIGINS='["https://a.example"]'`.
//! Values are read as TOML values when they parse as one (numbers, booleans, arrays)
//! and as strings otherwise. `CONFAB_CONFIG` (the file's path) and `CONFAB_TEST_*`
//! (the test suite's) are not keys.
//!
//! An unknown key or a bad value stops the start with an error that names the key and
//! where it came from. A list of tables (such as a future `[[bots]]`) loads like any
//! other key: add a `Vec<…>` field with `#[serde(default)]` to [`Config`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};

use crate::config::Config;

/// The file read when neither `--config` nor `CONFAB_CONFIG` names one; a missing
/// default file is no error, a missing named file is.
pub const DEFAULT_CONFIG_FILE: &str = "confab.toml";

/// The prefix of the environment variables that override keys.
pub const ENV_PREFIX: &str = "CONFAB_";

/// Where settings come from, in increasing precedence after the defaults.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The configuration file named by `--config` or `CONFAB_CONFIG`, if any.
    pub file: Option<PathBuf>,
    /// Key overrides from flags, as dotted key paths and TOML values.
    pub flags: Vec<(&'static str, figment::value::Value)>,
}

/// Reads the configuration: defaults < file < environment < flags.
///
/// # Errors
/// A named file that cannot be read, a file that is not TOML, an unknown key or a
/// value of the wrong type; the message names the key and its source.
pub fn load(sources: &Sources) -> anyhow::Result<Config> {
    let file = match &sources.file {
        Some(path) => {
            if !path.is_file() {
                anyhow::bail!("the configuration file {} does not exist", path.display());
            }
            Some(path.clone())
        }
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| path.is_file()),
    };
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(environment());
    for (key, value) in &sources.flags {
        figment = figment.merge(Serialized::default(key, value.clone()));
    }
    let config = figment.extract::<Config>().map_err(|error| {
        let described = describe(error, file.as_deref());
        anyhow::anyhow!(described)
    })?;
    if config
        .jwt_secret
        .as_deref()
        .is_some_and(|secret| secret.trim().is_empty())
    {
        // An empty variable (`CONFAB_JWT_SECRET=`) would otherwise sign tokens anyone
        // can forge; leaving the key out makes the server generate and keep one.
        anyhow::bail!(
            "invalid configuration key `jwt_secret`: it is empty; set a long random string or leave the key out"
        );
    }
    let request_timeout = config.limits.request_timeout;
    if !request_timeout.is_zero() && request_timeout <= config.wait_timeout {
        // Every `?wait=true` answer would be cut into a 503 before its replies came.
        anyhow::bail!(
            "invalid configuration key `limits.request_timeout`: {} must exceed `wait_timeout` ({}), or be 0s for no limit",
            humantime::format_duration(request_timeout),
            humantime::format_duration(config.wait_timeout),
        );
    }
    Ok(config)
}

/// The `CONFAB_*` variables that are keys.
fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            key != "config" && !key.starts_with("test_")
        })
        .split("__")
}

/// One line per problem, each naming the key and its source.
fn describe(error: figment::Error, file: Option<&Path>) -> String {
    let problems: Vec<String> = error
        .into_iter()
        .map(|problem| {
            let key = problem.path.join(".");
            let source = problem
                .metadata
                .as_ref()
                .map(|metadata| match (&metadata.source, file) {
                    (Some(figment::Source::File(_)), Some(path)) => {
                        format!(" (in {})", path.display())
                    }
                    _ => format!(" (from {})", metadata.name),
                })
                .unwrap_or_default();
            let kind = problem.kind.to_string();
            if key.is_empty() {
                format!("invalid configuration{source}: {kind}")
            } else {
                format!("invalid configuration key `{key}`{source}: {kind}")
            }
        })
        .collect();
    problems.join("\n")
}

/// The effective configuration as TOML, with the database password and every value
/// whose key looks secret (`jwt_secret`, a bot's `api_key`, `token`, `password` …)
/// replaced by `<redacted>`.
///
/// # Errors
/// Only when the configuration cannot be represented as TOML, which its types rule out.
pub fn print_redacted(config: &Config) -> anyhow::Result<String> {
    let mut shown = toml::Table::try_from(config).context("cannot represent the configuration")?;
    redact_secrets(&mut shown);
    if let Some(toml::Value::String(url)) = shown.get_mut("database_url") {
        *url = redact_url(url);
    }
    toml::to_string_pretty(&shown).context("cannot print the configuration as TOML")
}

const REDACTED: &str = "<redacted>";

/// Parts of key names that mark a secret.
const SECRET_KEY_PARTS: &[&str] = &["secret", "password", "token", "api_key", "apikey"];

fn redact_secrets(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        let key = key.to_ascii_lowercase();
        // A duration such as `guest_token_ttl` names a token but is no secret.
        let secret =
            SECRET_KEY_PARTS.iter().any(|part| key.contains(part)) && !key.ends_with("_ttl");
        match value {
            toml::Value::String(text) if secret => *text = REDACTED.to_owned(),
            toml::Value::Table(nested) => redact_secrets(nested),
            toml::Value::Array(items) => {
                for item in items {
                    if let toml::Value::Table(nested) = item {
                        redact_secrets(nested);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The URL without its password, for messages and `config print`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:{REDACTED}{}", &url[..scheme + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_secrets, redact_url};

    #[test]
    fn secret_looking_keys_are_redacted_at_any_depth() {
        let mut table: toml::Table = toml::from_str(
            r#"
jwt_secret = "s1"
guest_token_ttl = "1day"
[[bots]]
id = "gpt"
[bots.settings]
api_key = "s2"
model = "small"
"#,
        )
        .unwrap();
        redact_secrets(&mut table);
        let text = toml::to_string(&table).unwrap();
        assert!(!text.contains("s1") && !text.contains("s2"), "{text}");
        assert!(text.contains("1day") && text.contains("small"), "{text}");
    }

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://confab:s3cret@db:5432/confab"),
            "postgres://confab:<redacted>@db:5432/confab"
        );
        assert_eq!(
            redact_url("sqlite://confab.db?mode=rwc"),
            "sqlite://confab.db?mode=rwc"
        );
    }
}
