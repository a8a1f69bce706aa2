//! Compiling Python source to bytecode, behind the `BuildPython` trait so that the pure
//! layers are tested without an interpreter. The real compiler starts the build Python once
//! per run with `compile_worker.py`, which answers each batch in a small framed protocol on
//! stdout (one start-up, not one per batch: the import scan asks a batch per level of the
//! import graph, and a `python3` found through a version manager's shim can take a tenth
//! of a second to start).

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::Digest;
use thiserror::Error;

use crate::stamps::{Stamp, Stamps};

const WORKER: &str = include_str!("compile_worker.py");

/// One source file to compile: where it comes from, and the file name its code objects
/// carry (archive-relative, so no build path ends up in the output).
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The file to read, or (with `text`) the name to use in error messages.
    pub path: PathBuf,
    /// The source itself, for files embedded in isapi-freeze rather than read from disk.
    pub text: Option<String>,
    /// A member of a zip file to read instead (e.g. a .pyc of the embeddable stdlib).
    pub zip: Option<(PathBuf, String)>,
    pub filename: String,
    /// Also report which factory names the module binds at top level.
    pub check_factories: bool,
}

/// A compiled module: a complete `.pyc` (16-byte header and marshalled code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub pyc: Vec<u8>,
    /// With `check_factories`: the factory names bound at top level, or None when the module
    /// does a star import and so cannot be judged.
    pub factories: Option<Vec<String>>,
}

/// The bytecode version a Python produces.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BytecodeVersion {
    /// `importlib.util.MAGIC_NUMBER`, hex.
    pub magic: String,
    /// `sys.version_info[:3]`.
    pub version: Vec<u32>,
}

/// Whether the worker's exception type is one of Python's OSError family.
fn is_os_error(kind: &str) -> bool {
    matches!(
        kind,
        "OSError" | "PermissionError" | "FileNotFoundError" | "IsADirectoryError" | "NotADirectoryError"
    )
}

#[derive(Debug, Error)]
pub enum CompileError {
    #[error("{path}:{lineno}:{offset}: {kind}: {msg}", path = .path.display())]
    Syntax {
        path: PathBuf,
        kind: String,
        msg: String,
        lineno: u32,
        offset: u32,
    },
    #[error("{} {path}: {kind}: {msg}{}", if is_os_error(kind) { "cannot read" } else { "cannot compile" },
        if is_os_error(kind) { "; make it readable by the user running isapi-freeze" } else { "" }, path = .path.display())]
    Unreadable { path: PathBuf, kind: String, msg: String },
    #[error("cannot run the build Python {python}: {source}", python = .python.display())]
    Spawn { python: PathBuf, source: std::io::Error },
    #[error("the build Python {python} failed: {detail}", python = .python.display())]
    Worker { python: PathBuf, detail: String },
}

/// One import statement (or literal `__import__`/`import_module` call) of a module.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImportRecord {
    /// The module named (empty for `from . import x`).
    pub name: String,
    /// 0 for absolute imports, else how many leading dots.
    pub level: u32,
    /// The names after `from ... import`.
    pub fromlist: Vec<String>,
    /// A call with a literal name rather than a statement.
    pub dynamic: bool,
    /// Inside a `try` that catches ImportError, or in a branch the target (Windows, this
    /// version) never takes: the module may be missing without the app failing.
    #[serde(default)]
    pub guarded: bool,
    /// Inside a function: it runs only when the function is called.
    #[serde(default)]
    pub deferred: bool,
    /// In an `except ImportError` handler: the (name, level) imports of its `try`, which
    /// this one replaces; it runs only if one of those fails.
    #[serde(default)]
    pub fallback_of: Vec<(String, u32)>,
}

enum Outcome {
    Compiled(Compiled),
    Imports(Vec<ImportRecord>),
}

