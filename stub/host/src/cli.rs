//! The command line, parsed with std alone (the host is a test tool that should stay small):
//! `isapi-host [--listen ADDR] [--vpath /VIRTUAL/PATH] [--request-timeout SECS]
//! [--shutdown-grace SECS] [--control-stdin] [--filter FILTER.DLL]... [--app /VPATH=DLL]...
//! [request filtering options] [EXTENSION.DLL]`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The usage text, with request_filtering.rs's options in it.
pub fn usage() -> String {
    USAGE.replace("{REQUEST_FILTERING}", crate::request_filtering::USAGE)
}

const USAGE: &str = "\
isapi-host: a stand-in for IIS that serves HTTP/1.1 and drives ISAPI extension DLLs and filters

Usage: isapi-host [--listen ADDR] [--vpath /VIRTUAL/PATH] [--request-timeout SECS]
                  [--shutdown-grace SECS] [--control-stdin] [--filter FILTER.DLL]... EXTENSION.DLL
       isapi-host [--listen ADDR] [--filter FILTER.DLL]... --app /VPATH=EXTENSION.DLL...
       isapi-host [--listen ADDR] --filter FILTER.DLL...

Loads EXTENSION.DLL as IIS does (LoadLibraryExW, GetExtensionVersion), serves it as a
wildcard script map of an application at VIRTUAL/PATH, and prints
  isapi-host: listening on http://IP:PORT/
once it accepts connections. It runs until Ctrl+C (or the console closing), then stops
cleanly: TerminateExtension, TerminateFilter, `isapi-host: stopped`, exit code 0.

Options:
  --listen ADDR   address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port
  --vpath PATH    the application's virtual path; requests outside it get 404 [default: /]
  --request-timeout SECS
                  answer a request that has not finished after SECS seconds with 503 (if
                  nothing was sent yet), close its connection and log it; a pending session
                  is released, a synchronous HttpExtensionProc keeps its thread until it
                  returns [default: no limit]
  --shutdown-grace SECS
                  at shutdown, how long to wait for requests in flight before calling
                  TerminateExtension anyway (IIS's shutdownTimeLimit); 0 calls it at once
                  [default: 30]
  --control-stdin also stop when standard input ends or reads a line `quit` (for a parent
                  process: closing the pipe stops the host); a line `stats` prints
                    isapi-host: stats handles=N connections=N requests=N
                  (the process's handle count, open connections, control blocks made so far),
                  and a line `unload /VPATH` unloads that --app's extension as IIS does when
                  it removes an application (TerminateExtension, then FreeLibrary) while the
                  others keep serving; its requests then get 503, and it prints
                    isapi-host: unloaded /VPATH
  --app /VPATH=DLL
                  serve one more application: the extension DLL at VPATH, in this same
                  process, as one IIS worker serves the applications of its pool; repeatable.
                  A request goes to the application with the longest VPATH that holds it. An
                  app whose GetExtensionVersion fails answers 500 and the others keep serving.
                  --vpath is the virtual path of EXTENSION.DLL only
  --filter DLL    load an ISAPI filter (GetFilterVersion once, TerminateFilter at shutdown) and
                  raise the notifications it asks for; repeatable. With filters only, requests
                  no filter answers get 404
  -h, --help      print this help

{REQUEST_FILTERING}

Exit codes: 0 stopped normally, 1 bad command line or cannot listen, 2 the DLL does not load,
3 GetExtensionVersion (or a filter's GetFilterVersion) returned FALSE.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub listen: SocketAddr,
    /// Starts with `/` and has no trailing `/` unless it is the root.
    pub vpath: String,
    /// None when only filters are loaded.
    pub dll: Option<PathBuf>,
    /// `--filter` DLLs, in load order.
    pub filters: Vec<PathBuf>,
    /// `--app VPATH=DLL`: more applications, each with its virtual path (normalized).
    pub apps: Vec<(String, PathBuf)>,
    /// `--request-timeout`, if given.
    pub request_timeout: Option<std::time::Duration>,
    /// `--shutdown-grace`: how long shutdown waits for requests in flight.
    pub shutdown_grace: std::time::Duration,
    /// `--control-stdin`: standard input's end (or `quit`) stops the host.
    pub control_stdin: bool,
    /// IIS's request filtering, with what the options lifted (boxed: it is the bulk of
    /// the arguments).
    pub request_filtering: Box<crate::request_filtering::Rules>,
}

/// How long shutdown waits for requests in flight unless `--shutdown-grace` says otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    Help,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut vpath = "/".to_string();
    let mut dll = None;
    let mut filters = Vec::new();
    let mut apps = Vec::new();
    let mut request_timeout = None;
    let mut shutdown_grace = DEFAULT_SHUTDOWN_GRACE;
    let mut control_stdin = false;
    let mut request_filtering = crate::request_filtering::Rules::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or(format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--listen" => {
                let v = value("--listen")?;
                listen = v
                    .parse()
                    .map_err(|_| format!("--listen {v:?} is not IP:PORT (e.g. 127.0.0.1:8080)"))?;
            }
            "--vpath" => vpath = normalize_vpath(&value("--vpath")?)?,
            "--control-stdin" => control_stdin = true,
            "--filter" => filters.push(PathBuf::from(value("--filter")?)),
            "--app" => {
                let v = value("--app")?;
                let (vpath, dll) = v
                    .split_once('=')
                    .filter(|(_, dll)| !dll.is_empty())
                    .ok_or(format!("--app {v:?} is not /VPATH=EXTENSION.DLL"))?;
                apps.push((normalize_vpath(vpath)?, PathBuf::from(dll)));
            }
            "--request-timeout" => {
                request_timeout = Some(seconds("--request-timeout", &value("--request-timeout")?, false)?)
            }
            "--shutdown-grace" => shutdown_grace = seconds("--shutdown-grace", &value("--shutdown-grace")?, true)?,
            _ if request_filtering.option(&flag, || value(&flag))? => {}
            _ if flag.starts_with('-') && flag.len() > 1 => return Err(format!("unknown option {flag}")),
            _ if dll.is_none() => dll = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {text:?}: only one EXTENSION.DLL")),
        }
    }
    if dll.is_none() && filters.is_empty() && apps.is_empty() {
        return Err("missing EXTENSION.DLL (or a --filter FILTER.DLL)".into());
    }
    Ok(Parsed::Run(Args {
        listen,
        vpath,
        dll,
        filters,
        apps,
        request_timeout,
        shutdown_grace,
        control_stdin,
        request_filtering: Box::new(request_filtering),
    }))
}

