//! The one place that writes the output. A new output folder is written into a staging
//! folder beside it, hashed while written, then renamed into place. An output folder made
//! before is updated in place: only files whose bytes differ are staged and then renamed
//! over the old ones, files the previous manifest.json listed and this one does not are
//! removed, and anything else there (logs\, the app's data folder) is left alone. Either
//! way a failure while making the files leaves the previous output as it was.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use isapi_freeze_format::manifest::{Manifest, ManifestEntry, MANIFEST_FORMAT};
use isapi_freeze_format::{to_hex, MANIFEST};
use sha2::{Digest, Sha256};

use crate::assemble::{Bytes, Output, OutputFile};
use crate::stamps::{Stamp, Stamps};

/// What a write did, for the progress line and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Files written (new or changed), manifest.json included.
    pub written: usize,
    /// Files removed because the output no longer has them.
    pub removed: usize,
}

pub fn execute(output: &Output) -> Result<Written> {
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
    let mut stamps = Stamps::load(dist);
    let absolute_dist = std::path::absolute(dist).unwrap_or_else(|_| dist.clone());
    let result = match previous_manifest(dist) {
        Some(previous) => update_in_place(output, &previous, &staging, &absolute_dist, &mut stamps),
        None => write_all(output, &staging, &mut stamps)
            .and_then(|written| swap_into_place(&staging, dist, &parent, &name).map(|()| written)),
    };
    if result.is_err() {
        let _ = fs_err::remove_dir_all(&staging);
    } else {
        let _ = std::fs::remove_dir(&staging);
        if let Ok(manifest) = fs_err::read_to_string(dist.join(MANIFEST)) {
            remember_output(&manifest, &absolute_dist, &mut stamps);
        }
        stamps.save(dist);
    }
    result
}

/// The manifest of an output folder isapi-freeze wrote before, if it can be read.
fn previous_manifest(dist: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dist.join(MANIFEST)).ok()?;
    Manifest::from_json(&text).ok()
}

/// Stamps each file of the output as it now is, with the hash the manifest gives it: the
/// next rebuild then hashes only files whose stamp changed since.
fn remember_output(manifest: &str, dist: &Path, stamps: &mut Stamps) {
    let Ok(manifest) = Manifest::from_json(manifest) else {
        return;
    };
    for entry in &manifest.files {
        let path = dist.join(&entry.path);
        stamps.remember(&path, Stamp::of(&path), &entry.sha256);
    }
}

fn write_all(output: &Output, staging: &Path, stamps: &mut Stamps) -> Result<Written> {
    let mut entries = Vec::with_capacity(output.files.len());
    for file in &output.files {
        entries.push(write_file(file, &staging.join(&file.path), stamps)?);
    }
    fs_err::write(staging.join(MANIFEST), manifest_json(entries))?;
    Ok(Written {
        written: output.files.len() + 1,
        removed: 0,
    })
}

/// Writes `file` to `target`, hashing it on the way.
fn write_file(file: &OutputFile, target: &Path, stamps: &mut Stamps) -> Result<ManifestEntry> {
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let mut out = HashingWriter {
        inner: fs_err::File::create(target)?,
        hasher: Sha256::new(),
        size: 0,
    };
    match &file.bytes {
        Bytes::Made(bytes) => out.write_all(bytes)?,
        Bytes::CopyOf(source) => {
            let stamp = Stamp::of(source);
            let mut input = fs_err::File::open(source)?;
            std::io::copy(&mut input, &mut out)
                .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
            let sha = to_hex(&out.hasher.clone().finalize());
            stamps.remember(&absolute(source), stamp, &sha);
        }
    }
    out.inner.flush()?;
    Ok(ManifestEntry {
        path: file.path.clone(),
        role: file.role,
        size: out.size,
        sha256: to_hex(&out.hasher.finalize()),
    })
}

fn manifest_json(files: Vec<ManifestEntry>) -> String {
    Manifest {
        format: MANIFEST_FORMAT,
        files,
    }
    .to_json()
}