/// What isapi-freeze needs a Python on the build machine for: compiling bytecode for the
/// target, and reading which modules a module imports.
pub trait BuildPython {
    /// The interpreter (or whatever does the work), for error messages.
    fn interpreter(&self) -> &Path;
    /// The version of bytecode this compiler produces.
    fn version(&mut self) -> Result<BytecodeVersion, CompileError>;
    /// Compiles every file, in order; the first file that fails ends the batch with its error.
    fn compile(&mut self, files: &[SourceFile]) -> Result<Vec<Compiled>, CompileError>;
    /// The imports of every file, in order; a file that cannot be parsed ends the batch.
    fn scan(&mut self, files: &[SourceFile]) -> Result<Vec<Vec<ImportRecord>>, CompileError>;
}

/// Compiles with a real Python interpreter on the build machine (or the target's own
/// python.exe under Wine).
pub struct PythonCompiler {
    python: PathBuf,
    wine: Option<crate::wine::Wine>,
    version: Option<BytecodeVersion>,
    /// Started as needed: one, and a second for big batches on a machine with two cores.
    workers: Vec<Worker>,
}

/// A batch at least this big is split between two workers.
const PARALLEL_BATCH: usize = 32;

/// The running worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Reads what it writes to stderr until it ends (so that it never blocks on a full
    /// pipe), and returns the text.
    stderr: JoinHandle<String>,
}

impl Worker {
    fn start(python: &Path, wine: Option<&crate::wine::Wine>) -> std::io::Result<Worker> {
        let mut command = match wine {
            Some(wine) => wine.command(python),
            None => Command::new(python),
        };
        let mut child = command
            .args(["-I", "-S", "-B", "-c", WORKER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Ok(Worker {
            stdin: child.stdin.take().expect("stdin is piped"),
            stdout: BufReader::new(child.stdout.take().expect("stdout is piped")),
            child,
            stderr,
        })
    }

    /// Sends one request line and reads the answer's frames up to the end frame (`Z`),
    /// which is left out. None if the worker ended before answering.
    fn exchange(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        self.stdin.write_all(request).ok()?;
        self.stdin.write_all(b"\n").ok()?;
        self.stdin.flush().ok()?;
        let mut frames = Vec::new();
        loop {
            let mut head = [0u8; 5];
            self.stdout.read_exact(&mut head).ok()?;
            if head[0] == b'Z' {
                return Some(frames);
            }
            if !b"VCIEF".contains(&head[0]) {
                // Not the worker speaking (e.g. --build-python names some other program).
                return None;
            }
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
            frames.extend_from_slice(&head);
            let start = frames.len();
            frames.resize(start + len, 0);
            self.stdout.read_exact(&mut frames[start..]).ok()?;
        }
    }

    /// Closes its stdin, which ends the worker's loop, and waits for it: its exit status
    /// and what it wrote to stderr.
    fn end(mut self) -> (String, String) {
        drop(self.stdin);
        let status = match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        };
        (status, self.stderr.join().unwrap_or_default())
    }

    /// Why the worker ended, for an error message.
    fn failure(self) -> String {
        let (status, stderr) = self.end();
        format!("{status}: {}", stderr.trim())
    }
}

impl Drop for PythonCompiler {
    fn drop(&mut self) {
        for worker in self.workers.drain(..) {
            worker.end();
        }
    }
}

impl PythonCompiler {
    pub fn new(python: &Path) -> PythonCompiler {
        PythonCompiler {
            python: python.to_path_buf(),
            wine: None,
            version: None,
            workers: Vec::new(),
        }
    }

    /// The Windows `python.exe` at `python`, run under `wine`.
    pub fn under_wine(python: &Path, wine: crate::wine::Wine) -> PythonCompiler {
        PythonCompiler {
            python: python.to_path_buf(),
            wine: Some(wine),
            version: None,
            workers: Vec::new(),
        }
    }

