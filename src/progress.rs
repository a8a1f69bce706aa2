//! What the freezer says while it works, all on stderr (stdout stays the command's own, e.g.
//! `--dry-run`'s plan): plain lines in a pipe or a log; on a terminal the same lines plus a
//! counter that rewrites its own line while modules are read and compiled; nothing with
//! `--quiet`. The counter comes from `Counting`, a `BuildPython` that feeds its inner one in
//! slices so that a long batch shows how far it got.

use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::compile::{BuildPython, BytecodeVersion, CompileError, Compiled, ImportRecord, SourceFile};

/// Where the messages go and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Lines,
    Terminal,
}

impl Mode {
    /// `--quiet`, else a terminal on stderr (one that can move its cursor), else lines.
    pub fn detect(quiet: bool) -> Mode {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && !dumb {
            Mode::Terminal
        } else {
            Mode::Lines
        }
    }
}

/// The messages of one run. Counter lines are drawn in place and ended with a newline at the
/// next message, so that a line never starts in the middle of a counter.
pub struct Progress {
    mode: Mode,
    counter_showing: Cell<bool>,
    /// The state drawn last, not drawn again (a new batch of the scan starts where the last
    /// one ended).
    last_state: std::cell::RefCell<String>,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            counter_showing: Cell::new(false),
            last_state: Default::default(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// One line, as it is.
    pub fn say(&self, message: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        self.end_counter();
        eprintln!("{message}");
    }

    /// Draws `state` over the counter line (terminal only).
    pub fn count(&self, state: &str) {
        if self.mode != Mode::Terminal || (self.counter_showing.get() && *self.last_state.borrow() == state) {
            return;
        }
        state.clone_into(&mut self.last_state.borrow_mut());
        // Carriage return, then erase the line: a shorter state leaves nothing behind.
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{state}");
        let _ = err.flush();
        self.counter_showing.set(true);
    }

    /// Leaves the counter's last state on its own line.
    pub fn end_counter(&self) {
        if self.counter_showing.replace(false) {
            eprintln!();
        }
    }
}

impl Drop for Progress {
    /// An error ends the run with a counter showing: main's `error:` line starts on a line
    /// of its own.
    fn drop(&mut self) {
        self.end_counter();
    }
}

/// How many files one slice holds: big enough for the compiler to split it between its two
/// workers, small enough that the counter moves every fraction of a second.
const SLICE: usize = 64;

/// A `BuildPython` that shows how many files it has read and compiled.
pub struct Counting<'a, P> {
    inner: &'a mut P,
    progress: &'a Progress,
    /// Files scanned so far: the import scan comes in one batch per level of the import
    /// graph, so its total is not known until it ends.
    scanned: usize,
}

impl<'a, P: BuildPython> Counting<'a, P> {
    pub fn new(inner: &'a mut P, progress: &'a Progress) -> Self {
        Counting {
            inner,
            progress,
            scanned: 0,
        }
    }

    /// The work in slices, with the counter drawn after each, when anyone can see it;
    /// otherwise in one piece (the inner compiler splits big batches best).
    fn in_slices<T>(
        &mut self,
        files: &[SourceFile],
        mut run: impl FnMut(&mut P, &[SourceFile]) -> Result<Vec<T>, CompileError>,
        mut state: impl FnMut(usize) -> String,
    ) -> Result<Vec<T>, CompileError> {
        if self.progress.mode() != Mode::Terminal {
            return run(self.inner, files);
        }
        let mut out = Vec::with_capacity(files.len());
        self.progress.count(&state(0));
        for slice in files.chunks(SLICE) {
            out.extend(run(self.inner, slice)?);
            self.progress.count(&state(out.len()));
        }
        Ok(out)
    }
}

impl<P: BuildPython> BuildPython for Counting<'_, P> {
    fn interpreter(&self) -> &Path {
        self.inner.interpreter()
    }

    fn version(&mut self) -> Result<BytecodeVersion, CompileError> {
        self.inner.version()
    }

    fn compile(&mut self, files: &[SourceFile]) -> Result<Vec<Compiled>, CompileError> {
        let total = files.len();
        // A single file is the script's factory check, not worth a counter.
        if total < 2 {
            return self.inner.compile(files);
        }
        let compiled = self.in_slices(
            files,
            |p, s| p.compile(s),
            |done| format!("compiling {done}/{total} modules"),
        );
        self.progress.end_counter();
        compiled
    }

    fn scan(&mut self, files: &[SourceFile]) -> Result<Vec<Vec<ImportRecord>>, CompileError> {
        let before = self.scanned;
        let imports = self.in_slices(
            files,
            |p, s| p.scan(s),
            |done| format!("following the imports: {} modules read", before + done),
        );
        self.scanned += files.len();
        imports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the batch sizes it is given.
    struct Recorder {
        batches: Vec<usize>,
    }

    impl BuildPython for Recorder {
        fn interpreter(&self) -> &Path {
            Path::new("recorder")
        }
        fn version(&mut self) -> Result<BytecodeVersion, CompileError> {
            unreachable!("not asked")
        }
        fn compile(&mut self, files: &[SourceFile]) -> Result<Vec<Compiled>, CompileError> {
            self.batches.push(files.len());
            Ok(files
                .iter()
                .map(|f| Compiled {
                    pyc: f.filename.clone().into_bytes(),
                    factories: None,
                })
                .collect())
        }
        fn scan(&mut self, files: &[SourceFile]) -> Result<Vec<Vec<ImportRecord>>, CompileError> {
            self.batches.push(files.len());
            Ok(files.iter().map(|_| Vec::new()).collect())
        }
    }

    fn files(n: usize) -> Vec<SourceFile> {
        (0..n)
            .map(|i| SourceFile {
                path: format!("m{i}.py").into(),
                text: None,
                zip: None,
                filename: format!("m{i}.py"),
                check_factories: false,
            })
            .collect()
    }

    #[test]
    fn on_a_terminal_a_batch_goes_in_slices_and_comes_back_whole_and_in_order() {
        let progress = Progress::new(Mode::Terminal);
        let mut recorder = Recorder { batches: Vec::new() };
        let mut counting = Counting::new(&mut recorder, &progress);
        let out = counting.compile(&files(150)).unwrap();
        assert_eq!(recorder.batches, vec![64, 64, 22]);
        let names: Vec<String> = out.into_iter().map(|c| String::from_utf8(c.pyc).unwrap()).collect();
        assert_eq!(names, (0..150).map(|i| format!("m{i}.py")).collect::<Vec<_>>());
    }

    #[test]
    fn in_a_pipe_or_quiet_a_batch_goes_whole() {
        for mode in [Mode::Lines, Mode::Quiet] {
            let progress = Progress::new(mode);
            let mut recorder = Recorder { batches: Vec::new() };
            let mut counting = Counting::new(&mut recorder, &progress);
            counting.compile(&files(150)).unwrap();
            counting.scan(&files(70)).unwrap();
            assert_eq!(recorder.batches, vec![150, 70], "{mode:?}");
        }
    }
}
