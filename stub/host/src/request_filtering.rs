//! IIS's request filtering (RequestFilteringModule), as a default IIS 10 applies it before
//! any ISAPI code runs: limits on the body, URL and query string, double-escaped URLs, hidden
//! segments and denied file extensions, each refused with IIS's status and substatus, so
//! that what IIS will refuse is refused under isapi-host too. Options lift each rule, as a
//! site's requestFiltering settings would (`SCRIPT.exe install --max-body` and friends).

use std::sync::OnceLock;

use crate::http::{Framing, RequestHead};

/// requestLimits' defaults in IIS_schema.xml (IIS 7.0 to 10.0).
pub const MAX_ALLOWED_CONTENT_LENGTH: u64 = 30_000_000;
pub const MAX_URL: u64 = 4096;
pub const MAX_QUERY_STRING: u64 = 2048;

/// The `<hiddenSegments>` of a default IIS 10 applicationHost.config (matched in any case).
pub const HIDDEN_SEGMENTS: [&str; 8] = [
    "web.config",
    "bin",
    "App_code",
    "App_GlobalResources",
    "App_LocalResources",
    "App_WebReferences",
    "App_Data",
    "App_Browsers",
];

/// The `<fileExtensions>` a default IIS 10 applicationHost.config denies (allowed="false").
pub const DENIED_EXTENSIONS: [&str; 44] = [
    ".asa",
    ".asax",
    ".ascx",
    ".master",
    ".skin",
    ".browser",
    ".sitemap",
    ".config",
    ".cs",
    ".csproj",
    ".vb",
    ".vbproj",
    ".webinfo",
    ".licx",
    ".resx",
    ".resources",
    ".mdb",
    ".vjsproj",
    ".java",
    ".jsl",
    ".ldb",
    ".dsdgm",
    ".ssdgm",
    ".lsad",
    ".ssmap",
    ".cd",
    ".dsprototype",
    ".lsaprototype",
    ".sdm",
    ".sdmDocument",
    ".mdf",
    ".ldf",
    ".ad",
    ".dd",
    ".ldd",
    ".sd",
    ".adprototype",
    ".lddprototype",
    ".exclude",
    ".refresh",
    ".compiled",
    ".msgx",
    ".vsdisco",
    ".rules",
];

/// The rules in force: IIS's defaults unless an option lifted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub enabled: bool,
    pub max_allowed_content_length: u64,
    pub max_url: u64,
    pub max_query_string: u64,
    pub allow_double_escaping: bool,
    pub hidden_segments: Vec<String>,
    pub denied_extensions: Vec<String>,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            enabled: true,
            max_allowed_content_length: MAX_ALLOWED_CONTENT_LENGTH,
            max_url: MAX_URL,
            max_query_string: MAX_QUERY_STRING,
            allow_double_escaping: false,
            hidden_segments: HIDDEN_SEGMENTS.iter().map(|s| s.to_string()).collect(),
            denied_extensions: DENIED_EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The options that change the rules, for the usage text.
pub const USAGE: &str = "\
Request filtering (IIS's defaults, as IIS applies them before any ISAPI code runs):
  --max-body BYTES        largest request body (maxAllowedContentLength) [default: 30000000];
                          larger gets 413.1
  --max-url BYTES         longest URL path (maxUrl) [default: 4096]; longer gets 404.14
  --max-query BYTES       longest query string (maxQueryString) [default: 2048]; longer gets
                          404.15
  --allow-double-escaping let '%' and '+' through in the decoded path (allowDoubleEscaping);
                          otherwise 404.11
  --allow-segment NAME    serve URLs with this hidden segment (bin, App_Data, ...: 404.8);
                          repeatable
  --allow-extension .EXT  serve this denied file extension (.config, .cs, ...: 404.7);
                          repeatable
  --no-request-filtering  none of the above";