    fn run(&mut self, files: &[SourceFile], op: &str) -> Result<Vec<Outcome>, CompileError> {
        let worker_error = |detail: String| CompileError::Worker {
            python: self.python.clone(),
            detail,
        };
        let parallel = files.len() >= PARALLEL_BATCH && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let chunks: Vec<&[SourceFile]> = if parallel {
            let (first, second) = files.split_at(files.len().div_ceil(2));
            vec![first, second]
        } else {
            vec![files]
        };
        while self.workers.len() < chunks.len() {
            self.workers
                .push(
                    Worker::start(&self.python, self.wine.as_ref()).map_err(|source| CompileError::Spawn {
                        python: self.python.clone(),
                        source,
                    })?,
                );
        }
        let requests: Vec<String> = chunks
            .iter()
            .map(|chunk| {
                serde_json::json!({
                    "files": chunk.iter().map(|f| serde_json::json!({
                        "path": f.path, "text": f.text, "zip": f.zip, "filename": f.filename, "op": op,
                        "check_factories": f.check_factories,
                    })).collect::<Vec<_>>(),
                })
                .to_string()
            })
            .collect();
        let answers: Vec<Option<Vec<u8>>> = std::thread::scope(|scope| {
            let running: Vec<_> = self
                .workers
                .iter_mut()
                .zip(&requests)
                .map(|(worker, request)| scope.spawn(move || worker.exchange(request.as_bytes())))
                .collect();
            running.into_iter().map(|r| r.join().unwrap_or(None)).collect()
        });
        if let Some(failed) = answers.iter().position(Option::is_none) {
            let worker = self.workers.remove(failed);
            return Err(worker_error(worker.failure()));
        }
        // One stream in file order: the first answer whole, then the others without their
        // version frame.
        let mut answers = answers.into_iter().flatten();
        let mut stdout = answers.next().expect("one answer per chunk");
        for answer in answers {
            let mut frames = Frames { bytes: &answer };
            frames.next().ok_or_else(|| worker_error("no version frame".into()))?;
            stdout.extend_from_slice(frames.bytes);
        }

        let mut frames = Frames { bytes: &stdout };
        let (tag, payload) = frames.next().ok_or_else(|| worker_error("no version frame".into()))?;
        if tag != b'V' {
            return Err(worker_error("the first frame is not the version".into()));
        }
        self.version = Some(serde_json::from_slice(payload).map_err(|e| worker_error(e.to_string()))?);

        let mut out = Vec::with_capacity(files.len());
        let magic = self.magic_bytes().map_err(worker_error)?;
        for file in files {
            let mut factories = None;
            let (mut tag, mut payload) = frames.next().ok_or_else(|| worker_error("missing result".into()))?;
            if tag == b'F' {
                factories =
                    serde_json::from_slice::<Option<Vec<String>>>(payload).map_err(|e| worker_error(e.to_string()))?;
                (tag, payload) = frames.next().ok_or_else(|| worker_error("missing code".into()))?;
            }
            match tag {
                b'C' => out.push(Outcome::Compiled(Compiled {
                    pyc: pyc_bytes(magic, payload),
                    factories,
                })),
                b'I' => out.push(Outcome::Imports(
                    serde_json::from_slice::<Vec<ImportRecord>>(payload).map_err(|e| worker_error(e.to_string()))?,
                )),
                b'E' => {
                    let e: WorkerError = serde_json::from_slice(payload).map_err(|e| worker_error(e.to_string()))?;
                    return Err(match e.lineno {
                        Some(lineno) => CompileError::Syntax {
                            path: file.path.clone(),
                            kind: e.kind,
                            msg: e.msg,
                            lineno,
                            offset: e.offset.unwrap_or(0),
                        },
                        None => CompileError::Unreadable {
                            path: file.path.clone(),
                            kind: e.kind,
                            msg: e.msg,
                        },
                    });
                }
                other => return Err(worker_error(format!("unknown frame tag {other}"))),
            }
        }
        Ok(out)
    }

    fn magic_bytes(&self) -> Result<[u8; 4], String> {
        let hex = &self.version.as_ref().expect("version read first").magic;
        parse_magic(hex).ok_or_else(|| format!("bad magic number {hex}"))
    }
}

impl BuildPython for PythonCompiler {
    fn interpreter(&self) -> &Path {
        &self.python
    }

