//! Copies the WGSL kernels (`shaders/`) where `src/gpu/shaders.rs` includes them from. For the
//! browser they lose their comments and indentation on the way: the text is part of the wasm
//! file every page downloads (about 6 KB less gzipped), and WGSL has no string literals, so
//! `//` always starts a comment. Native builds keep them as written, for readable errors.

use std::path::Path;

fn minify(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("").trim();
        if !code.is_empty() {
            out.push_str(code);
            out.push('\n');
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path, strip: bool) {
    std::fs::create_dir_all(to).expect("create the shader output folder");
    for entry in std::fs::read_dir(from).expect("read shaders/") {
        let path = entry.expect("a shader folder entry").path();
        let dest = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            copy_dir(&path, &dest, strip);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            let src = std::fs::read_to_string(&path).expect("read a shader");
            std::fs::write(&dest, if strip { minify(&src) } else { src }).expect("write a shader");
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=shaders");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let strip = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    copy_dir(Path::new("shaders"), &Path::new(&out).join("shaders"), strip);
}
