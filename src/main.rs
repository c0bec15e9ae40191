//! The `workmail-pat` binary: everything lives in the library.

fn main() {
    std::process::exit(workmail_pat::cli::main());
}