    fn version(&mut self) -> Result<BytecodeVersion, CompileError> {
        if self.version.is_none() {
            self.run(&[], "compile")?;
        }
        Ok(self.version.clone().expect("run sets the version"))
    }

    fn compile(&mut self, files: &[SourceFile]) -> Result<Vec<Compiled>, CompileError> {
        Ok(self
            .run(files, "compile")?
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Compiled(c) => Some(c),
                Outcome::Imports(_) => None,
            })
            .collect())
    }

    fn scan(&mut self, files: &[SourceFile]) -> Result<Vec<Vec<ImportRecord>>, CompileError> {
        Ok(self
            .run(files, "scan")?
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Imports(i) => Some(i),
                Outcome::Compiled(_) => None,
            })
            .collect())
    }
}

#[derive(Deserialize)]
struct WorkerError {
    kind: String,
    msg: String,
    lineno: Option<u32>,
    offset: Option<u32>,
}

struct Frames<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.bytes.split_first()?;
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let payload = rest.get(4..4 + len)?;
        self.bytes = &rest[4 + len..];
        Some((tag, payload))
    }
}

/// Reads the bytes a `SourceFile` names, opening each zip once.
#[derive(Default)]
pub struct SourceReader {
    zips: std::collections::BTreeMap<PathBuf, zip::ZipArchive<fs_err::File>>,
}

impl SourceReader {
    pub fn read_zip_member(&mut self, zip_path: &Path, member: &str) -> std::io::Result<Vec<u8>> {
        if !self.zips.contains_key(zip_path) {
            let archive = zip::ZipArchive::new(fs_err::File::open(zip_path)?)
                .map_err(|e| std::io::Error::other(format!("{} is not a zip file: {e}", zip_path.display())))?;
            self.zips.insert(zip_path.to_path_buf(), archive);
        }
        let archive = self.zips.get_mut(zip_path).expect("inserted above");
        let mut entry = archive
            .by_name(member)
            .map_err(|e| std::io::Error::other(format!("reading {member} from {}: {e}", zip_path.display())))?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        Ok(data)
    }

    pub fn read(&mut self, file: &SourceFile) -> std::io::Result<Vec<u8>> {
        match (&file.text, &file.zip) {
            (Some(text), _) => Ok(text.as_bytes().to_vec()),
            (None, Some((zip_path, member))) => self.read_zip_member(zip_path, member),
            (None, None) => Ok(fs_err::read(&file.path)?),
        }
    }
}

/// What each source's content hashed to, by the stamp its file (or its zip) had then, kept
/// per output folder: an unchanged rebuild stats each source instead of reading and hashing
/// it (Django's closure is ~600 modules, ~0.1 s of reading and hashing).
struct SourceDigests {
    record: Option<PathBuf>,
    stamps: Stamps,
}

impl SourceDigests {
    fn load(record: Option<PathBuf>) -> SourceDigests {
        SourceDigests {
            stamps: Stamps::load_record(record.as_deref()),
            record,
        }
    }

    fn save(&self) {
        self.stamps.save_record(self.record.as_deref());
    }

    /// The lower-case hex SHA-256 of `file`'s bytes. The stamp is taken before the bytes are
    /// read, so a file edited meanwhile is read again next time, and a file changed within
    /// the last second is not remembered (see `Stamp::settled`).
    fn digest(&mut self, reader: &mut SourceReader, file: &SourceFile) -> std::io::Result<String> {
        let (path, stamp) = match (&file.text, &file.zip) {
            (Some(text), _) => return Ok(isapi_freeze_format::to_hex(&sha2::Sha256::digest(text.as_bytes()))),
            (None, Some((zip, member))) => (std::path::absolute(zip)?.join(member), Stamp::of(zip)),
            (None, None) => (std::path::absolute(&file.path)?, Stamp::of(&file.path)),
        };
        if let Some(sha) = self.stamps.hash_of(&path, stamp) {
            return Ok(sha.to_string());
        }
        let sha = isapi_freeze_format::to_hex(&sha2::Sha256::digest(reader.read(file)?));
        self.stamps.remember(&path, stamp.filter(Stamp::settled), &sha);
        Ok(sha)
    }
}

