//! How the Windows programs report what happens: a line in the output folder's log
//! (`logs/NAME.log`, which `isapi-freeze trace` and `SCRIPT.exe trace` follow), and errors
//! also in the Windows Event Log, where IIS administrators look first. Never fails a
//! request: a log that cannot be written is skipped.

use isapi_freeze_format::log_file_name;

#[cfg(windows)]
mod event_log;
#[cfg(windows)]
mod file_lock;
pub mod messages;
pub mod trace;

/// Appends one timestamped line (`2026-11-21 08:01:02Z [pid 12] message`) to the log of
/// `module_file_name` in `output_dir`, creating the folder. Logging must never take a
/// request down, so failures are not returned: the first one is reported to the Event Log
/// (once per process), where errors go in any case.
pub fn append_log(output_dir: &std::path::Path, module_file_name: &str, message: &str) {
    use std::io::Write;
    let path = log_path(output_dir, module_file_name);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let line = format!(
        "{} [pid {}] {}\n",
        utc_timestamp(std::time::SystemTime::now()),
        std::process::id(),
        message.trim_end()
    );
    // One write call, under a lock that other processes' writers take too (file_lock.rs),
    // so that no two lines interleave, whichever thread or worker writes them.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|file| {
            #[cfg(windows)]
            return file_lock::exclusively(&file, || (&file).write_all(line.as_bytes()));
            #[cfg(not(windows))]
            (&file).write_all(line.as_bytes())
        });
    if let Err(e) = written {
        log_unwritable(output_dir, module_file_name, &path, &e);
    }
}

/// The log's path, with the platform's separators (it is shown in messages).
fn log_path(output_dir: &std::path::Path, module_file_name: &str) -> std::path::PathBuf {
    let mut path = output_dir.to_path_buf();
    path.extend(log_file_name(module_file_name).split('/'));
    path
}

fn unwritable_message(path: &std::path::Path, error: &std::io::Error) -> String {
    format!(
        "cannot write the log {}: {error}. Errors go to the Event Log only until it can: give the \
         application pool's identity modify rights on {} (`SCRIPT.exe install` grants them)",
        path.display(),
        path.parent().unwrap_or(path).display()
    )
}

/// Says once per process, in the Event Log, that the log cannot be written and what to do:
/// on IIS the usual cause is a worker identity without write rights on `logs\`.
fn log_unwritable(
    output_dir: &std::path::Path,
    module_file_name: &str,
    path: &std::path::Path,
    error: &std::io::Error,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let message = unwritable_message(path, error);
    #[cfg(windows)]
    event_log::report_error(
        messages::EventKind::Error,
        &format!("{module_file_name} ({}): {message}", output_dir.display()),
    );
    #[cfg(not(windows))]
    let _ = (output_dir, module_file_name, message);
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

/// The event source name under which errors go to the Windows Event Log (Application);
/// `SCRIPT.exe install` registers it, with the loader's [`messages`] table.
pub const EVENT_SOURCE: &str = "isapi-freeze";

/// Logs an error: a line in the module's log, and an error event in the Windows Event Log
/// (Application log, source [`EVENT_SOURCE`]), where IIS administrators look first.
pub fn log_error(output_dir: &std::path::Path, module_file_name: &str, message: &str) {
    append_log(output_dir, module_file_name, message);
    #[cfg(windows)]
    event_log::report_error(
        messages::EventKind::of(message),
        &format!("{module_file_name} ({}): {message}", output_dir.display()),
    );
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
    fn an_unwritable_log_says_where_and_what_to_grant() {
        let path = log_path(std::path::Path::new("dist"), "_app.dll");
        let error = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let sep = std::path::MAIN_SEPARATOR;
        assert_eq!(
            unwritable_message(&path, &error),
            format!(
                "cannot write the log dist{sep}logs{sep}_app.log: permission denied. Errors go to the Event Log \
                 only until it can: give the application pool's identity modify rights on dist{sep}logs \
                 (`SCRIPT.exe install` grants them)"
            )
        );
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
