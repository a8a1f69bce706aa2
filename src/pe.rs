//! Editing and reading PE resources as bytes in memory: `add_resources` appends a new
//! resource section to a copy of a stub (keeping any resources it already had), fixes the
//! headers and the checksum; `read_resources` walks a resource tree back. goblin parses the
//! headers, and tests re-parse every output with goblin to check what was written.

use std::collections::BTreeMap;

use goblin::pe::PE;
use thiserror::Error;

/// `IMAGE_DIRECTORY_ENTRY_RESOURCE`, `IMAGE_DIRECTORY_ENTRY_SECURITY` from winnt.h.
const IMAGE_DIRECTORY_ENTRY_RESOURCE: usize = 2;
const IMAGE_DIRECTORY_ENTRY_SECURITY: usize = 4;
/// Section characteristics of a resource section.
const IMAGE_SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
const IMAGE_SCN_MEM_READ: u32 = 0x4000_0000;
const IMAGE_RESOURCE_NAME_IS_STRING: u32 = 0x8000_0000;
const IMAGE_RESOURCE_DATA_IS_DIRECTORY: u32 = 0x8000_0000;
const IMAGE_SIZEOF_SECTION_HEADER: usize = 40;
const IMAGE_NT_OPTIONAL_HDR32_MAGIC: u16 = 0x10b;
const IMAGE_NT_OPTIONAL_HDR64_MAGIC: u16 = 0x20b;

#[derive(Debug, Error)]
pub enum PeError {
    #[error("not a PE file")]
    Parse(#[from] goblin::error::Error),
    #[error("the PE file is malformed: {0}")]
    Malformed(String),
    #[error("the PE file is signed; sign the output after freezing, not the stub")]
    Signed,
    #[error("the PE file has {0} bytes after its last section (a symbol table or appended data); build the stub with `strip = true`")]
    Overlay(usize),
    #[error("the PE headers have no room for another section header")]
    NoRoomForSection,
}

/// A resource name or type: an integer id or a string, as in the resource tree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResName {
    // Declared first so that string names sort first: the tree lists them before ids.
    Name(String),
    Id(u16),
}

/// One resource: a leaf of the type / name / language tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub kind: ResName,
    pub name: ResName,
    pub language: u16,
    pub code_page: u32,
    pub data: Vec<u8>,
}

/// Header fields we read and patch, located once.
struct Layout {
    coff: usize,
    opt: usize,
    data_dirs: usize,
    number_of_rva_and_sizes: u32,
    section_table: usize,
    number_of_sections: usize,
    size_of_headers: usize,
    file_alignment: u32,
    section_alignment: u32,
}

impl Layout {
    fn read(bytes: &[u8]) -> Result<Layout, PeError> {
        let e_lfanew = u32_at(bytes, 0x3c)? as usize;
        if bytes.get(e_lfanew..e_lfanew + 4) != Some(b"PE\0\0") {
            return Err(PeError::Malformed("no PE signature".into()));
        }
        let coff = e_lfanew + 4;
        let opt = coff + 20;
        let size_of_optional_header = u16_at(bytes, coff + 16)? as usize;
        let (rva_count_at, data_dirs) = match u16_at(bytes, opt)? {
            IMAGE_NT_OPTIONAL_HDR32_MAGIC => (opt + 92, opt + 96),
            IMAGE_NT_OPTIONAL_HDR64_MAGIC => (opt + 108, opt + 112),
            other => return Err(PeError::Malformed(format!("unknown optional header magic {other:#x}"))),
        };
        Ok(Layout {
            coff,
            opt,
            data_dirs,
            number_of_rva_and_sizes: u32_at(bytes, rva_count_at)?,
            section_table: opt + size_of_optional_header,
            number_of_sections: u16_at(bytes, coff + 2)? as usize,
            size_of_headers: u32_at(bytes, opt + 60)? as usize,
            section_alignment: u32_at(bytes, opt + 32)?,
            file_alignment: u32_at(bytes, opt + 36)?,
        })
    }

