//! Where bytes of a PE module's image lie in its file: the section arithmetic that turns an
//! address relative to the image's base (an RVA) into a file offset, so the runtime can
//! read the app archive from the file instead of the mapping. It only reads header bytes,
//! so it builds and is tested on any host.

/// Bytes from the start of a PE file that are always mapped at a module's base: one page
/// (a view is whole pages, and an image's headers take at least one).
pub const FIRST_PAGE: usize = 4096;

/// The headers' size (`SizeOfHeaders`) of the PE whose first bytes are `start`: how many
/// bytes from the start hold the headers through the section table, in the file and in
/// the mapped image alike.
pub fn headers_size(start: &[u8]) -> Option<usize> {
    let optional = nt_headers(start)? + 24;
    // SizeOfHeaders sits at the same place in PE32 and PE32+ optional headers.
    Some(u32_at(start, optional + 60)? as usize)
}

/// The file offset of the `len` bytes at `rva` in the image whose headers are `headers` (at
/// least [`headers_size`] bytes from the file's start), if one section's raw data in the
/// file holds all of them.
pub fn file_offset(headers: &[u8], rva: u32, len: u32) -> Option<u64> {
    let nt = nt_headers(headers)?;
    let sections = u16_at(headers, nt + 6)? as usize;
    let optional_size = u16_at(headers, nt + 20)? as usize;
    let table = nt + 24 + optional_size;
    let end = u64::from(rva) + u64::from(len);
    (0..sections).find_map(|i| {
        let entry = table + i * 40;
        let (address, raw_size, raw_at) = (
            u32_at(headers, entry + 12)?,
            u32_at(headers, entry + 16)?,
            u32_at(headers, entry + 20)?,
        );
        // Raw data, not VirtualSize: bytes past it are zeros in memory, absent in the file.
        let holds = rva >= address && end <= u64::from(address) + u64::from(raw_size);
        holds.then(|| u64::from(raw_at) + u64::from(rva - address))
    })
}

/// The offset of the "PE\0\0" signature, after checking both signatures.
fn nt_headers(bytes: &[u8]) -> Option<usize> {
    if bytes.get(..2)? != b"MZ" {
        return None;
    }
    let nt = u32_at(bytes, 0x3c)? as usize;
    (bytes.get(nt..nt + 4)? == b"PE\0\0").then_some(nt)
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PE32+ header with `sections` of (VirtualAddress, SizeOfRawData, PointerToRawData).
    fn synthetic(sections: &[(u32, u32, u32)]) -> Vec<u8> {
        let nt = 0x80;
        let optional_size = 240u16;
        let mut bytes = vec![0u8; 0x400];
        bytes[..2].copy_from_slice(b"MZ");
        bytes[0x3c..0x40].copy_from_slice(&(nt as u32).to_le_bytes());
        bytes[nt..nt + 4].copy_from_slice(b"PE\0\0");
        bytes[nt + 6..nt + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        bytes[nt + 20..nt + 22].copy_from_slice(&optional_size.to_le_bytes());
        bytes[nt + 24 + 60..nt + 24 + 64].copy_from_slice(&0x400u32.to_le_bytes());
        let table = nt + 24 + optional_size as usize;
        for (i, (address, raw_size, raw_at)) in sections.iter().enumerate() {
            let entry = table + i * 40;
            bytes[entry..entry + 8].copy_from_slice(b".sect\0\0\0");
            bytes[entry + 8..entry + 12].copy_from_slice(&raw_size.to_le_bytes());
            bytes[entry + 12..entry + 16].copy_from_slice(&address.to_le_bytes());
            bytes[entry + 16..entry + 20].copy_from_slice(&raw_size.to_le_bytes());
            bytes[entry + 20..entry + 24].copy_from_slice(&raw_at.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn an_rva_maps_into_the_raw_data_of_the_section_holding_it() {
        let headers = synthetic(&[(0x1000, 0x3f000, 0x400), (0x55000, 0x29b200, 0x4dc00)]);
        assert_eq!(headers_size(&headers), Some(0x400));
        assert_eq!(file_offset(&headers, 0x1000, 16), Some(0x400));
        assert_eq!(file_offset(&headers, 0x55010, 0x1000), Some(0x4dc10));
        // The last byte of a section's raw data, and one past it.
        assert_eq!(file_offset(&headers, 0x55000, 0x29b200), Some(0x4dc00));
        assert_eq!(file_offset(&headers, 0x55000, 0x29b201), None);
        // Between sections, before the first, and in headers that are no PE's.
        assert_eq!(file_offset(&headers, 0x50000, 4), None);
        assert_eq!(file_offset(&headers, 0x10, 4), None);
        let mut foreign = headers.clone();
        foreign[0x80] = b'N';
        assert_eq!(file_offset(&foreign, 0x1000, 16), None);
        assert_eq!(file_offset(&headers[..0x100], 0x1000, 16), None);
    }

    /// The loader stub `make stubs` built: its export directory (data directory 0) is in a
    /// section whose file offset differs from its RVA, and names the DLL.
    #[test]
    fn the_loader_stubs_export_name_is_found_through_its_file_offsets() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/stubs/isapi_freeze_loader.dll"
        );
        let file = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}: run `make stubs` first"));
        let headers = &file[..headers_size(&file).unwrap()];
        let nt = nt_headers(&file).unwrap();
        // PE32+: the data directories start 112 bytes into the optional header.
        let exports_rva = u32_at(&file, nt + 24 + 112).unwrap();
        let exports = file_offset(headers, exports_rva, 40).unwrap() as usize;
        assert_ne!(exports, exports_rva as usize);
        let name_rva = u32_at(&file, exports + 12).unwrap();
        let name = file_offset(headers, name_rva, 1).unwrap() as usize;
        let name_len = file[name..].iter().position(|&b| b == 0).unwrap();
        assert_eq!(&file[name..name + name_len], b"isapi_freeze_loader.dll");
    }
}
