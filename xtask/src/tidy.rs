//! `cargo xtask tidy`: the checks that keep the architecture honest, so that review
//! need not.
//!
//! - The dependency boundary (docs/architecture.md, "Boundaries are checked"), read from `cargo tree`:
//!   `confab-domain` depends on no adapter library and on no other confab crate, and
//!   only `confab-server`, the composition root, depends on adapter crates. Normal
//!   dependencies count, with every feature on, directly or through other packages:
//!   that is what ships.
//! - Every Rust file under `crates/`, `migrations/` and `xtask/` starts with a `//!`
//!   comment saying what it is for.
//! - The layers of `confab-domain` (docs/architecture.md, the domain's layers), read
//!   from the `crate::` paths of each module's code (comments and `#[cfg(test)]`
//!   modules aside): the model refers to no layer, `ports` refers only to the model,
//!   and the layers `ports`, `service`, `reply`, `admin` and `webhooks` refer to one another
//!   without a cycle.
//! - The top-level modules of the adapter crates in [`ACYCLIC_CRATES`] refer to one
//!   another without a cycle, read the same way: a module that needs another's
//!   private parts and is needed by it is one module in two files.
//!
//! The checks are pure functions over text (the `cargo tree` output, file contents);
//! [`run`] only gathers that text and reports.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

const DOMAIN: &str = "confab-domain";
const MIGRATIONS: &str = "confab-migrations";
const SERVER: &str = "confab-server";

/// Libraries of adapters, which the domain must not depend on, directly or not.
const ADAPTER_LIBRARIES: [&str; 15] = [
    "axum",
    "axum-core",
    "http",
    "hyper",
    "tower",
    "tower-http",
    "sea-orm",
    "sea-query",
    "sqlx",
    "tungstenite",
    "tokio-tungstenite",
    "reqwest",
    "async-nats",
    "utoipa",
    "anyhow",
];

/// The domain's source folder, whose top-level modules are checked for layering.
const DOMAIN_SOURCES: &str = "crates/domain/src";

/// The domain's model: parsed values and the events between them. These modules may
/// refer to one another, and to no layer.
const DOMAIN_MODEL: [&str; 15] = [
    "analytics",
    "bot",
    "conversation",
    "error",
    "event",
    "handoff",
    "id",
    "lease",
    "message",
    "retry",
    "search",
    "session",
    "timestamp",
    "user",
    "webhook",
];

/// The domain's layers above the model: `ports` refers only to the model, and no
/// two layers refer to each other in a circle.
const DOMAIN_LAYERS: [&str; 5] = ["ports", "service", "reply", "admin", "webhooks"];

/// Source folders of the crates around the domain, whose top-level modules must not
/// refer to one another in a circle (the domain has its own, stricter rule).
const ACYCLIC_CRATES: [&str; 6] = [
    "crates/storage-seaorm/src",
    "crates/api-axum/src",
    "crates/server/src",
    "crates/events-nats/src",
    "crates/bots/src",
    "crates/loadgen/src",
];

/// The folders whose Rust files must start with a `//!` comment.
const DOCUMENTED_FOLDERS: [&str; 3] = ["crates", "migrations", "xtask"];

