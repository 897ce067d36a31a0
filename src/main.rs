use clap::Parser;

/// Every request allocates and frees many small buffers on several threads (the HTTP workers,
/// the writer); mimalloc does that with less work than the system allocator. It is built
/// without transparent huge pages (the `no_thp` feature): with them, each 2 MiB region it
/// touched became resident whole, and an idle server held 35 MiB it never used.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_freed_memory_at_once();
    limit_malloc_arenas();
    let cli = dispatchlog::config::Cli::parse();
    // Database reads and password checks run on the blocking pool. Left at tokio's default of
    // 512 threads, bursts of reads kept starting threads (a read frees its connection while
    // its thread is still finishing, so the next read asks for another), and each thread's
    // allocator heap stayed: a 10-minute soak on SQLite grew from 122 to 212 threads and its
    // memory by half. The reads are bounded by --db-max-connections anyway.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dispatchlog: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatchlog::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatchlog: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What C code allocates (SQLite's page caches, on the writer and on every reader thread) goes
/// through glibc's malloc, which gives each thread that contends for it an arena of its own (up to
/// eight per core) and keeps what is freed in it. One arena per core keeps the memory of a busy
/// server flat.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(2);
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// mimalloc gives memory freed in bulk back to the operating system at once instead of some
/// milliseconds later. Several large buffers live briefly (a password check's 19 MiB, a feed
/// page of thousands of rows): kept around, they added up to the server's peak memory; returned
/// at once, they cost a little system time when they come back.
fn return_freed_memory_at_once() {
    /// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (version 3, which the `mimalloc`
    /// crate builds): in milliseconds, 10 by default.
    const PURGE_DELAY: std::ffi::c_int = 15;
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: sets one of mimalloc's options, which it reads atomically; any value is valid.
    unsafe { mi_option_set(PURGE_DELAY, 0) }
}
