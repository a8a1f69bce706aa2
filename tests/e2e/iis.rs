//! The IIS schema validator the installer tests rely on (support/iis_schema.rs): that the
//! fixture is valid against every IIS version's facts, and that each kind of mistake IIS
//! would refuse (a wrong name, type, enum or flag value, a missing required attribute, a
//! duplicate key, a section where it may not be set, a locked section through appcmd) is
//! reported, so that a passing installer test means something. And what IIS does with the
//! settings install writes, modelled through isapi-host: a streamed response.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::iis_schema::{
    apply_appcmd, check_config, newest, parse_config, schemas, split_command_line, Element,
};
use crate::support::{
    fixture, get, isapi_freeze, repo, request, shared_with, temp_dir, Connection, Freeze, Frozen, Host,
};

fn fixture_text() -> String {
    std::fs::read_to_string(fixture("iis/applicationHost.config")).unwrap()
}

/// The fixture with `from` replaced by `to` (once; `from` must be there).
fn changed(from: &str, to: &str) -> String {
    let text = fixture_text();
    assert!(text.contains(from), "{from:?} not in the fixture");
    text.replacen(from, to, 1)
}

/// The fixture with `lines` added just before `</configuration>`.
fn with_locations(lines: &str) -> String {
    fixture_text().replacen("</configuration>", &format!("{lines}\r\n</configuration>"), 1)
}

/// The errors for the newest IIS version only.
fn errors(text: &str) -> Vec<String> {
    let prefix = format!("IIS {}: ", newest().version);
    check_config(text)
        .into_iter()
        .filter_map(|e| e.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

const HANDLER: &str = "<add name=\"ISAPI-dll\" path=\"*.dll\" verb=\"*\" modules=\"IsapiModule\" \
resourceType=\"File\" requireAccess=\"Execute\" allowPathInfo=\"true\" />";

#[test]
fn the_schema_facts_cover_iis_7_to_10_and_the_fixture_is_valid_against_each() {
    let versions: Vec<&str> = schemas().iter().map(|s| s.version.as_str()).collect();
    assert_eq!(versions, ["7.0", "7.5", "8.0", "8.5", "10.0"]);
    assert_eq!(check_config(&fixture_text()), Vec::<String>::new());
}

#[test]
fn an_unknown_attribute_is_reported() {
    let text = changed(HANDLER, &HANDLER.replace("allowPathInfo", "allowPathinfo"));
    assert_eq!(
        errors(&text),
        [
            "system.webServer/handlers > add[name='ISAPI-dll',path='*.dll',verb='*',\
          modules='IsapiModule',resourceType='File',requireAccess='Execute',allowPathinfo='true']: attribute \
          \"allowPathinfo\" is not in the schema"
        ]
    );
}

#[test]
fn a_value_of_the_wrong_type_is_reported() {
    let text = changed(
        "<add name=\"Intranet\" managedRuntimeVersion=\"v4.0\" />",
        "<add name=\"Intranet\" managedRuntimeVersion=\"v4.0\" enable32BitAppOnWin64=\"yes\" queueLength=\"-1\" />",
    );
    assert_eq!(
        errors(&text),
        [
            "system.applicationHost/applicationPools > add[name='Intranet',managedRuntimeVersion='v4.0',\
             enable32BitAppOnWin64='yes',queueLength='-1']: enable32BitAppOnWin64=\"yes\": not a bool (true or false)",
            "system.applicationHost/applicationPools > add[name='Intranet',managedRuntimeVersion='v4.0',\
             enable32BitAppOnWin64='yes',queueLength='-1']: queueLength=\"-1\": not a uint",
        ]
    );
}

#[test]
fn enum_and_flag_values_and_ranges_are_checked() {
    let text = changed(
        HANDLER,
        &HANDLER.replace("requireAccess=\"Execute\"", "requireAccess=\"Run\""),
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with("requireAccess=\"Run\": not one of the enum values (None, Read, Write, Script, Execute)"),
        "{found:?}"
    );
    let text = changed(
        "<handlers accessPolicy=\"Read, Script\">",
        "<handlers accessPolicy=\"Read, Run\">",
    );
    assert_eq!(
        errors(&text),
        [
            "system.webServer/handlers: accessPolicy=\"Read, Run\": \"Run\" is not one of the flags \
          (None, Read, Write, Execute, Source, Script, NoRemoteWrite, NoRemoteRead, NoRemoteExecute, NoRemoteScript)"
        ]
    );
    let text = changed(
        "<processModel identityType=\"ApplicationPoolIdentity\" />",
        "<processModel identityType=\"ApplicationPoolIdentity\" idleTimeout=\"00:00:30\" />",
    );
    assert_eq!(
        errors(&text),
        ["system.applicationHost/applicationPools > applicationPoolDefaults > processModel: idleTimeout=\"00:00:30\": \
          must be a multiple of 60 seconds"]
    );
}

#[test]
fn a_missing_required_attribute_and_a_duplicate_key_are_reported() {
    let restriction = "<add path=\"%windir%\\Microsoft.NET\\Framework\\v4.0.30319\\webengine4.dll\" allowed=\"true\" \
groupId=\"ASP.NET v4.0.30319\" description=\"ASP.NET v4.0.30319\" />";
    let text = changed(restriction, &restriction.replace(" allowed=\"true\"", ""));
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(": required attribute \"allowed\" is missing"),
        "{found:?}"
    );
    // Keys compare without case unless the attribute is case-sensitive (paths are not).
    let text = changed(
        restriction,
        &format!(
            "{restriction}\r\n                {}",
            restriction.replace("Framework", "FRAMEWORK")
        ),
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(
            "duplicate collection entry (unique key path='%windir%\\microsoft.net\\framework\\v4.0.30319\\webengine4.dll')"
        ),
        "{found:?}"
    );
}

#[test]
fn an_entry_that_duplicates_an_inherited_one_is_reported() {
    let text = with_locations(&format!(
        "    <location path=\"Default Web Site\">\r\n        <system.webServer>\r\n            <handlers>\r\n\
         \x20               {HANDLER}\r\n            </handlers>\r\n        </system.webServer>\r\n    </location>"
    ));
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("<location path=\"Default Web Site\"> system.webServer/handlers > add[name='ISAPI-dll'"),
        "{found:?}"
    );
    assert!(
        found[0].ends_with("duplicate of an inherited collection entry (unique key name='ISAPI-dll')"),
        "{found:?}"
    );
    // After a <clear/> or a <remove> of it, the same name is new again.
    let cleared = with_locations(&format!(
        "    <location path=\"Default Web Site\">\r\n        <system.webServer>\r\n            <handlers>\r\n\
         \x20               <remove name=\"ISAPI-dll\" />\r\n                {HANDLER}\r\n            </handlers>\r\n\
         \x20       </system.webServer>\r\n    </location>"
    ));
    assert_eq!(errors(&cleared), Vec::<String>::new());
}

