//! Compiles `proto/brisk.proto` (and the etcd subset in `proto/etcd/`) with a vendored
//! `protoc`, so no system protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=../../proto/brisk.proto");
    println!("cargo:rerun-if-changed=../../proto/etcd/kv.proto");
    tonic_prost_build::configure()
        .compile_protos(&["../../proto/brisk.proto"], &["../../proto"])?;
    // The subset of etcd's API the comparison benchmark drives (client side only).
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&["../../proto/etcd/kv.proto"], &["../../proto/etcd"])?;
    Ok(())
}
