//! `cargo xtask openapi`: keeps `docs/openapi.json` equal to the document the server
//! describes itself with, so the committed API description never drifts from the code.
//!
//! The server prints its document with the hidden `confab openapi` subcommand; this
//! module lays it out the way `serde_json`'s pretty printer does, so the file diffs
//! well however the server formats its output.

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// Where the document is kept, from the workspace root.
const DOCUMENT: &str = "docs/openapi.json";

/// Writes the server's OpenAPI document to [`DOCUMENT`], or with `check` fails when
/// the file differs from it.
pub(crate) fn run(sh: &Shell, check: bool) -> Result<()> {
    let printed = cmd!(sh, "cargo run --quiet --package confab-server -- openapi")
        .read()
        .context("the server did not print its OpenAPI document (`confab openapi`)")?;
    let document = pretty_json(&printed).context("`confab openapi` printed no JSON object")?;
    if !check {
        sh.write_file(DOCUMENT, &document)?;
        eprintln!("openapi: wrote {DOCUMENT}");
        return Ok(());
    }
    let Ok(committed) = sh.read_file(DOCUMENT) else {
        bail!("{DOCUMENT} does not exist; run `cargo xtask openapi` and commit it");
    };
    if committed != document {
        bail!(
            "{DOCUMENT} differs from the API the server describes; run `cargo xtask openapi` and commit it"
        );
    }
    eprintln!("openapi: {DOCUMENT} is up to date");
    Ok(())
}

/// Lays out a JSON object with two-space indents, `": "` after keys, empty objects
/// and arrays as `{}` and `[]`, and a trailing newline, as `serde_json` prints it.
/// Strings are copied as they are. Only the layout is checked, not full JSON syntax.
fn pretty_json(text: &str) -> Result<String> {
    let text = text.trim();
    if !text.starts_with('{') {
        let start: String = text.chars().take(80).collect();
        bail!("expected a JSON object, got {start:?}");
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut open: Vec<char> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if open.is_empty() && !out.is_empty() {
            bail!("text after the JSON object");
        }
        match c {
            '"' => {
                out.push('"');
                loop {
                    let Some(c) = chars.next() else {
                        bail!("unterminated string");
                    };
                    out.push(c);
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                out.push(c);
                if chars.next_if_eq(&close).is_some() {
                    out.push(close);
                } else {
                    open.push(close);
                    new_line(&mut out, open.len());
                }
            }
            '}' | ']' => {
                if open.pop() != Some(c) {
                    bail!("unbalanced {c:?}");
                }
                new_line(&mut out, open.len());
                out.push(c);
            }
            ',' => {
                out.push(',');
                new_line(&mut out, open.len());
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    if !open.is_empty() {
        bail!("unbalanced brackets: {} left open", open.len());
    }
    out.push('\n');
    Ok(out)
}

fn new_line(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: &str = r#"{
  "openapi": "3.1.0",
  "info": {
    "title": "confab",
    "tags": [],
    "x": {}
  },
  "paths": {
    "/conversations/{id}": {
      "get": {
        "parameters": [
          1,
          -2.5e3,
          true,
          null
        ],
        "description": "quotes \" and \\, brackets {[]}, commas , colons : and  spaces"
      }
    }
  }
}
"#;

    #[test]
    fn compact_json_is_laid_out_like_serde_json_pretty() {
        let compact = r#"{"openapi":"3.1.0","info":{"title":"confab","tags":[ ],"x":{}},"paths":{"/conversations/{id}":{"get":{"parameters":[1,-2.5e3,true,null],"description":"quotes \" and \\, brackets {[]}, commas , colons : and  spaces"}}}}"#;
        assert_eq!(pretty_json(compact).expect("valid JSON"), PRETTY);
    }

    #[test]
    fn pretty_json_is_left_as_it_is() {
        assert_eq!(pretty_json(PRETTY).expect("valid JSON"), PRETTY);
    }

    #[test]
    fn output_that_is_not_a_json_object_is_refused() {
        assert!(pretty_json("").is_err());
        assert!(pretty_json("error: no such command").is_err());
        assert!(pretty_json(r#"{"a":[1}"#).is_err());
        assert!(pretty_json(r#"{"a":"open}"#).is_err());
        assert!(pretty_json(r#"{"a":1}}"#).is_err());
        assert!(pretty_json(r#"{"a":1} {}"#).is_err());
    }
}
