//! The page's assets are embedded at compile time (`src/ui/api.rs`): an asset added to
//! their folder rebuilds the crate, as an edited one does.

fn main() {
    println!("cargo:rerun-if-changed=src/ui/assets");
}
