//! Python tools pinned by exact version in a virtualenv under `target/`, installed
//! by pip from PyPI the first time a command needs them (and again when the pins
//! change): the manifest validators and schemathesis.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

/// How long pip may take to install a set of tools.
const INSTALL_TIMEOUT_SECS: &str = "600";

/// A virtualenv and the requirements (a pip requirements file, every version
/// pinned) it must hold.
pub(crate) struct PinnedTools<'a> {
    /// The virtualenv's folder, relative to the workspace root.
    pub(crate) venv: &'a str,
    pub(crate) requirements: &'a str,
    /// A program of `bin/` that only a complete install leaves behind.
    pub(crate) program: &'a str,
    /// What the tools are, for messages.
    pub(crate) what: &'a str,
}

impl PinnedTools<'_> {
    /// Installs the tools unless the virtualenv already holds exactly these
    /// requirements; returns its `bin` folder.
    pub(crate) fn install(&self, sh: &Shell, root: &Path) -> Result<PathBuf> {
        let venv = root.join(self.venv);
        let bin = venv.join("bin");
        let stamp = venv.join("requirements.txt");
        let installed = fs::read_to_string(&stamp).unwrap_or_default();
        if installed == self.requirements && bin.join(self.program).is_file() {
            return Ok(bin);
        }
        eprintln!("installing {} into {}", self.what, self.venv);
        if !bin.join("python").is_file() {
            cmd!(sh, "python3 -m venv {venv}").run().context(
                "cannot create a virtualenv (is python3 with its venv module installed? Debian: apt-get install python3-venv)",
            )?;
        }
        let requirements = venv.join("requirements.in");
        fs::write(&requirements, self.requirements)
            .with_context(|| format!("cannot write {}", requirements.display()))?;
        let pip = bin.join("pip");
        cmd!(
            sh,
            "timeout {INSTALL_TIMEOUT_SECS} {pip} install --quiet --disable-pip-version-check --requirement {requirements}"
        )
        .run()
        .with_context(|| format!("pip could not install {}", self.what))?;
        // Only a complete install is recorded; an interrupted one is redone next time.
        fs::write(&stamp, self.requirements)
            .with_context(|| format!("cannot write {}", stamp.display()))?;
        Ok(bin)
    }
}
