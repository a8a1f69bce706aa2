//! isapi-host: a stand-in for IIS that serves HTTP/1.1 on loopback and drives ISAPI
//! extension DLLs (one, or several under their virtual paths as one worker of a pool) and
//! filters by Microsoft's ISAPI contract, so frozen apps are tested end to end under Wine. On other systems it builds as a program that only says so.

// The pure modules are compiled (and unit-tested) everywhere; only Windows uses them all.
#![cfg_attr(not(windows), allow(dead_code))]

mod cli;
#[cfg(windows)]
mod console;
#[cfg(windows)]
mod dll;
#[cfg(windows)]
mod ecb;
#[cfg(windows)]
mod extension;
mod filter;
mod http;
mod request_filtering;
#[cfg(windows)]
mod server;
mod static_file;
#[cfg(windows)]
mod tokens;
mod variables;

#[cfg(not(windows))]
fn main() {
    eprintln!("isapi-host: runs on Windows only (build it for x86_64-pc-windows-gnu and run it under Wine)");
    std::process::exit(1);
}

#[cfg(windows)]
fn main() {
    windows_main::main()
}

#[cfg(windows)]
mod windows_main {
    use std::io::{BufRead, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    use windows_sys::Win32::System::Iis::HSE_TERM_MUST_UNLOAD;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};

    use crate::cli::{self, Parsed};
    use crate::console;
    use crate::dll::LoadError;
    use crate::extension::Extension;
    use crate::filter::{Filter, Filters};
    use crate::server::{App, Server};

    fn exit(code: i32, message: &str) -> ! {
        eprintln!("isapi-host: {message}");
        std::process::exit(code)
    }

    /// An extension or filter that cannot start ends the host, with the error's exit code.
    fn exit_on_load_error(error: LoadError) -> ! {
        exit(error.exit_code(), &error.to_string())
    }

    #[link(name = "ntdll")]
    extern "system" {
        fn NtQuerySystemInformation(class: u32, info: *mut std::ffi::c_void, length: u32, returned: *mut u32) -> i32;
    }
    /// SYSTEM_INFORMATION_CLASS SystemHandleInformation: every handle of the system.
    const SYSTEM_HANDLE_INFORMATION: u32 = 16;
    /// SYSTEM_HANDLE_INFORMATION's header (a ULONG count, padded to 8) and the size of one
    /// SYSTEM_HANDLE_TABLE_ENTRY_INFO, whose first field is the owner's USHORT process id.
    const HANDLE_TABLE_HEADER: usize = 8;
    const HANDLE_ENTRY: usize = 24;