/// Remembers compiled bytecode and scanned imports by the content they came from (and the
/// bytecode version), in a folder shared by every freeze, so that an unchanged rebuild
/// hardly asks the build Python anything. Errors are never cached.
pub struct Cached<P> {
    inner: P,
    dir: Option<PathBuf>,
    reader: SourceReader,
    digests: SourceDigests,
}

impl<P: BuildPython> Cached<P> {
    /// `dir` None turns the cache off; `record` is where the sources' digests are kept
    /// between runs (`config::output_record` of the output folder), None for nowhere.
    pub fn new(inner: P, dir: Option<PathBuf>, record: Option<PathBuf>) -> Self {
        let dir = dir.filter(|d| std::fs::create_dir_all(d).is_ok());
        Cached {
            inner,
            digests: SourceDigests::load(record.filter(|_| dir.is_some())),
            dir,
            reader: SourceReader::default(),
        }
    }

    /// The tool's cache folder (`config::cache_dir`); an empty `$ISAPI_FREEZE_CACHE` turns
    /// the bytecode cache off.
    pub fn default_dir() -> Option<PathBuf> {
        if std::env::var_os("ISAPI_FREEZE_CACHE").is_some_and(|d| d.is_empty()) {
            return None;
        }
        crate::config::cache_dir()
    }

