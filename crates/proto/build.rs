//! Compiles `proto/brisk.proto` (and the etcd subset in `proto/etcd/`) with a vendored
//! `protoc`, so no system protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=../../proto/brisk.proto");
    println!("cargo:rerun-if-changed=../../proto/etcd/kv.proto");
    // The descriptor set feeds gRPC server reflection, so tools discover the API without
    // the .proto file.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("brisk_descriptor.bin"))
        .compile_protos(&["../../proto/brisk.proto"], &["../../proto"])?;
    // The subset of etcd's API the comparison benchmark drives (client side only).
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&["../../proto/etcd/kv.proto"], &["../../proto/etcd"])?;
    Ok(())
}
