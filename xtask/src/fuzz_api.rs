//! `cargo xtask fuzz-api`: the REST API fuzzed from its own OpenAPI document by
//! schemathesis (PyPI), as an outside client would try it.
//!
//! Builds the server in release, starts it on a free port of 127.0.0.1 with a fresh
//! SQLite file and a throwaway signing secret, mints a user token and an
//! administrator token with `confab token`, and runs `st run` against
//! `/openapi.json` once per token (the administrator's batch operation in a short run
//! of its own, last; see [`BATCH`]): every phase (examples, coverage, fuzzing, and the
//! stateful phase, which follows the document's links from a started conversation to
//! its messages, history and archive), every check, bounded in time and in cases per
//! operation. Any server error, response that breaks its schema, status code or
//! content type the document does not list, and any warning (an unresolvable
//! reference among them) fails the run.
//!
//! schemathesis lives in a virtualenv in `target/venv-fuzz`, installed by pip with
//! every version pinned, once, and again only when the pins change. Its
//! configuration, the server's log and the reports land in `target/fuzz-api/`.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use crate::e2e::{Server, target_dir, wait_bounded};
use crate::venv::PinnedTools;

/// The virtualenv, relative to the workspace root; like `venv-manifests`, it stays in
/// `target/` whatever `CARGO_TARGET_DIR` says.
const VENV: &str = "target/venv-fuzz";
/// What pip installs: schemathesis and everything it pulls in, each at a pinned
/// version, so that a new release cannot change the verdict.
const REQUIREMENTS: &str = "\
schemathesis==4.32.5
anyio==4.16.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
graphql-core==3.3.2
harfile==0.6.0
hypothesis==6.170.17
hypothesis-graphql==0.13.5
idna==3.20
iniconfig==2.3.1
jsonschema_rs==0.60.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
packaging==26.4
pluggy==1.7.0
Pygments==2.21.0
pyrate-limiter==4.6.0
pytest==9.2.0
PyYAML==6.0.4
requests==2.34.2
rich==15.0.0
sortedcontainers==2.4.0
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9
";
/// schemathesis's configuration (`schemathesis.toml`), written next to the reports.
/// Each exception to a check names the rule the document cannot state.
const CONFIG: &str = include_str!("fuzz_api/schemathesis.toml");
/// The time budget of one run (one token), in seconds.
const MAX_TIME_SECS: &str = "75";
/// The administrators' batch operation. With a `filter` it archives or deletes every
/// matching conversation of every user, the ones started for the run among them, so
/// that the sends after it get 404 and 409 and schemathesis warns of a validation
/// mismatch. The administrator's main run leaves it out; a short run of its own
/// (`fuzz-admin-batch`), after the others, fuzzes it with every phase.
const BATCH: &str = "POST /conversations/batch";
/// The time budget of that run, in seconds: one operation.
const BATCH_MAX_TIME_SECS: &str = "30";
/// Every phase of schemathesis.
const PHASES: &str = "examples,coverage,fuzzing,stateful";
/// The phases of the batch's run: no link of the document leads to or from it, so the
/// stateful phase, which only follows links, has nothing to run there (schemathesis
/// fails it: "Missing Open API links") and never sent it in the full runs either.
const BATCH_PHASES: &str = "examples,coverage,fuzzing";
/// Cases per operation and phase in one run.
const MAX_EXAMPLES: &str = "60";
/// One worker: with two, CPython before 3.11.8 and 3.12.2 may fail a case with
/// "AST constructor recursion depth mismatch" when both threads parse a source at
/// once (hypothesis does, to describe a filter), a bug of the interpreter's.
const WORKERS: &str = "1";
/// How long one run may take in all before it is killed: its budget, the coverage
/// phase (which the budget does not bound), and the reports.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `?wait=true` waits for a bot's replies on the fuzzed server: well under
/// schemathesis's `request-timeout`, so that a long message to the streaming echo
/// bot is a short answer rather than a hang.
const WAIT_TIMEOUT: &str = "2s";
/// Conversations started for each user before its run, whose ids schemathesis puts
/// into the paths of the operations on one conversation (besides ids it invents, ids
/// it saw in answers, and the ones the stateful phase follows from its own starts),
/// so that the fuzzing phase reaches sends, history and exports too, not only 404s.
const CONVERSATIONS: usize = 3;
/// How often a conversation id in a path is one of those, rather than generated.
const KNOWN_ID_PROBABILITY: f64 = 0.75;
/// The operations on one conversation that get those ids.
const ON_A_CONVERSATION: [&str; 8] = [
    "GET /conversations/{id}",
    "GET /conversations/{id}/history",
    "GET /conversations/{id}/events",
    "GET /conversations/{id}/export",
    "POST /conversations/{id}/messages",
    "POST /conversations/{id}/handoff",
    "POST /agent/conversations/{id}/claim",
    "POST /agent/conversations/{id}/release",
];
/// The operations that archive or take away a conversation or a bot get targets of
/// their own, always (schemathesis would otherwise also use ids it saw in answers,
/// the conversations above and the built-in bots among them, which the rest of the
/// run needs): each a dictionary of ids made for it before the runs.
const DESTRUCTIVE: [(&str, &str); 4] = [
    ("PATCH /conversations/{id}", "conversations_to_change"),
    ("DELETE /conversations/{id}", "conversations_to_delete"),
    ("PATCH /bots/{id}", "bots_to_change"),
    ("DELETE /bots/{id}", "bots_to_delete"),
];
/// How many of each of those.
const SPARES: usize = 2;
/// The operations on one webhook subscription, which get subscriptions made before
/// the runs (schemathesis cannot make one itself: `secret_env` must name a variable
/// the server has), `DELETE` its own spares.
const ON_A_WEBHOOK: [(&str, &str); 5] = [
    ("GET /webhooks/{id}", "webhooks"),
    ("PATCH /webhooks/{id}", "webhooks"),
    ("GET /webhooks/{id}/deliveries", "webhooks"),
    (
        "POST /webhooks/{id}/deliveries/{delivery_id}/redeliver",
        "webhooks",
    ),
    ("DELETE /webhooks/{id}", "webhooks_to_delete"),
];
/// The operations on one bot reply, which get replies in the runs' own conversations
/// (a conversation and a reply named apart may not belong together: a 404, as often
/// as not).
const ON_A_REPLY: [&str; 2] = [
    "PUT /conversations/{id}/messages/{message_id}/feedback",
    "DELETE /conversations/{id}/messages/{message_id}/feedback",
];
/// The receiver of those subscriptions: the discard port, where nobody listens, so
/// that their deliveries fail and wait to be redelivered.
const NOWHERE: &str = "http://127.0.0.1:9/fuzz";
/// The users the two tokens name.
const USERS: [(&str, bool); 2] = [("fuzz-user", false), ("fuzz-admin", true)];
/// Every warning schemathesis 4.32 gives by default; each fails a run.
const WARNINGS: [&str; 14] = [
    "missing_auth",
    "missing_test_data",
    "base_url_mismatch",
    "validation_mismatch",
    "missing_deserializer",
    "unused_openapi_auth",
    "unsupported_regex",
    "method_not_allowed",
    "constants_extraction",
    "unmatched_filter",
    "unresolvable_reference",
    "rate_limited",
    "dictionary_mismatch",
    "timeout_units",
];

