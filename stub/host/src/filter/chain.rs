//! The loaded filters: each DLL loaded as IIS loads it (dll.rs) and asked GetFilterVersion
//! once, then kept in notification order (SF_NOTIFY_ORDER_*, then load order). A filter
//! knows which notifications it asked for and what its HttpFilterProc's answers mean.

use std::ffi::c_void;
use std::path::{Path, PathBuf};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Iis::{
    HTTP_FILTER_CONTEXT, HTTP_FILTER_VERSION, SF_NOTIFY_NONSECURE_PORT, SF_NOTIFY_ORDER_HIGH, SF_NOTIFY_ORDER_MEDIUM,
    SF_NOTIFY_READ_RAW_DATA, SF_NOTIFY_SECURE_PORT, SF_STATUS_REQ_ERROR, SF_STATUS_REQ_FINISHED,
    SF_STATUS_REQ_FINISHED_KEEP_CONN, SF_STATUS_REQ_HANDLED_NOTIFICATION, SF_STATUS_REQ_NEXT_NOTIFICATION,
    SF_STATUS_REQ_READ_NEXT,
};

use super::{Flow, HTTP_FILTER_REVISION};
use crate::dll::{self, Dll, EntryPoints, Kind, LoadError};

type GetFilterVersion = unsafe extern "system" fn(*mut HTTP_FILTER_VERSION) -> BOOL;
type HttpFilterProc = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, u32, *mut c_void) -> u32;
type TerminateFilter = unsafe extern "system" fn(u32) -> BOOL;

/// One loaded filter. Like extensions, it is never unloaded.
pub struct Filter {
    pub path: PathBuf,
    pub description: String,
    flags: u32,
    entry_points: EntryPoints<GetFilterVersion, HttpFilterProc, TerminateFilter>,
}

impl Filter {
    /// Loads the DLL by full path and calls GetFilterVersion.
    pub fn load(path: &Path) -> Result<Filter, LoadError> {
        let dll = Dll::load(path, Kind::Filter)?;
        // SAFETY: these are httpfilt.h's signatures for the three exports.
        let entry_points: EntryPoints<GetFilterVersion, _, _> = unsafe { dll.entry_points() }?;
        let mut info = HTTP_FILTER_VERSION {
            dwServerFilterVersion: HTTP_FILTER_REVISION,
            dwFilterVersion: 0,
            lpszFilterDesc: [0; 257],
            dwFlags: 0,
        };
        // SAFETY: `info` is a writable HTTP_FILTER_VERSION for the call.
        if unsafe { (entry_points.version)(&mut info) } == 0 {
            return Err(LoadError::VersionRefused {
                kind: Kind::Filter,
                path: dll.path,
            });
        }
        Ok(Filter {
            path: dll.path,
            description: dll::description(&info.lpszFilterDesc),
            flags: info.dwFlags,
            entry_points,
        })
    }

    fn priority(&self) -> u8 {
        if self.flags & SF_NOTIFY_ORDER_HIGH != 0 {
            2
        } else if self.flags & SF_NOTIFY_ORDER_MEDIUM != 0 {
            1
        } else {
            0
        }
    }

    /// Whether the filter asked for `kind` on a plain-HTTP port (no port flag means both).
    pub(super) fn wants(&self, kind: u32) -> bool {
        let ports = self.flags & (SF_NOTIFY_SECURE_PORT | SF_NOTIFY_NONSECURE_PORT);
        self.flags & kind != 0 && (ports == 0 || ports & SF_NOTIFY_NONSECURE_PORT != 0)
    }

    /// Calls HttpFilterProc for one notification: None to go on to the next filter, or
    /// what the chain decided.
    ///
    /// # Safety
    /// `pfc` is a live context handed out for this filter, and `data` the notification
    /// struct for `kind` (or null where httpfilt.h passes none), alive for the call.
    pub(super) unsafe fn notify(&self, pfc: *mut HTTP_FILTER_CONTEXT, kind: u32, data: *mut c_void) -> Option<Flow> {
        // SAFETY: upheld by the caller; the export has the httpfilt.h signature.
        let status = unsafe { (self.entry_points.proc_)(pfc, kind, data) } as i32;
        match status {
            SF_STATUS_REQ_NEXT_NOTIFICATION => None,
            SF_STATUS_REQ_HANDLED_NOTIFICATION => Some(Flow::Continue),
            SF_STATUS_REQ_FINISHED => Some(Flow::Finished { keep: false }),
            SF_STATUS_REQ_FINISHED_KEEP_CONN => Some(Flow::Finished { keep: true }),
            SF_STATUS_REQ_READ_NEXT if kind == SF_NOTIFY_READ_RAW_DATA => Some(Flow::ReadNext),
            SF_STATUS_REQ_ERROR => {
                eprintln!(
                    "isapi-host: filter {} returned SF_STATUS_REQ_ERROR for notification {kind:#x}",
                    self.path.display()
                );
                Some(Flow::Error)
            }
            other => {
                eprintln!(
                    "isapi-host: filter {} returned {other:#x}, which is no SF_STATUS_* value",
                    self.path.display()
                );
                Some(Flow::Error)
            }
        }
    }
}

/// The loaded filters in notification order: by SF_NOTIFY_ORDER_*, then load order.
#[derive(Default)]
pub struct Filters {
    list: Vec<Filter>,
}

impl Filters {
    pub fn new(mut list: Vec<Filter>) -> Filters {
        list.sort_by_key(|f| std::cmp::Reverse(f.priority()));
        Filters { list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Filter> {
        self.list.iter()
    }

    /// Whether any filter asked for `kind`: a notification nobody wants is not prepared.
    pub(super) fn wanted(&self, kind: u32) -> bool {
        self.list.iter().any(|f| f.wants(kind))
    }

    /// Calls each filter's TerminateFilter (at shutdown).
    pub fn terminate(&self, flags: u32) {
        for filter in &self.list {
            if let Some(terminate) = filter.entry_points.terminate {
                // SAFETY: the export has the httpfilt.h signature; it takes flags by value.
                unsafe { terminate(flags) };
            }
        }
    }
}
