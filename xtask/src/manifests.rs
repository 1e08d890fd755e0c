//! `cargo xtask manifests`: the deployment files checked against their schemas, offline.
//!
//! - Every manifest in `deploy/kubernetes` is validated by `kubernetes-validate` (PyPI,
//!   which ships the Kubernetes JSON schemas inside the package) in strict mode against
//!   one pinned Kubernetes version, so a misspelt field fails as well as a wrong type. A
//!   manifest whose kind or API version has no schema fails too, where the tool itself
//!   only warns.
//! - `deploy/kubernetes/kustomization.yaml` lists exactly the other manifests.
//! - `deploy/compose.yaml` is validated against the compose specification that
//!   `check-jsonschema` (PyPI) ships, the files it mounts from `deploy/` exist, and,
//!   where Docker Compose is installed, `docker compose config -q` accepts it with and
//!   without the `cluster` profile.
//!
//! Both tools live in a virtualenv in `target/venv-manifests`, installed by pip with
//! every version pinned, once, and again only when the pins change. The checks of the
//! tools' output and of the kustomization are pure functions over text.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::venv::PinnedTools;

/// The Kubernetes manifests, relative to the workspace root.
const KUBERNETES_DIR: &str = "deploy/kubernetes";
/// The file kustomize reads; it is no Kubernetes resource and has no schema.
const KUSTOMIZATION: &str = "kustomization.yaml";
/// The Compose file, relative to the workspace root.
const COMPOSE_FILE: &str = "deploy/compose.yaml";
/// The Kubernetes version the manifests are validated against: one that the managed
/// offerings still support, so that nothing newer slips in unnoticed.
const KUBERNETES_VERSION: &str = "1.33";
/// The virtualenv, relative to the workspace root. It is no cargo artefact, so it stays
/// in `target/` whatever `CARGO_TARGET_DIR` says.
const VENV: &str = "target/venv-manifests";
/// What pip installs: both tools and everything they pull in, each at a pinned
/// version, so that a new release of a dependency cannot change the verdict.
const REQUIREMENTS: &str = "\
kubernetes-validate==1.37.0
check-jsonschema==0.39.0
attrs==26.1.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
idna==3.20
importlib_resources==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
packaging==26.4
PyYAML==6.0.4
referencing==0.37.0
regress==2026.9.1
requests==2.34.2
rpds-py==2026.9.1
ruamel.yaml==0.19.1
typing_extensions==4.16.0
urllib3==2.8.0
";

/// Installs the validators when needed and checks every deployment file.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    let root = sh.current_dir();
    let bin = PinnedTools {
        venv: VENV,
        requirements: REQUIREMENTS,
        program: "kubernetes-validate",
        what: "the validators",
    }
    .install(sh, &root)?;

    let folder = root.join(KUBERNETES_DIR);
    let manifests = kubernetes_manifests(&folder)?;
    ensure!(!manifests.is_empty(), "{KUBERNETES_DIR} holds no manifest");
    let kustomization = fs::read_to_string(folder.join(KUSTOMIZATION))
        .with_context(|| format!("cannot read {KUBERNETES_DIR}/{KUSTOMIZATION}"))?;
    let unlisted = kustomization_mismatches(&kustomization, &manifests);
    ensure!(
        unlisted.is_empty(),
        "{KUBERNETES_DIR}/{KUSTOMIZATION}: {}",
        unlisted.join("; ")
    );

    let paths: Vec<String> = manifests
        .iter()
        .map(|name| format!("{KUBERNETES_DIR}/{name}"))
        .collect();
    let validate = bin.join("kubernetes-validate");
    let arguments = &paths;
    let output = cmd!(
        sh,
        "{validate} --kubernetes-version {KUBERNETES_VERSION} --strict {arguments...}"
    )
    .ignore_status()
    .output()?;
    let report = String::from_utf8_lossy(&output.stdout);
    eprint!("{report}{}", String::from_utf8_lossy(&output.stderr));
    let problems = validation_problems(&report, &paths);
    ensure!(
        output.status.success() && problems.is_empty(),
        "the Kubernetes manifests do not validate against Kubernetes {KUBERNETES_VERSION}:\n{}",
        problems.join("\n")
    );

    let check_jsonschema = bin.join("check-jsonschema");
    cmd!(
        sh,
        "{check_jsonschema} --builtin-schema vendor.compose-spec {COMPOSE_FILE}"
    )
    .run()
    .with_context(|| format!("{COMPOSE_FILE} does not follow the compose specification"))?;
    let compose = fs::read_to_string(root.join(COMPOSE_FILE))
        .with_context(|| format!("cannot read {COMPOSE_FILE}"))?;
    let compose_dir = root.join(COMPOSE_FILE);
    let compose_dir = compose_dir.parent().unwrap_or(&root);
    for source in relative_mounts(&compose) {
        ensure!(
            compose_dir.join(source).exists(),
            "{COMPOSE_FILE} mounts {source}, which does not exist"
        );
    }
    if cmd!(sh, "docker compose version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok()
    {
        cmd!(sh, "docker compose -f {COMPOSE_FILE} config -q").run()?;
        cmd!(
            sh,
            "docker compose -f {COMPOSE_FILE} --profile cluster config -q"
        )
        .run()?;
    } else {
        eprintln!(
            "docker compose is not installed: {COMPOSE_FILE} was checked against the compose specification only"
        );
    }
    eprintln!("manifests: all checks passed");
    Ok(())
}