    fn data_dir(&self, bytes: &[u8], index: usize) -> Result<(u32, u32), PeError> {
        if index as u32 >= self.number_of_rva_and_sizes {
            return Ok((0, 0));
        }
        let at = self.data_dirs + 8 * index;
        Ok((u32_at(bytes, at)?, u32_at(bytes, at + 4)?))
    }
}

/// Returns a copy of `image` whose resources are the ones it had plus `added` (an added
/// resource replaces one with the same type, name and language), in a new section at the
/// end of the file, with a correct PE checksum.
pub fn add_resources(image: &[u8], added: &[Resource]) -> Result<Vec<u8>, PeError> {
    let pe = PE::parse(image)?;
    let layout = Layout::read(image)?;
    if layout.data_dir(image, IMAGE_DIRECTORY_ENTRY_SECURITY)?.1 != 0 {
        return Err(PeError::Signed);
    }
    let raw_end = pe
        .sections
        .iter()
        .map(|s| s.pointer_to_raw_data as usize + s.size_of_raw_data as usize)
        .max()
        .unwrap_or(layout.size_of_headers);
    if image.len() > raw_end {
        return Err(PeError::Overlay(image.len() - raw_end));
    }
    let new_header_at = layout.section_table + layout.number_of_sections * IMAGE_SIZEOF_SECTION_HEADER;
    let first_raw = pe
        .sections
        .iter()
        .map(|s| s.pointer_to_raw_data as usize)
        .filter(|&p| p != 0)
        .min()
        .unwrap_or(layout.size_of_headers);
    if new_header_at + IMAGE_SIZEOF_SECTION_HEADER > layout.size_of_headers.min(first_raw) {
        return Err(PeError::NoRoomForSection);
    }

    let mut merged: BTreeMap<(ResName, ResName, u16), Resource> = read_resources(image)?
        .into_iter()
        .map(|r| ((r.kind.clone(), r.name.clone(), r.language), r))
        .collect();
    for r in added {
        merged.insert((r.kind.clone(), r.name.clone(), r.language), r.clone());
    }
    let resources: Vec<Resource> = merged.into_values().collect();

    // Alignments as the PE format allows them (powers of two, FileAlignment at most 64 KiB
    // and at most SectionAlignment); anything else is a damaged header, and would make the
    // new section's place overflow or the output absurdly large.
    let (file_alignment, section_alignment) = (layout.file_alignment, layout.section_alignment);
    if !file_alignment.is_power_of_two()
        || file_alignment > 0x1_0000
        || !section_alignment.is_power_of_two()
        || section_alignment < file_alignment
        || section_alignment > 0x1000_0000
    {
        return Err(PeError::Malformed(format!(
            "FileAlignment {file_alignment:#x} / SectionAlignment {section_alignment:#x} are not valid PE alignments"
        )));
    }
    let too_big = || PeError::Malformed("the sections end beyond the 4 GiB a PE image can address".into());
    let virtual_end = pe
        .sections
        .iter()
        .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size.max(s.size_of_raw_data)))
        .max()
        .unwrap_or(0);
    let virtual_end = u32::try_from(virtual_end).map_err(|_| too_big())?;
    let section_rva = align_up(virtual_end, section_alignment).ok_or_else(too_big)?;
    let section = build_resource_section(&resources, section_rva);
    let raw_size =
        align_up(u32::try_from(section.len()).map_err(|_| too_big())?, file_alignment).ok_or_else(too_big)?;
    // On a page boundary in the file (a multiple of any FileAlignment up to a page): Wine
    // maps such a section from the file, so only the archive's pages a process reads become
    // resident; one that starts mid-page it copies whole into the process at load.
    let raw_at = align_up(
        u32::try_from(image.len()).map_err(|_| too_big())?,
        file_alignment.max(PAGE),
    )
    .ok_or_else(too_big)?;
    let image_end = u32::try_from(section.len())
        .ok()
        .and_then(|len| section_rva.checked_add(len))
        .and_then(|end| align_up(end, section_alignment))
        .ok_or_else(too_big)?;
    raw_at.checked_add(raw_size).ok_or_else(too_big)?;

    let mut out = image.to_vec();
    out.resize(raw_at as usize, 0);
    out.extend_from_slice(&section);
    out.resize((raw_at + raw_size) as usize, 0);

    let mut header = [0u8; IMAGE_SIZEOF_SECTION_HEADER];
    header[..8].copy_from_slice(b".rsrc\0\0\0");
    put_u32(&mut header, 8, section.len() as u32); // VirtualSize
    put_u32(&mut header, 12, section_rva);
    put_u32(&mut header, 16, raw_size);
    put_u32(&mut header, 20, raw_at);
    put_u32(&mut header, 36, IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ);
    out[new_header_at..new_header_at + IMAGE_SIZEOF_SECTION_HEADER].copy_from_slice(&header);

    put_u16(&mut out, layout.coff + 2, (layout.number_of_sections + 1) as u16);
    let size_of_initialized_data = u32_at(&out, layout.opt + 8)?;
    put_u32(
        &mut out,
        layout.opt + 8,
        size_of_initialized_data.wrapping_add(raw_size),
    );
    put_u32(&mut out, layout.opt + 56, image_end);
    if layout.number_of_rva_and_sizes as usize <= IMAGE_DIRECTORY_ENTRY_RESOURCE {
        return Err(PeError::Malformed(
            "the optional header has no resource directory slot".into(),
        ));
    }
    let dir_at = layout.data_dirs + 8 * IMAGE_DIRECTORY_ENTRY_RESOURCE;
    put_u32(&mut out, dir_at, section_rva);
    put_u32(&mut out, dir_at + 4, section.len() as u32);

    let checksum = pe_checksum(&out, layout.opt + 64);
    put_u32(&mut out, layout.opt + 64, checksum);
    Ok(out)
}

