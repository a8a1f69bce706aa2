//! The points where a connection raises notifications, in IIS's order: each fills its
//! httpfilt.h struct (HTTP_FILTER_RAW_DATA, _PREPROC_HEADERS, _URL_MAP, _AUTHENT,
//! _AUTH_COMPLETE_INFO, _ACCESS_DENIED, _LOG), runs the chain, and takes back what the
//! filters changed: bytes, the request or response head, the path, the user, the log record.

use std::ffi::{c_void, CString};

use windows_sys::Win32::Foundation::FALSE;
use windows_sys::Win32::System::Iis::{
    HTTP_FILTER_ACCESS_DENIED, HTTP_FILTER_AUTHENT, HTTP_FILTER_AUTH_COMPLETE_INFO, HTTP_FILTER_LOG,
    HTTP_FILTER_PREPROC_HEADERS, HTTP_FILTER_RAW_DATA, HTTP_FILTER_URL_MAP, SF_DENIED_APPLICATION, SF_DENIED_FILTER,
    SF_DENIED_LOGON, SF_MAX_PASSWORD, SF_MAX_USERNAME, SF_NOTIFY_ACCESS_DENIED, SF_NOTIFY_AUTHENTICATION,
    SF_NOTIFY_AUTH_COMPLETE, SF_NOTIFY_END_OF_REQUEST, SF_NOTIFY_LOG, SF_NOTIFY_PREPROC_HEADERS,
    SF_NOTIFY_READ_RAW_DATA, SF_NOTIFY_SEND_RESPONSE, SF_NOTIFY_URL_MAP,
};

use super::auth::basic_credentials;
use super::callbacks::{add_header, arg, get_header, get_user_token, set_header};
use super::connection::{Connection, FilterResponse};
use super::headers::Editable;
use super::log::LogRecord;
use super::Flow;
use crate::ecb::lock;
use crate::http::{FramedHead, RequestHead};

/// One notification of a parsed request: it fills its struct, raises it and takes back
/// what the filters changed.
type RequestNotification = fn(&Connection, &mut RequestHead) -> Flow;

/// Room for a physical path in URL_MAP (MAX_PATH is too small for Wine's Z:\ paths).
const PATH_BUFFER: usize = 1024;

fn c_str(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("NULs removed")
}