/// The YAML files of `folder` that are Kubernetes resources, sorted.
fn kubernetes_manifests(folder: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in
        fs::read_dir(folder).with_context(|| format!("cannot read {}", folder.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if is_yaml(&name) && name != KUSTOMIZATION {
            names.push(name);
        }
    }
    if !folder.join(KUSTOMIZATION).is_file() {
        bail!("{} has no {KUSTOMIZATION}", folder.display());
    }
    names.sort();
    Ok(names)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The entries of the top-level `resources:` list of a kustomization.
fn kustomization_resources(text: &str) -> Vec<String> {
    let mut resources = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let content = line.split(" #").next().unwrap_or_default().trim_end();
        if content.trim_start().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let top_level = !line.starts_with(' ') && !line.starts_with('-');
        if top_level {
            inside = content == "resources:";
            continue;
        }
        if inside && let Some(entry) = content.trim_start().strip_prefix("- ") {
            resources.push(entry.trim().trim_matches(['"', '\'']).to_owned());
        }
    }
    resources
}

/// What is wrong with the kustomization's `resources`: manifests it leaves out and
/// entries that name no manifest of the folder.
fn kustomization_mismatches(kustomization: &str, manifests: &[String]) -> Vec<String> {
    let listed: BTreeSet<String> = kustomization_resources(kustomization).into_iter().collect();
    let present: BTreeSet<String> = manifests.iter().cloned().collect();
    let mut mismatches: Vec<String> = present
        .difference(&listed)
        .map(|name| format!("{name} is not listed in resources"))
        .collect();
    mismatches.extend(
        listed
            .difference(&present)
            .map(|name| format!("resources lists {name}, which is no manifest here")),
    );
    mismatches
}

/// What `kubernetes-validate` reported against `files`: every line that is not a pass
/// (it only warns about a kind it has no schema for, which here is a failure), and
/// every file with no resource that passed (an empty file would pass silently).
fn validation_problems(report: &str, files: &[String]) -> Vec<String> {
    let mut problems: Vec<String> = report
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("INFO "))
        .map(str::to_owned)
        .collect();
    for file in files {
        let passed = format!("INFO {file} passed");
        if !report.lines().any(|line| line.starts_with(&passed)) {
            problems.push(format!("{file}: no resource passed"));
        }
    }
    problems
}

