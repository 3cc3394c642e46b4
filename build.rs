fn main() {
    // sqlx::migrate!() embeds migrations/: rebuild when a file is added there.
    println!("cargo:rerun-if-changed=migrations");
}
