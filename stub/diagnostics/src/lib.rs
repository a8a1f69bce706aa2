//! How the Windows programs report what happens: a line in the output folder's log
//! (`logs/NAME.log`, which `isapi-freeze trace` and `SCRIPT.exe trace` follow), and errors
//! also in the Windows Event Log, where IIS administrators look first. Never fails a
//! request: a log that cannot be written is skipped.

use isapi_freeze_format::log_file_name;

#[cfg(windows)]
mod event_log;
pub mod trace;

/// Appends one timestamped line (`2026-11-21 08:01:02Z [pid 12] message`) to the log of
/// `module_file_name` in `output_dir`, creating the folder. Logging must never take a
/// request down, so failures are ignored.
pub fn append_log(output_dir: &std::path::Path, module_file_name: &str, message: &str) {
    use std::io::Write;
    let path = output_dir.join(log_file_name(module_file_name));
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else {
        return;
    };
    let line = format!(
        "{} [pid {}] {}\n",
        utc_timestamp(std::time::SystemTime::now()),
        std::process::id(),
        message.trim_end()
    );
    // One write call, so that lines from several threads do not interleave.
    let _ = file.write_all(line.as_bytes());
}

/// `YYYY-MM-DD HH:MM:SSZ` for a time after 1970, without a date library.
pub fn utc_timestamp(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The event source name under which errors go to the Windows Event Log (Application).
pub const EVENT_SOURCE: &str = "isapi-freeze";

/// Logs an error: a line in the module's log, and an error event in the Windows Event Log
/// (Application log, source [`EVENT_SOURCE`]), where IIS administrators look first.
pub fn log_error(output_dir: &std::path::Path, module_file_name: &str, message: &str) {
    append_log(output_dir, module_file_name, message);
    #[cfg(windows)]
    event_log::report_error(&format!("{module_file_name} ({}): {message}", output_dir.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let at = |secs| utc_timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(at(1_795_250_461), "2026-11-21 08:41:01Z");
    }

    #[test]
    fn log_lines_are_appended() {
        let dir = std::env::temp_dir().join(format!("isapi-freeze-diagnostics-{}", std::process::id()));
        append_log(&dir, "_x.dll", "first\n");
        append_log(&dir, "_x.dll", "second");
        let text = std::fs::read_to_string(dir.join("logs/_x.log")).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.split_once("] ").unwrap().1).collect();
        assert_eq!(lines, ["first", "second"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
