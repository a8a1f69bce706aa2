//! The DLLs extension modules need: their PE import tables are read with goblin, and every
//! imported DLL found in the places packages keep them (beside the module, a `NAME.libs`
//! folder, pywin32's `pywin32_system32`, the runtime's own folders) is shipped, then its
//! imports in turn. Inside IIS's worker process our folder is not on the DLL search path,
//! so the runtime adds the output folder with `os.add_dll_directory` at start.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use goblin::pe::PE;
use thiserror::Error;

/// `IMAGE_FILE_MACHINE_AMD64`.
const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DllError {
    #[error("cannot read {path}: {why}")]
    Unreadable { path: String, why: String },
    #[error(
        "{path} is built for another architecture (machine {machine:#06x}); isapi-freeze builds for x86_64 (win_amd64)"
    )]
    Architecture { path: String, machine: u16 },
    #[error(
        "{path} is built for {linked}, but the target is {target}: install the package built for the target's Python"
    )]
    PythonVersion {
        path: String,
        linked: String,
        target: String,
    },
}

/// DLLs Windows itself provides: never shipped, never reported.
fn is_system_dll(lower: &str) -> bool {
    const SYSTEM: &[&str] = &[
        "kernel32.dll",
        "user32.dll",
        "advapi32.dll",
        "gdi32.dll",
        "shell32.dll",
        "ole32.dll",
        "oleaut32.dll",
        "ws2_32.dll",
        "crypt32.dll",
        "bcrypt.dll",
        "ntdll.dll",
        "rpcrt4.dll",
        "secur32.dll",
        "shlwapi.dll",
        "version.dll",
        "winmm.dll",
        "iphlpapi.dll",
        "netapi32.dll",
        "userenv.dll",
        "msvcrt.dll",
        "comdlg32.dll",
        "comctl32.dll",
        "imm32.dll",
        "setupapi.dll",
        "wininet.dll",
        "winhttp.dll",
        "dbghelp.dll",
        "psapi.dll",
        "mpr.dll",
        "wtsapi32.dll",
        "powrprof.dll",
        "cabinet.dll",
        "msi.dll",
        "odbc32.dll",
        "oleacc.dll",
        "uxtheme.dll",
        "dwmapi.dll",
        "winspool.drv",
        "ncrypt.dll",
        "dnsapi.dll",
        "mswsock.dll",
        "ucrtbase.dll",
        "bcryptprimitives.dll",
        "authz.dll",
        "credui.dll",
        "wintrust.dll",
        "activeds.dll",
        "wldap32.dll",
        "normaliz.dll",
        "mscoree.dll",
        "dxgi.dll",
        "d3d11.dll",
        "winusb.dll",
        "hid.dll",
        "propsys.dll",
    ];
    lower.starts_with("api-ms-win-") || lower.starts_with("ext-ms-") || SYSTEM.contains(&lower)
}

/// What the walk found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// DLL file name -> where it was found (to ship at the output's root).
    pub ship: BTreeMap<String, PathBuf>,
    /// DLLs found nowhere and not part of Windows -> the binaries that need them.
    pub unresolved: BTreeMap<String, BTreeSet<String>>,
}