/// Installs schemathesis when needed and fuzzes a release server with both tokens.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    let started = Instant::now();
    let root = sh.current_dir();
    let st = PinnedTools {
        venv: VENV,
        requirements: REQUIREMENTS,
        program: "st",
        what: "schemathesis",
    }
    .install(sh, &root)?
    .join("st");
    cmd!(sh, "cargo build --release -p confab-server").run()?;

    let out_dir = target_dir(&root).join("fuzz-api");
    let _ = fs::remove_dir_all(&out_dir);
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;

    let binary = target_dir(&root).join("release").join("confab");
    let secret = random_secret()?;
    let database = format!("sqlite://{}?mode=rwc", out_dir.join("fuzz.db").display());
    let env = [
        ("CONFAB_DATABASE_URL", database.as_str()),
        ("CONFAB_JWT_SECRET", secret.as_str()),
        ("CONFAB_WAIT_TIMEOUT", WAIT_TIMEOUT),
        // Webhooks are registered with whatever URLs schemathesis makes up: their
        // deliveries must never leave this machine, so the dispatcher looks for due
        // ones at start only, when there are none.
        ("CONFAB_WEBHOOKS__POLL_INTERVAL", "24h"),
    ];

    let log_path = out_dir.join("server.log");
    let mut server = Server::start(&root, &out_dir, &env, &log_path)?;
    let address = server.address;

    let tokens = USERS
        .iter()
        .map(|(user, admin)| mint_token(&binary, &out_dir, &env, user, *admin))
        .collect::<Result<Vec<_>>>()?;
    // Bots for the administrator's run to change and delete, made with its token.
    let admin_token = &tokens[USERS.iter().position(|(_, admin)| *admin).unwrap_or(0)];
    let bots = |prefix: &str| {
        (0..SPARES)
            .map(|i| create_bot(address, admin_token, &format!("fuzz-{prefix}-{i}")))
            .collect::<Result<Vec<_>>>()
    };
    let (bots_to_change, bots_to_delete) = (bots("change")?, bots("delete")?);
    // Subscriptions with a delivery each (the start of a conversation after them).
    let webhooks = (0..SPARES)
        .map(|_| create_webhook(address, admin_token))
        .collect::<Result<Vec<_>>>()?;
    let webhooks_to_delete = (0..SPARES)
        .map(|_| create_webhook(address, admin_token))
        .collect::<Result<Vec<_>>>()?;
    start_conversation(address, admin_token)?;
    let deliveries = webhooks
        .iter()
        .map(|webhook| first_delivery(address, admin_token, webhook))
        .collect::<Result<Vec<_>>>()?;

    let mut summaries = Vec::new();
    for ((user, admin), token) in USERS.into_iter().zip(&tokens) {
        let conversations = |count: usize| {
            (0..count)
                .map(|_| start_conversation(address, token))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("cannot start the conversations of {user}"))
        };
        let answered = (0..SPARES)
            .map(|_| answered_conversation(address, token))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("cannot start the answered conversations of {user}"))?;
        let targets = Targets {
            answered_conversations: answered.iter().map(|(id, _)| id.clone()).collect(),
            replies: answered.into_iter().map(|(_, reply)| reply).collect(),
            conversations: conversations(CONVERSATIONS)?,
            conversations_to_change: conversations(SPARES)?,
            conversations_to_delete: conversations(SPARES)?,
            bots_to_change: bots_to_change.clone(),
            bots_to_delete: bots_to_delete.clone(),
            webhooks: webhooks.clone(),
            webhooks_to_delete: webhooks_to_delete.clone(),
            deliveries: deliveries.clone(),
        };
        let config = out_dir.join(format!("{user}.toml"));
        fs::write(&config, config_for(admin, &targets))
            .with_context(|| format!("cannot write {}", config.display()))?;
        for run in runs(user, admin) {
            let name = &run.name;
            let report = fuzz(&st, &config, &out_dir, address, &run, token);
            match report {
                Ok(summary) => summaries.push(format!("{name}: {summary}")),
                Err(error) => {
                    let _ = server.stop();
                    return Err(error.context(format!(
                        "schemathesis found problems as {name}; the server's log is {}",
                        log_path.display()
                    )));
                }
            }
        }
    }
    server.stop()?;
    eprintln!(
        "\nfuzz-api: passed in {:.0}s\n  {}",
        started.elapsed().as_secs_f64(),
        summaries.join("\n  ")
    );
    Ok(())
}