#[test]
fn a_section_where_its_allow_definition_forbids_it_is_reported() {
    // isapiCgiRestriction is AppHostOnly: server level only.
    let text = with_locations(
        "    <location path=\"Default Web Site\">\r\n        <system.webServer>\r\n            <security>\r\n\
         \x20               <isapiCgiRestriction />\r\n            </security>\r\n        </system.webServer>\r\n\
         \x20   </location>",
    );
    assert_eq!(
        errors(&text),
        [
            "<location path=\"Default Web Site\"> system.webServer/security/isapiCgiRestriction: cannot be set for \
          \"Default Web Site\": its allowDefinition is AppHostOnly (IIS answers \"This configuration section cannot \
          be used at this path\")"
        ]
    );
    // isapiFilters is MachineToApplication: a site or an application, not a folder in one.
    let filters = |path: &str| {
        with_locations(&format!(
            "    <location path=\"{path}\">\r\n        <system.webServer>\r\n            <isapiFilters />\r\n\
             \x20       </system.webServer>\r\n    </location>"
        ))
    };
    assert_eq!(errors(&filters("Intranet/reports")), Vec::<String>::new());
    assert_eq!(
        errors(&filters("Intranet/reports/2024")),
        [
            "<location path=\"Intranet/reports/2024\"> system.webServer/isapiFilters: cannot be set for \
          \"Intranet/reports/2024\": its allowDefinition is MachineToApplication (IIS answers \"This configuration \
          section cannot be used at this path\")"
        ]
    );
}

