//! The console's assets (`ui/dist`, built by `npm run build` in `ui/`) are embedded by
//! `rust-embed` when this crate compiles. Cargo must recompile it when they change, and
//! when they first appear: watch `ui/dist` if it exists, else `ui/` (which changes when
//! `ui/dist` is created).

use std::path::Path;

fn main() {
    let dist = Path::new("../../ui/dist");
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=../../ui/dist");
    } else {
        println!("cargo:rerun-if-changed=../../ui");
    }
}