/// 32 random bytes from the kernel, in hex: the run's signing secret.
fn random_secret() -> Result<String> {
    let mut bytes = [0_u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A token for `user` from `confab token`, signed with the run's secret.
fn mint_token(
    binary: &Path,
    dir: &Path,
    env: &[(&str, &str)],
    user: &str,
    admin: bool,
) -> Result<String> {
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(["token", "--user", user, "--ttl", "1h"]);
    if admin {
        command.arg("--admin");
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run confab token")?;
    ensure!(
        output.status.success(),
        "confab token failed ({})",
        output.status
    );
    let token = String::from_utf8(output.stdout)?.trim().to_owned();
    ensure!(!token.is_empty(), "confab token printed nothing");
    Ok(token)
}

/// What sets one run apart from the others with the same token.
#[derive(Debug)]
struct Run {
    /// Names its output and reports.
    name: String,
    /// schemathesis's options selecting the operations (none: every one).
    selection: &'static [&'static str],
    /// `--phases`.
    phases: &'static str,
    /// `--max-time`, in seconds.
    max_time: &'static str,
}

/// The runs with `user`'s token: one with every operation, but for an administrator
/// every operation except [`BATCH`], then [`BATCH`] alone.
fn runs(user: &str, admin: bool) -> Vec<Run> {
    if !admin {
        return vec![Run {
            name: user.to_owned(),
            selection: &[],
            phases: PHASES,
            max_time: MAX_TIME_SECS,
        }];
    }
    vec![
        Run {
            name: user.to_owned(),
            selection: &["--exclude-name", BATCH],
            phases: PHASES,
            max_time: MAX_TIME_SECS,
        },
        Run {
            name: format!("{user}-batch"),
            selection: &["--include-name", BATCH],
            phases: BATCH_PHASES,
            max_time: BATCH_MAX_TIME_SECS,
        },
    ]
}

/// One schemathesis run; returns its summary line (cases and time).
fn fuzz(
    st: &Path,
    config: &Path,
    out_dir: &Path,
    address: SocketAddr,
    run: &Run,
    token: &str,
) -> Result<String> {
    let user = &run.name;
    eprintln!("\n==> fuzz-api: schemathesis as {user}");
    let started = Instant::now();
    let reports = out_dir.join(user);
    let output_path = out_dir.join(format!("{user}.txt"));
    let output = File::create(&output_path)
        .with_context(|| format!("cannot create {}", output_path.display()))?;
    let child = Command::new(st)
        .arg("--config-file")
        .arg(config)
        .args(["run", "--no-color"])
        .args(["--phases", run.phases])
        .args(["--checks", "all"])
        .args(run.selection)
        .args(["--max-time", run.max_time])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "15"])
        .args(["--workers", WORKERS])
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(&reports)
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg("--url")
        .arg(format!("http://{address}"))
        .arg(format!("http://{address}/openapi.json"))
        .current_dir(out_dir)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .spawn()
        .context("cannot start schemathesis")?;
    let status = wait_bounded(child, RUN_TIMEOUT).context("schemathesis")?;
    let text = fs::read_to_string(&output_path).unwrap_or_default();
    eprintln!("{text}");
    let took = started.elapsed().as_secs_f64();
    ensure!(
        status.success(),
        "schemathesis failed as {user} ({status}); its output is {}",
        output_path.display()
    );
    Ok(format!(
        "{} in {took:.0}s",
        summary(&text).unwrap_or("no summary")
    ))
}

