//! The differential suite's machinery: one script served twice through isapi-host under
//! Wine, by pywin32 312's own loader (PyISAPI_loader.dll beside the script, as pywin32's
//! users deploy it) and by our freeze of it; the same requests sent to both; and what came
//! back compared, key by key, against the differences README lists as deliberate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use isapi_freeze_format::pythons::{self, Python, Status};
use tempfile::TempDir;

use super::freeze::{Freeze, Frozen};
use super::host::Host;
use super::prerequisites::default_python;
use super::{temp_dir, win_path};

/// The pywin32 release compared with (`make sites` installs its wheel per CPython).
pub const PYWIN32: &str = "pywin32 312";

/// The CPythons the suite compares on: `make test`'s PYTHONS (ISAPI_FREEZE_TEST_PYTHONS),
/// else every tested one; the default version first.
pub fn compared_pythons() -> Vec<Python> {
    let chosen: Option<Vec<String>> = std::env::var("ISAPI_FREEZE_TEST_PYTHONS")
        .ok()
        .filter(|list| !list.trim().is_empty())
        .map(|list| list.split_whitespace().map(String::from).collect());
    let mut list = vec![default_python()];
    list.extend(pythons::supported().into_iter().filter(|p| {
        *p != default_python()
            && p.status != Status::Untested
            && chosen.as_ref().is_none_or(|chosen| chosen.contains(&p.version()))
    }));
    list
}

/// `make sites`' pywin32 wheel contents for `python`.
pub fn pywin32_site(python: &Python) -> PathBuf {
    super::site_of(python, "pywin32")
}

