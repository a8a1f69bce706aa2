//! An app-archive member's contents from its packed bytes: copied when stored, inflated in
//! one call into a buffer of the recorded size when deflated. Kept apart from the zip
//! reading (and Windows) so that what it refuses is unit-tested on the build machine.

use libdeflater::{DecompressionError, Decompressor};

/// How a member's bytes are packed: the zip compression methods the freezer writes.
#[derive(Clone, Copy, Debug)]
pub enum Packing {
    Stored,
    Deflated,
}

/// The contents of a member packed as `packed` the way `packing` says, whose central
/// directory records `size` bytes once unpacked; the error says why not, for the caller to
/// prefix with the member's name.
///
/// libdeflate inflates the whole buffer about twice as fast as a streaming inflater with a
/// CRC-32 beside it, and every import reads a member: this is a good part of an app's cold
/// start. The CRC-32 is not checked, as the archive's SHA-256 was when it was opened; the
/// size is, so a member that inflates to more or fewer bytes than recorded is refused.
pub fn unpack(packed: &[u8], packing: Packing, size: u64) -> Result<Vec<u8>, String> {
    let size = usize::try_from(size).map_err(|_| format!("its recorded size ({size} bytes) is too large"))?;
    let data = match packing {
        Packing::Stored => packed.to_vec(),
        Packing::Deflated => {
            // Deflate packs at most 1032 bytes into one (a 258-byte match in two bits): a
            // larger recorded size is damage, refused before it is allocated.
            if size / 1032 > packed.len() {
                return Err(format!(
                    "its recorded size ({size} bytes) is more than its {} packed bytes can hold",
                    packed.len()
                ));
            }
            let mut data = vec![0u8; size];
            let inflated = Decompressor::new()
                .deflate_decompress(packed, &mut data)
                .map_err(|e| match e {
                    DecompressionError::BadData => "its deflate data is corrupt".to_owned(),
                    DecompressionError::InsufficientSpace => {
                        format!("it inflates to more than the {size} bytes recorded")
                    }
                })?;
            data.truncate(inflated);
            data
        }
    };
    if data.len() != size {
        return Err(format!("it holds {} bytes, not the {size} recorded", data.len()));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libdeflater::{CompressionLvl, Compressor};

    /// Text long and repetitive enough that deflate uses back-references.
    fn contents() -> Vec<u8> {
        (0..400)
            .flat_map(|i| format!("line {} of a module\n", i % 37).into_bytes())
            .collect()
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut compressor = Compressor::new(CompressionLvl::default());
        let mut packed = vec![0u8; compressor.deflate_compress_bound(data.len())];
        let len = compressor.deflate_compress(data, &mut packed).unwrap();
        packed.truncate(len);
        packed
    }

    #[test]
    fn a_deflated_member_inflates_to_its_contents() {
        let data = contents();
        let packed = deflate(&data);
        assert!(packed.len() < data.len() / 4);
        assert_eq!(unpack(&packed, Packing::Deflated, data.len() as u64).unwrap(), data);
    }

    #[test]
    fn a_stored_member_is_its_own_contents() {
        let data = contents();
        assert_eq!(unpack(&data, Packing::Stored, data.len() as u64).unwrap(), data);
    }

    #[test]
    fn empty_members_unpack_to_nothing() {
        assert_eq!(unpack(&[], Packing::Stored, 0).unwrap(), b"");
        assert_eq!(unpack(&deflate(b""), Packing::Deflated, 0).unwrap(), b"");
    }

    #[test]
    fn a_member_longer_or_shorter_than_recorded_is_refused() {
        let data = contents();
        let packed = deflate(&data);
        let len = data.len() as u64;
        assert_eq!(
            unpack(&packed, Packing::Deflated, len - 1).unwrap_err(),
            format!("it inflates to more than the {} bytes recorded", len - 1)
        );
        assert_eq!(
            unpack(&packed, Packing::Deflated, len + 1).unwrap_err(),
            format!("it holds {len} bytes, not the {} recorded", len + 1)
        );
        assert_eq!(
            unpack(&data, Packing::Stored, len + 1).unwrap_err(),
            format!("it holds {len} bytes, not the {} recorded", len + 1)
        );
    }

    #[test]
    fn a_recorded_size_past_what_deflate_can_pack_is_refused_unallocated() {
        let packed = deflate(&vec![b'x'; 1 << 20]);
        let most = 1032 * packed.len() as u64;
        assert_eq!(unpack(&packed, Packing::Deflated, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(
            unpack(&packed, Packing::Deflated, most).unwrap_err(),
            format!("it holds {} bytes, not the {most} recorded", 1 << 20)
        );
        assert_eq!(
            unpack(&packed, Packing::Deflated, u64::MAX).unwrap_err(),
            format!(
                "its recorded size ({} bytes) is more than its {} packed bytes can hold",
                u64::MAX,
                packed.len()
            )
        );
    }

    #[test]
    fn corrupt_deflate_data_is_refused() {
        let data = contents();
        let packed = deflate(&data);
        let len = data.len() as u64;
        // Cut short, and with the block header's type set to the reserved 0b11.
        let error = "its deflate data is corrupt";
        assert_eq!(
            unpack(&packed[..packed.len() / 2], Packing::Deflated, len).unwrap_err(),
            error
        );
        let mut reserved = packed.clone();
        reserved[0] |= 0b110;
        assert_eq!(unpack(&reserved, Packing::Deflated, len).unwrap_err(), error);
    }
}