/// The PE checksum as `CheckSumMappedFile` computes it: a 16-bit one's-complement-style
/// sum of the file with the checksum field taken as zero, plus the file length.
pub fn pe_checksum(image: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in image.chunks(2).enumerate() {
        let at = i * 2;
        if at == checksum_at || at == checksum_at + 2 {
            continue;
        }
        let word = if chunk.len() == 2 {
            u16::from_le_bytes([chunk[0], chunk[1]])
        } else {
            chunk[0] as u16
        };
        sum += word as u64;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(image.len() as u32)
}

/// Offset of the checksum field, for callers that verify it.
#[cfg(test)]
pub fn checksum_offset(image: &[u8]) -> Result<usize, PeError> {
    Ok(Layout::read(image)?.opt + 64)
}

/// The names of the modules built into a Python DLL, read from the table its exported
/// `PyImport_Inittab` points to (an array of {name, init function} pairs ending with NULL).
pub fn python_builtin_modules(image: &[u8]) -> Result<Vec<String>, PeError> {
    let pe = PE::parse(image)?;
    let export = pe
        .exports
        .iter()
        .find(|e| e.name == Some("PyImport_Inittab"))
        .ok_or_else(|| PeError::Malformed("it does not export PyImport_Inittab".into()))?;
    let va_to_offset = |va: u64| -> Result<usize, PeError> {
        let rva = va
            .checked_sub(pe.image_base)
            .ok_or_else(|| PeError::Malformed(format!("address {va:#x} below the image")))?;
        rva_to_offset(&pe, image, rva as u32, 8)
    };
    let read_u64 = |at: usize| -> Result<u64, PeError> {
        image
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| PeError::Malformed(format!("truncated at offset {at:#x}")))
    };
    let table = read_u64(rva_to_offset(&pe, image, export.rva as u32, 8)?)?;
    let mut at = va_to_offset(table)?;
    let mut names = Vec::new();
    // A few hundred entries at most; the bound guards against a damaged file.
    for _ in 0..4096 {
        let name_va = read_u64(at)?;
        if name_va == 0 {
            return Ok(names);
        }
        let start = va_to_offset(name_va)?;
        let len = image[start..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| PeError::Malformed("unterminated name".into()))?;
        names.push(String::from_utf8_lossy(&image[start..start + len]).into_owned());
        at += 16;
    }
    Err(PeError::Malformed("PyImport_Inittab has no end".into()))
}

