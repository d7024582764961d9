fn main() -> std::process::ExitCode {
    trawl::cli::main()
}

/// jemalloc rather than the system allocator: a run makes many small allocations on several
/// threads at once (records, ids, HTTP buffers), where glibc's arenas contend (see README, "Why
/// these crates").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