/// Runs every check and reports every problem found, then fails if there was one.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    let tree = cmd!(
        sh,
        "cargo tree --workspace --all-features --edges normal --prefix depth"
    )
    .read()
    .context("cannot read the dependency tree")?;
    let graph = DependencyGraph::parse(&tree)?;
    let mut problems: Vec<String> = boundary_violations(&graph)
        .iter()
        .map(ToString::to_string)
        .collect();

    let root = sh.current_dir();
    let mut files = Vec::new();
    for folder in DOCUMENTED_FOLDERS {
        collect_rust_files(&root.join(folder), &mut files)?;
    }
    files.sort();
    for file in &files {
        let text = sh
            .read_file(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if !starts_with_module_doc(&text) {
            let shown = file.strip_prefix(&root).unwrap_or(file);
            problems.push(format!(
                "{}: the first line is not a `//!` comment saying what the file is for",
                shown.display()
            ));
        }
    }

    let domain = module_references(sh, &root.join(DOMAIN_SOURCES), &files)?;
    problems.extend(layer_violations(&domain));
    for sources in ACYCLIC_CRATES {
        let references = module_references(sh, &root.join(sources), &files)?;
        let modules: Vec<&str> = references.keys().map(String::as_str).collect();
        problems.extend(
            cycles(&references, &modules).into_iter().map(|cycle| {
                format!("{sources}: modules refer to one another in a circle: {cycle}")
            }),
        );
    }

    eprintln!(
        "tidy: checked the dependencies of {} workspace crates and {} Rust files",
        graph.roots.len(),
        files.len()
    );
    if problems.is_empty() {
        return Ok(());
    }
    for problem in &problems {
        eprintln!("tidy: {problem}");
    }
    bail!("tidy found {} problem(s), listed above", problems.len())
}

/// Each top-level module of the crate whose sources are `folder` (among `files`), with
/// the top-level modules its code refers to.
fn module_references(
    sh: &Shell,
    folder: &Path,
    files: &[PathBuf],
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut references: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|file| file.starts_with(folder)) {
        let Some(module) = file.strip_prefix(folder).ok().and_then(top_level_module) else {
            continue;
        };
        let text = sh
            .read_file(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        references
            .entry(module)
            .or_default()
            .extend(crate_references(&text));
    }
    Ok(references)
}

/// One package of the dependency graph, as `cargo tree` names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Package {
    name: String,
    version: String,
}

/// The normal dependencies of the workspace, from `cargo tree --prefix depth`.
///
/// `cargo tree` prints a package's dependencies only the first time it meets the
/// package and marks later occurrences `(*)`, across all roots; the graph therefore
/// gathers every edge of the output before anything is walked.
#[derive(Debug, Default)]
pub(crate) struct DependencyGraph {
    /// The packages printed at depth 0: the workspace members.
    roots: Vec<Package>,
    /// Each package's direct dependencies.
    dependencies: BTreeMap<Package, BTreeSet<Package>>,
}

impl DependencyGraph {
    /// Reads the output of `cargo tree --prefix depth`: one package a line, as
    /// `<depth><name> <version> [(<path>)] [(*)]`, roots at depth 0.
    pub(crate) fn parse(tree: &str) -> Result<Self> {
        let mut graph = Self::default();
        let mut stack: Vec<Package> = Vec::new();
        for (number, line) in tree.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let malformed = || {
                format!(
                    "line {} of the `cargo tree` output is not `<depth><name> <version>`: {line:?}",
                    number + 1
                )
            };
            let digits = line.chars().take_while(char::is_ascii_digit).count();
            let depth: usize = line[..digits].parse().with_context(malformed)?;
            let mut words = line[digits..].split_whitespace();
            let (Some(name), Some(version)) = (words.next(), words.next()) else {
                bail!(malformed());
            };
            let package = Package {
                name: name.to_owned(),
                version: version.to_owned(),
            };
            if depth > stack.len() {
                bail!(malformed());
            }
            stack.truncate(depth);
            match stack.last() {
                Some(parent) => {
                    graph
                        .dependencies
                        .entry(parent.clone())
                        .or_default()
                        .insert(package.clone());
                }
                None => graph.roots.push(package.clone()),
            }
            stack.push(package);
        }
        Ok(graph)
    }
}

/// A dependency that breaks the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The package names from the workspace crate to the forbidden dependency.
    path: Vec<String>,
    /// The rule it breaks.
    rule: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.join(" -> "), self.rule)
    }
}

