use std::process::ExitCode;

// Requests allocate many small short-lived buffers across two threads; glibc's
// allocator took about a tenth of the server's time under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    server::allocator::return_freed_memory_at_once();
    server::cli::main().await
}
