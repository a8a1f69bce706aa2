//! Links the loader for how Wine maps it: at an image base of its own, with sections on pages.
//!
//! Every DLL built by mingw or MSVC asks for 0x180000000, python3XY.dll too. The loader is
//! mapped first and took that address, so python3XY.dll, 6 MB, was relocated: under Wine the
//! relocations are applied in the process, which costs milliseconds of the cold start and
//! leaves the pages it patched private to the process. Away from it, python3XY.dll maps where
//! it was linked. (Windows's ASLR relocates every DLL in the kernel whatever base it asks
//! for: nothing changes there.)
//!
//! Wine maps a section from its file only if it starts on a page in the file; mingw's default
//! FileAlignment (0x200) makes Wine copy every section into the process at load, resident
//! for good. With 0x1000 only the pages a process reads become resident.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows")
    {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--image-base=0x1c0000000");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--file-alignment=0x1000");
    }
}
