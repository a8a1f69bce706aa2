//! Writes the app archive: a zip of compiled modules and data that the loader imports from
//! memory. Entries are sorted, timestamps fixed and permissions uniform, so the same inputs
//! always give the same bytes (and the same SHA-256 the loader checks at startup).

use std::io::{Read, Seek, Write};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One file of the archive: its path inside the zip (`/`-separated) and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub name: String,
    pub data: Vec<u8>,
}

/// Members of another zip copied into the archive as they are, still compressed: the
/// embeddable distribution's standard-library bytecode, which inflating and deflating again
/// would make the slowest step of a freeze.
pub struct ZipCopy<R> {
    pub zip: zip::ZipArchive<R>,
    pub members: Vec<String>,
}

/// Writes `entries` and the members of `copies` (in name order, whatever order they come
/// in) as a zip to `out`.
pub fn write_archive<R: Read + Seek>(
    entries: &[ArchiveEntry],
    copies: &mut [ZipCopy<R>],
    out: impl Write + Seek,
) -> zip::result::ZipResult<()> {
    // (member name, index of the copy it comes from).
    let copied: Vec<(String, usize)> = copies
        .iter()
        .enumerate()
        .flat_map(|(at, copy)| copy.members.iter().map(move |name| (name.clone(), at)))
        .collect();
    // (name, Ok(entry) or Err(index of the copy it comes from)).
    let mut sorted: Vec<(&str, Result<&ArchiveEntry, usize>)> =
        entries.iter().map(|e| (e.name.as_str(), Ok(e))).collect();
    sorted.extend(copied.iter().map(|(name, at)| (name.as_str(), Err(*at))));
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(pair) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(zip::result::ZipError::InvalidArchive(
            format!("two members named {}", pair[0].0).into(),
        ));
    }
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(out);
    for (name, source) in sorted {
        match source {
            Ok(entry) => {
                zip.start_file(name, options)?;
                zip.write_all(&entry.data)?;
            }
            Err(at) => {
                let member = copies[at].zip.by_name_raw(name.as_bytes())?;
                zip.raw_copy_file_touch(member, DateTime::DEFAULT, Some(0o644))?;
            }
        }
    }
    zip.finish()?;
    Ok(())
}

/// The archive's bytes and their SHA-256, for embedding.
pub fn archive_bytes(entries: &[ArchiveEntry]) -> zip::result::ZipResult<(Vec<u8>, [u8; 32])> {
    archive_bytes_copying(entries, &mut [] as &mut [ZipCopy<std::io::Empty>])
}

/// [`archive_bytes`] with members copied from other zips.
pub fn archive_bytes_copying<R: Read + Seek>(
    entries: &[ArchiveEntry],
    copies: &mut [ZipCopy<R>],
) -> zip::result::ZipResult<(Vec<u8>, [u8; 32])> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    write_archive(entries, copies, &mut cursor)?;
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
    fn copied_members_keep_their_compressed_bytes_and_sort_among_the_entries() {
        let source = {
            let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .last_modified_time(DateTime::from_date_and_time(2024, 5, 6, 7, 8, 10).unwrap());
            for (name, data) in [
                ("json/__init__.pyc", &b"json json json json"[..]),
                ("zz.pyc", b"not copied"),
            ] {
                zip.start_file(name, options).unwrap();
                zip.write_all(data).unwrap();
            }
            zip.finish().unwrap().into_inner()
        };
        let copy = || ZipCopy {
            zip: zip::ZipArchive::new(std::io::Cursor::new(source.clone())).unwrap(),
            members: vec!["json/__init__.pyc".to_string()],
        };
        let (bytes, digest) =
            archive_bytes_copying(&[entry("b.pyc", b"B"), entry("a.pyc", b"A")], &mut [copy()]).unwrap();
        let again = archive_bytes_copying(&[entry("a.pyc", b"A"), entry("b.pyc", b"B")], &mut [copy()]).unwrap();
        assert_eq!((bytes.clone(), digest), again);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(names, ["a.pyc", "b.pyc", "json/__init__.pyc"]);
        let raw = |zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>| {
            let mut member = zip.by_name_raw(b"json/__init__.pyc").unwrap();
            let mut compressed = Vec::new();
            member.read_to_end(&mut compressed).unwrap();
            (compressed, member.crc32(), member.last_modified())
        };
        let (copied, crc, time) = raw(&mut zip);
        let (original, original_crc, _) = raw(&mut copy().zip);
        assert_eq!((copied, crc, time), (original, original_crc, Some(DateTime::DEFAULT)));
        let mut data = Vec::new();
        zip.by_name("json/__init__.pyc")
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(data, b"json json json json");
        let clash = archive_bytes_copying(&[entry("json/__init__.pyc", b"mine")], &mut [copy()]);
        assert!(
            matches!(&clash, Err(zip::result::ZipError::InvalidArchive(m)) if m.contains("two members named json/__init__.pyc")),
            "{clash:?}"
        );
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
