fn main() {
    mongoshift::alloc_tuning::bound_large_blocks();
    std::process::exit(mongoshift::cli::main());
}
