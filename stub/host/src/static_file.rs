//! IIS's static file handler, as far as an ExecURL child with
//! HSE_EXEC_URL_IGNORE_CURRENT_INTERCEPTOR reaches it: the extension steps aside and the
//! next handler, which for a file on disk is the static one, answers. pywin32's redirector
//! sample serves its excluded pages so. What to answer is decided here, without I/O.

use std::path::Path;

/// What the static handler answers for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the file's bytes (none for HEAD) and this Content-Type.
    File {
        content_type: &'static str,
        head_only: bool,
    },
    /// 404: no file at that path (or a folder).
    NotFound,
    /// 405: the static handler serves GET and HEAD only.
    MethodNotAllowed,
}

/// The answer for `method` on `path`, where `is_file` says whether a regular file is there.
pub fn answer(method: &str, path: &Path, is_file: bool) -> Answer {
    let head_only = method.eq_ignore_ascii_case("HEAD");
    if !head_only && !method.eq_ignore_ascii_case("GET") {
        return Answer::MethodNotAllowed;
    }
    if !is_file {
        return Answer::NotFound;
    }
    Answer::File {
        content_type: content_type(path),
        head_only,
    }
}

/// The Content-Type IIS's default MIME map gives the file's extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "htm" | "html" => "text/html",
        "txt" => "text/plain",
        "css" => "text/css",
        "js" => "application/javascript",
        "json" => "application/json",
        "xml" => "text/xml",
        "png" => "image/png",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_head_serve_files_by_extension() {
        assert_eq!(
            answer("GET", Path::new("C:\\site\\iisstart.htm"), true),
            Answer::File {
                content_type: "text/html",
                head_only: false
            }
        );
        assert_eq!(
            answer("head", Path::new("C:\\site\\welcome.PNG"), true),
            Answer::File {
                content_type: "image/png",
                head_only: true
            }
        );
        assert_eq!(content_type(Path::new("C:\\site\\data")), "application/octet-stream");
    }

    #[test]
    fn a_missing_file_is_404_and_other_methods_405() {
        assert_eq!(answer("GET", Path::new("C:\\site\\gone.htm"), false), Answer::NotFound);
        assert_eq!(
            answer("POST", Path::new("C:\\site\\a.htm"), true),
            Answer::MethodNotAllowed
        );
    }
}
