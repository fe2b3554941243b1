//! `sdexport probe`: is this card real?

use anyhow::{Context, Result};
use sdexport::probe::probe;

use crate::cli::ProbeArgs;
use crate::commands::open;
use crate::output::{human_bytes, Output, Status};

pub fn run(a: ProbeArgs, out: &Output) -> Result<Status> {
    let mut card = open(&a.card, a.partition.partition, true, "card", out)?;
    let free = card.volume.space()?.free_bytes;
    let total = a.max.map_or(free, |m| m.min(free));
    let bar = out.bytes_bar(total.saturating_mul(2), "probe");
    let report = probe(card.volume.as_mut(), a.max, &mut |_, n| bar.inc(n))
        .with_context(|| format!("probing {}", a.card.display()))?;
    bar.finish_and_clear();
    if a.json {
        crate::output::print_json(&report)?;
    } else if report.ok() {
        out.say(&format!(
            "OK: {} of free space written and read back intact ({} free before).",
            human_bytes(report.bytes_tested),
            human_bytes(report.free_bytes_before)
        ));
    } else {
        out.say(&out.bad("The card did NOT keep what was written to it."));
        if let Some(at) = report.first_bad_offset {
            out.say(&format!(
                "  {} blocks of 4 KiB read back wrong, the first after {} of the pattern.",
                report.bad_blocks,
                human_bytes(at)
            ));
        }
        if report.wraps {
            out.say("  Blocks came back holding other blocks' data: the card wraps writes past its real capacity (a counterfeit card).");
        }
        if let Some(e) = &report.write_error {
            out.say(&format!("  {e}"));
        }
        out.say(
            "  Do not trust it with photos. Confirm with f3 (f3probe --destructive) or H2testw.",
        );
    }
    Ok(if report.ok() {
        Status::Done
    } else {
        Status::Incomplete
    })
}
