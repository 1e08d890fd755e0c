//! The command line: configuration sources and their precedence, errors naming the
//! key, `config print`, `token` and `migrate`.

use std::collections::BTreeMap;

use confab_api_axum::Auth;
use confab_domain::user::Role;

use crate::ops::helpers::{confab, printed, run_err, run_ok};

#[test]
fn flags_override_environment_variables_which_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("confab.toml");
    std::fs::write(
        &file,
        r#"
listen = "127.0.0.1:1001"
wait_timeout = "5s"
database_url = "sqlite://from-file.db?mode=rwc"

[ws]
idle_timeout = "1m"
max_bad_frames = 3
"#,
    )
    .unwrap();
    let stdout = run_ok(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_CONFIG", &file)
            .env("CONFAB_LISTEN", "127.0.0.1:1002")
            .env("CONFAB_WS__IDLE_TIMEOUT", "2m")
            .env("CONFAB_DATABASE_URL", "sqlite://from-env.db?mode=rwc")
            .args(["config", "print", "--listen", "127.0.0.1:1003"]),
    );
    let config = printed(&stdout);
    // Flag over environment over file.
    assert_eq!(config["listen"].as_str(), Some("127.0.0.1:1003"));
    // Environment over file.
    assert_eq!(config["ws"]["idle_timeout"].as_str(), Some("2m"));
    assert_eq!(
        config["database_url"].as_str(),
        Some("sqlite://from-env.db?mode=rwc")
    );
    // File over defaults, and defaults where nobody says anything.
    assert_eq!(config["wait_timeout"].as_str(), Some("5s"));
    assert_eq!(config["ws"]["max_bad_frames"].as_integer(), Some(3));
    assert_eq!(config["reply_timeout"].as_str(), Some("30s"));
}

#[test]
fn confab_toml_in_the_working_directory_is_read_without_being_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("confab.toml"), "guests_enabled = false\n").unwrap();
    let config = printed(&run_ok(
        confab().current_dir(dir.path()).args(["config", "print"]),
    ));
    assert_eq!(config["guests_enabled"].as_bool(), Some(false));
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.toml");
    std::fs::write(&file, "[ws]\nidle_timout = \"1m\"\n").unwrap();
    let stderr = run_err(
        confab()
            .arg("--config")
            .arg(&file)
            .args(["config", "print"]),
    );
    assert!(stderr.contains("`ws.idle_timout`"), "{stderr}");
    assert!(stderr.contains("settings.toml"), "{stderr}");
}

#[test]
fn a_bad_value_in_the_environment_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_WS__IDLE_TIMEOUT", "soon")
            .args(["config", "print"]),
    );
    assert!(stderr.contains("`ws.idle_timeout`"), "{stderr}");
    assert!(stderr.contains("CONFAB_"), "{stderr}");
}

#[test]
fn an_unknown_environment_variable_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_LISTN", "127.0.0.1:1")
            .args(["config", "print"]),
    );
    assert!(stderr.contains("`listn`"), "{stderr}");
}

#[test]
fn a_request_timeout_shorter_than_the_wait_for_replies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_WAIT_TIMEOUT", "45s")
            .args(["config", "print"]),
    );
    assert!(stderr.contains("`limits.request_timeout`"), "{stderr}");
    let config = printed(&run_ok(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_WAIT_TIMEOUT", "45s")
            .env("CONFAB_LIMITS__REQUEST_TIMEOUT", "0s")
            .args(["config", "print"]),
    ));
    assert_eq!(config["wait_timeout"].as_str(), Some("45s"));
}

#[test]
fn an_empty_signing_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_JWT_SECRET", "")
            .args(["config", "print"]),
    );
    assert!(stderr.contains("`jwt_secret`"), "{stderr}");
}

#[test]
fn a_named_configuration_file_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(confab().current_dir(dir.path()).args([
        "--config",
        "missing.toml",
        "config",
        "print",
    ]));
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn config_print_redacts_the_secret_and_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_ok(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_JWT_SECRET", "very-secret-value")
            .env(
                "CONFAB_DATABASE_URL",
                "postgres://confab:hunter2@db.internal:5432/confab",
            )
            .args(["config", "print"]),
    );
    assert!(!stdout.contains("very-secret-value"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    let config = printed(&stdout);
    assert_eq!(config["jwt_secret"].as_str(), Some("<redacted>"));
    assert_eq!(
        config["database_url"].as_str(),
        Some("postgres://confab:<redacted>@db.internal:5432/confab")
    );
}

#[test]
fn config_print_names_where_direct_line_secrets_live_and_never_shows_one() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_ok(
        confab()
            .current_dir(dir.path())
            .env(
                "CONFAB_DIRECTLINE__SECRETS",
                r#"[{ bot_id = "echo", secret_env = "DL_SECRET_ECHO" }]"#,
            )
            .env("DL_SECRET_ECHO", "dl-secret-never-printed-0123")
            .args(["config", "print"]),
    );
    assert!(!stdout.contains("dl-secret-never-printed"), "{stdout}");
    let config = printed(&stdout);
    assert_eq!(
        config["directline"]["secrets"][0]["secret_env"].as_str(),
        Some("DL_SECRET_ECHO")
    );
}

#[test]
fn the_printed_configuration_loads_back_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_ok(confab().current_dir(dir.path()).args(["config", "print"]));
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, &stdout).unwrap();
    let again = run_ok(
        confab()
            .arg("--config")
            .arg(&file)
            .args(["config", "print"]),
    );
    assert_eq!(stdout, again);
}

