//! Links the loader at an image base of its own.
//!
//! Every DLL built by mingw or MSVC asks for 0x180000000, python3XY.dll too. The loader is
//! mapped first and took that address, so python3XY.dll, 6 MB, was relocated: under Wine the
//! relocations are applied in the process, which costs milliseconds of the cold start and
//! leaves the pages it patched private to the process. Away from it, python3XY.dll maps where
//! it was linked and its pages stay shared with the file. (Windows's ASLR relocates every
//! DLL in the kernel whatever base it asks for: nothing changes there.)
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows")
    {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--image-base=0x1c0000000");
    }
}