/// The sources of the bind mounts that a Compose file names relative to itself
/// (`- ./nginx/cluster.conf:/etc/nginx/conf.d/default.conf:ro`).
fn relative_mounts(compose: &str) -> Vec<&str> {
    compose
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- "))
        .map(|entry| entry.trim().trim_matches(['"', '\'']))
        .filter(|entry| entry.starts_with("./") || entry.starts_with("../"))
        .filter_map(|entry| entry.split(':').next())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    const KUSTOMIZATION_TEXT: &str = "\
# A comment.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - configmap.yaml
  # A comment inside the list.
  - \"deployment.yaml\"
  - service.yaml # and after an entry
images:
  - name: confab
    newName: registry.example.com/confab
";

    #[test]
    fn the_resources_of_a_kustomization_are_read_and_nothing_else() {
        assert_eq!(
            kustomization_resources(KUSTOMIZATION_TEXT),
            names(&["configmap.yaml", "deployment.yaml", "service.yaml"])
        );
    }

    #[test]
    fn a_kustomization_listing_every_manifest_has_no_mismatch() {
        let manifests = names(&["configmap.yaml", "deployment.yaml", "service.yaml"]);
        assert!(kustomization_mismatches(KUSTOMIZATION_TEXT, &manifests).is_empty());
    }

    #[test]
    fn a_manifest_left_out_of_the_kustomization_and_a_listed_file_that_is_gone_are_reported() {
        let manifests = names(&["configmap.yaml", "pdb.yaml", "service.yaml"]);
        assert_eq!(
            kustomization_mismatches(KUSTOMIZATION_TEXT, &manifests),
            names(&[
                "pdb.yaml is not listed in resources",
                "resources lists deployment.yaml, which is no manifest here",
            ])
        );
    }

    #[test]
    fn a_report_of_passes_for_every_file_has_no_problem() {
        let report = "\
INFO deploy/kubernetes/a.yaml passed for resource deployment/confab against version 1.33
INFO deploy/kubernetes/b.yaml passed for resource service/confab against version 1.33
";
        let files = names(&["deploy/kubernetes/a.yaml", "deploy/kubernetes/b.yaml"]);
        assert!(validation_problems(report, &files).is_empty());
    }

    #[test]
    fn errors_and_warnings_about_a_missing_schema_are_problems() {
        let report = "\
ERROR deploy/kubernetes/a.yaml did not validate for resource deployment/confab against version 1.33: spec: Additional properties are not allowed ('replica' was unexpected)
WARN deploy/kubernetes/b.yaml Couldn't find schema for kind Deployment with api version apps/v2 for kubernetes version 1.33
";
        let files = names(&["deploy/kubernetes/a.yaml", "deploy/kubernetes/b.yaml"]);
        let problems = validation_problems(report, &files);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("ERROR"), "{problems:?}");
        assert!(problems[1].starts_with("WARN"), "{problems:?}");
        assert_eq!(problems[2], "deploy/kubernetes/a.yaml: no resource passed");
    }

    #[test]
    fn a_file_the_validator_did_not_mention_is_a_problem() {
        let report = "INFO deploy/kubernetes/a.yaml passed for resource configmap/confab against version 1.33\n";
        let files = names(&["deploy/kubernetes/a.yaml", "deploy/kubernetes/empty.yaml"]);
        assert_eq!(
            validation_problems(report, &files),
            names(&["deploy/kubernetes/empty.yaml: no resource passed"])
        );
    }

    #[test]
    fn relative_bind_mounts_are_found_and_named_volumes_are_not() {
        let compose = "\
services:
  lb:
    volumes:
      - ./nginx/cluster.conf:/etc/nginx/conf.d/default.conf:ro
      - \"../certs:/certs\"
  postgres:
    volumes:
      - postgres-data:/var/lib/postgresql/data
    ports:
      - \"8080:8080\"
";
        assert_eq!(
            relative_mounts(compose),
            vec!["./nginx/cluster.conf", "../certs"]
        );
    }

    #[test]
    fn the_pins_name_both_validators_and_every_line_is_pinned() {
        assert!(REQUIREMENTS.contains("kubernetes-validate=="));
        assert!(REQUIREMENTS.contains("check-jsonschema=="));
        assert!(REQUIREMENTS.lines().all(|line| line.contains("==")));
    }

    #[test]
    fn the_kustomization_in_the_repository_lists_every_manifest() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(KUBERNETES_DIR);
        let manifests = kubernetes_manifests(&folder).expect("the manifests are readable");
        let kustomization =
            fs::read_to_string(folder.join(KUSTOMIZATION)).expect("the kustomization");
        assert_eq!(
            kustomization_mismatches(&kustomization, &manifests),
            Vec::<String>::new()
        );
    }
}