fn rva_to_offset(pe: &PE, image: &[u8], rva: u32, len: u32) -> Result<usize, PeError> {
    pe.sections
        .iter()
        // In u64: a damaged header's fields may add up past 32 bits.
        .find(|s| {
            rva >= s.virtual_address
                && u64::from(rva - s.virtual_address) + u64::from(len)
                    <= u64::from(s.size_of_raw_data.max(s.virtual_size))
        })
        .map(|s| u64::from(rva - s.virtual_address) + u64::from(s.pointer_to_raw_data))
        .filter(|&at| at + u64::from(len) <= image.len() as u64)
        .map(|at| at as usize)
        .ok_or_else(|| PeError::Malformed(format!("RVA {rva:#x}+{len:#x} is outside the file")))
}

/// Every resource in `image`, in tree order.
pub fn read_resources(image: &[u8]) -> Result<Vec<Resource>, PeError> {
    let pe = PE::parse(image)?;
    let layout = Layout::read(image)?;
    let (rva, size) = layout.data_dir(image, IMAGE_DIRECTORY_ENTRY_RESOURCE)?;
    if rva == 0 || size == 0 {
        return Ok(Vec::new());
    }
    let rva_to_offset = |rva: u32, len: u32| rva_to_offset(&pe, image, rva, len);
    let base = rva_to_offset(rva, size)?;
    let tree = &image[base..base + size as usize];
    let mut out = Vec::new();
    for (kind, kind_dir) in directory_entries(tree, 0, true)? {
        for (name, name_dir) in directory_entries(tree, kind_dir, true)? {
            for (language, data_entry) in directory_entries(tree, name_dir, false)? {
                let language = match language {
                    ResName::Id(id) => id,
                    ResName::Name(_) => return Err(PeError::Malformed("a language entry has a string name".into())),
                };
                let data_rva = u32_at(tree, data_entry)?;
                let data_len = u32_at(tree, data_entry + 4)?;
                let code_page = u32_at(tree, data_entry + 8)?;
                let at = rva_to_offset(data_rva, data_len)?;
                out.push(Resource {
                    kind: kind.clone(),
                    name: name.clone(),
                    language,
                    code_page,
                    data: image[at..at + data_len as usize].to_vec(),
                });
            }
        }
    }
    Ok(out)
}

/// The data of one resource, if present.
pub fn find_resource(image: &[u8], kind: &ResName, name: &ResName, language: u16) -> Result<Option<Vec<u8>>, PeError> {
    Ok(read_resources(image)?
        .into_iter()
        .find(|r| &r.kind == kind && &r.name == name && r.language == language)
        .map(|r| r.data))
}

/// The entries of the directory at `at` (offsets relative to the tree's start): each entry's
/// name and the offset of what it points to; `subdirs` says which kind that must be.
fn directory_entries(tree: &[u8], at: usize, subdirs: bool) -> Result<Vec<(ResName, usize)>, PeError> {
    let count = u16_at(tree, at + 12)? as usize + u16_at(tree, at + 14)? as usize;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let entry = at + 16 + 8 * i;
        let name_field = u32_at(tree, entry)?;
        let target = u32_at(tree, entry + 4)?;
        let name = if name_field & IMAGE_RESOURCE_NAME_IS_STRING != 0 {
            let s = (name_field & !IMAGE_RESOURCE_NAME_IS_STRING) as usize;
            let len = u16_at(tree, s)? as usize;
            let units: Vec<u16> = (0..len)
                .map(|k| u16_at(tree, s + 2 + 2 * k))
                .collect::<Result<_, _>>()?;
            ResName::Name(String::from_utf16_lossy(&units))
        } else {
            ResName::Id(name_field as u16)
        };
        let is_dir = target & IMAGE_RESOURCE_DATA_IS_DIRECTORY != 0;
        if is_dir != subdirs {
            return Err(PeError::Malformed(
                "the resource tree does not have three levels".into(),
            ));
        }
        let offset = (target & !IMAGE_RESOURCE_DATA_IS_DIRECTORY) as usize;
        // Every directory lies after its parent in trees that linkers and we write; requiring
        // it rules out cycles in a damaged file.
        if offset <= at {
            return Err(PeError::Malformed("the resource tree points backwards".into()));
        }
        out.push((name, offset));
    }
    Ok(out)
}

