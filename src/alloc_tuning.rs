//! Memory that goes back to the system once a batch is done with it.
//!
//! Loads move multi-megabyte buffers (4 MB insert batches, the commands built from them,
//! the driver's messages) between threads. glibc's malloc raises its mmap threshold each
//! time such a block is freed, so after the first few batches every later one comes from a
//! thread's arena instead of its own mapping, and the arenas keep what they once held: a
//! restore of 256 MB peaked at 205–223 MB RSS that way, 154 MB with a fixed threshold (same
//! time); with one buffer per batch (`mongo::batch`), 163–169 MB against 106–114 MB. So
//! blocks of 1 MB and more are always mapped and unmapped on their own: it costs about
//! 0.5 s of system time per GB loaded (fresh pages), the price of a bound that holds.

/// Fix glibc's mmap threshold at 1 MB (which also turns its dynamic raising off). A no-op
/// on other C libraries.
pub fn bound_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a malloc parameter; it is called once, first thing in
        // main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
}