impl Rules {
    /// Applies one command-line option; false if `flag` is not one of these.
    pub fn option(&mut self, flag: &str, mut value: impl FnMut() -> Result<String, String>) -> Result<bool, String> {
        let size = |flag: &str, v: String| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n <= u64::from(u32::MAX))
                .ok_or(format!(
                    "{flag} {v:?} is not a number of bytes (0 to 4294967295, as IIS's uint)"
                ))
        };
        match flag {
            "--max-body" => self.max_allowed_content_length = size(flag, value()?)?,
            "--max-url" => self.max_url = size(flag, value()?)?,
            "--max-query" => self.max_query_string = size(flag, value()?)?,
            "--allow-double-escaping" => self.allow_double_escaping = true,
            "--allow-segment" => {
                let name = value()?;
                self.hidden_segments.retain(|s| !s.eq_ignore_ascii_case(&name));
            }
            "--allow-extension" => {
                let ext = value()?;
                let ext = if ext.starts_with('.') { ext } else { format!(".{ext}") };
                self.denied_extensions.retain(|e| !e.eq_ignore_ascii_case(&ext));
            }
            "--no-request-filtering" => self.enabled = false,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Why IIS would refuse `head` before the extension sees it, if it would.
    pub fn check(&self, head: &RequestHead) -> Option<Rejection> {
        if !self.enabled {
            return None;
        }
        let raw_path = head.target.split_once('?').map_or(head.target.as_str(), |(p, _)| p);
        // Decoding once more would change the URL: '%' (an escaped escape) or '+' (which
        // some decoders read as a space) in the once-decoded path.
        if !self.allow_double_escaping && head.path.contains(['%', '+']) {
            return Some(Rejection::new(404, 11, "URL double escaped", "allowDoubleEscaping"));
        }
        if raw_path.len() as u64 > self.max_url {
            return Some(Rejection::new(404, 14, "URL too long", "maxUrl"));
        }
        if head.query.len() as u64 > self.max_query_string {
            return Some(Rejection::new(404, 15, "query string too long", "maxQueryString"));
        }
        if let Framing::Length(length) = head.framing {
            if length > self.max_allowed_content_length {
                return Some(Rejection::new(
                    413,
                    1,
                    "content length too large",
                    "maxAllowedContentLength",
                ));
            }
        }
        let segments: Vec<&str> = head.path.split('/').filter(|s| !s.is_empty()).collect();
        if segments
            .iter()
            .any(|s| self.hidden_segments.iter().any(|h| h.eq_ignore_ascii_case(s)))
        {
            return Some(Rejection::new(404, 8, "hidden namespace", "hiddenSegments"));
        }
        let extension = segments.last().and_then(|last| last.rfind('.').map(|dot| &last[dot..]));
        if let Some(extension) = extension {
            if self.denied_extensions.iter().any(|e| e.eq_ignore_ascii_case(extension)) {
                return Some(Rejection::new(404, 7, "file extension denied", "fileExtensions"));
            }
        }
        None
    }
}

/// A request IIS refuses: its status and substatus, what IIS calls the reason, and the
/// setting that lifts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub substatus: u16,
    pub reason: &'static str,
    pub setting: &'static str,
}

impl Rejection {
    fn new(status: u16, substatus: u16, reason: &'static str, setting: &'static str) -> Rejection {
        Rejection {
            status,
            substatus,
            reason,
            setting,
        }
    }

    /// The page sent with it.
    pub fn text(&self) -> String {
        format!(
            "{}.{} {}: request filtering refused the request ({}; see {})\n",
            self.status,
            self.substatus,
            crate::http::reason_phrase(self.status),
            self.reason,
            self.setting
        )
    }
}

static RULES: OnceLock<Rules> = OnceLock::new();

/// Sets the rules for the whole process (once, at start-up).
pub fn configure(rules: Rules) {
    let _ = RULES.set(rules);
}