    /// This process's handle count. GetProcessHandleCount answers 0 under Wine 8 (a stub),
    /// so this counts the process's entries of the system handle table instead, as Process
    /// Explorer does; GetProcessHandleCount's answer is taken when it is not 0.
    fn handle_count() -> Option<usize> {
        let mut count = 0u32;
        // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing, and
        // `count` is a valid place for the answer.
        if unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) } != 0 && count != 0 {
            return Some(count as usize);
        }
        let pid = std::process::id() as u16;
        let mut buffer = vec![0u64; 1 << 16];
        loop {
            let bytes = u32::try_from(buffer.len() * 8).ok()?;
            let mut returned = 0u32;
            // SAFETY: `buffer` is writable for `bytes` bytes (u64s keep it 8-aligned, as
            // the table's entries need); `returned` is a valid place for the size.
            let status = unsafe {
                NtQuerySystemInformation(
                    SYSTEM_HANDLE_INFORMATION,
                    buffer.as_mut_ptr().cast(),
                    bytes,
                    &mut returned,
                )
            };
            // STATUS_INFO_LENGTH_MISMATCH: grow and ask again.
            if status == 0xC000_0004_u32 as i32 && buffer.len() < (1 << 24) {
                buffer.resize(buffer.len() * 4, 0);
                continue;
            }
            if status != 0 {
                return None;
            }
            // SAFETY: the call succeeded, so the buffer holds the count followed by that
            // many entries, all within `bytes`; read as bytes, no alignment is needed.
            let raw = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), buffer.len() * 8) };
            let entries = u32::from_le_bytes(raw[..4].try_into().ok()?) as usize;
            let table = raw.get(HANDLE_TABLE_HEADER..HANDLE_TABLE_HEADER + entries * HANDLE_ENTRY)?;
            let ours = table
                .chunks_exact(HANDLE_ENTRY)
                .filter(|e| u16::from_le_bytes([e[0], e[1]]) == pid)
                .count();
            return Some(ours);
        }
    }

    /// The physical path of an application: its DLL's folder, with a trailing backslash.
    fn physical_root(dll: &std::path::Path) -> String {
        let folder = std::path::absolute(dll)
            .unwrap_or(dll.to_path_buf())
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!("{}\\", folder.trim_end_matches('\\'))
    }

    /// The `stats` line: what a soak test watches for leaks.
    fn print_stats(server: &Server) {
        let handles = handle_count().map_or("?".into(), |n| n.to_string());
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "isapi-host: stats handles={handles} connections={} requests={}",
            server.open_connections(),
            crate::ecb::requests_started()
        );
        let _ = stdout.flush();
    }

    /// The control line `unload /VPATH`.
    fn unload(server: &Server, vpath: &str) {
        match server.unload(vpath, HSE_TERM_MUST_UNLOAD) {
            Ok(()) => {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "isapi-host: unloaded {vpath}");
                let _ = stdout.flush();
            }
            Err(why) => eprintln!("isapi-host: cannot unload {vpath}: {why}"),
        }
    }

    pub fn main() {
        let args = match cli::parse(std::env::args_os().skip(1)) {
            Ok(Parsed::Run(args)) => args,
            Ok(Parsed::Help) => {
                println!("{}", cli::usage());
                return;
            }
            Err(e) => exit(1, &format!("{e}\n\n{}", cli::usage())),
        };
        crate::request_filtering::configure(*args.request_filtering.clone());
        if let Some(limit) = args.request_timeout {
            crate::ecb::set_request_timeout(limit);
        }
        // IIS loads filters when the worker starts, before any extension.
        let filters: Vec<Filter> = args
            .filters
            .iter()
            .map(|path| Filter::load(path).unwrap_or_else(|e| exit_on_load_error(e)))
            .collect();
        let filters = Filters::new(filters);
        // The single EXTENSION.DLL ends the host when it cannot start, as it always did; an
        // `--app` does not: IIS answers 500 for that application and serves the others.
        let mut apps = Vec::new();
        let mut descriptions = Vec::new();
        if let Some(path) = &args.dll {
            let extension = Extension::load(path).unwrap_or_else(|e| exit_on_load_error(e));
            descriptions.push((None, extension.version().unwrap_or_else(|e| exit_on_load_error(e))));
            apps.push(App {
                vpath: args.vpath.clone(),
                physical_root: physical_root(path),
                extension: Ok(extension),
                unloaded: Default::default(),
            });
        }
        for (vpath, path) in &args.apps {
            let started = Extension::load(path).and_then(|e| e.version().map(|d| (e, d)));
            let extension = match started {
                Ok((extension, description)) => {
                    descriptions.push((Some(vpath.clone()), description));
                    Ok(extension)
                }
                Err(e) => {
                    eprintln!("isapi-host: {vpath}: {e}; it answers 500");
                    Err(e.to_string())
                }
            };
            apps.push(App {
                vpath: vpath.clone(),
                physical_root: physical_root(path),
                extension,
                unloaded: Default::default(),
            });
        }
        let listener = match TcpListener::bind(args.listen) {
            Ok(listener) => listener,
            Err(e) => exit(1, &format!("cannot listen on {}: {e}", args.listen)),
        };
        let local = listener.local_addr().unwrap_or(args.listen);
        // Filters see the site's root application: the first one, else the first filter's folder.
        let (site_vpath, site_root) = match apps.first() {
            Some(app) => (app.vpath.clone(), app.physical_root.clone()),
            None => (
                args.vpath.clone(),
                physical_root(args.filters.first().map_or(std::path::Path::new(""), |p| p)),
            ),
        };
        let server = Arc::new(Server::new(apps, Arc::new(filters), site_vpath, site_root));

        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "isapi-host: listening on http://{local}/");
        for (vpath, description) in descriptions {
            let _ = match vpath {
                None => writeln!(stdout, "isapi-host: extension {description:?}"),
                Some(vpath) => writeln!(stdout, "isapi-host: extension {description:?} at {vpath}"),
            };
        }
        for filter in server.filters().iter() {
            let _ = writeln!(stdout, "isapi-host: filter {:?}", filter.description);
        }
        let _ = stdout.flush();
        drop(stdout);

        // What stops the host: Ctrl+C or the console closing, and with --control-stdin the
        // end of standard input or a `quit` line (the parent only has to close the pipe).
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        console::on_ctrl_c(stop.clone());
        let reader = args.control_stdin.then(|| {
            let server = server.clone();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    match line {
                        Ok(line) if line.trim() == "quit" => break,
                        Ok(line) if line.trim() == "stats" => print_stats(&server),
                        Ok(line) if line.trim().starts_with("unload ") => {
                            unload(&server, line.trim()["unload ".len()..].trim())
                        }
                        Ok(_) => continue,
                        Err(_) => break,
                    }
                }
                let _ = stop.send(());
            })
        });
        let watcher = server.clone();
        let watcher = std::thread::spawn(move || {
            let _ = stopped.recv();
            watcher.shutdown(local);
        });

        let connections = server.serve(listener);
        let drained = server.drain(args.shutdown_grace);
        if !drained {
            eprintln!(
                "isapi-host: requests still running after {:?}; unloading anyway",
                args.shutdown_grace
            );
        }
        // Exit with no other thread of ours left: Wine sometimes kills (SIGKILL) a process
        // that exits while its other threads are still running.
        let _ = watcher.join();
        // A reader still blocked on standard input (the host was stopped by Ctrl+C) cannot
        // be joined; it has nothing to clean up.
        if let Some(reader) = reader.filter(|r| r.is_finished()) {
            let _ = reader.join();
        }
        if drained {
            for thread in connections {
                let _ = thread.join();
            }
        }
        for extension in server.extensions() {
            extension.terminate(HSE_TERM_MUST_UNLOAD);
        }
        server.filters().terminate(0);
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "isapi-host: stopped");
        let _ = stdout.flush();
        std::process::exit(0);
    }
}