/// Every dependency path from a confab crate to a package it must not depend on.
///
/// Each path ends at the first forbidden package on it: when the domain depends on
/// axum, axum is reported and its own dependencies (hyper, http, …) are not.
pub(crate) fn boundary_violations(graph: &DependencyGraph) -> Vec<Violation> {
    let mut violations = Vec::new();
    for root in graph.roots.iter().filter(|p| p.name.starts_with("confab-")) {
        let mut reached_from: BTreeMap<&Package, &Package> = BTreeMap::new();
        let mut queue = VecDeque::from([root]);
        while let Some(package) = queue.pop_front() {
            for dependency in graph.dependencies.get(package).into_iter().flatten() {
                if dependency == root || reached_from.contains_key(dependency) {
                    continue;
                }
                reached_from.insert(dependency, package);
                match breach(&root.name, &dependency.name) {
                    Some(rule) => violations.push(Violation {
                        path: path_to(dependency, &reached_from),
                        rule,
                    }),
                    None => queue.push_back(dependency),
                }
            }
        }
    }
    violations
}

fn path_to(package: &Package, reached_from: &BTreeMap<&Package, &Package>) -> Vec<String> {
    let mut path = vec![package.name.clone()];
    let mut current = package;
    while let Some(parent) = reached_from.get(current) {
        path.push(parent.name.clone());
        current = parent;
    }
    path.reverse();
    path
}

/// Which rule, if any, `root` breaks by depending on `dependency`.
fn breach(root: &str, dependency: &str) -> Option<&'static str> {
    if root == SERVER {
        return None;
    }
    if dependency == SERVER {
        return Some("nothing depends on confab-server, the composition root");
    }
    if is_adapter(dependency) && dependency != root {
        return Some("only confab-server may depend on an adapter crate");
    }
    if root == DOMAIN {
        if dependency.starts_with("confab-") {
            return Some("confab-domain depends on no other confab crate");
        }
        if ADAPTER_LIBRARIES.contains(&dependency) {
            return Some("confab-domain must not depend on an adapter library");
        }
    }
    None
}

/// Adapter crates: every confab crate but the domain, the migrations and the server.
fn is_adapter(name: &str) -> bool {
    name.starts_with("confab-") && ![DOMAIN, MIGRATIONS, SERVER].contains(&name)
}

/// Whether the first non-empty line of a Rust file is a `//!` comment.
pub(crate) fn starts_with_module_doc(text: &str) -> bool {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .is_some_and(|line| line.trim_start().starts_with("//!"))
}

