//! What a frozen output holds, read back as a server would find it: the members of the app
//! archive embedded in `_NAME.dll`, and the files manifest.json lists.

use std::path::Path;

use isapi_freeze_format::manifest::Manifest;

/// The member names of the app archive inside a frozen DLL (or exe): the zip in its
/// resource section, from its first local header to its end record.
pub fn archive_members(image: &Path) -> Vec<String> {
    let bytes = std::fs::read(image).unwrap();
    let pe = goblin::pe::PE::parse(&bytes).unwrap();
    let rsrc = pe
        .sections
        .iter()
        .find(|s| s.name().ok() == Some(".rsrc"))
        .expect("a resource section");
    let start = rsrc.pointer_to_raw_data as usize;
    let section = &bytes[start..start + rsrc.size_of_raw_data as usize];
    let first = section
        .windows(4)
        .position(|w| w == b"PK\x03\x04")
        .expect("a zip in the resource section");
    let end = section
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("the zip's end record")
        + 22;
    let zip = zip::ZipArchive::new(std::io::Cursor::new(&section[first..end])).unwrap();
    zip.file_names().map(|name| name.unwrap().into_owned()).collect()
}

/// The output folder's manifest.json.
pub fn manifest(dist: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read_to_string(dist.join("manifest.json")).unwrap()).unwrap()
}
