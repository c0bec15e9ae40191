//! The `workmail-pat` binary: everything lives in the library.

// A server-grade allocator (issue 14): glibc malloc was a third of the time of a page of tokens. mimalloc measured
// best (docs/PERFORMANCE.md); `--features jemalloc` builds the jemalloc variant it was compared with.
#[cfg(not(feature = "jemalloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(workmail_pat::cli::main());
}
