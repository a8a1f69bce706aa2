//! `isapi-freeze trace DIST`: follows the output directory's logs live (the loader's and
//! the installer's), with the same follower `SCRIPT.exe trace` uses on the server.

use anyhow::{bail, Result};

use crate::cli::TraceArgs;
use isapi_freeze_format::MANIFEST;

pub fn trace(args: TraceArgs) -> Result<i32> {
    if !args.dist.join(MANIFEST).is_file() {
        bail!(
            "{} is not an isapi-freeze output directory (it has no {MANIFEST}); pass the --dist-dir of a freeze",
            args.dist.display()
        );
    }
    if !args.no_follow {
        eprintln!("following {}/logs (Ctrl+C to stop)", args.dist.display());
    }
    let stdout = std::io::stdout();
    match isapi_freeze_diagnostics::trace::follow(&args.dist, args.lines, !args.no_follow, &mut stdout.lock()) {
        Ok(()) => Ok(0),
        // A closed pipe (`| head`) ends the trace; that is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}