#[test]
fn an_undeclared_section_and_an_unknown_element_are_reported() {
    let text = changed("<urlCompression />", "<urlCompresion />");
    assert_eq!(
        errors(&text),
        ["system.webServer/urlCompresion: is not a section or section group declared in <configSections>"]
    );
    let text = changed(HANDLER, &format!("{HANDLER}<handler name=\"x\" />"));
    assert_eq!(
        errors(&text),
        ["system.webServer/handlers: <handler> is not an element of the schema"]
    );
}

#[test]
fn appcmd_lines_are_applied_as_appcmd_applies_them() {
    let mut root = parse_config(&fixture_text());
    for line in [
        "appcmd add apppool /name:p /managedRuntimeVersion: /processModel.maxProcesses:2",
        "appcmd add app \"/site.name:Default Web Site\" /path:/p /physicalPath:C:\\p\\ /applicationPool:p",
        "appcmd set config \"Default Web Site/p\" /section:system.webServer/handlers \"/accessPolicy:Execute, Script\" \
         /+[name='p',path='*',verb='*',modules='IsapiModule'] /commit:apphost",
        "appcmd set config \"Default Web Site/p\" /section:requestFiltering /requestLimits.maxQueryString:8192 \
         /commit:apphost",
        "appcmd set config /section:isapiFilters /+[name='f',path='C:\\p\\f.dll'] /commit:apphost",
    ] {
        apply_appcmd(&mut root, line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    let pool = root
        .find("system.applicationHost/applicationPools")
        .unwrap()
        .children
        .iter()
        .find(|p| p.attr("name") == Some("p"))
        .unwrap();
    assert_eq!(pool.attr("managedRuntimeVersion"), Some(""));
    assert_eq!(pool.find("processModel").unwrap().attr("maxProcesses"), Some("2"));
    let location = |path: &str| -> &Element {
        root.children
            .iter()
            .find(|c| c.name == "location" && c.attr("path") == Some(path))
            .unwrap()
    };
    let handlers = location("Default Web Site/p")
        .find("system.webServer/handlers")
        .unwrap();
    assert_eq!(handlers.attr("accessPolicy"), Some("Execute, Script"));
    assert_eq!(handlers.children[0].attr("modules"), Some("IsapiModule"));
    let limits = location("Default Web Site/p")
        .find("system.webServer/security/requestFiltering/requestLimits")
        .unwrap();
    assert_eq!(limits.attr("maxQueryString"), Some("8192"));
    let filters = root.find("system.webServer/isapiFilters").unwrap();
    assert_eq!(filters.children.last().unwrap().name, "filter");
    let errors: Vec<String> = schemas()
        .iter()
        .flat_map(|s| crate::support::iis_schema::check_tree(&root, s))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn appcmd_refusals_are_errors() {
    let cases = [
        (
            "appcmd set config \"Default Web Site\" /section:system.webServer/handlers /+[name='x',path='*',verb='*']",
            "without /commit:apphost this writes system.webServer/handlers into the web.config of \"Default Web Site\" \
             where the section is locked (overrideModeDefault=\"Deny\")",
        ),
        (
            "appcmd add apppool /name:DefaultAppPool",
            "an application pool \"DefaultAppPool\" already exists",
        ),
        ("appcmd delete app \"Default Web Site/nope\"", "no application Default Web Site/nope"),
        (
            "appcmd set config /section:isapiCgiRestriction /-[path='C:\\none.dll'] /commit:apphost",
            "no collection entry [path='C:\\none.dll'] to remove",
        ),
    ];
    for (line, error) in cases {
        let mut root = parse_config(&fixture_text());
        assert_eq!(apply_appcmd(&mut root, line), Err(error.to_string()), "{line}");
    }
}

#[test]
fn command_lines_split_as_windows_programs_split_them() {
    assert_eq!(
        split_command_line(r#"appcmd "/site.name:Default Web Site" /a:"x y" /path:C:\dir\ "/q:a\"b" c\\"#),
        [
            "appcmd",
            "/site.name:Default Web Site",
            "/a:x y",
            "/path:C:\\dir\\",
            "/q:a\"b",
            "c\\\\"
        ]
    );
}

#[test]
fn request_limits_defaults_are_iis_defaults() {
    // What isapi-host applies when nothing lifts a limit comes from these.
    for schema in schemas() {
        let default = |attribute: &str| {
            schema.default_of(
                "system.webServer/security/requestFiltering",
                &["requestLimits"],
                attribute,
            )
        };
        assert_eq!(default("maxAllowedContentLength").as_deref(), Some("30000000"));
        assert_eq!(default("maxUrl").as_deref(), Some("4096"));
        assert_eq!(default("maxQueryString").as_deref(), Some("2048"));
    }
}

/// A WSGI app whose generator yields a line, then waits until `/release/N` is requested
/// (on another connection) before the next: the test decides when each chunk is made.
const STREAMING: &str = r#""""Streams three lines; each after the last is released."""
import threading

from isapi.wsgi import factory

gates = {n: threading.Event() for n in (1, 2)}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path.startswith("/release/"):
        gates[int(path.rsplit("/", 1)[1])].set()
        return [b"released"]

    def lines():
        yield b"first\n"
        for n in (1, 2):
            if not gates[n].wait(120):
                yield b"never released\n"
                return
            yield b"after %d\n" % n

    return lines()


__ExtensionFactory__ = factory(app)
"#;

/// Reads one chunk of a chunked body: its data, or None for the last (empty) chunk.
fn read_chunk(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut size = String::new();
    reader.read_line(&mut size).unwrap();
    let size = usize::from_str_radix(size.trim(), 16).unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
    let mut data = vec![0; size + 2];
    reader.read_exact(&mut data).unwrap();
    assert_eq!(&data[size..], b"\r\n");
    (size > 0).then(|| String::from_utf8(data[..size].to_vec()).unwrap())
}

#[test]
fn a_streamed_wsgi_response_arrives_chunk_by_chunk_as_the_app_makes_it() {
    // install writes responseBufferLimit="0" (install::...restores_every_byte checks the
    // mapping): IIS then sends each WriteClient at once, as isapi-host always does. Each
    // chunk is read while the app still waits for the test to release the next one, so
    // it cannot have been held back and sent with the rest.
    let frozen = Freeze::source("streaming.py", STREAMING).ok();
    let host = Host::start(&frozen.dll(), &[]);
    let stream = TcpStream::connect(&host.address).unwrap();
    // Only so that a broken test fails instead of hanging; no assertion depends on it.
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked\r\n"), "{head}");
    assert_eq!(read_chunk(&mut reader).as_deref(), Some("first\n"));
    for n in 1..=2 {
        let released = get(&host.address, &format!("/release/{n}"));
        assert_eq!((released.status, released.text().as_str()), (200, "released"));
        assert_eq!(read_chunk(&mut reader), Some(format!("after {n}\n")));
    }
    assert_eq!(read_chunk(&mut reader), None);
    host.stop();
}

/// A WSGI app that answers with the path and query it got and the size of the body.
const ECHO: &str = r#""""Echoes what reached it."""
from isapi.wsgi import factory


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s?%s %d" % (environ["PATH_INFO"], environ["QUERY_STRING"], len(body))).encode()]


__ExtensionFactory__ = factory(app)
"#;

fn echo() -> &'static Frozen {
    shared_with("iis: echo.py", || Freeze::source("echo.py", ECHO).ok())
}

#[test]
fn isapi_host_refuses_what_iis_request_filtering_refuses_with_its_substatus() {
    let host = Host::start(&echo().dll(), &[]);
    let long_path = format!("/{}", "p".repeat(4096));
    let long_query = format!("/q?{}", "a".repeat(2049));
    let cases: [(&str, u16, &str); 7] = [
        (
            "/tags/c++",
            404,
            "404.11 Not Found: request filtering refused the request (URL double escaped; see allowDoubleEscaping)",
        ),
        (
            "/a%252Fb",
            404,
            "404.11 Not Found: request filtering refused the request (URL double escaped; see allowDoubleEscaping)",
        ),
        (
            &long_path,
            404,
            "404.14 Not Found: request filtering refused the request (URL too long; see maxUrl)",
        ),
        (
            &long_query,
            404,
            "404.15 Not Found: request filtering refused the request (query string too long; see maxQueryString)",
        ),
        (
            "/bin/tool",
            404,
            "404.8 Not Found: request filtering refused the request (hidden namespace; see hiddenSegments)",
        ),
        (
            "/App_Data/db",
            404,
            "404.8 Not Found: request filtering refused the request (hidden namespace; see hiddenSegments)",
        ),
        (
            "/settings.config",
            404,
            "404.7 Not Found: request filtering refused the request (file extension denied; see fileExtensions)",
        ),
    ];
    for (path, status, text) in cases {
        let r = get(&host.address, path);
        assert_eq!(
            (r.status, r.text().trim_end()),
            (status, text),
            "{}",
            &path[..path.len().min(40)]
        );
    }
    // The body is refused from its Content-Length, before any of it is read.
    let mut big = Connection::open(&host.address);
    let r = big.exchange(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 30000001\r\n\r\n");
    assert_eq!(
        (r.status, r.text().trim_end()),
        (413, "413.1 Payload Too Large: request filtering refused the request (content length too large; see maxAllowedContentLength)")
    );
    assert_eq!(r.header("Connection"), Some("close"));
    // Within the limits, everything reaches the app.
    let r = get(&host.address, &format!("/ok/{}?{}", "p".repeat(4000), "a".repeat(2048)));
    assert_eq!((r.status, r.text().len()), (200, 4 + 4000 + 1 + 2048 + 2));
    let finished = host.stop();
    assert!(
        finished
            .stderr
            .lines()
            .any(|l| l == "isapi-host: GET /tags/c++ 404 0 (request filtering: 404.11 URL double escaped)"),
        "{}",
        &finished.stderr[..finished.stderr.len().min(2000)]
    );
}

#[test]
fn each_request_filtering_rule_can_be_lifted_as_a_site_would() {
    let host = Host::start(
        &echo().dll(),
        &[
            "--max-body",
            "40000000",
            "--max-query",
            "8192",
            "--allow-double-escaping",
            "--allow-segment",
            "bin",
            "--allow-extension",
            ".config",
        ],
    );
    for (path, answer) in [
        ("/tags/c++", "/tags/c++? 0".to_string()),
        ("/bin/tool", "/bin/tool? 0".into()),
        ("/settings.config", "/settings.config? 0".into()),
        (
            &format!("/q?{}", "a".repeat(8192)),
            format!("/q?{} 0", "a".repeat(8192)),
        ),
    ] {
        let r = get(&host.address, path);
        assert_eq!((r.status, r.text()), (200, answer));
    }
    let body = vec![b'x'; 30_000_001];
    let mut raw = b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 30000001\r\n\r\n".to_vec();
    raw.extend_from_slice(&body);
    let r = request(&host.address, &raw);
    assert_eq!((r.status, r.text()), (200, "/upload? 30000001".to_string()));
    // The rules not lifted still apply.
    assert_eq!(get(&host.address, "/App_Data/db").status, 404);
    host.stop();
}

/// Web Deploy's providers the manifest may use, with their documented attributes
/// (learn.microsoft.com, "Web Deploy Provider Settings" and each provider's page).
const PROVIDERS: [(&str, &[&str]); 3] = [
    (
        "iisApp",
        &[
            "path",
            "managedRuntimeVersion",
            "enable32BitAppOnWin64",
            "managedPipelineMode",
        ],
    ),
    (
        "setAcl",
        &[
            "path",
            "setAclUser",
            "setAclAccess",
            "setAclResourceType",
            "setAclAbsolute",
        ],
    ),
    (
        "runCommand",
        &[
            "path",
            "waitInterval",
            "waitAttempts",
            "successReturnCodes",
            "dontUseCommandExe",
        ],
    ),
];
/// parameters.xml's parameterEntry kinds (Web Deploy "Using Parameters").
const ENTRY_KINDS: [&str; 5] = [
    "ProviderPath",
    "XmlFile",
    "TextFile",
    "TextFilePosition",
    "DeploymentObjectAttribute",
];

/// The text a parameterEntry's `match` (a .NET regex anchored at both ends, escapes only)
/// matches.
fn literal_of(pattern: &str) -> String {
    let inner = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .expect("anchored");
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        assert!(!"^$|?*+()[]{}.".contains(c), "unescaped {c:?} in {pattern}");
        out.push(if c == '\\' { chars.next().unwrap() } else { c });
    }
    out
}

#[test]
fn package_writes_a_web_deploy_manifest_and_parameters_of_documented_providers() {
    let out = temp_dir();
    let finished = isapi_freeze()
        .arg("package")
        .arg(&echo().dist)
        .args(["--out"])
        .arg(out.path())
        .args([
            "--source-path",
            "C:\\build\\dist",
            "--data-dir",
            "uploads",
            "--processes",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    let manifest_text = std::fs::read_to_string(out.path().join("echo.SourceManifest.xml")).unwrap();
    let parameters_text = std::fs::read_to_string(out.path().join("echo.parameters.xml")).unwrap();
    let manifest = roxmltree::Document::parse(&manifest_text).unwrap();
    let parameters = roxmltree::Document::parse(&parameters_text).unwrap();

    assert_eq!(manifest.root_element().tag_name().name(), "sitemanifest");
    let mut paths: Vec<(String, String)> = Vec::new();
    for provider in manifest.root_element().children().filter(|n| n.is_element()) {
        let name = provider.tag_name().name();
        let (_, allowed) = PROVIDERS
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("{name} is not a Web Deploy provider this package may use"));
        for attribute in provider.attributes() {
            assert!(
                allowed.contains(&attribute.name()),
                "{name} has no setting {}",
                attribute.name()
            );
        }
        paths.push((
            name.to_string(),
            provider.attribute("path").expect("a path").to_string(),
        ));
        if name == "setAcl" {
            assert!(["ReadAndExecute", "Modify"].contains(&provider.attribute("setAclAccess").unwrap()));
            assert_eq!(provider.attribute("setAclResourceType"), Some("Directory"));
        }
    }
    assert_eq!(
        paths,
        [
            ("iisApp".to_string(), "C:\\build\\dist".to_string()),
            (
                "runCommand".into(),
                "\"C:\\build\\dist\\echo.exe\" install --data-dir uploads --processes 2".into()
            ),
            ("setAcl".into(), "C:\\build\\dist".into()),
            ("setAcl".into(), "C:\\build\\dist\\logs".into()),
            ("setAcl".into(), "C:\\build\\dist\\uploads".into()),
        ]
    );

    let declared: Vec<&str> = parameters
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|p| p.attribute("name").unwrap())
        .collect();
    let mut covered = Vec::new();
    for parameter in parameters.root_element().children().filter(|n| n.is_element()) {
        assert_eq!(parameter.tag_name().name(), "parameter");
        for attribute in parameter.attributes() {
            assert!(["name", "description", "defaultValue", "tags"].contains(&attribute.name()));
        }
        // A default may refer to other parameters by {name}.
        let default = parameter.attribute("defaultValue").unwrap();
        for reference in default.split('{').skip(1).map(|r| r.split('}').next().unwrap()) {
            assert!(declared.contains(&reference), "{reference} is not declared");
        }
        for entry in parameter.children().filter(|n| n.is_element()) {
            assert_eq!(entry.tag_name().name(), "parameterEntry");
            assert!(ENTRY_KINDS.contains(&entry.attribute("kind").unwrap()));
            let scope = entry.attribute("scope").unwrap();
            let target = literal_of(entry.attribute("match").unwrap());
            assert!(
                paths
                    .iter()
                    .any(|(p, path)| p.eq_ignore_ascii_case(scope) && *path == target),
                "{scope} {target} is in no provider of the manifest"
            );
            covered.push((scope.to_string(), target));
        }
    }
    // Every path of the manifest is set on the node: nothing of the build machine stays.
    for (provider, path) in &paths {
        assert!(
            covered.contains(&(provider.clone(), path.clone())),
            "{provider} {path} is not parameterized"
        );
    }
    let app = parameters
        .descendants()
        .find(|n| n.attribute("name") == Some("IIS Web Application Name"))
        .unwrap();
    assert_eq!(app.attribute("defaultValue"), Some("Default Web Site/echo"));
    assert_eq!(app.attribute("tags"), Some("IisApp"));
}

#[test]
fn package_container_writes_a_dockerfile_on_the_iis_image_for_the_nodes_windows() {
    let copy = echo().copy();
    let context = copy.dist.parent().unwrap();
    let finished = isapi_freeze()
        .arg("package")
        .arg(&copy.dist)
        .args(["--container", "--windows", "10.0.17763.6659"])
        .output()
        .unwrap();
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    let dockerfile = std::fs::read_to_string(context.join("Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        instructions,
        [
            "FROM mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2019",
            "SHELL [\"powershell\", \"-NoProfile\", \"-Command\", \"$ErrorActionPreference = 'Stop';\"]",
            "RUN Install-WindowsFeature Web-ISAPI-Ext, Web-ISAPI-Filter",
            "COPY dist/ C:/apps/echo/",
            "RUN & 'C:\\apps\\echo\\echo.exe' install",
            "EXPOSE 80",
            "ENTRYPOINT [\"C:\\\\ServiceMonitor.exe\", \"w3svc\"]",
        ]
    );
    assert!(
        dockerfile.starts_with("# escape=`\n"),
        "the backslashes of Windows paths stay literal"
    );

    // docker copies only from the build context: the folder must hold DIST.
    let elsewhere = temp_dir();
    let refused = isapi_freeze()
        .arg("package")
        .arg(&copy.dist)
        .arg("--container")
        .arg("--out")
        .arg(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("must hold the output directory"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let unknown = isapi_freeze()
        .arg("package")
        .arg(&copy.dist)
        .args(["--container", "--windows", "2016"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr),
        "error: --windows \"2016\" is not a Windows Server release Microsoft's IIS image is built for (2019, 2022, \
         2025, or a node's build such as 10.0.20348)\n"
    );
}

const WORKFLOW: &str = ".github/workflows/iis.yml";

#[test]
fn the_iis_workflow_is_a_valid_github_workflow() {
    let checker = repo().join("target/workflow-check/bin/check-jsonschema");
    assert!(
        checker.is_file(),
        "{} is missing: `make test` (make workflow-check) installs it",
        checker.display()
    );
    let out = std::process::Command::new(&checker)
        .args(["--builtin-schema", "vendor.github-workflows", WORKFLOW])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{WORKFLOW} is not a valid workflow:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The checker must be able to say no.
    let broken = temp_dir();
    let path = broken.path().join("iis.yml");
    let text = std::fs::read_to_string(repo().join(WORKFLOW)).unwrap();
    std::fs::write(&path, text.replace("runs-on: windows-2022", "runs_on: windows-2022")).unwrap();
    let refused = std::process::Command::new(&checker)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a job without runs-on passed");
}

/// The `run:` lines of the workflow (each one line, as written there).
fn run_steps(workflow: &str) -> Vec<String> {
    workflow
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("run: "))
        .map(|r| r.trim().to_string())
        .collect()
}

#[test]
fn every_workflow_step_is_a_script_of_the_repository_that_runs_by_hand() {
    let workflow = std::fs::read_to_string(repo().join(WORKFLOW)).unwrap();
    let steps = run_steps(&workflow);
    assert_eq!(steps.len(), 7, "{steps:?}");
    assert!(
        !workflow.contains("run: |"),
        "a step's commands live in a script, not in the workflow"
    );
    for step in &steps {
        let mut words = step.split_whitespace();
        let script = words.next().unwrap();
        assert!(script.starts_with(".github/iis/") && script.ends_with(".ps1"), "{step}");
        let text = std::fs::read_to_string(repo().join(script)).unwrap_or_else(|e| panic!("{script}: {e}"));
        assert!(text.starts_with("# "), "{script} says what it does first");
        // Its named arguments are the script's parameters.
        let declared = text.lines().find(|l| l.starts_with("param(")).unwrap_or("");
        for word in words.filter(|w| w.starts_with('-')) {
            assert!(
                declared.contains(&format!("${}", &word[1..])),
                "{script} has no parameter {word}"
            );
        }
    }
    // Every file of the repository the scripts name exists (what they build goes to target\).
    let mut named = 0;
    for entry in std::fs::read_dir(repo().join(".github/iis")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for quoted in text.split('\'').skip(1).step_by(2) {
            let relative = quoted.replace('\\', "/");
            let first = relative.split('/').next().unwrap_or_default();
            if ["examples", "tests"].contains(&first) {
                assert!(
                    repo().join(&relative).exists(),
                    "{} names {quoted}, which is not in the repository",
                    path.display()
                );
                named += 1;
            }
            if let Some(script) = quoted.strip_prefix("$PSScriptRoot\\") {
                assert!(repo().join(".github/iis").join(script).is_file(), "{quoted}");
            }
        }
        for dot_sourced in text
            .lines()
            .filter_map(|l| l.trim().strip_prefix(". \"$PSScriptRoot\\"))
        {
            let script = dot_sourced.trim_end_matches('"');
            assert!(
                repo().join(".github/iis").join(script).is_file(),
                "{} dot-sources {script}",
                path.display()
            );
        }
    }
    assert!(named >= 5, "the examples' paths were found ({named})");
}
