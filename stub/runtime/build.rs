//! Links the runtime at an image base of its own, away from python3XY.dll's and the loader's,
//! with its sections on pages in the file: see stub/loader/build.rs for why.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows")
    {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--image-base=0x1b0000000");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--file-alignment=0x1000");
    }
}