/// Walks the imports of `binaries` (extension modules), looking for DLLs first in each
/// binary's own folder and then in `search_dirs`. `python_dll` is the target's (e.g.
/// python312.dll): linking another python3XY.dll is an error; python3.dll (the stable ABI)
/// is fine. DLLs in `provided` (shipped anyway) are not searched again.
pub fn dependencies(
    binaries: &[PathBuf],
    search_dirs: &[PathBuf],
    python_dll: &str,
    provided: &BTreeSet<String>,
) -> Result<Dependencies, DllError> {
    let mut out = Dependencies::default();
    let mut queue: VecDeque<PathBuf> = binaries.iter().cloned().collect();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(binary) = queue.pop_front() {
        if !seen.insert(binary.clone()) {
            continue;
        }
        let display = binary.display().to_string();
        let bytes = fs_err::read(&binary).map_err(|e| DllError::Unreadable {
            path: display.clone(),
            why: e.to_string(),
        })?;
        let pe = PE::parse(&bytes).map_err(|e| DllError::Unreadable {
            path: display.clone(),
            why: e.to_string(),
        })?;
        let machine = pe.header.coff_header.machine;
        if machine != IMAGE_FILE_MACHINE_AMD64 {
            return Err(DllError::Architecture { path: display, machine });
        }
        for library in &pe.libraries {
            let lower = library.to_ascii_lowercase();
            if is_python_dll(&lower) && lower != python_dll.to_ascii_lowercase() && lower != "python3.dll" {
                return Err(DllError::PythonVersion {
                    path: display,
                    linked: describe_python(&lower),
                    target: describe_python(&python_dll.to_ascii_lowercase()),
                });
            }
            if is_system_dll(&lower)
                || provided.contains(&lower)
                || is_python_dll(&lower)
                || out.ship.contains_key(&lower)
            {
                continue;
            }
            let own_dir = binary.parent().map(Path::to_path_buf).into_iter();
            match own_dir
                .chain(search_dirs.iter().cloned())
                .map(|d| find_case_insensitive(&d, &lower))
                .find_map(|f| f)
            {
                Some(found) => {
                    out.ship.insert(lower.clone(), found.clone());
                    queue.push_back(found);
                }
                None => {
                    out.unresolved
                        .entry(library.to_string())
                        .or_default()
                        .insert(display.clone());
                }
            }
        }
    }
    Ok(out)
}

fn is_python_dll(lower: &str) -> bool {
    lower.starts_with("python3") && lower.ends_with(".dll")
}

fn describe_python(lower: &str) -> String {
    match lower.strip_prefix("python3").and_then(|r| r.strip_suffix(".dll")) {
        Some(minor) if !minor.is_empty() => format!("CPython 3.{minor} ({lower})"),
        _ => lower.to_string(),
    }
}

/// `dir/name`, matching the name without regard to case as Windows does.
fn find_case_insensitive(dir: &Path, lower: &str) -> Option<PathBuf> {
    let exact = dir.join(lower);
    if exact.is_file() {
        return Some(exact);
    }
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().to_ascii_lowercase() == lower && e.path().is_file())
        .map(|e| e.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default test CPython, which `make python` fetches.
    fn embed() -> PathBuf {
        let python = isapi_freeze_format::pythons::default();
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/python")
            .join(python.abi_tag())
    }

    fn python_dll() -> String {
        isapi_freeze_format::pythons::default().dll_name()
    }

    #[test]
    fn ssl_needs_openssl_from_the_runtime_folder() {
        let dir = embed();
        let deps = dependencies(
            &[dir.join("_ssl.pyd")],
            std::slice::from_ref(&dir),
            &python_dll(),
            &BTreeSet::new(),
        )
        .unwrap();
        let shipped: Vec<&str> = deps.ship.keys().map(String::as_str).collect();
        assert_eq!(shipped, ["libcrypto-3.dll", "libssl-3.dll", "vcruntime140.dll"]);
        assert!(deps.unresolved.is_empty(), "{deps:?}");
    }

    #[test]
    fn a_module_for_another_python_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        // python3XY.dll itself links no pythonXY, so use a real extension module and pretend
        // the target is 3.99.
        let err = dependencies(
            &[embed().join("select.pyd")],
            &[tmp.path().to_path_buf()],
            "python399.dll",
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert!(matches!(err, DllError::PythonVersion { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!(
                "is built for CPython {} ({}), but the target is CPython 3.99",
                isapi_freeze_format::pythons::default().version(),
                python_dll()
            )),
            "{err}"
        );
    }

    #[test]
    fn a_dll_found_nowhere_is_reported_with_its_user() {
        let tmp = tempfile::tempdir().unwrap();
        let pyd = tmp.path().join("_ssl.pyd");
        std::fs::copy(embed().join("_ssl.pyd"), &pyd).unwrap();
        let provided: BTreeSet<String> = ["vcruntime140.dll".to_string()].into();
        let deps = dependencies(std::slice::from_ref(&pyd), &[], &python_dll(), &provided).unwrap();
        assert!(deps.ship.is_empty());
        assert_eq!(
            deps.unresolved.keys().cloned().collect::<Vec<_>>(),
            ["libcrypto-3.dll", "libssl-3.dll"]
        );
        assert_eq!(deps.unresolved["libssl-3.dll"], [pyd.display().to_string()].into());
    }
}