/// Stages the files that differ from what `dist` holds, then moves them in, removes the
/// files that the previous manifest listed and this output does not have, and replaces
/// manifest.json if it changed.
fn update_in_place(
    output: &Output,
    previous: &Manifest,
    staging: &Path,
    dist: &Path,
    stamps: &mut Stamps,
) -> Result<Written> {
    let mut entries = Vec::with_capacity(output.files.len());
    let mut staged = Vec::new();
    for file in &output.files {
        let target = dist.join(&file.path);
        let (size, sha256) = expected(file, stamps)?;
        if holds(&target, size, &sha256, stamps)? {
            entries.push(ManifestEntry {
                path: file.path.clone(),
                role: file.role,
                size,
                sha256,
            });
        } else {
            let entry = write_file(file, &staging.join(&file.path), stamps)?;
            staged.push(file.path.as_str());
            entries.push(entry);
        }
    }
    let kept: BTreeSet<&str> = output.files.iter().map(|f| f.path.as_str()).collect();
    let manifest = manifest_json(entries);
    let manifest_changed = fs_err::read_to_string(dist.join(MANIFEST)).ok().as_deref() != Some(manifest.as_str());
    if manifest_changed {
        fs_err::write(staging.join(MANIFEST), &manifest)?;
    }

    // Everything is made: from here on the output changes.
    let mut written = Written::default();
    for gone in previous.files.iter().filter(|f| !kept.contains(f.path.as_str())) {
        if !is_inside(&gone.path) {
            continue;
        }
        let path = dist.join(&gone.path);
        match fs_err::remove_file(&path) {
            Ok(()) => written.removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        remove_empty_folders(&path, dist);
    }
    for path in staged {
        let target = dist.join(path);
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::rename(staging.join(path), &target)?;
        written.written += 1;
    }
    if manifest_changed {
        fs_err::rename(staging.join(MANIFEST), dist.join(MANIFEST))?;
        written.written += 1;
    }
    fs_err::remove_dir_all(staging)?;
    Ok(written)
}

/// The size and SHA-256 `file` will have, hashing a copied file only if its stamp changed.
fn expected(file: &OutputFile, stamps: &mut Stamps) -> Result<(u64, String)> {
    match &file.bytes {
        Bytes::Made(bytes) => Ok((bytes.len() as u64, to_hex(&Sha256::digest(bytes)))),
        Bytes::CopyOf(source) => {
            let source_path = absolute(source);
            let stamp = Stamp::of(source);
            if let (Some(stamp), Some(sha)) = (stamp, stamps.hash_of(&source_path, stamp)) {
                return Ok((stamp.size, sha.to_string()));
            }
            let (size, sha) = hash_file(source)?;
            stamps.remember(&source_path, stamp, &sha);
            Ok((size, sha))
        }
    }
}

/// Whether `target` already holds bytes of this size and hash: trusted from the stamps when
/// the file is as it was when hashed, else read (a file the user changed is then restored).
fn holds(target: &Path, size: u64, sha256: &str, stamps: &mut Stamps) -> Result<bool> {
    let Some(stamp) = Stamp::of(target) else {
        return Ok(false);
    };
    if stamp.size != size {
        return Ok(false);
    }
    if let Some(known) = stamps.hash_of(target, Some(stamp)) {
        return Ok(known == sha256);
    }
    let (_, actual) = hash_file(target)?;
    stamps.remember(target, Some(stamp), &actual);
    Ok(actual == sha256)
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut input = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = input
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, to_hex(&hasher.finalize())))
}

