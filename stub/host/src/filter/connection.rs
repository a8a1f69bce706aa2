//! One connection's filter state and the registry that finds it from a callback. Every
//! connection has one HTTP_FILTER_CONTEXT per filter (so `pFilterContext` lives as long as
//! the connection) whose ServerContext is a number keying the registry, as ConnID does for
//! extensions: a callback with a stale context fails instead of touching freed memory.
//! AllocMem blocks live until the connection ends.

use std::collections::HashMap;
use std::ffi::c_void;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use windows_sys::Win32::Foundation::FALSE;
use windows_sys::Win32::System::Iis::{HTTP_FILTER_CONTEXT, SF_NOTIFY_END_OF_NET_SESSION};

use super::callbacks::{add_response_headers, alloc_mem, get_server_variable, server_support_function, write_client};
use super::chain::Filters;
use super::headers::Editable;
use super::{Flow, HTTP_FILTER_REVISION};
use crate::ecb::lock;
use crate::http::RequestHead;
use crate::variables::RequestInfo;

/// What filters did to the response on their own (WriteClient, SendResponseHeader).
#[derive(Default, Clone, Copy)]
pub struct FilterResponse {
    pub status: Option<u16>,
    pub bytes: u64,
}

#[derive(Default)]
pub(super) struct State {
    /// AllocMem blocks, freed at the end of the connection.
    pub memory: Vec<Box<[u8]>>,
    /// Per filter: notifications disabled for the rest of this request.
    pub disabled: Vec<u32>,
    pub editable: Editable,
    /// For GetServerVariable.
    pub info: Option<RequestInfo>,
    /// AddResponseHeaders lines waiting for the next response head.
    pub added: Vec<(String, String)>,
    pub response: FilterResponse,
    /// The physical path a URL_MAP filter chose for this request.
    pub translated: Option<String>,
    /// The request's Basic credentials, as AUTHENTICATION filters left them.
    pub credentials: Option<(String, String)>,
    /// SF_DENIED_* for an ACCESS_DENIED raised on this request's 401.
    pub denied_reason: u32,
}

/// One connection's filter state; reached from callbacks through the registry.
pub struct Connection {
    id: usize,
    pub(super) filters: Arc<Filters>,
    /// One context per filter, allocated once so pointers to them stay valid.
    contexts: *mut HTTP_FILTER_CONTEXT,
    /// The client's socket, for what filters write themselves.
    pub(super) socket: Mutex<TcpStream>,
    pub(super) state: Mutex<State>,
    pub(super) remote: SocketAddr,
    pub(super) local: SocketAddr,
    vpath: String,
    physical_root: String,
    ended: AtomicBool,
}

// SAFETY: `contexts` is owned by the connection (freed in Drop) and only handed to filters
// during notifications, which the ISAPI contract lets run on any thread.
unsafe impl Send for Connection {}
// SAFETY: as above; everything else is behind mutexes or atomics.
unsafe impl Sync for Connection {}

static CONNECTIONS: LazyLock<Mutex<HashMap<usize, Arc<Connection>>>> = LazyLock::new(Default::default);
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The connection and filter index a context pointer belongs to.
pub(super) fn connection_of(pfc: *mut HTTP_FILTER_CONTEXT) -> Option<(Arc<Connection>, usize)> {
    if pfc.is_null() {
        return None;
    }
    // SAFETY: a non-null context from a filter is one we handed out; its ServerContext is
    // the connection id, which is checked against the registry before any other use.
    let id = unsafe { (*pfc).ServerContext } as usize;
    let connection = lock(&CONNECTIONS).get(&id).cloned()?;
    let offset = (pfc as usize).checked_sub(connection.contexts as usize)?;
    let size = std::mem::size_of::<HTTP_FILTER_CONTEXT>();
    let index = offset / size;
    (offset % size == 0 && index < connection.filters.len()).then_some((connection, index))
}