    fn key(&mut self, op: &str, file: &SourceFile) -> Result<Option<String>, CompileError> {
        if self.dir.is_none() {
            return Ok(None);
        }
        let digest = self
            .digests
            .digest(&mut self.reader, file)
            .map_err(|e| CompileError::Unreadable {
                path: file.path.clone(),
                kind: "OSError".into(),
                msg: e.to_string(),
            })?;
        let magic = self.inner.version()?.magic;
        let mut hasher = sha2::Sha256::new();
        // The worker's own text (its digest, hashed once per run) is part of the key: a
        // changed scanner or compiler must not be answered from an older one's results.
        static WORKER_DIGEST: std::sync::LazyLock<[u8; 32]> =
            std::sync::LazyLock::new(|| sha2::Sha256::digest(WORKER.as_bytes()).into());
        for part in [
            &WORKER_DIGEST[..],
            op.as_bytes(),
            magic.as_bytes(),
            file.filename.as_bytes(),
            &[file.check_factories as u8],
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.update(digest.as_bytes());
        Ok(Some(isapi_freeze_format::to_hex(&hasher.finalize())))
    }

    fn path(&self, key: &str, ext: &str) -> PathBuf {
        self.dir
            .as_ref()
            .expect("keys exist only with a cache")
            .join(&key[..2])
            .join(format!("{key}.{ext}"))
    }

    fn store(&self, key: &str, ext: &str, data: &[u8]) {
        let path = self.path(key, ext);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // Write then rename, so that a concurrent freeze never reads half an entry.
        let tmp = path.with_extension(format!("{ext}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, data).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    /// Runs `run` on the files whose results are not cached, and merges in order.
    fn cached<T: Clone>(
        &mut self,
        op: &str,
        files: &[SourceFile],
        load: impl Fn(&[u8]) -> Option<T>,
        save: impl Fn(&T) -> Vec<u8>,
        run: impl FnOnce(&mut P, &[SourceFile]) -> Result<Vec<T>, CompileError>,
    ) -> Result<Vec<T>, CompileError> {
        let mut results: Vec<Option<T>> = Vec::with_capacity(files.len());
        let mut keys = Vec::with_capacity(files.len());
        for file in files {
            let key = self.key(op, file)?;
            let hit = key
                .as_ref()
                .and_then(|k| std::fs::read(self.path(k, op)).ok())
                .and_then(|b| load(&b));
            results.push(hit);
            keys.push(key);
        }
        let misses: Vec<SourceFile> = files
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_none())
            .map(|(f, _)| f.clone())
            .collect();
        if !misses.is_empty() {
            let mut fresh = run(&mut self.inner, &misses)?.into_iter();
            for (result, key) in results.iter_mut().zip(&keys) {
                if result.is_none() {
                    let value = fresh.next().expect("one result per file");
                    if let Some(key) = key {
                        self.store(key, op, &save(&value));
                    }
                    *result = Some(value);
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every file has a result"))
            .collect())
    }
}

impl<P> Drop for Cached<P> {
    fn drop(&mut self) {
        self.digests.save();
    }
}

impl<P: BuildPython> BuildPython for Cached<P> {
    fn interpreter(&self) -> &Path {
        self.inner.interpreter()
    }

    fn version(&mut self) -> Result<BytecodeVersion, CompileError> {
        self.inner.version()
    }

    fn compile(&mut self, files: &[SourceFile]) -> Result<Vec<Compiled>, CompileError> {
        self.cached(
            "compile",
            files,
            |bytes| {
                // factories JSON, a NUL, then the .pyc.
                let split = bytes.iter().position(|&b| b == 0)?;
                let factories = serde_json::from_slice(&bytes[..split]).ok()?;
                Some(Compiled {
                    pyc: bytes[split + 1..].to_vec(),
                    factories,
                })
            },
            |compiled| {
                let mut out = serde_json::to_vec(&compiled.factories).expect("JSON of names");
                out.push(0);
                out.extend_from_slice(&compiled.pyc);
                out
            },
            |inner, misses| inner.compile(misses),
        )
    }

    fn scan(&mut self, files: &[SourceFile]) -> Result<Vec<Vec<ImportRecord>>, CompileError> {
        self.cached(
            "scan",
            files,
            |bytes| serde_json::from_slice(bytes).ok(),
            |imports: &Vec<ImportRecord>| serde_json::to_vec(imports).expect("JSON of imports"),
            |inner, misses| inner.scan(misses),
        )
    }
}

/// Parses a 4-byte magic number written as 8 hex digits.
pub fn parse_magic(hex: &str) -> Option<[u8; 4]> {
    if hex.len() != 8 {
        return None;
    }
    let mut out = [0u8; 4];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A `.pyc`: magic, flags 0 (timestamp-based) with timestamp and size 0, so the bytes do
/// not depend on when or where the source was; then the marshalled code.
pub fn pyc_bytes(magic: [u8; 4], marshalled: &[u8]) -> Vec<u8> {
    let mut pyc = Vec::with_capacity(16 + marshalled.len());
    pyc.extend_from_slice(&magic);
    pyc.extend_from_slice(&[0u8; 12]);
    pyc.extend_from_slice(marshalled);
    pyc
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn pyc_header_is_fixed() {
        let pyc = pyc_bytes([0xa7, 0x0d, 0x0d, 0x0a], b"code");
        assert_eq!(&pyc[..4], &[0xa7, 0x0d, 0x0d, 0x0a]);
        assert_eq!(&pyc[4..16], &[0u8; 12]);
        assert_eq!(&pyc[16..], b"code");
    }

    #[test]
    fn frames_split_and_stop_on_truncation() {
        let bytes = [b'V', 2, 0, 0, 0, b'h', b'i', b'C', 9, 0, 0, 0, 1];
        let mut frames = Frames { bytes: &bytes };
        assert_eq!(frames.next(), Some((b'V', &b"hi"[..])));
        assert_eq!(frames.next(), None);
    }

    #[test]
    fn a_sources_digest_is_trusted_while_its_stamp_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = (dir.path().join("m.py"), dir.path().join("sources.json"));
        std::fs::write(&file, "x = 1\n").unwrap();
        let source = SourceFile {
            path: file.clone(),
            text: None,
            zip: None,
            filename: "m.py".into(),
            check_factories: false,
        };
        let sha = |text: &str| isapi_freeze_format::to_hex(&sha2::Sha256::digest(text.as_bytes()));
        let digest = |source: &SourceFile| {
            let mut digests = SourceDigests::load(Some(record.clone()));
            let digest = digests.digest(&mut SourceReader::default(), source).unwrap();
            digests.save();
            digest
        };
        assert_eq!(digest(&source), sha("x = 1\n"));
        // Just written, so not remembered: a second edit in the same clock tick would leave
        // the stamp unchanged.
        assert_eq!(
            Stamps::load_record(Some(&record)).hash_of(&file, Stamp::of(&file)),
            None
        );

        // A recorded digest for the file's present stamp is answered without reading the file.
        let mut planted = Stamps::default();
        planted.remember(&file, Stamp::of(&file), &"ab".repeat(32));
        planted.save_record(Some(&record));
        assert_eq!(digest(&source), "ab".repeat(32));

        // An edit of the same size, a clock tick later, changes the stamp, and the file is
        // read again.
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(&file, "x = 2\n").unwrap();
        assert_eq!(digest(&source), sha("x = 2\n"));

        // Text given inline is hashed as it is.
        let inline = SourceFile {
            text: Some("y = 3\n".into()),
            ..source
        };
        assert_eq!(digest(&inline), sha("y = 3\n"));
    }

    #[test]
    fn magic_parses_from_hex() {
        assert_eq!(parse_magic("a70d0d0a"), Some([0xa7, 0x0d, 0x0d, 0x0a]));
        assert_eq!(parse_magic("a70d0d"), None);
        assert_eq!(parse_magic("zz0d0d0a"), None);
    }

    fn host_python() -> Option<PathBuf> {
        let python = PathBuf::from("python3");
        Command::new(&python)
            .arg("-c")
            .arg("0")
            .status()
            .ok()?
            .success()
            .then_some(python)
    }

    #[test]
    fn the_host_python_compiles_and_reports_syntax_errors() {
        let Some(python) = host_python() else {
            panic!("these tests need python3 on PATH");
        };
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.py");
        std::fs::write(&good, "from x import *\n__ExtensionFactory__ = 1\n").unwrap();
        let plain = dir.path().join("plain.py");
        std::fs::write(&plain, "def __FilterFactory__():\n    pass\n").unwrap();
        let bad = dir.path().join("bad.py");
        std::fs::write(&bad, "x = 1\ndef f(:\n").unwrap();
        let mut compiler = PythonCompiler::new(&python);
        let version = compiler.version().unwrap();
        assert_eq!(version.version[0], 3);
        let file = |path: &Path| SourceFile {
            path: path.into(),
            text: None,
            zip: None,
            filename: "m.py".into(),
            check_factories: true,
        };
        let out = compiler.compile(&[file(&good), file(&plain)]).unwrap();
        assert_eq!(&out[0].pyc[..4], &parse_magic(&version.magic).unwrap());
        assert_eq!(out[0].factories, None, "a star import cannot be judged");
        assert_eq!(out[1].factories, Some(vec!["__FilterFactory__".to_string()]));
        let err = compiler.compile(&[file(&bad)]).unwrap_err();
        assert!(matches!(err, CompileError::Syntax { lineno: 2, .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("{}:2:", bad.display())), "{err}");
    }

    #[test]
    fn imports_the_target_never_runs_or_that_may_fail_are_marked_guarded() {
        let Some(python) = host_python() else {
            panic!("these tests need python3 on PATH");
        };
        let source = "\
import plain
try:
    import optional_one
except ImportError:
    optional_one = None
try:
    from fast import thing
except (ValueError, ModuleNotFoundError):
    pass
try:
    import caught_wrongly
except KeyError:
    pass
if sys.version_info[0] == 2:
    import urlparse
else:
    import urllib.parse
if sys.version_info >= (3, 99):
    import future_only
if sys.platform != 'win32':
    import fcntl
if sys.platform.startswith('win'):
    import msvcrt
else:
    import termios
if os.name == 'posix' and something():
    import pwd
WIN = sys.platform == 'win32'
if not WIN:
    import grp
if PY2:
    import Cookie
if PY399:
    import annotationlib
def f():
    try:
        import readline
    except Exception:
        pass
def g():
    import optional_one.sub
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_settings.prod')
py = sys.version_info
py3k = py.major > 2
if py3k:
    import http.client as httplib
else:
    import httplib
try:
    from _thread import get_ident
    from . import _speedups
except ImportError:
    from _dummy_thread import get_ident
def password(p):
    return hashlib.pbkdf2_hmac('sha256', p, b'salt', 1)
";
        let mut compiler = PythonCompiler::new(&python);
        let file = SourceFile {
            path: "m.py".into(),
            text: Some(source.into()),
            zip: None,
            filename: "m.py".into(),
            check_factories: false,
        };
        let records = compiler.scan(&[file]).unwrap().remove(0);
        // An import in an `except ImportError` handler replaces those of its `try`.
        let fallbacks: Vec<(&str, &[(String, u32)])> = records
            .iter()
            .filter(|r| !r.fallback_of.is_empty())
            .map(|r| (r.name.as_str(), r.fallback_of.as_slice()))
            .collect();
        assert_eq!(
            fallbacks,
            [("_dummy_thread", &[("".to_string(), 1), ("_thread".to_string(), 0)][..])]
        );
        let mut seen: Vec<(String, bool)> = records.into_iter().map(|r| (r.name, r.guarded)).collect();
        seen.sort();
        let expect = |name: &str, guarded: bool| (name.to_string(), guarded);
        assert_eq!(
            seen,
            [
                expect("", true),
                expect("Cookie", true),
                expect("_dummy_thread", false),
                // hashlib has pbkdf2_hmac only from _hashlib: it must ship.
                expect("_hashlib", true),
                expect("_thread", true),
                expect("annotationlib", true),
                expect("caught_wrongly", false),
                expect("fast", true),
                expect("fcntl", true),
                expect("future_only", true),
                expect("grp", true),
                expect("http.client", false),
                expect("httplib", true),
                expect("msvcrt", false),
                expect("optional_one", true),
                expect("optional_one.sub", true),
                expect("plain", false),
                expect("pwd", true),
                expect("readline", true),
                expect("site_settings.prod", false),
                expect("termios", true),
                expect("urllib.parse", false),
                expect("urlparse", true),
            ]
        );
    }

    #[test]
    fn bytecode_imports_in_functions_are_deferred_and_in_try_blocks_guarded() {
        let Some(python) = host_python() else {
            panic!("these tests need python3 on PATH");
        };
        // The embeddable standard library is bytecode only, in a zip.
        let tmp = tempfile::tempdir().unwrap();
        let zip_path = tmp.path().join("stdlib.zip");
        let source = "import plain\ntry:\n    import _optional\nexcept ImportError:\n    pass\n\
                      def f():\n    import _lazy\n";
        let made = Command::new(&python)
            .arg("-c")
            .arg(
                "import importlib.util, marshal, sys, zipfile\n\
                 code = compile(sys.argv[2], 'm.py', 'exec')\n\
                 data = importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)\n\
                 zipfile.ZipFile(sys.argv[1], 'w').writestr('m.pyc', data)\n",
            )
            .arg(&zip_path)
            .arg(source)
            .status()
            .unwrap();
        assert!(made.success());
        let mut compiler = PythonCompiler::new(&python);
        let file = SourceFile {
            path: zip_path.join("m.pyc"),
            text: None,
            zip: Some((zip_path.clone(), "m.pyc".into())),
            filename: "m.pyc".into(),
            check_factories: false,
        };
        let records = compiler.scan(&[file]).unwrap().remove(0);
        let mut seen: Vec<(&str, bool, bool)> = records
            .iter()
            .map(|r| (r.name.as_str(), r.guarded, r.deferred))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("_lazy", false, true),
                ("_optional", true, false),
                ("plain", false, false)
            ]
        );
    }
}