/// A manifest path that stays inside the output folder (a damaged manifest must not make
/// the rebuild delete files elsewhere).
fn is_inside(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains(':')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Removes the folders a removed file leaves empty, up to (not including) the output folder.
fn remove_empty_folders(file: &Path, dist: &Path) {
    let mut folder = file.parent();
    while let Some(dir) = folder {
        if dir == dist || !dir.starts_with(dist) || std::fs::remove_dir(dir).is_err() {
            break;
        }
        folder = dir.parent();
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
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

    /// (path, inode, mtime) of every file under `dist`, in path order.
    fn files_of(dist: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
        let mut found = Vec::new();
        let mut folders = vec![dist.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::metadata(&path).unwrap();
                if meta.is_dir() {
                    folders.push(path);
                } else {
                    let name = path.strip_prefix(dist).unwrap().to_string_lossy().replace('\\', "/");
                    found.push((
                        name,
                        std::os::unix::fs::MetadataExt::ino(&meta),
                        meta.modified().unwrap(),
                    ));
                }
            }
        }
        found.sort();
        found
    }

    fn names(files: &[(String, u64, std::time::SystemTime)]) -> Vec<&str> {
        files.iter().map(|f| f.0.as_str()).collect()
    }

    #[test]
    fn an_unchanged_rebuild_writes_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        let source = tmp.path().join("copied.pyd");
        std::fs::write(&source, b"binary").unwrap();
        let output = || {
            plan(
                &dist,
                vec![
                    bytes("a.dll", b"abc"),
                    OutputFile {
                        path: "lib/copied.pyd".into(),
                        role: Role::Binary,
                        bytes: Bytes::CopyOf(source.clone()),
                    },
                ],
            )
        };
        assert_eq!(execute(&output()).unwrap(), Written { written: 3, removed: 0 });
        let before = files_of(&dist);
        assert_eq!(names(&before), ["a.dll", "lib/copied.pyd", "manifest.json"]);
        assert_eq!(execute(&output()).unwrap(), Written::default());
        assert_eq!(files_of(&dist), before, "same inodes and modification times");
    }

    #[test]
    fn a_rebuild_rewrites_only_what_changed_and_removes_what_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        execute(&plan(
            &dist,
            vec![
                bytes("a.dll", b"abc"),
                bytes("b.pyd", b"same"),
                bytes("pkg/old.txt", b"old"),
            ],
        ))
        .unwrap();
        std::fs::create_dir_all(dist.join("logs")).unwrap();
        std::fs::write(dist.join("logs/_a.log"), "a log line\n").unwrap();
        std::fs::create_dir_all(dist.join("data")).unwrap();
        std::fs::write(dist.join("data/notes.sqlite3"), "rows").unwrap();
        let before = files_of(&dist);
        let written = execute(&plan(&dist, vec![bytes("a.dll", b"abd"), bytes("b.pyd", b"same")])).unwrap();
        assert_eq!(written, Written { written: 2, removed: 1 });
        let after = files_of(&dist);
        assert_eq!(
            names(&after),
            ["a.dll", "b.pyd", "data/notes.sqlite3", "logs/_a.log", "manifest.json"]
        );
        assert!(
            !dist.join("pkg").exists(),
            "the folder the removed file leaves empty goes too"
        );
        let unchanged: Vec<&str> = after
            .iter()
            .filter(|f| before.contains(f))
            .map(|f| f.0.as_str())
            .collect();
        assert_eq!(unchanged, ["b.pyd", "data/notes.sqlite3", "logs/_a.log"]);
        assert_eq!(std::fs::read(dist.join("a.dll")).unwrap(), b"abd");
        assert_eq!(
            std::fs::read_to_string(dist.join("logs/_a.log")).unwrap(),
            "a log line\n"
        );
        assert_eq!(
            read_manifest(&dist).into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
            ["a.dll", "b.pyd"]
        );
    }

    #[test]
    fn a_rebuild_restores_an_output_file_the_user_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        let output = || plan(&dist, vec![bytes("a.dll", b"abc"), bytes("b.pyd", b"bcd")]);
        execute(&output()).unwrap();
        // Same size, and the modification time put back: only the content tells.
        let mtime = std::fs::metadata(dist.join("a.dll")).unwrap().modified().unwrap();
        std::fs::write(dist.join("a.dll"), b"xyz").unwrap();
        std::fs::File::options()
            .write(true)
            .open(dist.join("a.dll"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::remove_file(dist.join("b.pyd")).unwrap();
        assert_eq!(execute(&output()).unwrap(), Written { written: 2, removed: 0 });
        assert_eq!(std::fs::read(dist.join("a.dll")).unwrap(), b"abc");
        assert_eq!(std::fs::read(dist.join("b.pyd")).unwrap(), b"bcd");
    }

    #[test]
    fn a_failed_rebuild_leaves_the_previous_output_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        execute(&plan(&dist, vec![bytes("a.dll", b"first"), bytes("gone.txt", b"x")])).unwrap();
        let before = files_of(&dist);
        let missing = OutputFile {
            path: "b.pyd".into(),
            role: Role::Binary,
            bytes: Bytes::CopyOf(tmp.path().join("nope.pyd")),
        };
        execute(&plan(&dist, vec![bytes("a.dll", b"second"), missing])).unwrap_err();
        assert_eq!(files_of(&dist), before);
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