/// The ids a run may address besides those schemathesis invents or sees in answers.
#[derive(Debug, Clone, Default)]
struct Targets {
    /// For [`ON_A_CONVERSATION`].
    conversations: Vec<String>,
    /// The rest, for [`DESTRUCTIVE`], named as its dictionaries are.
    conversations_to_change: Vec<String>,
    conversations_to_delete: Vec<String>,
    bots_to_change: Vec<String>,
    bots_to_delete: Vec<String>,
    /// For [`ON_A_REPLY`]: conversations with a bot reply each, and the replies.
    answered_conversations: Vec<String>,
    replies: Vec<String>,
    /// For [`ON_A_WEBHOOK`], and the deliveries of the first ones.
    webhooks: Vec<String>,
    webhooks_to_delete: Vec<String>,
    deliveries: Vec<String>,
}

impl Targets {
    /// Each dictionary's name and ids.
    fn dictionaries(&self) -> [(&'static str, &[String]); 10] {
        [
            ("answered_conversations", &self.answered_conversations),
            ("replies", &self.replies),
            ("conversations", &self.conversations),
            ("conversations_to_change", &self.conversations_to_change),
            ("conversations_to_delete", &self.conversations_to_delete),
            ("bots_to_change", &self.bots_to_change),
            ("bots_to_delete", &self.bots_to_delete),
            ("webhooks", &self.webhooks),
            ("webhooks_to_delete", &self.webhooks_to_delete),
            ("deliveries", &self.deliveries),
        ]
    }
}

/// The configuration of one run: [`CONFIG`], the ids of `targets` as dictionaries
/// bound to the operations' `id`, and the warnings that fail it (every one is shown).
///
/// Two warnings do not fail every run:
/// - A user's token gets only 403 from the administrators' operations, which
///   schemathesis warns about as missing authentication: that warning fails the
///   administrator's run alone.
/// - "Validation mismatch" is a heuristic on the share of 4xx answers. Several
///   operations have rules no schema can state (a bot's settings must build its
///   engine, a range's `from` must precede its `to`, a history cursor must name a
///   message of that conversation), and whether enough generated requests happen to
///   satisfy them varies from run to run (it warned on `POST /bots`,
///   `GET /analytics/summary` and `GET /conversations/{id}/history` in turn). It is
///   shown, not failed on: the check behind it, that a request the schema allows is
///   not refused except by the narrow exceptions of `schemathesis.toml`, still fails
///   every run, as do a server error, a schema violation and an undocumented status.
fn config_for(admin: bool, targets: &Targets) -> String {
    let fails = |warning: &str| match warning {
        "missing_auth" => admin,
        "validation_mismatch" => false,
        _ => true,
    };
    let shown: Vec<String> = WARNINGS
        .iter()
        .map(|warning| format!("\"{warning}\""))
        .collect();
    let fail_on: Vec<String> = WARNINGS
        .iter()
        .filter(|warning| fails(warning))
        .map(|warning| format!("\"{warning}\""))
        .collect();
    let mut config = format!("{CONFIG}\n");
    for (name, ids) in targets.dictionaries() {
        let values: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
        config.push_str(&format!(
            "\n[dictionaries.{name}]\nvalues = [{}]\n",
            values.join(", ")
        ));
    }
    let bindings = ON_A_CONVERSATION
        .iter()
        .map(|operation| (*operation, "conversations", KNOWN_ID_PROBABILITY))
        .chain(
            DESTRUCTIVE
                .iter()
                .map(|(operation, dictionary)| (*operation, *dictionary, 1.0)),
        );
    let bindings = bindings
        .chain(
            ON_A_WEBHOOK
                .iter()
                .map(|(operation, dictionary)| (*operation, *dictionary, KNOWN_ID_PROBABILITY)),
        )
        .chain(
            ON_A_REPLY
                .iter()
                .map(|operation| (*operation, "answered_conversations", KNOWN_ID_PROBABILITY)),
        );
    for (operation, dictionary, probability) in bindings {
        // A delivery is named together with its subscription, a reply with its
        // conversation.
        let second = [
            ("{delivery_id}", "delivery_id", "deliveries"),
            ("{message_id}", "message_id", "replies"),
        ]
        .into_iter()
        .find(|(placeholder, _, _)| operation.contains(placeholder));
        let delivery = match second {
            Some((_, parameter, values)) => format!(
                ", \"path.{parameter}\" = {{ dictionary = \"{values}\", \
                 probability = {probability:.2} }}"
            ),
            None => String::new(),
        };
        config.push_str(&format!(
            "\n[[operations]]\ninclude-name = \"{operation}\"\n\
             parameters = {{ \"path.id\" = {{ dictionary = \"{dictionary}\", \
             probability = {probability:.2} }}{delivery} }}\n"
        ));
        if probability >= 1.0 {
            // Nor ids seen in answers (`echo` in `GET /bots`, a conversation in a list).
            for phase in ["examples", "coverage", "fuzzing"] {
                config.push_str(&format!(
                    "phases.{phase}.extra-data-sources.responses = false\n"
                ));
            }
        }
    }
    config.push_str(&format!(
        "\n[warnings]\ndisplay = [{}]\nfail-on = [{}]\n",
        shown.join(", "),
        fail_on.join(", ")
    ));
    config
}

/// Starts a conversation with the echo bot as the token's user; returns its id.
fn start_conversation(address: SocketAddr, token: &str) -> Result<String> {
    let body = r#"{"bot_id":"echo","title":"fuzz-api","initial_message":"Hello"}"#;
    let answer = post(address, token, "/conversations/start", body)?;
    created(&answer, "conversation_id")
}

/// Starts a conversation with the echo bot as the token's user and waits for the
/// bot's reply; returns the conversation's id and the reply's.
fn answered_conversation(address: SocketAddr, token: &str) -> Result<(String, String)> {
    let body = r#"{"bot_id":"echo","title":"fuzz-api","initial_message":"Rate me"}"#;
    let answer = post(address, token, "/conversations/start?wait=true", body)?;
    let conversation = created(&answer, "conversation_id")?;
    let (_, body) = answer
        .split_once("\r\n\r\n")
        .context("an answer without a body")?;
    let started: serde_json::Value = serde_json::from_str(body).context("not JSON")?;
    let reply = started["replies"][0]["id"]
        .as_str()
        .with_context(|| format!("no reply in {body}"))?;
    Ok((conversation, reply.to_owned()))
}

/// Subscribes [`NOWHERE`] to every conversation's start with an administrator's
/// token; returns the subscription's id.
fn create_webhook(address: SocketAddr, token: &str) -> Result<String> {
    // `PATH` is set in every server's environment: the secret only needs to exist.
    let body = format!(
        r#"{{"url":"{NOWHERE}","events":["conversation.started"],"secret_env":"PATH","description":"fuzz-api"}}"#
    );
    let answer = post(address, token, "/webhooks", &body)?;
    created(&answer, "id")
}

/// The id of the first delivery of subscription `webhook`, once the outbox holds it.
fn first_delivery(address: SocketAddr, token: &str, webhook: &str) -> Result<String> {
    let path = format!("/webhooks/{webhook}/deliveries");
    let answer = request(address, token, "GET", &path, "")?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("an answer without a body")?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "GET {path} answered {head}"
    );
    let listed: serde_json::Value = serde_json::from_str(body).context("not JSON")?;
    let id = listed["deliveries"][0]["id"]
        .as_str()
        .with_context(|| format!("no delivery in {body}"))?;
    Ok(id.to_owned())
}