/// Adds every `.rs` file under `folder` to `files`, skipping build output and hidden
/// folders. A missing folder has no files.
fn collect_rust_files(folder: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    if !folder.is_dir() {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(folder).with_context(|| format!("cannot list {}", folder.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_rust_files(&path, files)?;
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The top-level module a file of a crate's `src` folder belongs to (`service.rs`
/// and `service/history.rs` both belong to `service`); `None` for the crate root.
pub(crate) fn top_level_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The top-level modules that `text` names as `crate::<module>` in its code: comment
/// lines are skipped (a doc link is no dependency), and so is everything from the
/// first `#[cfg(test)]` on (tests may use any layer to build their fixtures).
pub(crate) fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        for (at, _) in code.match_indices("crate::") {
            let preceded = code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
            if preceded {
                continue;
            }
            let module: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() {
                found.insert(module);
            }
        }
    }
    found
}

/// What breaks the domain's layering, given each top-level module's references: a
/// model module that refers to a layer, `ports` referring to anything but the model,
/// and each cycle among the layers (named once, from its smallest module).
pub(crate) fn layer_violations(references: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let is_layer = |module: &str| DOMAIN_LAYERS.contains(&module);
    let mut problems = Vec::new();
    for (module, uses) in references {
        let module = module.as_str();
        let allowed = |used: &str| {
            used == module
                || if DOMAIN_MODEL.contains(&module) {
                    !is_layer(used)
                } else if module == "ports" {
                    DOMAIN_MODEL.contains(&used)
                } else {
                    true
                }
        };
        for used in uses.iter().filter(|used| !allowed(used)) {
            let rule = if module == "ports" {
                "ports import only the model"
            } else {
                "the model imports no layer"
            };
            problems.push(format!(
                "{DOMAIN_SOURCES}: `{module}` refers to `crate::{used}` ({rule})"
            ));
        }
    }
    problems.extend(cycles(references, &DOMAIN_LAYERS).into_iter().map(|cycle| {
        format!("{DOMAIN_SOURCES}: the layers refer to one another in a circle: {cycle}")
    }));
    problems
}

/// Each cycle of references among `modules` (references to other modules are not
/// followed), named once, as `a -> b -> a` from the first of `modules` on it.
pub(crate) fn cycles(
    references: &BTreeMap<String, BTreeSet<String>>,
    modules: &[&str],
) -> Vec<String> {
    let edges = |module: &str| -> Vec<&str> {
        references
            .get(module)
            .map(|uses| {
                uses.iter()
                    .map(String::as_str)
                    .filter(|used| *used != module && modules.contains(used))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut reported = BTreeSet::new();
    let mut found = Vec::new();
    for start in modules.iter().copied() {
        let mut path = vec![start];
        if let Some(cycle) = cycle_back_to(start, &mut path, &edges) {
            let mut members: Vec<&str> = cycle[..cycle.len() - 1].to_vec();
            members.sort_unstable();
            if reported.insert(members) {
                found.push(cycle.join(" -> "));
            }
        }
    }
    found
}

/// A path from the last module of `path` back to `start`, if there is one, by depth
/// first search; `path` holds the modules visited on the way.
fn cycle_back_to<'a>(
    start: &'a str,
    path: &mut Vec<&'a str>,
    edges: &impl Fn(&str) -> Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    let here = *path.last()?;
    for next in edges(here) {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start);
            return Some(cycle);
        }
        if path.contains(&next) {
            continue;
        }
        path.push(next);
        if let Some(cycle) = cycle_back_to(start, path, edges) {
            return Some(cycle);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(tree: &str) -> Vec<String> {
        let graph = DependencyGraph::parse(tree).expect("the tree parses");
        boundary_violations(&graph)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The workspace as it should be, shaped like real `cargo tree` output: the
    /// domain's subtree is printed in full under the first crate that needs it and
    /// marked `(*)` everywhere after.
    const CLEAN: &str = "\
0confab-api-axum v0.1.0 (/w/crates/api-axum)
1axum v0.8.9
2axum-core v0.5.6
3http v1.5.0
2hyper v1.8.1
3http v1.5.0
1confab-domain v0.1.0 (/w/crates/domain)
2async-trait v0.1.92 (proc-macro)
3proc-macro2 v1.0.107
2futures v0.3.31
2thiserror v2.0.17
2tokio v1.48.0
1utoipa v5.4.0

0confab-domain v0.1.0 (/w/crates/domain) (*)

0confab-migrations v0.1.0 (/w/migrations)
1sea-orm-migration v2.0.0
2sea-orm v2.0.0
3sea-query v1.0.0
3sqlx v0.8.6

0confab-server v0.1.0 (/w/crates/server)
1anyhow v1.0.100
1confab-api-axum v0.1.0 (/w/crates/api-axum) (*)
1confab-domain v0.1.0 (/w/crates/domain) (*)
1confab-migrations v0.1.0 (/w/migrations) (*)
1confab-storage-seaorm v0.1.0 (/w/crates/storage-seaorm)
2confab-domain v0.1.0 (/w/crates/domain) (*)
2confab-migrations v0.1.0 (/w/migrations) (*)
2sea-orm v2.0.0 (*)

0confab-storage-seaorm v0.1.0 (/w/crates/storage-seaorm) (*)

0xtask v0.1.0 (/w/xtask)
1anyhow v1.0.100
1xshell v0.2.7
";

    #[test]
    fn a_workspace_that_keeps_the_boundary_passes() {
        assert_eq!(violations(CLEAN), Vec::<String>::new());
    }

    #[test]
    fn a_domain_that_depends_on_axum_and_sea_orm_is_reported_twice() {
        let tree = "\
0confab-domain v0.1.0 (/w/crates/domain)
1async-trait v0.1.92 (proc-macro)
2proc-macro2 v1.0.107
1axum v0.8.9
2axum-core v0.5.6
3http v1.5.0
2hyper v1.8.1
1sea-orm v2.0.0
2sea-query v1.0.0
2sqlx v0.8.6
1thiserror v2.0.17

0confab-storage-seaorm v0.1.0 (/w/crates/storage-seaorm)
1confab-domain v0.1.0 (/w/crates/domain) (*)
1sea-orm v2.0.0 (*)
";
        assert_eq!(
            violations(tree),
            [
                "confab-domain -> axum: confab-domain must not depend on an adapter library",
                "confab-domain -> sea-orm: confab-domain must not depend on an adapter library",
            ]
        );
    }

    #[test]
    fn a_forbidden_crate_behind_a_deduplicated_subtree_is_found() {
        // `helper` is expanded under api-axum only; under the domain it is `(*)`.
        let tree = "\
0confab-api-axum v0.1.0 (/w/crates/api-axum)
1helper v1.0.0
2hyper v1.8.1
1confab-domain v0.1.0 (/w/crates/domain)
2helper v1.0.0 (*)

0confab-domain v0.1.0 (/w/crates/domain) (*)
";
        assert_eq!(
            violations(tree),
            [
                "confab-domain -> helper -> hyper: confab-domain must not depend on an adapter library"
            ]
        );
    }

    #[test]
    fn adapter_crates_that_depend_on_each_other_are_reported() {
        let tree = "\
0confab-api-axum v0.1.0 (/w/crates/api-axum)
1confab-storage-seaorm v0.1.0 (/w/crates/storage-seaorm)
2confab-domain v0.1.0 (/w/crates/domain)

0confab-bots v0.1.0 (/w/crates/bots)
1confab-server v0.1.0 (/w/crates/server)

0confab-domain v0.1.0 (/w/crates/domain) (*)

0confab-storage-seaorm v0.1.0 (/w/crates/storage-seaorm)
1confab-migrations v0.1.0 (/w/migrations)
1confab-api-axum v0.1.0 (/w/crates/api-axum) (*)
";
        assert_eq!(
            violations(tree),
            [
                "confab-api-axum -> confab-storage-seaorm: only confab-server may depend on an adapter crate",
                "confab-bots -> confab-server: nothing depends on confab-server, the composition root",
                "confab-storage-seaorm -> confab-api-axum: only confab-server may depend on an adapter crate",
            ]
        );
    }

    #[test]
    fn the_domain_depends_on_no_other_confab_crate() {
        let tree = "\
0confab-domain v0.1.0 (/w/crates/domain)
1confab-migrations v0.1.0 (/w/migrations)
";
        assert_eq!(
            violations(tree),
            ["confab-domain -> confab-migrations: confab-domain depends on no other confab crate"]
        );
    }

    #[test]
    fn output_that_is_not_a_depth_prefixed_tree_is_an_error() {
        assert!(DependencyGraph::parse("confab-domain v0.1.0\n").is_err());
        assert!(DependencyGraph::parse("0confab-domain v0.1.0\n2axum v0.8.9\n").is_err());
        assert!(DependencyGraph::parse("0confab-domain\n").is_err());
    }

    #[test]
    fn a_file_that_opens_with_a_module_comment_passes() {
        assert!(starts_with_module_doc(
            "//! What this is for.\n\nuse std::fmt;\n"
        ));
        assert!(starts_with_module_doc("\n  \n//! After blank lines.\n"));
    }

    #[test]
    fn a_file_that_opens_with_anything_else_is_reported() {
        assert!(!starts_with_module_doc(""));
        assert!(!starts_with_module_doc("use std::fmt;\n//! Too late.\n"));
        assert!(!starts_with_module_doc("// A plain comment.\n"));
        assert!(!starts_with_module_doc("/// An item's doc.\nfn f() {}\n"));
        assert!(!starts_with_module_doc(
            "#![allow(dead_code)]\n//! Too late.\n"
        ));
    }

    fn layering(modules: &[(&str, &[&str])]) -> Vec<String> {
        let references = modules
            .iter()
            .map(|(module, uses)| {
                (
                    (*module).to_owned(),
                    uses.iter().map(|used| (*used).to_owned()).collect(),
                )
            })
            .collect();
        layer_violations(&references)
    }

    #[test]
    fn references_are_read_from_code_not_from_comments_or_tests() {
        let text = "//! See [`crate::service`].\n\
                    use crate::message::{Message, Seq};\n\
                    use super::limits;\n\
                    fn f(x: &crate::conversation::Metadata) -> confab_crate::Other {}\n\
                    /// Like [`crate::reply::ReplyPipeline`].\n\
                    #[cfg(test)]\n\
                    mod tests { use crate::testing::user; }\n";
        let found: Vec<String> = crate_references(text).into_iter().collect();
        assert_eq!(found, ["conversation", "message"]);
    }

    #[test]
    fn a_file_belongs_to_its_top_level_module() {
        assert_eq!(
            top_level_module(Path::new("service/history.rs")).as_deref(),
            Some("service")
        );
        assert_eq!(
            top_level_module(Path::new("service.rs")).as_deref(),
            Some("service")
        );
        assert_eq!(top_level_module(Path::new("lib.rs")), None);
    }

    #[test]
    fn layers_that_import_downwards_only_pass() {
        let problems = layering(&[
            ("message", &["conversation", "error"]),
            ("conversation", &["message"]),
            ("ports", &["message", "conversation"]),
            ("reply", &["ports", "message"]),
            ("service", &["reply", "ports"]),
            ("admin", &["service", "ports"]),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn ports_that_import_a_service_are_reported() {
        let problems = layering(&[("ports", &["message", "service"]), ("service", &["ports"])]);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("`ports` refers to `crate::service`")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_model_module_that_imports_a_layer_is_reported() {
        let problems = layering(&[("lease", &["ports"])]);
        assert_eq!(
            problems,
            [format!(
                "{DOMAIN_SOURCES}: `lease` refers to `crate::ports` (the model imports no layer)"
            )]
        );
    }

    #[test]
    fn a_cycle_through_three_layers_is_reported_once() {
        let problems = layering(&[
            ("service", &["reply"]),
            ("reply", &["admin"]),
            ("admin", &["service"]),
        ]);
        assert_eq!(
            problems,
            [format!(
                "{DOMAIN_SOURCES}: the layers refer to one another in a circle: \
                 service -> reply -> admin -> service"
            )]
        );
    }

    #[test]
    fn a_cycle_between_two_adapter_modules_is_found_and_a_chain_is_not() {
        let references: BTreeMap<String, BTreeSet<String>> = [
            ("store", &["group_commit", "error"][..]),
            ("group_commit", &["store", "error"][..]),
            ("messages", &["store", "append"][..]),
            ("append", &["error"][..]),
        ]
        .into_iter()
        .map(|(module, uses)| {
            let uses = uses.iter().map(|used| (*used).to_owned()).collect();
            (module.to_owned(), uses)
        })
        .collect();
        let modules: Vec<&str> = references.keys().map(String::as_str).collect();
        assert_eq!(
            cycles(&references, &modules),
            ["group_commit -> store -> group_commit"]
        );
    }
}