#[test]
fn the_example_configuration_file_is_valid_and_lists_every_key() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../confab.example.toml");
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        confab()
            .arg("--config")
            .arg(example)
            .args(["config", "print"]),
    );
    // Every key of the effective configuration appears in the example, commented
    // out or not.
    let defaults = printed(&run_ok(
        confab().current_dir(dir.path()).args(["config", "print"]),
    ));
    let text = std::fs::read_to_string(example).unwrap();
    for (key, value) in &defaults {
        match value.as_table() {
            Some(table) => {
                assert!(text.contains(&format!("[{key}]")), "[{key}] missing");
                for nested in table.keys() {
                    assert!(
                        text.contains(&format!("{nested} =")),
                        "{key}.{nested} missing"
                    );
                }
            }
            None => assert!(text.contains(&format!("{key} =")), "{key} missing"),
        }
    }
    assert!(text.contains("jwt_secret ="), "jwt_secret missing");
}

#[test]
fn token_mints_a_token_the_configured_secret_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "cli-secret-cli-secret-cli-secret-cli";
    let stdout = run_ok(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_JWT_SECRET", secret)
            .args(["token", "--user", "operator", "--admin", "--ttl", "15m"]),
    );
    let caller = Auth::new(secret.as_bytes()).verify(stdout.trim()).unwrap();
    assert_eq!(caller.user_id.as_str(), "operator");
    assert_eq!(caller.role, Role::Admin);
    assert!(
        Auth::new(b"another-secret-another-secret-another")
            .verify(stdout.trim())
            .is_err()
    );
}

#[tokio::test]
async fn token_without_a_configured_secret_uses_the_one_stored_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let token = run_ok(confab().current_dir(dir.path()).args([
        "token",
        "--user",
        "u1",
        "--bot",
        "support",
        "--database-url",
        &url,
    ]));
    // What `serve` signs with on that database.
    let stored = confab_server::App::stored_signing_secret(&confab_server::Config {
        database_url: url,
        ..confab_server::Config::default()
    })
    .await
    .unwrap();
    let caller = Auth::new(stored.as_bytes()).verify(token.trim()).unwrap();
    assert_eq!(caller.user_id.as_str(), "u1");
    assert_eq!(
        caller.role,
        Role::Bot(confab_domain::bot::BotId::parse("support").unwrap())
    );
    let stderr = run_err(
        confab()
            .current_dir(dir.path())
            .args(["token", "--user", "u1", "--admin", "--bot", "x"]),
    );
    assert!(stderr.contains("--bot"), "{stderr}");
}

#[test]
fn migrate_applies_migrations_and_reports_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let before = run_ok(confab().args(["migrate", "status", "--database-url", &url]));
    assert!(
        before.lines().all(|line| line.starts_with("Pending")),
        "{before}"
    );
    run_ok(confab().args(["migrate", "--database-url", &url]));
    let applied = sqlite_indexes(&url);
    let after = run_ok(confab().args(["migrate", "status", "--database-url", &url]));
    assert!(!after.is_empty());
    assert!(
        after.lines().all(|line| line.starts_with("Applied")),
        "{after}"
    );
    run_ok(confab().args(["migrate", "down", "--database-url", &url]));
    let rolled_back = run_ok(confab().args(["migrate", "status", "--database-url", &url]));
    assert_eq!(
        rolled_back
            .lines()
            .filter(|line| line.starts_with("Pending"))
            .count(),
        1,
        "{rolled_back}"
    );
    // Further back and up again: each migration's `down` leaves the indexes its `up`
    // found, and its `up` applies again.
    run_ok(confab().args(["migrate", "down", "--steps", "4", "--database-url", &url]));
    let further = run_ok(confab().args(["migrate", "status", "--database-url", &url]));
    let pending = further.lines().filter(|line| line.starts_with("Pending"));
    assert_eq!(pending.count(), 5, "{further}");
    let earlier = sqlite_indexes(&url);
    for (index, was) in [
        ("idx_message_history_conversation_timestamp", true),
        ("idx_conversations_user_bot_status_activity", true),
        ("idx_conversations_user_status_activity", true),
        ("idx_message_history_reply_to", true),
        ("idx_message_history_timestamp", false),
        ("idx_conversations_user_status_bot", false),
    ] {
        assert_eq!(earlier.contains_key(index), was, "{index} in {earlier:?}");
        assert_eq!(applied.contains_key(index), !was, "{index} in {applied:?}");
    }
    // Bot replies, which have no client id, stay out of the idempotency index.
    let client_ids = "idx_message_history_conversation_client_message_id";
    let partial = |indexes: &BTreeMap<String, String>| indexes[client_ids].contains("WHERE");
    assert!(!partial(&earlier), "{earlier:?}");
    assert!(partial(&applied), "{applied:?}");
    run_ok(confab().args(["migrate", "--database-url", &url]));
    let again = run_ok(confab().args(["migrate", "status", "--database-url", &url]));
    assert!(
        again.lines().all(|line| line.starts_with("Applied")),
        "{again}"
    );
    assert_eq!(sqlite_indexes(&url), applied);
}

/// The indexes in the SQLite database at `url`, by name, with the statements that
/// created them (empty for those a table's constraint creates).
fn sqlite_indexes(url: &str) -> BTreeMap<String, String> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let db = Database::connect(url).await.expect("database opened");
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index'",
            ))
            .await
            .expect("indexes listed");
        let indexes = rows
            .iter()
            .map(|row| {
                let name = row.try_get_by_index(0).expect("a name");
                (name, row.try_get_by_index(1).expect("a statement"))
            })
            .collect();
        db.close().await.expect("database closed");
        indexes
    })
}

#[test]
fn version_prints_the_package_version() {
    let stdout = run_ok(confab().arg("--version"));
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
}