/// Creates an echo bot called `id` with an administrator's token; returns its id.
fn create_bot(address: SocketAddr, token: &str, id: &str) -> Result<String> {
    let body = format!(r#"{{"id":"{id}","name":"Spare {id}","kind":"echo"}}"#);
    let answer = post(address, token, "/bots", &body)?;
    created(&answer, "id")
}

/// One `POST` of a JSON body with a bearer token, as plain HTTP/1.1; returns the
/// whole answer.
fn post(address: SocketAddr, token: &str, path: &str, body: &str) -> Result<String> {
    request(address, token, "POST", path, body)
}

/// One request with a bearer token and a JSON body (maybe empty), as plain HTTP/1.1;
/// returns the whole answer.
fn request(
    address: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .with_context(|| format!("no answer to {method} {path}"))?;
    Ok(answer)
}

/// The string `member` of a `201 Created` answer's JSON body.
fn created(answer: &str, member: &str) -> Result<String> {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("an answer without a body")?;
    ensure!(
        head.starts_with("HTTP/1.1 201"),
        "answered {}: {body}",
        head.lines().next().unwrap_or_default()
    );
    let created: serde_json::Value = serde_json::from_str(body).context("not JSON")?;
    let value = created[member]
        .as_str()
        .with_context(|| format!("no {member} in {body}"))?;
    Ok(value.to_owned())
}

/// The line of schemathesis's summary that counts the generated cases.
fn summary(output: &str) -> Option<&str> {
    output
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("Test cases:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_name_schemathesis_and_every_line_is_pinned() {
        assert!(
            REQUIREMENTS
                .lines()
                .any(|l| l.starts_with("schemathesis=="))
        );
        assert!(REQUIREMENTS.lines().all(|l| l.contains("==")));
    }

    #[test]
    fn the_summary_is_the_test_cases_line() {
        let output = "Operations: 22\n Test cases: 1234 generated, 1234 passed\nSeed: 1";
        assert_eq!(
            summary(output),
            Some("Test cases: 1234 generated, 1234 passed")
        );
        assert_eq!(summary("nothing"), None);
    }

    #[test]
    fn every_warning_fails_runs_but_missing_auth_only_the_administrators_and_validation_mismatch_none()
     {
        let fail_on = |config: &str| {
            let line = config
                .lines()
                .find(|line| line.starts_with("fail-on = "))
                .expect("a fail-on line")
                .to_owned();
            let display = config
                .lines()
                .find(|line| line.starts_with("display = "))
                .expect("a display line")
                .to_owned();
            (line, display)
        };
        let (admin, admin_shown) = fail_on(&config_for(true, &Targets::default()));
        let (user, user_shown) = fail_on(&config_for(false, &Targets::default()));
        assert!(admin.contains("\"missing_auth\"") && !admin.contains("validation_mismatch"));
        assert!(!user.contains("missing_auth") && !user.contains("validation_mismatch"));
        for fails in [&admin, &user] {
            assert!(fails.contains("\"unresolvable_reference\""));
            assert!(fails.contains("\"missing_test_data\""));
        }
        for shown in [&admin_shown, &user_shown] {
            assert!(WARNINGS.iter().all(|w| shown.contains(&format!("\"{w}\""))));
        }
    }

    #[test]
    fn destructive_operations_get_only_their_own_targets() {
        let ids = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        let targets = Targets {
            conversations: ids(&["a", "b"]),
            conversations_to_delete: ids(&["c"]),
            ..Targets::default()
        };
        let config = config_for(false, &targets);
        assert!(config.contains("[dictionaries.conversations]\nvalues = [\"a\", \"b\"]"));
        assert!(config.contains("[dictionaries.conversations_to_delete]\nvalues = [\"c\"]"));
        assert!(config.contains(
            "include-name = \"DELETE /conversations/{id}\"\n\
             parameters = { \"path.id\" = { dictionary = \"conversations_to_delete\", \
             probability = 1.00 } }"
        ));
        assert!(config.contains(
            "include-name = \"POST /conversations/{id}/messages\"\n\
             parameters = { \"path.id\" = { dictionary = \"conversations\", \
             probability = 0.75 } }"
        ));
        // The warnings come last, after every table of the configuration.
        assert!(config.rfind("[warnings]") > config.rfind("[[operations]]"));
    }

    #[test]
    fn the_batch_runs_alone_after_the_administrators_other_operations() {
        let user = runs("fuzz-user", false);
        assert_eq!(user.len(), 1);
        assert!(user[0].selection.is_empty());
        let admin = runs("fuzz-admin", true);
        let names: Vec<&str> = admin.iter().map(|run| run.name.as_str()).collect();
        assert_eq!(names, ["fuzz-admin", "fuzz-admin-batch"]);
        assert_eq!(admin[0].selection, ["--exclude-name", BATCH]);
        assert_eq!(admin[1].selection, ["--include-name", BATCH]);
        assert_eq!(admin[1].phases, BATCH_PHASES);
    }

    #[test]
    fn the_id_comes_from_a_201() {
        let answer = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\r\n\
                      {\"conversation_id\":\"0193\",\"status\":\"active\"}";
        assert_eq!(created(answer, "conversation_id").expect("an id"), "0193");
        assert!(created(answer, "id").is_err());
        assert!(created("HTTP/1.1 404 Not Found\r\n\r\n{}", "id").is_err());
    }
}
