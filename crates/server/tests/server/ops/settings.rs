//! Settings from the environment of a Kubernetes pod: the service-link variables of a
//! Service named `confab` do not stop the start, while misspelt keys still do.

use std::process::Output;

use crate::ops::helpers::confab;

/// What Kubernetes injects into every pod of a namespace with a Service `confab`
/// whose one port is named `http`.
const SERVICE_LINKS: &[(&str, &str)] = &[
    ("CONFAB_PORT", "tcp://10.0.0.1:8080"),
    ("CONFAB_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
    ("CONFAB_PORT_8080_TCP_ADDR", "10.0.0.1"),
    ("CONFAB_PORT_8080_TCP_PORT", "8080"),
    ("CONFAB_PORT_8080_TCP_PROTO", "tcp"),
    ("CONFAB_SERVICE_HOST", "10.0.0.1"),
    ("CONFAB_SERVICE_PORT", "8080"),
    ("CONFAB_SERVICE_PORT_HTTP", "8080"),
];

/// `confab config print` in an empty folder, in a pod's environment plus `extra`.
fn config_print_in_a_pod(extra: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = confab();
    command
        .current_dir(dir.path())
        .envs(SERVICE_LINKS.iter().copied())
        .envs(extra.iter().copied())
        .args(["config", "print"]);
    command.output().unwrap()
}

#[test]
fn the_service_links_of_a_kubernetes_service_named_confab_do_not_stop_the_start() {
    let output = config_print_in_a_pod(&[("CONFAB_LISTEN", "0.0.0.0:8080")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: toml::Table = String::from_utf8(output.stdout).unwrap().parse().unwrap();
    assert_eq!(printed["listen"].as_str(), Some("0.0.0.0:8080"));
    assert!(!printed.contains_key("port"), "{printed}");
}

#[test]
fn a_misspelt_key_of_a_table_is_refused_beside_the_service_links() {
    let output = config_print_in_a_pod(&[("CONFAB_WS__IDEL_TIMEOUT", "2m")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("idel_timeout"), "{stderr}");
}

#[test]
fn an_unknown_top_level_key_is_refused_beside_the_service_links() {
    let output = config_print_in_a_pod(&[("CONFAB_LISTNE", "0.0.0.0:8080")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("`listne`"), "{stderr}");
}
