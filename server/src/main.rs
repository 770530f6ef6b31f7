use std::process::ExitCode;

// Requests allocate many small short-lived buffers across two threads; glibc's
// allocator took about a tenth of the server's time under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    server::cli::main().await
}