/// Lays out a resource section for `resources` (sorted by type, name, language) placed at
/// `section_rva`: directories, then data entries, then name strings, then the data.
fn build_resource_section(resources: &[Resource], section_rva: u32) -> Vec<u8> {
    // Tree: type -> name -> [resource index].
    let mut tree: BTreeMap<&ResName, BTreeMap<&ResName, Vec<usize>>> = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        tree.entry(&r.kind).or_default().entry(&r.name).or_default().push(i);
    }
    let dir_size = |n: usize| 16 + 8 * n;
    // Pass 1: offsets of each directory.
    let mut next = dir_size(tree.len());
    let mut type_dirs = Vec::new();
    for names in tree.values() {
        type_dirs.push(next);
        next += dir_size(names.len());
    }
    let mut name_dirs = Vec::new();
    for names in tree.values() {
        for leaves in names.values() {
            name_dirs.push(next);
            next += dir_size(leaves.len());
        }
    }
    let data_entries_at = next;
    next += 16 * resources.len();
    let mut strings = Vec::new();
    let mut string_at: BTreeMap<&str, usize> = BTreeMap::new();
    for r in resources {
        for n in [&r.kind, &r.name] {
            if let ResName::Name(s) = n {
                string_at.entry(s.as_str()).or_insert_with(|| {
                    let at = next + strings.len();
                    let units: Vec<u16> = s.encode_utf16().collect();
                    strings.extend_from_slice(&(units.len() as u16).to_le_bytes());
                    units.iter().for_each(|u| strings.extend_from_slice(&u.to_le_bytes()));
                    at
                });
            }
        }
    }
    next += strings.len();
    let mut data_at = Vec::new();
    for r in resources {
        next = next.next_multiple_of(8);
        data_at.push(next);
        next += r.data.len();
    }

    // Pass 2: write.
    let mut out = vec![0u8; next];
    out[data_entries_at + 16 * resources.len()..][..strings.len()].copy_from_slice(&strings);
    let name_field = |n: &ResName| match n {
        ResName::Id(id) => *id as u32,
        ResName::Name(s) => string_at[s.as_str()] as u32 | IMAGE_RESOURCE_NAME_IS_STRING,
    };
    let write_dir = |out: &mut Vec<u8>, at: usize, entries: &[(&ResName, u32)]| {
        let named = entries.iter().filter(|(n, _)| matches!(n, ResName::Name(_))).count();
        put_u16(out, at + 12, named as u16);
        put_u16(out, at + 14, (entries.len() - named) as u16);
        for (i, (n, target)) in entries.iter().enumerate() {
            put_u32(out, at + 16 + 8 * i, name_field(n));
            put_u32(out, at + 20 + 8 * i, *target);
        }
    };
    let root: Vec<(&ResName, u32)> = tree
        .keys()
        .zip(&type_dirs)
        .map(|(k, &at)| (*k, at as u32 | IMAGE_RESOURCE_DATA_IS_DIRECTORY))
        .collect();
    write_dir(&mut out, 0, &root);
    let mut name_dir_iter = name_dirs.iter();
    for ((_, names), &type_at) in tree.iter().zip(&type_dirs) {
        let mut entries = Vec::new();
        for (name, leaves) in names {
            let &name_at = name_dir_iter.next().expect("one directory per name");
            entries.push((*name, name_at as u32 | IMAGE_RESOURCE_DATA_IS_DIRECTORY));
            let langs: Vec<(ResName, u32)> = leaves
                .iter()
                .map(|&i| (ResName::Id(resources[i].language), (data_entries_at + 16 * i) as u32))
                .collect();
            let langs: Vec<(&ResName, u32)> = langs.iter().map(|(n, t)| (n, *t)).collect();
            write_dir(&mut out, name_at, &langs);
        }
        write_dir(&mut out, type_at, &entries);
    }
    for (i, r) in resources.iter().enumerate() {
        let entry = data_entries_at + 16 * i;
        put_u32(&mut out, entry, section_rva + data_at[i] as u32);
        put_u32(&mut out, entry + 4, r.data.len() as u32);
        put_u32(&mut out, entry + 8, r.code_page);
        out[data_at[i]..data_at[i] + r.data.len()].copy_from_slice(&r.data);
    }
    out
}

