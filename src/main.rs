//! marketing-pipeline: the binary. Everything but the allocator is in the
//! library (`app::main`).

// Polars allocates and frees large buffers all the time; mimalloc reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit` in mimalloc.h, which
/// libmimalloc-sys does not export: 4 in the mimalloc that libmimalloc-sys
/// 0.1.49 bundles, which is why Cargo.toml pins that version exactly.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Sets mimalloc's options before the first allocation, which reserves its
/// first arena: that happens before `main`, so this runs from `.init_array`.
/// - Large OS pages back Polars' big buffers with transparent huge pages
///   (THP "madvise"): faulting in 4 KiB pages one by one dominates
///   validate otherwise.
/// - Arenas are committed as they fill, not eagerly: with huge pages an
///   eagerly committed arena is charged to RSS in 2 MiB steps wherever it
///   is touched, which raises the peak.
///
/// The measurements are in the README ("Why the code is shaped so").
///
/// A `MIMALLOC_*` variable in the environment still overrides either.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
extern "C" fn configure_allocator() {
    // Eager commit first: reading a variable that is set allocates, and the
    // first allocation reserves the arena.
    for (option, value, variable) in [
        (
            MI_OPTION_ARENA_EAGER_COMMIT,
            0,
            "MIMALLOC_ARENA_EAGER_COMMIT",
        ),
        (
            libmimalloc_sys::mi_option_large_os_pages,
            1,
            "MIMALLOC_LARGE_OS_PAGES",
        ),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: runs before any thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

fn main() -> std::process::ExitCode {
    marketing_pipeline::app::main()
}