impl Connection {
    /// The filter state of a new connection, or None when no filter is loaded.
    pub fn open(
        filters: &Arc<Filters>,
        stream: &TcpStream,
        remote: SocketAddr,
        local: SocketAddr,
        vpath: &str,
        physical_root: &str,
    ) -> Option<Arc<Connection>> {
        if filters.is_empty() {
            return None;
        }
        let socket = stream.try_clone().ok()?;
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let contexts: Box<[HTTP_FILTER_CONTEXT]> = (0..filters.len())
            .map(|_| HTTP_FILTER_CONTEXT {
                cbSize: std::mem::size_of::<HTTP_FILTER_CONTEXT>() as u32,
                Revision: HTTP_FILTER_REVISION,
                ServerContext: id as *mut c_void,
                ulReserved: 0,
                fIsSecurePort: FALSE,
                pFilterContext: std::ptr::null_mut(),
                GetServerVariable: get_server_variable as *const () as isize,
                AddResponseHeaders: add_response_headers as *const () as isize,
                WriteClient: write_client as *const () as isize,
                AllocMem: alloc_mem as *const () as isize,
                ServerSupportFunction: server_support_function as *const () as isize,
            })
            .collect();
        let connection = Arc::new(Connection {
            id,
            filters: filters.clone(),
            contexts: Box::into_raw(contexts).cast(),
            socket: Mutex::new(socket),
            state: Mutex::new(State {
                disabled: vec![0; filters.len()],
                ..State::default()
            }),
            remote,
            local,
            vpath: vpath.to_string(),
            physical_root: physical_root.to_string(),
            ended: AtomicBool::new(false),
        });
        lock(&CONNECTIONS).insert(id, connection.clone());
        Some(connection)
    }

    /// Raises one notification through the filters that want it, in order.
    pub(super) fn notify(&self, kind: u32, data: *mut c_void) -> Flow {
        for (index, filter) in self.filters.iter().enumerate() {
            if !filter.wants(kind) || lock(&self.state).disabled[index] & kind != 0 {
                continue;
            }
            // SAFETY: `index` is within the contexts array, which lives as long as `self`.
            let pfc = unsafe { self.contexts.add(index) };
            // SAFETY: the context is this filter's, and the caller keeps `data` (the
            // notification struct for `kind`) alive for the call.
            if let Some(flow) = unsafe { filter.notify(pfc, kind, data) } {
                return flow;
            }
        }
        Flow::Continue
    }

    /// What GetServerVariable answers from: the request as the filters have left it.
    pub(super) fn info_for(&self, head: &RequestHead, state: &State) -> RequestInfo {
        RequestInfo {
            translated: state.translated.clone(),
            credentials: state.credentials.clone(),
            ..RequestInfo::new(head.clone(), self.remote, self.local, &self.vpath, &self.physical_root)
        }
    }

    /// Refreshes what GetServerVariable answers from, after a notification changed it.
    pub(super) fn refresh_info(&self, head: &RequestHead) {
        let mut state = lock(&self.state);
        let info = self.info_for(head, &state);
        state.info = Some(info);
    }

    /// What the filters decided for the request the extension then sees: the physical path
    /// (URL_MAP) and the credentials (AUTHENTICATION, AUTH_COMPLETE).
    pub fn complete_info(&self, info: &mut RequestInfo) {
        let state = lock(&self.state);
        info.translated = state.translated.clone();
        info.credentials = state.credentials.clone();
    }

    /// What the filters sent themselves during this request.
    pub fn filter_response(&self) -> FilterResponse {
        lock(&self.state).response
    }

    /// END_OF_NET_SESSION, then the connection's memory is freed (once).
    pub fn end_of_net_session(&self) {
        if self.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.filters.wanted(SF_NOTIFY_END_OF_NET_SESSION) {
            lock(&self.state).disabled.iter_mut().for_each(|d| *d = 0);
            let _ = self.notify(SF_NOTIFY_END_OF_NET_SESSION, std::ptr::null_mut());
        }
        lock(&CONNECTIONS).remove(&self.id);
        lock(&self.state).memory.clear();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.contexts, self.filters.len());
        // SAFETY: `contexts` came from Box::into_raw of a boxed slice of this length, and
        // the connection (hence every use of it) is gone.
        drop(unsafe { Box::from_raw(slice) });
    }
}