/// The text of one of pywin32's own ISAPI samples (isapi/samples/NAME), as its wheel ships
/// it (the same for every CPython).
pub fn pywin32_sample(name: &str) -> String {
    let path = pywin32_site(&default_python()).join("isapi/samples").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A script to serve both ways, with the files both deployments get beside the DLL.
pub struct Script {
    /// The module name: the script is NAME.py, the DLL _NAME.dll.
    pub name: String,
    pub text: String,
    pub files: Vec<(String, Vec<u8>)>,
}

impl Script {
    pub fn new(name: &str, text: impl Into<String>) -> Script {
        Script {
            name: name.to_string(),
            text: text.into(),
            files: Vec::new(),
        }
    }

    /// A file both deployments have beside the DLL (a static page ExecURL serves).
    pub fn file(mut self, path: &str, data: impl Into<Vec<u8>>) -> Script {
        self.files.push((path.to_string(), data.into()));
        self
    }
}

/// The two builds of one script for one CPython.
pub struct Builds {
    pywin32: TempDir,
    pub ours: Frozen,
    name: String,
}

impl Builds {
    /// pywin32's deployment of `script` and our freeze of it (pywin32 on `--path`, as a
    /// user moving from pywin32 has it), for `python`.
    pub fn new(python: &Python, script: &Script) -> Builds {
        let pywin32 = temp_dir();
        deploy_pywin32(python, script, pywin32.path());
        let mut freeze = Freeze::source(&format!("{}.py", script.name), &script.text).path(pywin32_site(python));
        if *python != default_python() {
            freeze = freeze.python(super::runtime_of(python));
        }
        let ours = freeze.ok();
        for (path, data) in &script.files {
            write_file(&ours.dist.join(path), data);
        }
        Builds {
            pywin32,
            ours,
            name: script.name.clone(),
        }
    }

    /// Serves both builds, each in an isapi-host of its own, the same way.
    pub fn serve(&self, serve: &Serve) -> Pair {
        let pywin32_dll = self.pywin32.path().join(format!("_{}.dll", self.name));
        Pair {
            pywin32: Side::start("pywin32", &pywin32_dll, serve),
            ours: Side::start("ours", &self.ours.dll(), serve),
        }
    }
}

fn write_file(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// pywin32's deployment, as its README describes it: PyISAPI_loader.dll copied as
/// `_NAME.dll` beside `NAME.py`, in a folder holding the embeddable CPython (the loader
/// imports python3XY.dll from its own folder), with pywin32's `isapi` package beside the
/// script and its win32 modules found as pip installs them: a `pywin32.pth` in the
/// CPython's folder names win32, win32\lib and pythonwin and imports pywin32_bootstrap
/// (which puts pywintypes3XY.dll on the DLL search path), `import site` in `._pth`
/// reading it.
fn deploy_pywin32(python: &Python, script: &Script, dir: &Path) {
    let site = pywin32_site(python);
    copy_tree(&super::runtime_of(python), dir, &|_| true);
    std::fs::copy(
        site.join("isapi/PyISAPI_loader.dll"),
        dir.join(format!("_{}.dll", script.name)),
    )
    .unwrap();
    // The samples, tests and docs are not part of the package a script imports.
    copy_tree(&site.join("isapi"), &dir.join("isapi"), &|relative| {
        let top = relative.components().next().unwrap().as_os_str();
        !["samples", "test", "doc", "__pycache__"]
            .iter()
            .any(|skip| top == *skip)
            && relative.extension() != Some("dll".as_ref())
    });
    write_file(&dir.join(format!("{}.py", script.name)), script.text.as_bytes());
    write_file(
        &dir.join(format!("{}._pth", python.stem())),
        format!("{}.zip\n.\nimport site\n", python.stem()).as_bytes(),
    );
    let mut pth = String::new();
    for folder in ["", "win32", "win32/lib", "pythonwin"] {
        writeln!(pth, "{}", win_path(&site.join(folder)).trim_end_matches('\\')).unwrap();
    }
    pth.push_str("import pywin32_bootstrap\n");
    write_file(&dir.join("pywin32.pth"), pth.as_bytes());
    for (path, data) in &script.files {
        write_file(&dir.join(path), data);
    }
}

/// Copies the files of `from` under `to`, those whose path relative to `from` `keep` says.
fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) {
    for entry in walkdir::WalkDir::new(from).sort_by_file_name() {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        if relative.as_os_str().is_empty() || !keep(relative) {
            continue;
        }
        if entry.file_type().is_file() {
            let target = to.join(relative);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// How both builds are served.
#[derive(Default)]
pub struct Serve {
    /// Put before every observation's key when one script is served several ways.
    pub label: &'static str,
    /// Also load the DLL as a filter (`--filter`).
    pub filter: bool,
    /// Load it only as a filter, with no extension.
    pub filter_only: bool,
    /// Environment variables of both hosts.
    pub env: Vec<(&'static str, String)>,
}

/// One build served by isapi-host.
pub struct Side {
    pub label: &'static str,
    pub host: Host,
    /// The DLL's folder: the application's physical root, normalised away in answers.
    pub dir: PathBuf,
}

impl Side {
    fn start(label: &'static str, dll: &Path, serve: &Serve) -> Side {
        let dir = dll.parent().unwrap().to_path_buf();
        let dll_arg = win_path(dll);
        let mut args: Vec<&str> = Vec::new();
        if serve.filter || serve.filter_only {
            args.extend(["--filter", &dll_arg]);
        }
        if !serve.filter_only {
            args.push(&dll_arg);
        }
        let mut command: Command = Host::with_args(&args);
        // pywin32's loader imports python3XY.dll from its folder; both run from there.
        command.current_dir(&dir);
        for (name, value) in &serve.env {
            command.env(name, value);
        }
        Side {
            label,
            host: Host::from_command(command),
            dir,
        }
    }
}

/// Both builds of a script, served.
pub struct Pair {
    pub pywin32: Side,
    pub ours: Side,
}

/// A conversation: requests sent one after the other on one connection.
pub struct Ask {
    pub name: String,
    pub requests: Vec<Vec<u8>>,
}

impl Ask {
    /// One request, as raw bytes.
    pub fn raw(name: &str, request: impl Into<Vec<u8>>) -> Ask {
        Ask {
            name: name.to_string(),
            requests: vec![request.into()],
        }
    }

    /// `GET path` on a connection of its own.
    pub fn get(path: &str) -> Ask {
        Ask::get_as(&format!("GET {path}"), path)
    }

    /// `GET path` named `name` (a path asked twice needs two names).
    pub fn get_as(name: &str, path: &str) -> Ask {
        Ask::raw(
            name,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    }

    /// `POST path` with `body` and its Content-Length.
    pub fn post(name: &str, path: &str, body: &[u8]) -> Ask {
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        Ask::raw(name, raw)
    }

    /// `POST path` with `body` sent in chunks of `chunk` bytes (Transfer-Encoding: chunked).
    pub fn post_chunked(name: &str, path: &str, body: &[u8], chunk: usize) -> Ask {
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for part in body.chunks(chunk) {
            raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            raw.extend_from_slice(part);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        Ask::raw(name, raw)
    }

    /// GETs of each path in turn on one keep-alive connection (the last asks to close).
    pub fn keep_alive(name: &str, paths: &[&str]) -> Ask {
        let requests = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let connection = if i + 1 == paths.len() { "close" } else { "keep-alive" };
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n").into_bytes()
            })
            .collect();
        Ask {
            name: name.to_string(),
            requests,
        }
    }
}

/// What one side answered, as `key -> value`: each response's status line, headers and
/// body (a probe's report line by line), the application's folder replaced by `<app>`.
pub type Observations = BTreeMap<String, String>;

/// The first line of a probe's report: the rest are `key = value` lines, compared one by one.
pub const PROBE_REPORT: &str = "#probe";

/// Headers whose value differs by nature between two servers; none is compared.
const NATURE: &[&str] = &["date", "server"];

impl Side {
    /// Sends each conversation and records what came back, keys prefixed with `label`.
    pub fn observe(&self, label: &str, asks: &[Ask]) -> Observations {
        let mut seen = Observations::new();
        for ask in asks {
            let prefix = |n: usize| {
                let mut prefix = match ask.requests.len() {
                    1 => ask.name.clone(),
                    _ => format!("{} #{}", ask.name, n + 1),
                };
                if !label.is_empty() {
                    prefix = format!("{label}: {prefix}");
                }
                prefix
            };
            assert!(
                !seen.contains_key(&format!("{} status", prefix(0))),
                "two conversations named {:?}",
                ask.name
            );
            // A server that is gone (pywin32's loader can crash the process) answers too.
            let Ok(stream) = TcpStream::connect(&self.host.address) else {
                seen.insert(format!("{} status", prefix(0)), "cannot connect".into());
                continue;
            };
            stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut reader = BufReader::new(stream);
            for (n, request) in ask.requests.iter().enumerate() {
                let prefix = prefix(n);
                // A server that closes without answering, or in the middle, answers too.
                if reader.get_mut().write_all(request).is_err() {
                    seen.insert(format!("{prefix} status"), "connection closed".into());
                    break;
                }
                match Answer::read(&mut reader) {
                    Some(answer) => {
                        let complete = answer.complete;
                        self.record(&prefix, &answer, &mut seen);
                        if !complete {
                            break;
                        }
                    }
                    None => {
                        seen.insert(format!("{prefix} status"), "no response".into());
                        break;
                    }
                }
            }
        }
        seen
    }

    fn record(&self, prefix: &str, response: &Answer, seen: &mut Observations) {
        seen.insert(format!("{prefix} status"), response.status_line.clone());
        if !response.complete {
            seen.insert(format!("{prefix} ending"), "the connection closed mid-response".into());
        }
        for (name, value) in &response.headers {
            let name = name.to_ascii_lowercase();
            if NATURE.contains(&name.as_str()) {
                continue;
            }
            // A length that frames the body is said as such: a body that differs shows
            // once, in its own key.
            let value = match name == "content-length" && value.parse() == Ok(response.body.len()) {
                true => "the body's length",
                false => value.as_str(),
            };
            let entry = seen.entry(format!("{prefix} header {name}")).or_default();
            if !entry.is_empty() {
                entry.push_str(", ");
            }
            entry.push_str(value);
        }
        let body = self.normalised(&response.body);
        match body.strip_prefix(&format!("{PROBE_REPORT}\n")) {
            Some(report) => {
                for (n, line) in report.lines().enumerate() {
                    match line.split_once(" = ") {
                        Some((key, value)) => seen.insert(format!("{prefix} {key}"), value.to_string()),
                        None => seen.insert(format!("{prefix} line {}", n + 1), line.to_string()),
                    };
                }
            }
            None => {
                seen.insert(format!("{prefix} body"), body);
            }
        }
    }

    /// A body as text with this side's folder as `<app>` (also in the doubled-backslash
    /// form of a Python repr); a large or binary body by its length and digest.
    fn normalised(&self, body: &[u8]) -> String {
        let Ok(text) = std::str::from_utf8(body) else {
            return digest(body);
        };
        if text.len() > 4096 {
            return digest(body);
        }
        let folder = win_path(&self.dir);
        let mut text = text.replace(&folder.replace('\\', "\\\\"), "<app>");
        text = text.replace(&folder, "<app>");
        text
    }
}

/// A response as received, whole or not.
struct Answer {
    /// The status line after the HTTP version: `200 OK`.
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether the body ended as its head said (Content-Length, the last chunk, or the
    /// connection's end when the head gives no length).
    complete: bool,
}

impl Answer {
    /// Reads one response; None if the connection ended before a status line.
    fn read(reader: &mut BufReader<TcpStream>) -> Option<Answer> {
        let line = read_line(reader)?;
        let status_line = line.split_once(' ').map(|(_, rest)| rest.to_string()).unwrap_or(line);
        let mut answer = Answer {
            status_line,
            headers: Vec::new(),
            body: Vec::new(),
            complete: false,
        };
        loop {
            let Some(line) = read_line(reader) else {
                return Some(answer);
            };
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((&line, ""));
            answer.headers.push((name.to_string(), value.trim().to_string()));
        }
        let header = |name: &str| {
            answer
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let code = answer.status_line.split(' ').next().unwrap_or_default();
        if code == "204" || code == "304" {
            answer.complete = true;
        } else if let Some(length) = header("Content-Length").and_then(|v| v.parse::<u64>().ok()) {
            reader.take(length).read_to_end(&mut answer.body).ok()?;
            answer.complete = answer.body.len() as u64 == length;
        } else if header("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            answer.complete = read_chunks(reader, &mut answer.body);
        } else {
            answer.complete = reader.read_to_end(&mut answer.body).is_ok();
        }
        Some(answer)
    }
}

/// One line without its CR LF; None at the connection's end.
fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(
            String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
    }
}

/// A chunked body into `body`; whether it ended with its last chunk.
fn read_chunks(reader: &mut BufReader<TcpStream>, body: &mut Vec<u8>) -> bool {
    loop {
        let Some(size) = read_line(reader) else {
            return false;
        };
        let Ok(size) = u64::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16) else {
            return false;
        };
        if size == 0 {
            return read_line(reader).is_some();
        }
        let before = body.len() as u64;
        if reader.take(size).read_to_end(body).is_err() || body.len() as u64 - before != size {
            return false;
        }
        if read_line(reader).is_none() {
            return false;
        }
    }
}

fn digest(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    format!("{} bytes, sha256 {hash}", body.len())
}

/// One key whose values differ: pywin32's and ours (None: that side has no such key).
#[derive(Debug)]
pub struct Difference {
    pub key: String,
    pub pywin32: Option<String>,
    pub ours: Option<String>,
}

/// The keys on which two sides' observations differ.
pub fn differences(pywin32: &Observations, ours: &Observations) -> Vec<Difference> {
    let keys: std::collections::BTreeSet<&String> = pywin32.keys().chain(ours.keys()).collect();
    keys.into_iter()
        .filter(|key| pywin32.get(*key) != ours.get(*key))
        .map(|key| Difference {
            key: key.clone(),
            pywin32: pywin32.get(key).cloned(),
            ours: ours.get(key).cloned(),
        })
        .collect()
}

/// A difference README lists as deliberate, and where the suite sees it: the script and
/// the observation keys (`*` matches any text) on which it shows.
pub struct Deliberate {
    /// The id of README's row ("Where we differ from pywin32 on purpose").
    pub id: &'static str,
    pub script: &'static str,
    pub keys: &'static [&'static str],
}

/// Every deliberate difference the suite sees, by README row.
pub const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        id: "error-page",
        script: "advanced",
        // The sample splits bytes with a str: it fails after its headers.
        keys: &["GET /AdvancedPythonSample/vars?HTTP_HOST&URL body"],
    },
    Deliberate {
        id: "error-page",
        script: "redirector_asynch",
        // The sample adds bytes to a str in Dispatch.
        keys: &["GET /proxied/page *"],
    },
    Deliberate {
        id: "error-page",
        script: "ecb_probe",
        keys: &[
            "GET /fail *",
            "GET /fail-late *",
            "GET /return?none *",
            "GET /return?str *",
            "GET /return?float *",
        ],
    },
    Deliberate {
        id: "error-page",
        script: "pool_probe",
        keys: &["GET /raise *", "GET /exit *"],
    },
    Deliberate {
        id: "frozen-source",
        script: "test",
        keys: &["GET /PyISAPITest/test.py *"],
    },
    Deliberate {
        id: "filter-status",
        script: "filter_probe",
        keys: &["*: GET /pass *"],
    },
    Deliberate {
        id: "no-docstring",
        script: "ecb_probe",
        keys: &["GET /version set ExtensionDesc None"],
    },
    Deliberate {
        id: "no-docstring",
        script: "filter_probe",
        keys: &["*: GET /probe/page set FilterDesc None"],
    },
    Deliberate {
        id: "long-variables",
        script: "ecb_probe",
        keys: &[
            "GET /variables GetServerVariable 'ALL_HTTP'",
            "GET /variables GetServerVariable 'ALL_RAW'",
            "GET /variables GetServerVariable 'HTTP_X_LONG'",
        ],
    },
    Deliberate {
        id: "text-or-bytes",
        script: "ecb_probe",
        keys: &["GET /misc ReportUnhealthy bytes"],
    },
    Deliberate {
        id: "text-or-bytes",
        script: "filter_probe",
        keys: &[
            "*: GET /probe/page AddResponseHeaders bytes",
            "*: GET /probe/page GetHeader bytes",
            "*: GET /probe/page SetHeader bytes",
            "*: GET /probe/page set User str",
            "*: GET /probe/page set PhysicalPath str",
        ],
    },
    Deliberate {
        id: "keywords",
        script: "ecb_probe",
        // Accepted, the headers go out; the probe's second call then fails as it should.
        keys: &["GET /headers?keyword *"],
    },
    Deliberate {
        id: "req-io-completion",
        script: "ecb_probe",
        keys: &["* has ReqIOCompletion"],
    },
];

/// Rows of README's table that no probe can show: pywin32's process crashes or its request
/// never ends, or it cannot reach the notification at all.
pub const DELIBERATE_UNSEEN: &[&str] = &["after-done", "system-exit", "notification-data"];

/// Whether `key` matches `pattern`, where `*` stands for any text.
pub fn matches(pattern: &str, key: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = key.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Serves `script` both ways on every compared CPython, once per `serves`, sends `asks` to
/// both and checks that every difference is one DELIBERATE lists for `script` (and that
/// each of those still shows). ISAPI_FREEZE_SHOW_OBSERVATIONS=1 prints all both saw.
pub fn compare(script: &Script, serves: &[Serve], asks: &[Ask]) {
    for python in compared_pythons() {
        let builds = Builds::new(&python, script);
        let mut pywin32 = Observations::new();
        let mut ours = Observations::new();
        let mut hosts = String::new();
        for serve in serves {
            let pair = builds.serve(serve);
            pywin32.extend(pair.pywin32.observe(serve.label, asks));
            ours.extend(pair.ours.observe(serve.label, asks));
            for side in [pair.pywin32, pair.ours] {
                let finished = side.host.finish();
                write!(
                    hosts,
                    "{}'s isapi-host {}:\n{}\n{}\n",
                    side.label, serve.label, finished.stdout, finished.stderr
                )
                .unwrap();
            }
        }
        if std::env::var_os("ISAPI_FREEZE_SHOW_OBSERVATIONS").is_some() {
            eprintln!("PYWIN32 {pywin32:#?}\nOURS {ours:#?}");
        }
        let report = judge(&script.name, &differences(&pywin32, &ours));
        assert!(
            report.is_empty(),
            "{} against {PYWIN32} on CPython {}:\n{report}\n{hosts}our log:\n{}",
            script.name,
            python.version(),
            builds.ours.log()
        );
    }
}

/// What is wrong with `found` for `script`: each difference DELIBERATE does not list, and
/// each listed one that did not show. Empty when all is as README says.
pub fn judge(script: &str, found: &[Difference]) -> String {
    let listed: Vec<&Deliberate> = DELIBERATE.iter().filter(|d| d.script == script).collect();
    let mut report = String::new();
    let mut shown = vec![false; listed.len()];
    for difference in found {
        let by = listed
            .iter()
            .position(|d| d.keys.iter().any(|pattern| matches(pattern, &difference.key)));
        match by {
            Some(i) => shown[i] = true,
            None => writeln!(
                report,
                "  not listed: {}\n    pywin32: {}\n    ours:    {}",
                difference.key,
                difference.pywin32.as_deref().unwrap_or("(none)"),
                difference.ours.as_deref().unwrap_or("(none)")
            )
            .unwrap(),
        }
    }
    for (deliberate, shown) in listed.iter().zip(shown) {
        if !shown {
            writeln!(
                report,
                "  listed but not seen: {} ({:?}): README's row is stale, or the probe changed",
                deliberate.id, deliberate.keys
            )
            .unwrap();
        }
    }
    report
}

/// A small HTTP server on loopback for the redirector samples to proxy: every request gets
/// 200 with a body that names its method and path. Runs until the test process ends.
pub fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer_upstream(stream));
        }
    });
    address
}

fn answer_upstream(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The head's other lines: urllib sends no body with its GETs.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let target = line.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let body = format!("upstream answered {target}\n");
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: yes\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_with_stars() {
        assert!(matches("GET /raise status", "GET /raise status"));
        assert!(matches("GET /raise *", "GET /raise header content-type"));
        assert!(matches(
            "* after DoneWithSession *",
            "GET /done-report after DoneWithSession WriteClient"
        ));
        assert!(!matches("GET /raise *", "GET /raised status"));
        assert!(!matches("GET /raise status", "GET /raise status x"));
    }
}
