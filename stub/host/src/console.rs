//! Ctrl+C, Ctrl+Break and the console closing stop the host cleanly (TerminateExtension and
//! TerminateFilter run, as when IIS stops a worker), instead of killing it mid-request.

use std::sync::mpsc::Sender;
use std::sync::{Mutex, OnceLock};

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{FALSE, TRUE};
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
};

static STOP: OnceLock<Mutex<Sender<()>>> = OnceLock::new();

/// Sends on `stop` when the console asks the process to stop.
pub fn on_ctrl_c(stop: Sender<()>) {
    if STOP.set(Mutex::new(stop)).is_ok() {
        // SAFETY: `handler` is a plain function with the HANDLER_ROUTINE signature that lives
        // for the whole process.
        unsafe { SetConsoleCtrlHandler(Some(handler), TRUE) };
    }
}

unsafe extern "system" fn handler(event: u32) -> BOOL {
    match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT | CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => {
            if let Some(Ok(stop)) = STOP.get().map(Mutex::lock) {
                let _ = stop.send(());
            }
            TRUE
        }
        _ => FALSE,
    }
}