/// `value` rounded up to a multiple of `alignment`; None if that passes u32::MAX.
/// The x86-64 page size.
const PAGE: u32 = 0x1000;

fn align_up(value: u32, alignment: u32) -> Option<u32> {
    if alignment == 0 {
        return Some(value);
    }
    value.div_ceil(alignment).checked_mul(alignment)
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, PeError> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| PeError::Malformed(format!("truncated at offset {at:#x}")))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, PeError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| PeError::Malformed(format!("truncated at offset {at:#x}")))
}

fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid PE32+ DLL image with one `.text` section and no resources, built in
    /// code so the editor's tests need no fixture file.
    pub(crate) fn tiny_pe() -> Vec<u8> {
        let mut image = vec![0u8; 0x400];
        image[0..2].copy_from_slice(b"MZ");
        put_u32(&mut image, 0x3c, 0x80);
        image[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        put_u16(&mut image, coff, 0x8664); // Machine: AMD64
        put_u16(&mut image, coff + 2, 1); // NumberOfSections
        put_u16(&mut image, coff + 16, 240); // SizeOfOptionalHeader
        put_u16(&mut image, coff + 18, 0x2022); // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE | DLL
        let opt = coff + 20;
        put_u16(&mut image, opt, IMAGE_NT_OPTIONAL_HDR64_MAGIC);
        put_u32(&mut image, opt + 4, 0x200); // SizeOfCode
        put_u32(&mut image, opt + 16, 0x1000); // AddressOfEntryPoint
        put_u32(&mut image, opt + 20, 0x1000); // BaseOfCode
        image[opt + 24..opt + 32].copy_from_slice(&0x1_8000_0000u64.to_le_bytes()); // ImageBase
        put_u32(&mut image, opt + 32, 0x1000); // SectionAlignment
        put_u32(&mut image, opt + 36, 0x200); // FileAlignment
        put_u16(&mut image, opt + 40, 6); // MajorOperatingSystemVersion
        put_u16(&mut image, opt + 48, 6); // MajorSubsystemVersion
        put_u32(&mut image, opt + 56, 0x2000); // SizeOfImage
        put_u32(&mut image, opt + 60, 0x200); // SizeOfHeaders
        put_u16(&mut image, opt + 68, 3); // Subsystem: console
        put_u32(&mut image, opt + 108, 16); // NumberOfRvaAndSizes
        let sec = opt + 240;
        image[sec..sec + 8].copy_from_slice(b".text\0\0\0");
        put_u32(&mut image, sec + 8, 1); // VirtualSize
        put_u32(&mut image, sec + 12, 0x1000);
        put_u32(&mut image, sec + 16, 0x200);
        put_u32(&mut image, sec + 20, 0x200);
        put_u32(&mut image, sec + 36, 0x6000_0020); // CODE | EXECUTE | READ
        image[0x200] = 0xc3; // ret
        image.truncate(0x400);
        image
    }

    fn rcdata(id: u16, data: &[u8]) -> Resource {
        Resource {
            kind: ResName::Id(10),
            name: ResName::Id(id),
            language: 0,
            code_page: 0,
            data: data.to_vec(),
        }
    }

    #[test]
    fn added_resources_read_back_byte_identical_through_goblin() {
        let archive: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let out = add_resources(&tiny_pe(), &[rcdata(1, &archive), rcdata(2, b"config")]).unwrap();

        let pe = PE::parse(&out).unwrap();
        let rsrc = pe.sections.last().unwrap();
        assert_eq!(rsrc.name().unwrap(), ".rsrc");
        // tiny_pe's FileAlignment is 0x200 and its file ends before 0x1000.
        assert_eq!(rsrc.pointer_to_raw_data, 0x1000, "the section starts on a page");
        assert_eq!(pe.sections.len(), 2);
        let optional = pe.header.optional_header.unwrap();
        let dir = *optional.data_directories.get_resource_table().unwrap();
        assert_eq!(dir.virtual_address, 0x2000);
        assert_eq!(pe.header.optional_header.unwrap().windows_fields.size_of_image, 0x4000);
        let resources = pe.resource_data.expect("goblin reads the resource tree");
        assert_eq!(resources.count(), 1, "one type: RT_RCDATA");

        assert_eq!(
            find_resource(&out, &ResName::Id(10), &ResName::Id(1), 0)
                .unwrap()
                .unwrap(),
            archive
        );
        assert_eq!(
            find_resource(&out, &ResName::Id(10), &ResName::Id(2), 0)
                .unwrap()
                .unwrap(),
            b"config"
        );
    }

    #[test]
    fn checksum_matches_the_written_field() {
        let out = add_resources(&tiny_pe(), &[rcdata(1, b"abc")]).unwrap();
        let at = checksum_offset(&out).unwrap();
        assert_eq!(u32_at(&out, at).unwrap(), pe_checksum(&out, at));
        assert_ne!(pe_checksum(&out, at), 0);
    }

    #[test]
    fn checksum_of_a_known_buffer() {
        // Words 0x0201 + 0x0403 (checksum field at 4..8 skipped) + 0x0009 + length 10.
        let image = [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 9, 0];
        assert_eq!(pe_checksum(&image, 4), 0x0201 + 0x0403 + 0x0009 + 10);
    }

    #[test]
    fn existing_resources_are_kept_and_replaced_by_key() {
        let once = add_resources(
            &tiny_pe(),
            &[
                rcdata(1, b"old"),
                Resource {
                    kind: ResName::Id(24),
                    name: ResName::Name("MANIFEST".into()),
                    language: 1033,
                    code_page: 1252,
                    data: b"<xml/>".to_vec(),
                },
            ],
        )
        .unwrap();
        let twice = add_resources(&once, &[rcdata(1, b"new"), rcdata(2, b"two")]).unwrap();
        let all = read_resources(&twice).unwrap();
        let summary: Vec<(ResName, ResName, u16, &[u8])> = all
            .iter()
            .map(|r| (r.kind.clone(), r.name.clone(), r.language, r.data.as_slice()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (ResName::Id(10), ResName::Id(1), 0, &b"new"[..]),
                (ResName::Id(10), ResName::Id(2), 0, &b"two"[..]),
                (ResName::Id(24), ResName::Name("MANIFEST".into()), 1033, &b"<xml/>"[..]),
            ]
        );
        assert_eq!(all[2].code_page, 1252);
    }

    #[test]
    fn appended_data_is_refused() {
        let mut image = tiny_pe();
        image.extend_from_slice(b"overlay");
        assert!(matches!(add_resources(&image, &[]), Err(PeError::Overlay(7))));
    }

    #[test]
    fn builtin_module_names_are_read_from_the_python_dll() {
        // The Windows CPython the tests use, when `make python` fetched it.
        let python = isapi_freeze_format::pythons::default();
        let dll = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/python")
            .join(python.abi_tag())
            .join(python.dll_name());
        let Ok(image) = std::fs::read(&dll) else {
            panic!("{} is missing: run `make python`", dll.display());
        };
        let names = python_builtin_modules(&image).unwrap();
        for builtin in [
            "sys", "builtins", "_io", "nt", "winreg", "_winapi", "marshal", "_json", "math",
        ] {
            assert!(names.iter().any(|n| n == builtin), "{builtin} missing from {names:?}");
        }
        for not_builtin in ["_socket", "os", "posix"] {
            assert!(
                !names.iter().any(|n| n == not_builtin),
                "{not_builtin} is not built in: {names:?}"
            );
        }
        assert!(python_builtin_modules(&tiny_pe()).is_err());
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let image = tiny_pe();
        assert!(add_resources(&image[..0x90], &[]).is_err());
        assert!(add_resources(b"#!/bin/sh\necho hi\n", &[]).is_err());
    }

    mod properties {
        //! Bounded property runs (64 cases each, in `cargo test`): any set of resources
        //! added to a DLL reads back identically, and damaged or truncated images give the
        //! reader and the editor errors, never a panic.
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        fn res_name() -> impl Strategy<Value = ResName> {
            prop_oneof![
                (1u16..=u16::MAX).prop_map(ResName::Id),
                "[A-Z][A-Z0-9_]{0,11}".prop_map(ResName::Name),
            ]
        }

        /// A resource type: any but RT_VERSION (16), whose data goblin parses as a
        /// VS_VERSIONINFO when it reads the image, so random bytes there fail goblin's
        /// parse, not our writer (found by a 1-in-4096 case).
        fn res_kind() -> impl Strategy<Value = ResName> {
            res_name().prop_filter("RT_VERSION data must be a VS_VERSIONINFO", |k| *k != ResName::Id(16))
        }

        fn resources() -> impl Strategy<Value = Vec<Resource>> {
            btree_map(
                (res_kind(), res_name(), any::<u16>()),
                (any::<u32>(), vec(any::<u8>(), 0..2048)),
                1..16,
            )
            .prop_map(|m| {
                m.into_iter()
                    .map(|((kind, name, language), (code_page, data))| Resource {
                        kind,
                        name,
                        language,
                        code_page,
                        data,
                    })
                    .collect()
            })
        }

        fn key(r: &Resource) -> (ResName, ResName, u16) {
            (r.kind.clone(), r.name.clone(), r.language)
        }

        proptest! {
            // Failing cases found so far are kept with the test fixtures and replayed first.
            #![proptest_config(ProptestConfig {
                cases: 64,
                failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
                    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proptest/pe.txt"),
                ))),
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_resources_added_read_back_identically_and_parse_with_goblin(added in resources()) {
                let out = add_resources(&tiny_pe(), &added).unwrap();
                prop_assert!(PE::parse(&out).is_ok());
                let mut read = read_resources(&out).unwrap();
                read.sort_by_key(key);
                prop_assert_eq!(read, added);
                let at = checksum_offset(&out).unwrap();
                prop_assert_eq!(u32_at(&out, at).unwrap(), pe_checksum(&out, at));
            }

            #[test]
            fn a_damaged_or_truncated_image_is_an_error_or_reads_never_a_panic(
                added in resources(),
                flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut image = add_resources(&tiny_pe(), &added).unwrap();
                // Half the flips land in the headers and the resource tree's first bytes,
                // where damage matters most; the rest anywhere.
                let tree = image.len() - added.iter().map(|r| r.data.len()).sum::<usize>().min(image.len() - 0x400);
                for (n, (at, value)) in flips.into_iter().enumerate() {
                    let at = if n % 2 == 0 { at.index(0x400) } else { at.index(tree.max(1)) };
                    image[at] ^= value | 1;
                }
                for candidate in [&image[..], &image[..cut.index(image.len())]] {
                    let _ = read_resources(candidate);
                    let _ = add_resources(candidate, &added);
                    let _ = python_builtin_modules(candidate);
                }
            }
        }
    }
}
