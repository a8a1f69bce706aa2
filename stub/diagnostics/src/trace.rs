//! Following an output directory's logs live, as `tail -f` does: used by `isapi-freeze
//! trace DIST` and by `SCRIPT.exe trace` on the server. Prints the last lines of each
//! `logs/*.log`, then what is appended, with a `==> logs/NAME.log <==` header whenever the
//! file changes.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prints the last `lines` lines of every log in `output_dir/logs`, then, with `follow`,
/// keeps printing what is appended (also to logs that appear later) until writing to
/// `out` fails.
pub fn follow(output_dir: &Path, lines: usize, follow: bool, out: &mut impl Write) -> io::Result<()> {
    let logs = output_dir.join(isapi_freeze_format::LOG_DIR);
    let mut offsets: BTreeMap<PathBuf, u64> = BTreeMap::new();
    let mut current: Option<PathBuf> = None;
    for path in log_files(&logs) {
        let text = std::fs::read(&path)?;
        let start = tail_start(&text, lines);
        if start < text.len() {
            header(out, &path, &mut current)?;
            out.write_all(&text[start..])?;
        }
        offsets.insert(path, text.len() as u64);
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        for path in log_files(&logs) {
            let offset = offsets.entry(path.clone()).or_insert(0);
            let mut file = std::fs::File::open(&path)?;
            let len = file.metadata()?.len();
            if len < *offset {
                *offset = 0; // truncated or replaced: start over
            }
            if len == *offset {
                continue;
            }
            file.seek(SeekFrom::Start(*offset))?;
            let mut new = Vec::new();
            file.take(len - *offset).read_to_end(&mut new)?;
            // Only whole lines; a line being written is printed once it ends.
            let Some(end) = new.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            header(out, &path, &mut current)?;
            out.write_all(&new[..=end])?;
            out.flush()?;
            *offset += end as u64 + 1;
        }
    }
}

fn log_files(logs: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(logs)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn header(out: &mut impl Write, path: &Path, current: &mut Option<PathBuf>) -> io::Result<()> {
    if current.as_deref() != Some(path) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        writeln!(out, "==> {}/{name} <==", isapi_freeze_format::LOG_DIR)?;
        *current = Some(path.to_path_buf());
    }
    Ok(())
}

/// Where the last `lines` lines of `text` start.
fn tail_start(text: &[u8], lines: usize) -> usize {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == lines {
                return i + 1;
            }
        }
    }
    if lines == 0 {
        text.len()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_last_lines_of_each_log_under_a_header() {
        let dir = std::env::temp_dir().join(format!("isapi-freeze-trace-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join("logs/_a.log"), "1\n2\n3\n").unwrap();
        std::fs::write(dir.join("logs/b.log"), "only\n").unwrap();
        std::fs::write(dir.join("logs/notes.txt"), "not a log\n").unwrap();
        let mut out = Vec::new();
        follow(&dir, 2, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "==> logs/_a.log <==\n2\n3\n==> logs/b.log <==\nonly\n"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tail_start_counts_lines_from_the_end() {
        assert_eq!(tail_start(b"a\nb\nc\n", 1), 4);
        assert_eq!(tail_start(b"a\nb\nc\n", 3), 0);
        assert_eq!(tail_start(b"a\nb\nc\n", 9), 0);
        assert_eq!(tail_start(b"a\nb\nc\n", 0), 6);
    }
}