/// A filled buffer's text: up to its NUL, or to its end when a filter left none.
fn buffer_text(buffer: &[u8]) -> String {
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// The struct PREPROC_HEADERS and SEND_RESPONSE pass: the header callbacks, and the status.
fn header_callbacks(status: u32) -> HTTP_FILTER_PREPROC_HEADERS {
    HTTP_FILTER_PREPROC_HEADERS {
        GetHeader: get_header as *const () as isize,
        SetHeader: set_header as *const () as isize,
        AddHeader: add_header as *const () as isize,
        HttpStatus: status,
        dwReserved: 0,
    }
}

impl Connection {
    /// READ_RAW_DATA on bytes just read: the bytes the server goes on with, and the flow.
    pub(super) fn read_raw(&self, data: Vec<u8>) -> (Flow, Vec<u8>) {
        if !self.filters.wanted(SF_NOTIFY_READ_RAW_DATA) {
            return (Flow::Continue, data);
        }
        self.raw(SF_NOTIFY_READ_RAW_DATA, data)
    }

    /// READ_RAW_DATA or SEND_RAW_DATA: the bytes as the filters left them, and the flow.
    pub(super) fn raw(&self, kind: u32, mut data: Vec<u8>) -> (Flow, Vec<u8>) {
        let mut raw = HTTP_FILTER_RAW_DATA {
            pvInData: data.as_mut_ptr().cast(),
            cbInData: data.len() as u32,
            cbInBuffer: data.len() as u32,
            dwReserved: 0,
        };
        let flow = self.notify(kind, (&mut raw as *mut HTTP_FILTER_RAW_DATA).cast());
        let out = if raw.pvInData.is_null() {
            Vec::new()
        } else {
            // SAFETY: the filter leaves pvInData pointing at cbInData bytes: our buffer or
            // AllocMem memory, both alive here.
            unsafe { std::slice::from_raw_parts(raw.pvInData.cast::<u8>(), raw.cbInData as usize) }.to_vec()
        };
        (flow, out)
    }

    /// Puts a request head where the header callbacks edit it.
    fn load_head(&self, head: &RequestHead) {
        let mut state = lock(&self.state);
        state.editable = Editable::request(head);
        let info = self.info_for(head, &state);
        state.info = Some(info);
    }

    /// Raises a notification whose filters edit the request head (PREPROC_HEADERS,
    /// AUTH_COMPLETE) and takes the edited head back: Error if they left a URL that is not
    /// one.
    fn notify_head(&self, kind: u32, data: *mut c_void, head: &mut RequestHead) -> Flow {
        let flow = self.notify(kind, data);
        let editable = lock(&self.state).editable.clone();
        if let Err(url) = editable.apply_to_request(head) {
            eprintln!("isapi-host: a filter set the URL to {url:?}, which is not an absolute path");
            return Flow::Error;
        }
        self.refresh_info(head);
        flow
    }

    /// The notifications of a parsed request, in IIS's order: PREPROC_HEADERS (which may
    /// change the request line and headers), URL_MAP, AUTHENTICATION, AUTH_COMPLETE. The
    /// first that does not let the request go on decides.
    pub fn request_head(&self, head: &mut RequestHead) -> Flow {
        {
            let mut state = lock(&self.state);
            state.response = FilterResponse::default();
            state.added.clear();
            state.translated = None;
            state.credentials = basic_credentials(head);
            state.denied_reason = SF_DENIED_APPLICATION;
        }
        self.load_head(head);
        let in_order: [(u32, RequestNotification); 4] = [
            (SF_NOTIFY_PREPROC_HEADERS, Self::preproc_headers),
            (SF_NOTIFY_URL_MAP, Self::url_map),
            (SF_NOTIFY_AUTHENTICATION, Self::authentication),
            (SF_NOTIFY_AUTH_COMPLETE, Self::auth_complete),
        ];
        for (kind, notification) in in_order {
            if self.filters.wanted(kind) {
                let flow = notification(self, head);
                if flow != Flow::Continue {
                    return flow;
                }
            }
        }
        Flow::Continue
    }

    /// PREPROC_HEADERS: filters may change the request line and headers.
    fn preproc_headers(&self, head: &mut RequestHead) -> Flow {
        let mut preproc = header_callbacks(0);
        let data = (&mut preproc as *mut HTTP_FILTER_PREPROC_HEADERS).cast();
        let flow = self.notify_head(SF_NOTIFY_PREPROC_HEADERS, data, head);
        if flow == Flow::Continue {
            // The filter may have changed the Authorization header.
            lock(&self.state).credentials = basic_credentials(head);
            self.refresh_info(head);
        }
        flow
    }

    /// URL_MAP: a filter may choose another physical path for the request.
    fn url_map(&self, head: &mut RequestHead) -> Flow {
        let url = c_str(&head.path);
        let mapped = lock(&self.state)
            .info
            .as_ref()
            .map(|i| i.map_url(&head.path))
            .unwrap_or_default();
        let mut physical = mapped.clone().into_bytes();
        physical.resize(PATH_BUFFER, 0);
        let mut map = HTTP_FILTER_URL_MAP {
            pszURL: url.as_ptr().cast(),
            pszPhysicalPath: physical.as_mut_ptr(),
            cbPathBuff: PATH_BUFFER as u32,
        };
        let flow = self.notify(SF_NOTIFY_URL_MAP, (&mut map as *mut HTTP_FILTER_URL_MAP).cast());
        let chosen = if std::ptr::eq(map.pszPhysicalPath, physical.as_ptr()) {
            // Our buffer, written in place.
            buffer_text(&physical)
        } else {
            // SAFETY: the filter pointed pszPhysicalPath at a NUL-terminated string of its
            // own that lives through the notification.
            unsafe { arg(map.pszPhysicalPath) }.unwrap_or_default()
        };
        if chosen != mapped {
            lock(&self.state).translated = Some(chosen);
            self.refresh_info(head);
        }
        flow
    }

    /// AUTHENTICATION: filters see the Basic user and password in buffers of IIS's sizes
    /// and may replace them; an empty user is the anonymous user.
    fn authentication(&self, head: &mut RequestHead) -> Flow {
        let (user, password) = basic_credentials(head).unwrap_or_default();
        let mut user_buffer = vec![0u8; SF_MAX_USERNAME as usize];
        let mut password_buffer = vec![0u8; SF_MAX_PASSWORD as usize];
        for (text, buffer) in [(&user, &mut user_buffer), (&password, &mut password_buffer)] {
            let n = text.len().min(buffer.len() - 1);
            buffer[..n].copy_from_slice(&text.as_bytes()[..n]);
        }
        let mut authent = HTTP_FILTER_AUTHENT {
            pszUser: user_buffer.as_mut_ptr(),
            cbUserBuff: SF_MAX_USERNAME,
            pszPassword: password_buffer.as_mut_ptr(),
            cbPasswordBuff: SF_MAX_PASSWORD,
        };
        let flow = self.notify(
            SF_NOTIFY_AUTHENTICATION,
            (&mut authent as *mut HTTP_FILTER_AUTHENT).cast(),
        );
        // The filter writes within the buffers.
        let credentials = (buffer_text(&user_buffer), buffer_text(&password_buffer));
        lock(&self.state).credentials = (!credentials.0.is_empty()).then_some(credentials);
        self.refresh_info(head);
        flow
    }

    /// AUTH_COMPLETE: filters see the head again once the user is known, may change it,
    /// and may reset the authentication (fResetAuth), which denies the request.
    fn auth_complete(&self, head: &mut RequestHead) -> Flow {
        self.load_head(head);
        let mut complete = HTTP_FILTER_AUTH_COMPLETE_INFO {
            GetHeader: get_header as *const () as isize,
            SetHeader: set_header as *const () as isize,
            AddHeader: add_header as *const () as isize,
            GetUserToken: get_user_token as *const () as isize,
            HttpStatus: 200,
            fResetAuth: FALSE,
            dwReserved: 0,
        };
        let data = (&mut complete as *mut HTTP_FILTER_AUTH_COMPLETE_INFO).cast();
        let flow = self.notify_head(SF_NOTIFY_AUTH_COMPLETE, data, head);
        if flow == Flow::Continue && complete.fResetAuth != FALSE {
            let mut state = lock(&self.state);
            state.credentials = None;
            state.denied_reason = SF_DENIED_LOGON | SF_DENIED_FILTER;
            return Flow::Denied;
        }
        flow
    }

    /// ACCESS_DENIED (for a 401) and SEND_RESPONSE on a response head about to be sent, then
    /// the AddResponseHeaders lines; false if a filter finished the request instead.
    pub(super) fn prepare_head(&self, head: &mut FramedHead) -> bool {
        let editable = Editable::response(&head.bytes);
        if head.status == 401 && self.filters.wanted(SF_NOTIFY_ACCESS_DENIED) {
            let (info, reason) = {
                let state = lock(&self.state);
                (state.info.clone(), state.denied_reason)
            };
            let url = c_str(&info.as_ref().map(|i| i.path.clone()).unwrap_or_default());
            let physical = c_str(
                &info
                    .and_then(|i| i.server_variable("PATH_TRANSLATED"))
                    .unwrap_or_default(),
            );
            let mut denied = HTTP_FILTER_ACCESS_DENIED {
                pszURL: url.as_ptr().cast(),
                pszPhysicalPath: physical.as_ptr().cast(),
                dwReason: if reason == 0 { SF_DENIED_APPLICATION } else { reason },
            };
            match self.notify(
                SF_NOTIFY_ACCESS_DENIED,
                (&mut denied as *mut HTTP_FILTER_ACCESS_DENIED).cast(),
            ) {
                Flow::Continue | Flow::ReadNext => {}
                _ => return false,
            }
        }
        lock(&self.state).editable = editable;
        if self.filters.wanted(SF_NOTIFY_SEND_RESPONSE) {
            let mut response = header_callbacks(head.status as u32);
            match self.notify(
                SF_NOTIFY_SEND_RESPONSE,
                (&mut response as *mut HTTP_FILTER_PREPROC_HEADERS).cast(),
            ) {
                Flow::Continue | Flow::ReadNext => {}
                _ => return false,
            }
        }
        let mut state = lock(&self.state);
        let added = std::mem::take(&mut state.added);
        let mut editable = std::mem::take(&mut state.editable);
        drop(state);
        editable.add_fields(added);
        if let Some((code, bytes)) = editable.response_head() {
            head.status = code;
            head.bytes = bytes;
        }
        true
    }

    /// END_OF_REQUEST, then LOG: the record the filters leave is what gets logged.
    pub fn end_of_request(&self, mut record: LogRecord) -> LogRecord {
        if self.filters.wanted(SF_NOTIFY_END_OF_REQUEST) {
            let _ = self.notify(SF_NOTIFY_END_OF_REQUEST, std::ptr::null_mut());
        }
        if self.filters.wanted(SF_NOTIFY_LOG) {
            if record.user.is_empty() {
                let state = lock(&self.state);
                record.user = state.credentials.as_ref().map(|(u, _)| u.clone()).unwrap_or_default();
            }
            record = self.notify_log(record);
        }
        let mut state = lock(&self.state);
        state.disabled.iter_mut().for_each(|d| *d = 0);
        state.added.clear();
        state.info = None;
        record
    }

    /// LOG: filters may change every field of the record.
    fn notify_log(&self, record: LogRecord) -> LogRecord {
        let texts = [
            &record.client,
            &record.user,
            &record.server,
            &record.operation,
            &record.target,
            &record.parameters,
        ]
        .map(|t| c_str(t));
        let mut log = HTTP_FILTER_LOG {
            pszClientHostName: texts[0].as_ptr().cast(),
            pszClientUserName: texts[1].as_ptr().cast(),
            pszServerName: texts[2].as_ptr().cast(),
            pszOperation: texts[3].as_ptr().cast(),
            pszTarget: texts[4].as_ptr().cast(),
            pszParameters: texts[5].as_ptr().cast(),
            dwHttpStatus: record.status,
            dwWin32Status: record.win32_status,
            dwBytesSent: record.bytes_sent,
            dwBytesRecvd: record.bytes_received,
            msTimeForProcessing: record.milliseconds,
        };
        let _ = self.notify(SF_NOTIFY_LOG, (&mut log as *mut HTTP_FILTER_LOG).cast());
        // SAFETY: the filter leaves each field null or pointing at a NUL-terminated
        // string: ours (alive here) or AllocMem memory (alive until the connection ends).
        let read = |p: *const u8| unsafe { arg(p) }.unwrap_or_default();
        LogRecord {
            client: read(log.pszClientHostName),
            user: read(log.pszClientUserName),
            server: read(log.pszServerName),
            operation: read(log.pszOperation),
            target: read(log.pszTarget),
            parameters: read(log.pszParameters),
            status: log.dwHttpStatus,
            win32_status: log.dwWin32Status,
            bytes_sent: log.dwBytesSent,
            bytes_received: log.dwBytesRecvd,
            milliseconds: log.msTimeForProcessing,
        }
    }
}
