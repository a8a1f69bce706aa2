//! Writes the app archive: a zip of compiled modules and data that the loader imports from
//! memory. Entries are sorted, timestamps fixed and permissions uniform, so the same inputs
//! always give the same bytes (and the same SHA-256 the loader checks at startup).

use std::io::{Seek, Write};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One file of the archive: its path inside the zip (`/`-separated) and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub name: String,
    pub data: Vec<u8>,
}

/// Writes `entries` (in name order, whatever order they come in) as a zip to `out`.
pub fn write_archive(entries: &[ArchiveEntry], out: impl Write + Seek) -> zip::result::ZipResult<()> {
    let mut sorted: Vec<&ArchiveEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = sorted.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(zip::result::ZipError::InvalidArchive(
            format!("two members named {}", pair[0].name).into(),
        ));
    }
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(out);
    for entry in sorted {
        zip.start_file(entry.name.as_str(), options)?;
        zip.write_all(&entry.data)?;
    }
    zip.finish()?;
    Ok(())
}

/// The archive's bytes and their SHA-256, for embedding.
pub fn archive_bytes(entries: &[ArchiveEntry]) -> zip::result::ZipResult<(Vec<u8>, [u8; 32])> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    write_archive(entries, &mut cursor)?;
    let bytes = cursor.into_inner();
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    Ok((bytes, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entry(name: &str, data: &[u8]) -> ArchiveEntry {
        ArchiveEntry {
            name: name.into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn archive_reads_back_sorted_with_fixed_times() {
        let (bytes, _) = archive_bytes(&[entry("b.pyc", b"BBB"), entry("a/__init__.pyc", b"")]).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(zip.len(), 2);
        let mut first = zip.by_index(0).unwrap();
        assert_eq!(first.name().unwrap(), "a/__init__.pyc");
        assert_eq!(first.last_modified(), Some(DateTime::DEFAULT));
        let mut data = Vec::new();
        first.read_to_end(&mut data).unwrap();
        drop(first);
        assert!(names.contains(&"b.pyc".to_string()));
        let mut second = zip.by_name("b.pyc").unwrap();
        let mut data = Vec::new();
        second.read_to_end(&mut data).unwrap();
        assert_eq!(data, b"BBB");
    }

    #[test]
    fn same_entries_in_any_order_give_the_same_bytes() {
        let a = archive_bytes(&[entry("x.pyc", b"1"), entry("y.pyc", b"2")]).unwrap();
        let b = archive_bytes(&[entry("y.pyc", b"2"), entry("x.pyc", b"1")]).unwrap();
        assert_eq!(a, b);
        let c = archive_bytes(&[entry("y.pyc", b"3"), entry("x.pyc", b"1")]).unwrap();
        assert_ne!(a.1, c.1);
    }

    mod properties {
        //! Bounded property runs (64 cases each, in `cargo test`): any set of entries reads
        //! back identically whatever order it came in, and damaged archives give errors,
        //! never a panic, to a reader.
        use super::super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;
        use std::io::{Cursor, Read};

        fn entries() -> impl Strategy<Value = Vec<ArchiveEntry>> {
            btree_map(
                "[a-z_][a-z0-9_]{0,7}(/[a-z0-9_.]{1,8}){0,3}",
                vec(any::<u8>(), 0..4096),
                0..24,
            )
            .prop_map(|m| m.into_iter().map(|(name, data)| ArchiveEntry { name, data }).collect())
        }

        /// Every member of `bytes`, read fully, in archive order.
        fn read_back(bytes: &[u8]) -> zip::result::ZipResult<Vec<ArchiveEntry>> {
            let mut zip = zip::ZipArchive::new(Cursor::new(bytes))?;
            (0..zip.len())
                .map(|i| {
                    let mut member = zip.by_index(i)?;
                    let mut data = Vec::new();
                    member.read_to_end(&mut data)?;
                    Ok(ArchiveEntry {
                        name: member.name()?.to_string(),
                        data,
                    })
                })
                .collect()
        }

        proptest! {
            // Failing cases found so far are kept with the test fixtures and replayed first.
            #![proptest_config(ProptestConfig {
                cases: 64,
                failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
                    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proptest/archive.txt"),
                ))),
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_entries_read_back_identically_in_name_order_from_any_input_order(
                sorted in entries(),
                seed in any::<u64>(),
            ) {
                let mut shuffled = sorted.clone();
                // A cheap deterministic shuffle: rotate by the seed, then reverse on odd seeds.
                if !shuffled.is_empty() {
                    let at = (seed as usize) % shuffled.len();
                    shuffled.rotate_left(at);
                }
                if seed % 2 == 1 {
                    shuffled.reverse();
                }
                let (bytes, digest) = archive_bytes(&sorted).unwrap();
                let (again, again_digest) = archive_bytes(&shuffled).unwrap();
                prop_assert_eq!(&bytes, &again);
                prop_assert_eq!(digest, again_digest);
                prop_assert_eq!(read_back(&bytes).unwrap(), sorted);
            }

            #[test]
            fn a_damaged_archive_is_an_error_or_reads_never_a_panic(
                entries in entries(),
                flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                cut in any::<prop::sample::Index>(),
            ) {
                let (mut bytes, _) = archive_bytes(&entries).unwrap();
                for (at, value) in flips {
                    let at = at.index(bytes.len());
                    bytes[at] ^= value | 1;
                }
                let _ = read_back(&bytes);
                let _ = read_back(&bytes[..cut.index(bytes.len())]);
            }
        }
    }
}
