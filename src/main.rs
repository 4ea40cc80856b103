fn main() {
    std::process::exit(mongoshift::cli::main());
}
