//! The scale-out block of `docs/benchmarks.md`: the rounds of each setup reduced to
//! their medians, one table per scenario with a row per setup, and the block put in
//! its place in the document without touching the rest.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::{Value, json};
use xshell::{Shell, cmd};

use super::super::{figure, find, ms};
use super::{
    BEGIN, CLIENTS, END, HEADING, REST_MESSAGES, ROUNDS, SAMPLES, Setup, WINDOW, WS_MESSAGES,
};

/// The figures that say a server misbehaved: across rounds the largest counts, not
/// the median, so that one bad round shows.
const SIGNS: [&str; 6] = [
    "unanswered",
    "duplicate_replies",
    "seq_gaps",
    "extra_user_messages",
    "duplicate_frames",
    "unexpected_frames",
];

/// One report per scenario of the first round, each figure the median of that
/// scenario's reports over the rounds (the largest for [`SIGNS`]), with the smallest
/// and largest `per_second` and `p50_us` of the rounds as extra figures
/// (`per_second_min`, `per_second_max`, `p50_us_min`, `p50_us_max`).
pub(super) fn median_reports(rounds: &[Vec<Value>]) -> Vec<Value> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|report| {
            let scenario = report["scenario"].as_str().unwrap_or_default();
            let same: Vec<&Value> = rounds
                .iter()
                .filter_map(|round| round.iter().find(|r| r["scenario"] == scenario))
                .collect();
            let values = |name: &str| same.iter().map(|r| figure(r, name)).collect::<Vec<_>>();
            let mut merged = report.clone();
            if let Some(fields) = merged.as_object_mut() {
                for key in [
                    "operations",
                    "seconds",
                    "per_second",
                    "p50_us",
                    "p90_us",
                    "p99_us",
                    "max_us",
                ] {
                    fields.insert(key.to_owned(), json!(median(values(key))));
                }
            }
            if let Some(extra) = merged.get_mut("extra").and_then(Value::as_object_mut) {
                let names: Vec<String> = extra.keys().cloned().collect();
                for name in names {
                    let all = values(&name);
                    let value = if SIGNS.contains(&name.as_str()) {
                        all.iter().copied().fold(0.0, f64::max)
                    } else {
                        median(all)
                    };
                    extra.insert(name, json!(value));
                }
                for key in ["per_second", "p50_us"] {
                    let all = values(key);
                    let low = all.iter().copied().fold(f64::INFINITY, f64::min);
                    let high = all.iter().copied().fold(0.0, f64::max);
                    extra.insert(format!("{key}_min"), json!(low));
                    extra.insert(format!("{key}_max"), json!(high));
                }
            }
            merged
        })
        .collect()
}

/// The commit the binaries were built from, and whether files under `crates/` differed
/// from it, read when they are built: others may commit while the rounds run.
pub(super) fn provenance(sh: &Shell) -> String {
    let commit = cmd!(sh, "git rev-parse --short HEAD")
        .read()
        .unwrap_or_else(|_| "an unknown commit".to_owned());
    let dirty = cmd!(sh, "git status --porcelain --untracked-files=no -- crates")
        .read()
        .map(|text| text.lines().count())
        .unwrap_or(0);
    if dirty == 0 {
        commit
    } else {
        format!("{commit} with uncommitted changes to {dirty} files under crates/")
    }
}

/// The median, the mean of the middle two for an even count; 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The document with its scale-out block replaced by `block`, or the section added
/// at its end when it has none.
pub(super) fn replace_block(document: &str, block: &str) -> String {
    if let (Some(begin), Some(end)) = (document.find(BEGIN), document.find(END))
        && begin < end
    {
        let mut out = String::with_capacity(document.len() + block.len());
        out.push_str(&document[..begin]);
        out.push_str(BEGIN);
        out.push('\n');
        out.push_str(block);
        out.push_str(&document[end..]);
        return out;
    }
    let mut out = document.trim_end().to_owned();
    out.push_str(&format!("\n\n{HEADING}\n\n{BEGIN}\n{block}{END}\n"));
    out
}

