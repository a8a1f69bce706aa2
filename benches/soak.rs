//! `make soak`: the long reliability runs, too slow for `make test`. Freezes
//! tests/fixtures/scripts/reliability.py, serves it with isapi-host under Wine and
//!   1. sends 100,000 requests over 32 concurrent keep-alive connections, checking every
//!      response byte for byte, sampling the serving process's memory, threads and
//!      handles every 10,000 requests;
//!   2. streams request bodies from 0 bytes to 100 MiB through wsgi.input, with the
//!      process's resident memory before and after each.
//!
//! It prints the figures and writes them into BENCHMARKS.md between the reliability
//! markers. `SOAK_REQUESTS=N` changes the request count. Exits non-zero if any response
//! was wrong or missing.

// The end-to-end tests' support module, whole (this benchmark uses a part of it).
#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use support::load::{figures, load, post_streamed, reset_peak, settled_figures, Figures, REQUESTS_PER_CONNECTION};
use support::{fixture, repo, Freeze, Host};

const CLIENTS: usize = 32;
const START: &str = "<!-- reliability:start (written by `make soak`) -->";
const END: &str = "<!-- reliability:end -->";

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// POSTs `size` patterned bytes to /hash; true if the answer names that size and hash.
fn post_body(address: &str, size: usize) -> (bool, Duration) {
    let started = Instant::now();
    // A broken exchange counts as a wrong answer rather than ending the run.
    let answer = std::panic::catch_unwind(|| post_streamed(address, size));
    let largest = size.min(64 << 10);
    let ok = answer.is_ok_and(|(r, hex)| {
        r.status == 200
            && r.text()
                .ends_with(&format!("{size} bytes, largest read {largest}, sha256 {hex}\n"))
    });
    (ok, started.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks which benchmarks there are: just this one.
    }
    let total: usize = std::env::var("SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let app = Freeze::script(fixture("scripts/reliability.py")).ok();
    // Bodies up to 100 MiB, past IIS's default maxAllowedContentLength, lifted as a site would.
    let mut host = Host::start(&app.dll(), &["--max-body", "4294967295"]);
    let start = figures(&mut host);

    let mut report = String::new();
    let mut samples: Vec<(usize, Figures)> = Vec::new();
    let (mut wrong, mut missing) = (0, 0);
    let step = (total / 10).max(1);
    let started = Instant::now();
    let mut done = 0;
    while done < total {
        let n = step.min(total - done);
        let run = load(&host.address, &format!("soak{done}"), n, CLIENTS);
        wrong += run.wrong;
        missing += run.missing;
        done += n;
        let f = settled_figures(&mut host);
        eprintln!(
            "soak: {done} requests: {f:?} ({} wrong, {} missing so far)",
            wrong, missing
        );
        samples.push((done, f));
    }
    let elapsed = started.elapsed();

    writeln!(report, "{START}").unwrap();
    writeln!(
        report,
        "\n### Soak: {total} requests, {CLIENTS} concurrent connections\n\n\
         `make soak` (benches/soak.rs), isapi-host under Wine 8 on this machine, against the\n\
         threaded WSGI app tests/fixtures/scripts/reliability.py (`/echo`, ~1 KiB answers\n\
         checked byte for byte; each client reconnects every {} requests).\n",
        REQUESTS_PER_CONNECTION
    )
    .unwrap();
    writeln!(
        report,
        "- wrong responses: **{wrong}**, missing responses: **{missing}**\n\
         - {total} requests in {:.1} s ({:.0} requests/s)\n",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    )
    .unwrap();
    writeln!(
        report,
        "| after requests | resident memory (VmRSS) | threads | Windows handles |"
    )
    .unwrap();
    writeln!(report, "|---:|---:|---:|---:|").unwrap();
    writeln!(
        report,
        "| 0 (started) | {} | {} | {} |",
        mib(start.rss_kib),
        start.threads,
        start.handles
    )
    .unwrap();
    for (n, f) in &samples {
        writeln!(report, "| {n} | {} | {} | {} |", mib(f.rss_kib), f.threads, f.handles).unwrap();
    }
    if let (Some((_, first)), Some((_, last))) = (samples.first(), samples.last()) {
        writeln!(
            report,
            "\nFrom the first sample (warmed up) to the last: memory {:+.1} MiB, threads {:+}, handles {:+}.",
            (last.rss_kib as f64 - first.rss_kib as f64) / 1024.0,
            last.threads as i64 - first.threads as i64,
            last.handles as i64 - first.handles as i64
        )
        .unwrap();
    }

    writeln!(
        report,
        "\n### Request bodies streamed through wsgi.input\n\n\
         Each body POSTed to `/hash`, which reads wsgi.input 64 KiB at a time and answers the\n\
         size and SHA-256 (checked). Peak resident memory (VmHWM, reset before each body)\n\
         of the serving process while it was served:\n"
    )
    .unwrap();
    writeln!(report, "| body | answer | time | peak resident memory |").unwrap();
    writeln!(report, "|---:|---|---:|---:|").unwrap();
    let before = settled_figures(&mut host);
    writeln!(report, "| (before) | | | {} |", mib(before.rss_kib)).unwrap();
    let mut peak = before.rss_kib;
    for size in [0usize, 1, 64 << 10, 1 << 20, 16 << 20, 100 << 20] {
        reset_peak(&host);
        let (ok, took) = post_body(&host.address, size);
        if !ok {
            wrong += 1;
        }
        let f = settled_figures(&mut host);
        peak = peak.max(f.peak_kib);
        eprintln!("body {size}: ok={ok} in {took:?}: {f:?}");
        writeln!(
            report,
            "| {size} B | {} | {:.2} s | {} |",
            if ok { "exact" } else { "WRONG" },
            took.as_secs_f64(),
            mib(f.peak_kib)
        )
        .unwrap();
    }
    writeln!(
        report,
        "\nThe highest peak while a body streamed was {} above the resident memory before the first\n\
         (a 100 MiB body held whole would add at least 100 MiB).\n",
        mib(peak.saturating_sub(before.rss_kib))
    )
    .unwrap();
    writeln!(report, "{END}").unwrap();
    let finished = host.finish();
    print!("{report}");

    let path = repo().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    let text = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{}{}", &text[..a], report.trim_end(), &text[b + END.len()..]),
        _ => format!("{}\n## Reliability\n\n{}", text.trim_end(), report),
    };
    std::fs::write(&path, text).unwrap();
    eprintln!("wrote {}", path.display());
    if wrong + missing > 0 || finished.code != 0 {
        eprintln!("FAILED: {wrong} wrong, {missing} missing, host exit {}", finished.code);
        std::process::exit(1);
    }
}