/// Why the process's rules refuse `head`, if they do.
pub fn check(head: &RequestHead) -> Option<Rejection> {
    RULES.get_or_init(Rules::default).check(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::read_head;

    fn head(raw: &str) -> RequestHead {
        read_head(&mut raw.as_bytes()).unwrap()
    }

    fn get(target: &str) -> RequestHead {
        head(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    fn refused(rules: &Rules, head: &RequestHead) -> Option<(u16, u16)> {
        rules.check(head).map(|r| (r.status, r.substatus))
    }

    #[test]
    fn iis_defaults_refuse_with_iis_substatus_codes() {
        let rules = Rules::default();
        assert_eq!(refused(&rules, &get("/app/items?x=1")), None);
        assert_eq!(refused(&rules, &get(&format!("/{}", "a".repeat(4095)))), None);
        assert_eq!(
            refused(&rules, &get(&format!("/{}", "a".repeat(4096)))),
            Some((404, 14))
        );
        assert_eq!(refused(&rules, &get(&format!("/q?{}", "a".repeat(2048)))), None);
        assert_eq!(
            refused(&rules, &get(&format!("/q?{}", "a".repeat(2049)))),
            Some((404, 15))
        );
        for double in ["/tags/c++", "/a%2Bb", "/a%2525", "/%25"] {
            assert_eq!(refused(&rules, &get(double)), Some((404, 11)), "{double}");
        }
        // '+' in the query string is no path.
        assert_eq!(refused(&rules, &get("/search?q=a+b")), None);
        // web.config is both hidden and of a denied extension: IIS says hidden.
        for hidden in ["/bin/x", "/app/BIN", "/App_Data/db.sqlite", "/web.config"] {
            assert_eq!(refused(&rules, &get(hidden)), Some((404, 8)), "{hidden}");
        }
        assert_eq!(refused(&rules, &get("/binary/x")), None, "only whole segments");
        assert_eq!(refused(&rules, &get("/src/main.cs")), Some((404, 7)));
        assert_eq!(
            refused(&rules, &get("/report.CS")),
            Some((404, 7)),
            "extensions in any case"
        );
        assert_eq!(
            refused(&rules, &get("/a.cs/more")),
            None,
            "the last segment's extension"
        );
        let post = |length: u64| {
            head(&format!(
                "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
            ))
        };
        assert_eq!(refused(&rules, &post(30_000_000)), None);
        assert_eq!(refused(&rules, &post(30_000_001)), Some((413, 1)));
    }

    #[test]
    fn options_lift_each_rule() {
        let mut rules = Rules::default();
        let mut set = |flag: &str, value: &str| {
            let value = value.to_string();
            assert_eq!(rules.option(flag, || Ok(value.clone())), Ok(true), "{flag}");
        };
        set("--max-body", "100");
        set("--max-url", "10");
        set("--max-query", "0");
        set("--allow-double-escaping", "");
        set("--allow-segment", "BIN");
        set("--allow-extension", "cs");
        assert_eq!(rules.max_allowed_content_length, 100);
        assert_eq!(refused(&rules, &get("/tags/c++")), None);
        assert_eq!(refused(&rules, &get("/bin/x")), None);
        assert_eq!(refused(&rules, &get("/a.cs")), None);
        assert_eq!(
            refused(&rules, &get("/App_Data")),
            Some((404, 8)),
            "the other segments stay"
        );
        assert_eq!(refused(&rules, &get("/aaaaaaaaaaa")), Some((404, 14)));
        assert_eq!(refused(&rules, &get("/?a")), Some((404, 15)));
        assert_eq!(
            rules.option("--max-body", || Ok("lots".into())),
            Err("--max-body \"lots\" is not a number of bytes (0 to 4294967295, as IIS's uint)".into())
        );
        assert_eq!(rules.option("--listen", || Ok(String::new())), Ok(false));
        let mut off = Rules::default();
        off.option("--no-request-filtering", || Ok(String::new())).unwrap();
        assert_eq!(refused(&off, &get("/bin/web.config")), None);
    }

    #[test]
    fn the_page_names_the_substatus_and_the_setting() {
        let rejection = Rules::default().check(&get("/tags/c++")).unwrap();
        assert_eq!(
            rejection.text(),
            "404.11 Not Found: request filtering refused the request (URL double escaped; see allowDoubleEscaping)\n"
        );
    }
}
