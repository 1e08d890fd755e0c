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
//! Nor are the service-link variables Kubernetes puts into every pod of a namespace
//! holding a Service named `confab`: `CONFAB_PORT`, `CONFAB_PORT_<n>_<proto>` with
//! `_ADDR`, `_PORT` or `_PROTO` or nothing after it, `CONFAB_SERVICE_HOST`,
//! `CONFAB_SERVICE_PORT` and `CONFAB_SERVICE_PORT_<name>` are ignored, exactly those
//! shapes, so that the natural name for the Service does not stop the start. No key
//! may therefore be named `port` or `service_…`.
//!
//! An unknown key or a bad value stops the start with an error that names the key and
//! where it came from. A list of tables (such as a future `[[bots]]`) loads like any
//! other key: add a `Vec<…>` field with `#[serde(default)]` to [`Config`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};

use super::Config;

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
        .filter(|name| is_key(name.as_str()))
        .split("__")
}

/// Whether the variable `CONFAB_<name>` names a key, `name` in any case.
///
/// Every other `CONFAB_*` variable is read as a key and refused when it is none, so
/// that a typo stops the start instead of being silently ignored.
fn is_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name != "config" && !name.starts_with("test_") && !is_service_link(&name)
}

/// Whether `name` (lower case, after `CONFAB_`) is one of the variables Kubernetes
/// injects for a Service named `confab`.
///
/// Kubernetes gives every pod `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT`,
/// `<SERVICE>_SERVICE_PORT_<PORT NAME>`, `<SERVICE>_PORT` and
/// `<SERVICE>_PORT_<n>_<PROTO>[_ADDR|_PORT|_PROTO]` for every Service of its namespace
/// (unless the pod sets `enableServiceLinks: false`). For a Service named `confab`
/// they fall under our prefix, and `CONFAB_PORT=tcp://10.0.0.1:8080` would stop the
/// start as an unknown key. Only these exact shapes are skipped, so a misspelt key
/// such as `CONFAB_LISTNE` or `CONFAB_WS__IDEL_TIMEOUT` is still refused.
fn is_service_link(name: &str) -> bool {
    if matches!(name, "port" | "service_host" | "service_port") {
        return true;
    }
    if let Some(port_name) = name.strip_prefix("service_port_") {
        // A port name is a DNS label; Kubernetes upper-cases it and turns its single
        // `-`s into `_`, so no part between them is empty.
        return port_name
            .split('_')
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_alphanumeric()));
    }
    let Some(rest) = name.strip_prefix("port_") else {
        return false;
    };
    let mut parts = rest.split('_');
    let number = parts.next().unwrap_or_default();
    let protocol = parts.next().unwrap_or_default();
    let suffix = parts.next();
    !number.is_empty()
        && number.bytes().all(|byte| byte.is_ascii_digit())
        && matches!(protocol, "tcp" | "udp" | "sctp")
        && matches!(suffix, None | Some("addr" | "port" | "proto"))
        && parts.next().is_none()
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
        // A duration such as `guest_token_ttl` names a token but is no secret, nor is
        // the name of the variable or file that holds one (`secret_env`, `secret_file`).
        let secret = SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
            && !["_ttl", "_env", "_file"]
                .iter()
                .any(|suffix| key.ends_with(suffix));
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
    use super::{is_key, is_service_link, redact_secrets, redact_url};
    use crate::config::Config;

    /// What Kubernetes injects for a Service `confab` with one TCP port named `http`.
    const SERVICE_LINKS: &[&str] = &[
        "PORT",
        "PORT_8080_TCP",
        "PORT_8080_TCP_ADDR",
        "PORT_8080_TCP_PORT",
        "PORT_8080_TCP_PROTO",
        "SERVICE_HOST",
        "SERVICE_PORT",
        "SERVICE_PORT_HTTP",
    ];

    #[test]
    fn kubernetes_service_links_of_a_service_named_confab_are_not_keys() {
        for name in SERVICE_LINKS {
            assert!(!is_key(name), "CONFAB_{name} should be ignored");
        }
    }

    #[test]
    fn service_links_of_udp_and_sctp_ports_and_dashed_port_names_are_not_keys() {
        for name in [
            "PORT_53_UDP",
            "PORT_53_UDP_ADDR",
            "PORT_9999_SCTP_PROTO",
            "SERVICE_PORT_METRICS_HTTP",
            "service_port_http",
        ] {
            assert!(!is_key(name), "CONFAB_{name} should be ignored");
        }
    }

    #[test]
    fn keys_typos_and_near_misses_are_read_as_keys_so_that_unknown_ones_are_refused() {
        for name in [
            "LISTNE",
            "WS__IDEL_TIMEOUT",
            "LISTEN",
            "DATABASE_URL",
            "EVENTS__URL",
            "REPLY_LEASE",
            "PORTS",
            "PORT_HTTP",
            "PORT_8080",
            "PORT_8080_TCP_HOST",
            "PORT_8080_HTTP_ADDR",
            "PORT__8080_TCP",
            "PORT_8080_TCP_ADDR_X",
            "SERVICE",
            "SERVICE_HOSTS",
            "SERVICE_PORT_",
            "SERVICE_PORT__HTTP",
            "SERVICE_PORT_HTTP-ALT",
        ] {
            assert!(is_key(name), "CONFAB_{name} should be read as a key");
        }
    }

    #[test]
    fn the_configuration_file_path_and_test_variables_are_not_keys() {
        assert!(!is_key("CONFIG"));
        assert!(!is_key("TEST_POSTGRES_URL"));
        assert!(!is_key("test_nats_url"));
    }

    #[test]
    fn no_configuration_key_has_the_shape_of_a_service_link() {
        // A key shaped like a service link could never be set from the environment.
        let table = toml::Table::try_from(Config::default()).unwrap();
        for key in table.keys() {
            assert!(!is_service_link(key), "`{key}` would be ignored");
            assert!(
                !key.starts_with("service_"),
                "`{key}` is too close to Kubernetes' service links"
            );
        }
    }

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