/// A number of seconds, at most a day; 0 only where `zero` allows it.
fn seconds(flag: &str, v: &str, zero: bool) -> Result<std::time::Duration, String> {
    let least = if zero { "0 <=" } else { "0 <" };
    v.parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && (*s > 0.0 || (zero && *s == 0.0)) && *s <= 86_400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or(format!(
            "{flag} {v:?} is not a number of seconds ({least} SECS <= 86400)"
        ))
}

fn normalize_vpath(v: &str) -> Result<String, String> {
    if !v.starts_with('/') || v.contains(['?', '#', '\\']) || v.split('/').any(|s| s == "." || s == "..") {
        return Err(format!("--vpath {v:?} must be an absolute URL path such as /app"));
    }
    let trimmed = v.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".into() } else { trimmed.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn defaults_and_options() {
        let Parsed::Run(a) = run(&["x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.listen.to_string().as_str(), a.vpath.as_str()),
            ("127.0.0.1:8080", "/")
        );
        let Parsed::Run(a) = run(&["--listen", "127.0.0.1:0", "--vpath=/app/", "x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!((a.listen.port(), a.vpath.as_str()), (0, "/app"));
        assert!(!a.control_stdin, "standard input is ignored unless asked");
        let Parsed::Run(a) = run(&["--control-stdin", "x.dll"]).unwrap() else {
            panic!()
        };
        assert!(a.control_stdin);
        assert_eq!(run(&["--help"]), Ok(Parsed::Help));
        assert!(run(&[]).is_err());
        assert!(run(&["--vpath", "app", "x.dll"]).is_err());
    }

    #[test]
    fn filters_are_repeatable_and_may_stand_alone() {
        let Parsed::Run(a) = run(&["--filter", "f1.dll", "--filter=f2.dll", "x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.filters, vec![PathBuf::from("f1.dll"), PathBuf::from("f2.dll")]);
        assert_eq!(a.dll, Some(PathBuf::from("x.dll")));
        let Parsed::Run(a) = run(&["--filter", "f.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!((a.dll, a.filters.len()), (None, 1));
        assert!(run(&["--filter"]).is_err());
    }

    #[test]
    fn apps_are_repeatable_with_their_virtual_paths() {
        let Parsed::Run(a) = run(&["--app", "/a/=a.dll", "--app=/b=b.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            a.apps,
            vec![
                ("/a".to_string(), PathBuf::from("a.dll")),
                ("/b".to_string(), PathBuf::from("b.dll"))
            ]
        );
        assert_eq!(a.dll, None);
        assert_eq!(
            run(&["--app", "a.dll"]).unwrap_err(),
            "--app \"a.dll\" is not /VPATH=EXTENSION.DLL"
        );
        assert!(run(&["--app", "a=a.dll"]).is_err());
    }

    #[test]
    fn request_timeout_is_positive_seconds() {
        let Parsed::Run(a) = run(&["--request-timeout", "2.5", "x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.request_timeout, Some(std::time::Duration::from_millis(2500)));
        let Parsed::Run(a) = run(&["x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.request_timeout, None);
        for bad in ["0", "-1", "soon", "NaN", "1e9"] {
            let err = run(&["--request-timeout", bad, "x.dll"]).unwrap_err();
            assert_eq!(
                err,
                format!("--request-timeout {bad:?} is not a number of seconds (0 < SECS <= 86400)")
            );
        }
    }

    #[test]
    fn shutdown_grace_is_seconds_and_may_be_zero() {
        let Parsed::Run(a) = run(&["x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.shutdown_grace, std::time::Duration::from_secs(30));
        let Parsed::Run(a) = run(&["--shutdown-grace=0", "x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.shutdown_grace, std::time::Duration::ZERO);
        let Parsed::Run(a) = run(&["--shutdown-grace", "0.5", "x.dll"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.shutdown_grace, std::time::Duration::from_millis(500));
        for bad in ["-1", "later", "inf", "86401"] {
            let err = run(&["--shutdown-grace", bad, "x.dll"]).unwrap_err();
            assert_eq!(
                err,
                format!("--shutdown-grace {bad:?} is not a number of seconds (0 <= SECS <= 86400)")
            );
        }
    }
}
