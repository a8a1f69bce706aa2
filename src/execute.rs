//! The one place that writes the output: every planned file goes into a staging folder
//! beside the output directory, hashed while written, then manifest.json, and only then
//! does the staging folder replace the output directory. A failure leaves no partial output.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use isapi_freeze_format::manifest::{Manifest, ManifestEntry, MANIFEST_FORMAT};
use isapi_freeze_format::{to_hex, MANIFEST};
use sha2::{Digest, Sha256};

use crate::assemble::{Bytes, Output};

pub fn execute(output: &Output) -> Result<()> {
    let dist = &output.dist_dir;
    check_replaceable(dist)?;
    let name = dist
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dist".into());
    let parent = match dist.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent)?;
    let staging = parent.join(format!(".{name}.isapi-freeze-staging"));
    if staging.exists() {
        fs_err::remove_dir_all(&staging)?;
    }
    fs_err::create_dir(&staging)?;
    let result = write_all(output, &staging).and_then(|()| swap_into_place(&staging, dist, &parent, &name));
    if result.is_err() {
        let _ = fs_err::remove_dir_all(&staging);
    }
    result
}

fn write_all(output: &Output, staging: &Path) -> Result<()> {
    let mut entries = Vec::with_capacity(output.files.len());
    for file in &output.files {
        let target = staging.join(&file.path);
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mut out = HashingWriter {
            inner: fs_err::File::create(&target)?,
            hasher: Sha256::new(),
            size: 0,
        };
        match &file.bytes {
            Bytes::Made(bytes) => out.write_all(bytes)?,
            Bytes::CopyOf(source) => {
                let mut input = fs_err::File::open(source)?;
                std::io::copy(&mut input, &mut out)
                    .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
            }
        }
        out.inner.flush()?;
        entries.push(ManifestEntry {
            path: file.path.clone(),
            role: file.role,
            size: out.size,
            sha256: to_hex(&out.hasher.finalize()),
        });
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        files: entries,
    };
    fs_err::write(staging.join(MANIFEST), manifest.to_json())?;
    Ok(())
}

/// Refuses to replace a directory that isapi-freeze did not make.
fn check_replaceable(dist: &Path) -> Result<()> {
    if !dist.exists() {
        return Ok(());
    }
    if !dist.is_dir() {
        bail!(
            "--dist-dir {} exists and is not a directory; remove it or choose another --dist-dir",
            dist.display()
        );
    }
    let empty = fs_err::read_dir(dist)?.next().is_none();
    if !empty && !dist.join(MANIFEST).is_file() {
        bail!(
            "refusing to replace {}: it is not empty and has no {MANIFEST}, so isapi-freeze did not make it; \
             remove it or choose another --dist-dir",
            dist.display()
        );
    }
    Ok(())
}

fn swap_into_place(staging: &Path, dist: &Path, parent: &Path, name: &str) -> Result<()> {
    if dist.exists() {
        let old = parent.join(format!(".{name}.isapi-freeze-old"));
        if old.exists() {
            fs_err::remove_dir_all(&old)?;
        }
        fs_err::rename(dist, &old)?;
        if let Err(e) = fs_err::rename(staging, dist) {
            // Put the previous output back so that the user is no worse off.
            let _ = fs_err::rename(&old, dist);
            return Err(e.into());
        }
        fs_err::remove_dir_all(&old)?;
    } else {
        fs_err::rename(staging, dist)?;
    }
    Ok(())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::OutputFile;
    use isapi_freeze_format::manifest::Role;

    /// Reads a manifest's file list back: (path, sha256).
    fn read_manifest(dist: &Path) -> Vec<(String, String)> {
        let manifest = Manifest::from_json(&std::fs::read_to_string(dist.join(MANIFEST)).unwrap()).unwrap();
        manifest.files.into_iter().map(|f| (f.path, f.sha256)).collect()
    }

    fn plan(dist: &Path, files: Vec<OutputFile>) -> Output {
        Output {
            dist_dir: dist.to_path_buf(),
            files,
        }
    }

    fn bytes(path: &str, data: &[u8]) -> OutputFile {
        OutputFile {
            path: path.into(),
            role: Role::Binary,
            bytes: Bytes::Made(data.to_vec()),
        }
    }

    #[test]
    fn writes_files_and_a_manifest_of_their_hashes() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        execute(&plan(&dist, vec![bytes("a.dll", b"abc")])).unwrap();
        assert_eq!(std::fs::read(dist.join("a.dll")).unwrap(), b"abc");
        assert_eq!(
            read_manifest(&dist),
            [(
                "a.dll".to_string(),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()
            )]
        );
    }

    #[test]
    fn a_failed_write_leaves_the_previous_output_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        execute(&plan(&dist, vec![bytes("a.dll", b"first")])).unwrap();
        let missing = OutputFile {
            path: "b.pyd".into(),
            role: Role::Binary,
            bytes: Bytes::CopyOf(tmp.path().join("nope.pyd")),
        };
        let err = execute(&plan(&dist, vec![bytes("a.dll", b"second"), missing])).unwrap_err();
        assert!(format!("{err:#}").contains("nope.pyd"), "{err:#}");
        assert_eq!(std::fs::read(dist.join("a.dll")).unwrap(), b"first");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["dist"]);
    }

    #[test]
    fn a_foreign_directory_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("mine");
        std::fs::create_dir(&dist).unwrap();
        std::fs::write(dist.join("thesis.tex"), "").unwrap();
        let err = execute(&plan(&dist, vec![bytes("a.dll", b"x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refusing to replace") && err.contains("has no manifest.json"),
            "{err}"
        );
        assert!(dist.join("thesis.tex").exists());
    }
}