/// The generated block: how it was measured, and one table per scenario with a row
/// per setup.
pub(super) fn render(
    sh: &Shell,
    built_from: &str,
    measured: &[(&Setup, Vec<Value>)],
) -> Result<String> {
    let date = cmd!(sh, "date -u '+%Y-%m-%d %H:%M UTC'").read()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut doc = String::new();
    let _ = writeln!(
        doc,
        "\nWritten by `cargo xtask bench --cluster` on {date}, built from {built_from}. \
         Each setup gets a fresh PostgreSQL database; its release `confab` instances are \
         started on free ports of 127.0.0.1 with one signing secret and, except the \
         baseline, `CONFAB_EVENTS__URL` on the local NATS, which also turns on reply \
         leases in PostgreSQL: the one-instance NATS row pays for the bus and the leases, \
         the in-process row for neither. The load generator (`confab-loadgen cluster`) \
         talks to them over HTTP and WebSocket. Every setup ran {ROUNDS} times, the \
         setups in turn; each figure is the median of the rounds, and where a range is \
         given it is the rounds' smallest and largest. Raw reports and the instances' \
         logs: `target/bench/cluster-*/round-*/`.\n"
    );
    let _ = writeln!(
        doc,
        "**Limits of this machine:** {cores} cores, shared by PostgreSQL, NATS, every \
         instance and the load generator. More instances cannot add CPU here; they \
         divide the same cores and add the bus's work. `cores busy` is how many of the \
         {cores} were busy on average during the measurement (`/proc/stat`), and in \
         brackets who used them (`/proc/<pid>/stat`): the confab instances together / \
         PostgreSQL / NATS / the load generator / anything else on the machine.\n"
    );
    let baseline = measured.iter().find(|(setup, _)| !setup.nats);
    let one_nats = measured
        .iter()
        .find(|(setup, _)| setup.nats && setup.instances == 1);

    for (title, prefix, note) in [
        (
            "Send throughput, REST",
            "send rest",
            format!(
                "{CLIENTS} clients, each in its own conversation with `echo`, post \
                 {REST_MESSAGES} messages one after the other, message i of client c to \
                 instance (c + i) mod n, as a load balancer without stickiness would. \
                 `acked/s` counts 201 answers; `answered/s` the same messages over the \
                 time until their last reply was stored, `drain s` later; `reply lag` \
                 is each reply's server timestamp minus its message's, from the stored \
                 history; `answered once` checks every stored history (each user \
                 message has exactly one `echo` reply, seqs without gaps)."
            ),
        ),
        (
            "Send throughput, WebSocket",
            "send ws",
            format!(
                "{CLIENTS} clients, client c with a socket on instance c mod n, each \
                 keeping {WINDOW} of {WS_MESSAGES} messages in flight; a message counts \
                 when its acknowledgement and its reply have both come back on the \
                 socket (the reply from whichever instance holds the conversation's \
                 reply lease), so `answered/s` is `acked/s` here."
            ),
        ),
    ] {
        let _ = writeln!(doc, "### {title}\n\n{note}\n");
        let _ = writeln!(
            doc,
            "| setup | messages | acked/s | answered/s | p50 ms | p99 ms | reply lag p50 / \
             p99 ms | drain s | answered once | cores busy (confab / PostgreSQL / NATS / \
             loadgen / other) | acked/s vs 1 instance on NATS |"
        );
        let _ = writeln!(doc, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|");
        let base = one_nats
            .and_then(|(_, reports)| find(reports, prefix))
            .map(|r| figure(r, "per_second"));
        for (setup, reports) in measured {
            let Some(report) = find(reports, prefix) else {
                continue;
            };
            let rate = figure(report, "per_second");
            let drain = report
                .get("extra")
                .and_then(|extra| extra.get("drain_s"))
                .and_then(Value::as_f64)
                .map_or_else(|| "—".to_owned(), |s| format!("{s:.2}"));
            let _ = writeln!(
                doc,
                "| {} | {} | {rate:.0} ({:.0}–{:.0}) | {:.0} | {:.3} | {:.3} | {:.0} / {:.0} | \
                 {drain} | {} | {} | {} |",
                setup.label,
                figure(report, "operations"),
                figure(report, "per_second_min"),
                figure(report, "per_second_max"),
                figure(report, "answered_per_s"),
                ms(report, "p50_us"),
                ms(report, "p99_us"),
                figure(report, "reply_lag_p50_ms"),
                figure(report, "reply_lag_p99_ms"),
                answered_once(report),
                cores_busy(report),
                base.map_or_else(|| "—".to_owned(), |b| format!("{:.2}×", rate / b.max(1.0)))
            );
        }
        doc.push('\n');
    }

    let _ = writeln!(
        doc,
        "### Cross-instance round trip\n\nA socket on instance A follows a conversation \
         with `echo`; {SAMPLES} messages are posted over REST one after the other on \
         instance B (the other instances in turn; A itself when alone). `message` is the \
         time from sending the POST to the `message` frame with that message's id on A's \
         socket; `reply` to the frame of `echo`'s answer; `POST` until the POST's own \
         201; `after 201` the p50 of each sample's `message` minus its `POST` (negative: \
         the frame came first), the delivery's own cost. Every frame is checked: no id \
         twice, none unexpected.\n"
    );
    let _ = writeln!(
        doc,
        "| setup | samples | message p50 ms | message p99 ms | reply p50 ms | reply p99 ms | \
         POST p50 ms | after 201 p50 ms | frames as expected | cores busy (as above) | \
         message p50 vs in-process |"
    );
    let _ = writeln!(doc, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|");
    let base = baseline
        .and_then(|(_, reports)| find(reports, "cross-instance message"))
        .map(|r| ms(r, "p50_us"));
    for (setup, reports) in measured {
        let (Some(message), Some(reply)) = (
            find(reports, "cross-instance message"),
            find(reports, "cross-instance reply"),
        ) else {
            continue;
        };
        let frames_ok = figure(message, "duplicate_frames") == 0.0
            && figure(message, "unexpected_frames") == 0.0;
        let p50 = ms(message, "p50_us");
        let _ = writeln!(
            doc,
            "| {} | {} | {p50:.3} ({:.3}–{:.3}) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {} |",
            setup.label,
            figure(message, "operations"),
            figure(message, "p50_us_min") / 1000.0,
            figure(message, "p50_us_max") / 1000.0,
            ms(message, "p99_us"),
            ms(reply, "p50_us"),
            ms(reply, "p99_us"),
            figure(message, "post_p50_ms"),
            figure(message, "after_post_p50_ms"),
            if frames_ok && answered_once(reply) == "yes" {
                "yes"
            } else {
                "**no**"
            },
            cores_busy(message),
            base.map_or_else(|| "—".to_owned(), |b| format!("{:.2}×", p50 / b.max(0.001)))
        );
    }
    doc.push('\n');
    Ok(doc)
}

/// The machine's busy cores and, in brackets, each group's share and what is left
/// for other processes, e.g. `1.93 (0.80 / 0.70 / 0.05 / 0.30 / 0.08)`.
fn cores_busy(report: &Value) -> String {
    let machine = figure(report, "machine_cores");
    let groups = ["confab", "postgres", "nats", "loadgen"]
        .map(|group| figure(report, &format!("{group}_cores")));
    let other = (machine - groups.iter().sum::<f64>()).max(0.0);
    format!(
        "{machine:.2} ({:.2} / {:.2} / {:.2} / {:.2} / {other:.2})",
        groups[0], groups[1], groups[2], groups[3]
    )
}

/// "yes" when the report's stored histories held each user message answered exactly
/// once with gap-free seqs, otherwise what was wrong.
fn answered_once(report: &Value) -> String {
    let wrong: Vec<String> = [
        "unanswered",
        "duplicate_replies",
        "seq_gaps",
        "extra_user_messages",
    ]
    .iter()
    .filter_map(|name| {
        let value = figure(report, name);
        (value != 0.0).then(|| format!("{name} {value:.0}"))
    })
    .collect();
    if wrong.is_empty() {
        "yes".to_owned()
    } else {
        format!("**no: {}**", wrong.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_without_the_block_gets_the_section_at_its_end() {
        let document = replace_block("# Benchmarks\n\n## Analysis\n\nText.\n", "figures\n");
        assert_eq!(
            document,
            format!(
                "# Benchmarks\n\n## Analysis\n\nText.\n\n{HEADING}\n\n{BEGIN}\nfigures\n{END}\n"
            )
        );
    }

    #[test]
    fn only_the_block_is_replaced_and_the_text_around_it_is_kept() {
        let before = format!("# B\n\n{HEADING}\n\n{BEGIN}\nold\n{END}\n\nBy hand.\n");
        let after = replace_block(&before, "new\n");
        assert_eq!(
            after,
            format!("# B\n\n{HEADING}\n\n{BEGIN}\nnew\n{END}\n\nBy hand.\n")
        );
    }

    #[test]
    fn rounds_are_reduced_to_medians_with_their_range_and_the_worst_sign() {
        let round = |rate: f64, p50: u64, lost: f64| {
            vec![
                json!({"scenario": "send rest 16x500", "per_second": rate, "p50_us": p50,
                        "extra": {"unanswered": lost, "drain_s": rate / 100.0}}),
            ]
        };
        let merged = median_reports(&[
            round(700.0, 20, 0.0),
            round(600.0, 30, 2.0),
            round(650.0, 10, 0.0),
        ]);
        assert_eq!(merged.len(), 1);
        let report = &merged[0];
        assert_eq!(figure(report, "per_second"), 650.0);
        assert_eq!(figure(report, "p50_us"), 20.0);
        assert_eq!(figure(report, "drain_s"), 6.5);
        assert_eq!(figure(report, "unanswered"), 2.0);
        assert_eq!(
            (
                figure(report, "per_second_min"),
                figure(report, "per_second_max")
            ),
            (600.0, 700.0)
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
