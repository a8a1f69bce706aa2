//! `SCRIPT.exe install` and `remove` against an applicationHost.config fixture (the
//! structure of a default IIS 10 install with an unrelated site), run under Wine with
//! `--config`: what install adds, that it is idempotent, that remove gives the file back
//! byte for byte, and that bad input changes nothing and exits non-zero.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::support::iis_schema::{assert_valid_appcmd, assert_valid_config, try_parse_config};
use crate::support::{
    assert_contains, fixture, py_dll, repo, run_windows, shared_with, temp_dir, win_path, Finished, Freeze, Frozen,
};

const CRLF: &str = "\r\n";

/// The applicationHost.config fixture's bytes.
fn iis_fixture() -> Vec<u8> {
    std::fs::read(fixture("iis/applicationHost.config")).unwrap()
}

/// A script with no install code of its own.
const PLAIN: &str = "\"\"\"No install code.\"\"\"\nfrom isapi.simple import SimpleExtension\n\n\\
class Extension(SimpleExtension):\n    def HttpExtensionProc(self, ecb):\n        return 1\n\n\\
def __ExtensionFactory__():\n    return Extension()\n";

/// `plain.py` frozen once into a shared output directory (tests only read it).
fn plain() -> &'static Frozen {
    shared_with("install: plain.py", || Freeze::source("plain.py", PLAIN).ok())
}

/// An applicationHost.config alone in a fresh folder: the fixture, or a variant of it.
struct Config {
    tmp: TempDir,
    path: PathBuf,
    /// The path as Windows programs see it.
    win: String,
    /// Whether the file started as a valid IIS configuration (well-formed, schema-valid):
    /// then every run must leave it so.
    checked: bool,
}

impl Config {
    fn new() -> Config {
        Config::with(iis_fixture())
    }

    fn with(bytes: impl AsRef<[u8]>) -> Config {
        let tmp = temp_dir();
        let path = tmp.path().join("applicationHost.config");
        std::fs::write(&path, &bytes).unwrap();
        let win = win_path(&path);
        // A malformed file is some tests' input; any other must be what IIS accepts.
        let checked = std::str::from_utf8(bytes.as_ref()).is_ok_and(|t| try_parse_config(t).is_ok());
        if checked {
            assert_valid_config(&path);
        }
        Config {
            tmp,
            path,
            win,
            checked,
        }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8(self.bytes()).unwrap()
    }

    /// Asserts that nothing was written beside the config (no backup, no temporary file).
    fn assert_alone(&self) {
        assert_eq!(
            std::fs::read_dir(self.dir()).unwrap().count(),
            1,
            "no backup or temporary file"
        );
    }

    /// `EXE COMMAND --config PATH EXTRA..`, run in the config's folder; whatever it did,
    /// the file must still be valid against IIS's schema.
    fn run(&self, exe: &Path, command: &str, extra: &[&str]) -> Finished {
        let mut args = vec![command, "--config", &self.win];
        args.extend(extra);
        let finished = run_windows(exe, &args, self.dir());
        if self.checked {
            assert_valid_config(&self.path);
        }
        finished
    }
}

/// The fixture with `lines` inserted after the (first) line equal to `anchor`, indented
/// as written.
fn insert_after(text: &str, anchor: &str, lines: &[String]) -> String {
    let at = text
        .find(&format!("{anchor}{CRLF}"))
        .unwrap_or_else(|| panic!("no line {anchor:?} in the fixture"))
        + anchor.len()
        + CRLF.len();
    let mut out = text[..at].to_string();
    for line in lines {
        out.push_str(line);
        out.push_str(CRLF);
    }
    out.push_str(&text[at..]);
    out
}

/// What installing plain.exe from `dist` must make of the fixture.
fn plain_installed(dist: &Path) -> Vec<u8> {
    let dir = win_path(dist);
    let dll = format!("{dir}\\_plain.dll");
    let text = String::from_utf8(iis_fixture()[3..].to_vec()).unwrap();
    let text = insert_after(
        &text,
        "            <add name=\"Intranet\" managedRuntimeVersion=\"v4.0\" />",
        &["            <add name=\"isapi-freeze-plain\" managedRuntimeVersion=\"\" enable32BitAppOnWin64=\"false\" />".into()],
    );
    let text = insert_after(
        &text,
        "                </application>",
        &[
            "                <application path=\"/plain\" applicationPool=\"isapi-freeze-plain\">".into(),
            format!("                    <virtualDirectory path=\"/\" physicalPath=\"{dir}\" />"),
            "                </application>".into(),
        ],
    );
    let text = insert_after(
        &text,
        "                <add path=\"%windir%\\Microsoft.NET\\Framework\\v4.0.30319\\webengine4.dll\" allowed=\"true\" groupId=\"ASP.NET v4.0.30319\" description=\"ASP.NET v4.0.30319\" />",
        &[format!(
            "                <add path=\"{dll}\" allowed=\"true\" description=\"plain (isapi-freeze)\" />"
        )],
    );
    let end = text.rfind("</configuration>").unwrap();
    let location = [
        "    <location path=\"Default Web Site/plain\">".to_string(),
        "        <system.webServer>".into(),
        "            <handlers accessPolicy=\"Execute, Script\">".into(),
        format!(
            "                <add name=\"isapi-freeze-plain\" path=\"*\" verb=\"*\" modules=\"IsapiModule\" \
             scriptProcessor=\"{dll}\" resourceType=\"Unspecified\" requireAccess=\"None\" preCondition=\"bitness64\" responseBufferLimit=\"0\" />"
        ),
        "            </handlers>".into(),
        "        </system.webServer>".into(),
        "    </location>".into(),
    ];
    let text = format!("{}{}{CRLF}{}", &text[..end], location.join(CRLF), &text[end..]);
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Runs plain.exe install against `config` with `extra` options; it must fail: its stderr.
fn refused_install(config: &Config, extra: &[&str]) -> String {
    let finished = config.run(&plain().exe(), "install", extra);
    assert_eq!(finished.code, 1, "{finished:?}");
    finished.stderr
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn install_adds_pool_application_handler_and_restriction_then_remove_restores_every_byte() {
    let dist = &plain().dist;
    let config = Config::new();
    let exe = plain().exe();
    let cfg = &config.win;
    let dir = win_path(dist);

    let first = config.run(&exe, "install", &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        lines(&first.stdout),
        [
            format!("updated {cfg}: added 1 application pool, added 1 application, added 1 handler mapping, added 1 ISAPI restriction"),
            "note: --config edits a file only; on the server run:".into(),
            format!("  icacls {dir} /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\""),
            format!("  icacls {dir}\\logs /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)M\""),
            "Configured Virtual Directory: /plain".into(),
            "Installation complete.".into(),
        ]
    );
    let installed = config.bytes();
    assert_eq!(
        String::from_utf8_lossy(&installed),
        String::from_utf8_lossy(&plain_installed(dist))
    );
    assert_eq!(
        std::fs::read(config.dir().join("applicationHost.config.isapi-freeze-backup")).unwrap(),
        iis_fixture()
    );

    let again = config.run(&exe, "install", &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        lines(&again.stdout)[0],
        format!("IIS configuration already up to date ({cfg})")
    );
    assert_eq!(config.bytes(), installed, "a second install changes nothing");

    let removed = config.run(&exe, "remove", &[]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(
        lines(&removed.stdout)[0],
        format!("updated {cfg}: removed 1 ISAPI restriction, removed 1 handler mapping, removed 1 application, removed 1 application pool")
    );
    assert_eq!(
        config.bytes(),
        iis_fixture(),
        "remove gives back the file byte for byte"
    );

    let removed_again = config.run(&exe, "uninstall", &[]);
    assert_eq!(removed_again.code, 0, "{removed_again:?}");
    assert_eq!(
        lines(&removed_again.stdout)[0],
        format!("IIS configuration already clean ({cfg})")
    );
    assert_eq!(config.bytes(), iis_fixture());
}

#[test]
fn freeze_time_site_and_vpath_choose_where_a_script_without_install_code_goes() {
    let placed = Freeze::source("plain.py", PLAIN)
        .args(["--site", "intranet", "--vpath", "/tools/plain/"])
        .ok();
    let config = Config::new();
    let finished = config.run(&placed.exe(), "install", &["-q"]);
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(finished.stdout, "");
    let text = config.text();
    // The site is matched by name in any case, and written as IIS spells it.
    assert_contains(
        &text,
        &format!(
            "                <application path=\"/tools/plain\" applicationPool=\"isapi-freeze-plain\">{CRLF}\
             \x20                   <virtualDirectory path=\"/\" physicalPath=\"{}\" />",
            win_path(&placed.dist)
        ),
    );
    let intranet_apps = text.find("<site name=\"Intranet\"").unwrap();
    assert!(text.find("<application path=\"/tools/plain\"").unwrap() > intranet_apps);
    assert_contains(&text, "    <location path=\"Intranet/tools/plain\">");
}

#[test]
fn dry_run_prints_the_planned_diff_and_changes_nothing() {
    let dist = &plain().dist;
    let config = Config::new();
    let cfg = &config.win;
    let dir = win_path(dist);
    let finished = config.run(&plain().exe(), "install", &["--dry-run"]);
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(config.bytes(), iis_fixture());
    let out = lines(&finished.stdout);
    assert_eq!(out[0], format!("--- {cfg}"));
    assert_eq!(out[1], format!("+++ {cfg} (planned)"));
    let added: Vec<&str> = out
        .iter()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .copied()
        .collect();
    assert_eq!(
        added,
        [
            "+            <add name=\"isapi-freeze-plain\" managedRuntimeVersion=\"\" enable32BitAppOnWin64=\"false\" />".to_string(),
            // difflib pairs the new element's end tag with the one before it.
            "+                </application>".into(),
            "+                <application path=\"/plain\" applicationPool=\"isapi-freeze-plain\">".into(),
            format!("+                    <virtualDirectory path=\"/\" physicalPath=\"{dir}\" />"),
            format!("+                <add path=\"{dir}\\_plain.dll\" allowed=\"true\" description=\"plain (isapi-freeze)\" />"),
            "+    <location path=\"Default Web Site/plain\">".into(),
            "+        <system.webServer>".into(),
            "+            <handlers accessPolicy=\"Execute, Script\">".into(),
            format!("+                <add name=\"isapi-freeze-plain\" path=\"*\" verb=\"*\" modules=\"IsapiModule\" scriptProcessor=\"{dir}\\_plain.dll\" resourceType=\"Unspecified\" requireAccess=\"None\" preCondition=\"bitness64\" responseBufferLimit=\"0\" />"),
            "+            </handlers>".into(),
            "+        </system.webServer>".into(),
            "+    </location>".into(),
        ]
    );
    assert!(
        !out.iter().any(|l| l.starts_with('-') && !l.starts_with("---")),
        "{out:?}"
    );
    assert_eq!(
        out[out.len() - 2..],
        [
            format!("icacls {dir} /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\""),
            format!("icacls {dir}\\logs /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)M\""),
        ]
    );
}

#[test]
fn dry_run_prints_the_appcmd_lines_of_the_same_plan() {
    let dist = &plain().dist;
    let config = Config::new();
    let dir = win_path(dist);
    let finished = config.run(&plain().exe(), "install", &["--dry-run", "--print-appcmd"]);
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(
        lines(&finished.stdout),
        [
            "appcmd add apppool /name:isapi-freeze-plain /managedRuntimeVersion: /enable32BitAppOnWin64:false".to_string(),
            format!("appcmd add app \"/site.name:Default Web Site\" /path:/plain /physicalPath:{dir} /applicationPool:isapi-freeze-plain"),
            format!("appcmd set config \"Default Web Site/plain\" /section:system.webServer/handlers \"/accessPolicy:Execute, Script\" /+[name='isapi-freeze-plain',path='*',verb='*',modules='IsapiModule',scriptProcessor='{dir}\\_plain.dll',resourceType='Unspecified',requireAccess='None',preCondition='bitness64',responseBufferLimit='0'] /commit:apphost"),
            format!("appcmd set config /section:system.webServer/security/isapiCgiRestriction \"/+[path='{dir}\\_plain.dll',allowed='true',description='plain (isapi-freeze)']\" /commit:apphost"),
            format!("icacls {dir} /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\""),
            format!("icacls {dir}\\logs /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)M\""),
        ]
    );
    assert_eq!(config.bytes(), iis_fixture());
    assert_valid_appcmd(&config.text(), &lines(&finished.stdout));
}

#[test]
fn without_config_and_without_appcmd_install_explains_and_fails() {
    let tmp = temp_dir();
    let finished = run_windows(&plain().exe(), &["install", "--dry-run"], tmp.path());
    assert_eq!(finished.code, 1, "{finished:?}");
    assert_eq!(
        finished.stderr,
        "InstallationError: IIS 7 or later is not installed here: C:\\windows\\System32\\inetsrv\\appcmd.exe \
         does not exist (IIS Management Scripts and Tools provide it). On a machine without IIS, pass --config PATH \
         to edit an applicationHost.config directly"
    );
}

#[test]
fn a_malformed_config_is_refused_untouched() {
    let mut broken = String::from_utf8(iis_fixture()).unwrap();
    broken = broken.replacen("<webLimits />", "<webLimits>", 1);
    let config = Config::with(&broken);
    let cfg = &config.win;
    assert_eq!(
        refused_install(&config, &[]),
        format!(
            "ConfigurationError: {cfg} is not well-formed XML (line 168, column 7: mismatched tag); IIS cannot \
             read it either. Nothing was changed: repair it or restore a backup \
             (%windir%\\System32\\inetsrv\\config\\history)"
        )
    );
    assert_eq!(config.text(), broken);
    config.assert_alone();
}

#[test]
fn a_read_only_config_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let config = Config::new();
    std::fs::set_permissions(&config.path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let cfg = &config.win;
    assert_eq!(
        refused_install(&config, &[]),
        format!(
            "InstallationError: cannot write {cfg}: the file is read-only; nothing was changed (clear its read-only \
             attribute, or use an Administrator prompt)"
        )
    );
    assert_eq!(config.bytes(), iis_fixture());
    config.assert_alone();
}

#[test]
fn an_unknown_site_is_refused_with_the_sites_there_are() {
    let config = Config::new();
    let cfg = &config.win;
    assert_eq!(
        refused_install(&config, &["--server", "Nope"]),
        format!(
            "ItemNotFound: no web site matches 'Nope' in {cfg} (sites: Default Web Site, Intranet); choose one with \
             --server NAME"
        )
    );
    assert_eq!(config.bytes(), iis_fixture());
}

#[test]
fn iis_without_isapi_extensions_is_refused() {
    let text = String::from_utf8(iis_fixture()).unwrap().replacen(
        "            <add name=\"IsapiModule\" image=\"%windir%\\System32\\inetsrv\\isapi.dll\" />\r\n",
        "",
        1,
    );
    let config = Config::with(&text);
    let cfg = &config.win;
    assert_eq!(
        refused_install(&config, &[]),
        format!(
            "ConfigurationError: IIS's ISAPI Extensions feature is not installed ({cfg} has no IsapiModule in \
             globalModules). Install it: `Install-WindowsFeature Web-ISAPI-Ext` on Windows Server, \
             `dism /online /enable-feature /featurename:IIS-ISAPIExtensions` elsewhere"
        )
    );
    assert_eq!(config.text(), text);
}

#[test]
fn a_changed_output_directory_is_refused_before_iis_is_touched() {
    let changed = plain().copy();
    // The last byte of python3XY.dll is in its signature, which loading it does not read.
    let dll = changed.dist.join(py_dll());
    let mut bytes = std::fs::read(&dll).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&dll, bytes).unwrap();
    let config = Config::new();
    let finished = config.run(&changed.exe(), "install", &[]);
    assert_eq!(finished.code, 1, "{finished:?}");
    let dll_path = format!("{}\\{}", win_path(&changed.dist), py_dll());
    assert!(
        finished.stderr.starts_with(&format!(
            "ConfigurationError: {dll_path} does not match manifest.json (SHA-256 "
        )),
        "{finished:?}"
    );
    assert!(
        finished
            .stderr
            .ends_with("): the output directory changed after freezing; copy it again"),
        "{finished:?}"
    );
    assert_eq!(config.bytes(), iis_fixture());
}

#[test]
fn a_pywin32_style_script_installs_two_virtual_directories_and_a_filter() {
    let installable = Freeze::script(repo().join("examples/installable/installable.py")).ok();
    let config = Config::new();
    let cfg = &config.win;
    let dir = win_path(&installable.dist);
    let dll = format!("{dir}\\_installable.dll");
    let exe = installable.exe();

    // The appcmd lines of the same plan are what IIS's schema accepts, both ways.
    let planned = config.run(&exe, "install", &["--dry-run", "--print-appcmd"]);
    assert_eq!(planned.code, 0, "{planned:?}");
    assert_valid_appcmd(&config.text(), &lines(&planned.stdout));

    let finished = config.run(&exe, "install", &[]);
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(
        lines(&finished.stdout),
        [
            // The site's filter goes into the worker of the site's root application too.
            "note: the ISAPI filter installable-filter is registered on site 'Default Web Site': IIS loads it \
             into the worker process of every application of that site, whatever its application pool, so also of:".into(),
            "  Default Web Site (application pool DefaultAppPool, %SystemDrive%\\inetpub\\wwwroot): its Python \
             version is unknown (not a frozen app)".into(),
            format!("updated {cfg}: added 1 application pool, added 2 applications, added 2 handler mappings, added 1 directory browsing, added 1 ISAPI restriction, added 1 ISAPI filter"),
            "note: --config edits a file only; on the server run:".into(),
            format!("  icacls {dir} /grant \"IIS AppPool\\isapi-freeze-installable:(OI)(CI)RX\""),
            format!("  icacls {dir}\\logs /grant \"IIS AppPool\\isapi-freeze-installable:(OI)(CI)M\""),
            "post-install hook: /installable/api".into(),
            "Configured Virtual Directory: /installable/api".into(),
            "Configured Virtual Directory: installable/admin".into(),
            "Configured Filter: installable-filter".into(),
            "Installation complete.".into(),
        ]
    );
    let text = config.text();
    for expected in [
        format!("                <application path=\"/installable/api\" applicationPool=\"isapi-freeze-installable\">{CRLF}                    <virtualDirectory path=\"/\" physicalPath=\"{dir}\" />"),
        format!("                <application path=\"/installable/admin\" applicationPool=\"isapi-freeze-installable\">{CRLF}                    <virtualDirectory path=\"/\" physicalPath=\"{dir}\" />"),
        format!("    <location path=\"Default Web Site/installable/api\">{CRLF}        <system.webServer>{CRLF}            <handlers accessPolicy=\"Execute, Script\">{CRLF}                <add name=\"isapi-freeze-installable\" path=\"*\" verb=\"*\" modules=\"IsapiModule\" scriptProcessor=\"{dll}\" resourceType=\"Unspecified\" requireAccess=\"None\" preCondition=\"bitness64\" responseBufferLimit=\"0\" />"),
        format!("    <location path=\"Default Web Site/installable/admin\">{CRLF}        <system.webServer>{CRLF}            <handlers accessPolicy=\"Read, Execute, Script\">{CRLF}                <add name=\"isapi-freeze-installable\" path=\"*.py\" verb=\"GET,POST\" modules=\"IsapiModule\" scriptProcessor=\"{dll}\" resourceType=\"File\" requireAccess=\"Script\" preCondition=\"bitness64\" responseBufferLimit=\"0\" />{CRLF}            </handlers>{CRLF}            <directoryBrowse enabled=\"true\" />"),
        format!("    <location path=\"Default Web Site\">{CRLF}        <system.webServer>{CRLF}            <isapiFilters>{CRLF}                <filter name=\"installable-filter\" path=\"{dll}\" enabled=\"true\" preCondition=\"bitness64\" />"),
        format!("                <add path=\"{dll}\" allowed=\"true\" description=\"installable (isapi-freeze)\" />"),
    ] {
        assert!(text.contains(&expected), "missing:\n{expected}\nin:\n{text}");
    }
    // The unrelated site and its handler entries survive untouched.
    let fixture_text = String::from_utf8(iis_fixture()).unwrap();
    let intranet = |t: &str| {
        let start = t.find("    <location path=\"Intranet\">").unwrap();
        t[start..start + t[start..].find("</location>").unwrap()].to_string()
    };
    assert_eq!(intranet(&text), intranet(&fixture_text));

    let status = run_windows(&exe, &["status"], config.dir());
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.stdout, "status: /installable/api and /installable/admin");

    let planned = config.run(&exe, "remove", &["--dry-run", "--print-appcmd"]);
    assert_eq!(planned.code, 0, "{planned:?}");
    assert_valid_appcmd(&config.text(), &lines(&planned.stdout));

    let removed = config.run(&exe, "remove", &[]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(
        config.bytes(),
        iis_fixture(),
        "remove gives back the file byte for byte"
    );
}

#[test]
fn a_site_filter_names_the_sites_other_applications_and_warns_of_another_python_version() {
    let installable = Freeze::script(repo().join("examples/installable/installable.py")).ok();
    let python = crate::support::default_python();
    let other = isapi_freeze_format::pythons::supported()
        .into_iter()
        .find(|p| p.version() != python.version())
        .expect("a second supported CPython version");
    // Another application of the site: a folder that runs another CPython (its DLL is
    // what tells), and a frozen app for the same version (its manifest.json tells).
    let elsewhere = temp_dir();
    std::fs::write(elsewhere.path().join(other.dll_name()), b"").unwrap();
    let text = insert_after(
        &String::from_utf8(iis_fixture()).unwrap(),
        "                </application>",
        &[
            "                <application path=\"/older\" applicationPool=\"Intranet\">".into(),
            format!(
                "                    <virtualDirectory path=\"/\" physicalPath=\"{}\" />",
                win_path(elsewhere.path())
            ),
            "                </application>".into(),
            "                <application path=\"/plain\">".into(),
            format!(
                "                    <virtualDirectory path=\"/\" physicalPath=\"{}\" />",
                win_path(&plain().dist)
            ),
            "                </application>".into(),
        ],
    );
    let config = Config::with(&text);
    let expected = [
        "note: the ISAPI filter installable-filter is registered on site 'Default Web Site': IIS loads it \
         into the worker process of every application of that site, whatever its application pool, so also of:"
            .to_string(),
        "  Default Web Site (application pool DefaultAppPool, %SystemDrive%\\inetpub\\wwwroot): its Python \
         version is unknown (not a frozen app)"
            .into(),
        format!(
            "  Default Web Site/older (application pool Intranet, {}): Python {}",
            win_path(elsewhere.path()),
            other.version()
        ),
        format!(
            "  Default Web Site/plain (application pool DefaultAppPool, {}): Python {}, as this app: its \
             worker runs both apps in one interpreter",
            win_path(&plain().dist),
            python.version()
        ),
        format!(
            "warning: Default Web Site/older runs Python {} and this app Python {}: one process runs one \
             CPython version, so in Default Web Site/older's worker the filter installable-filter refuses to \
             load; freeze both apps for one CPython version, or register the filter on a site of its own",
            other.version(),
            python.version()
        ),
    ];
    // A dry run says it too, and changes nothing.
    let dry = config.run(&installable.exe(), "install", &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(lines(&dry.stdout)[..expected.len()], expected, "{dry:?}");
    assert_eq!(config.text(), text);
    let installed = config.run(&installable.exe(), "install", &[]);
    assert_eq!(installed.code, 0, "{installed:?}");
    assert_eq!(lines(&installed.stdout)[..expected.len()], expected, "{installed:?}");
    // The applications of another site are not named.
    assert!(!installed.stdout.contains("Intranet/"), "{installed:?}");
}

#[test]
fn a_server_wide_filter_names_the_applications_of_every_site() {
    let global = Freeze::source(
        "global_filter.py",
        "from isapi import isapicon\n\
         from isapi.simple import SimpleFilter\n\
         class Filter(SimpleFilter):\n\
         \x20   'global filter'\n\
         \x20   filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS\n\
         def __FilterFactory__():\n\
         \x20   return Filter()\n\
         if __name__ == '__main__':\n\
         \x20   from isapi.install import FilterParameters, HandleCommandLine, ISAPIParameters\n\
         \x20   params = ISAPIParameters()\n\
         \x20   params.Filters = [FilterParameters(Name='global-filter', Description='global filter', Server='*')]\n\
         \x20   HandleCommandLine(params)\n",
    )
    .ok();
    let config = Config::new();
    let dry = config.run(&global.exe(), "install", &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(
        lines(&dry.stdout)[..4],
        [
            "note: the ISAPI filter global-filter is registered server-wide: IIS loads it into the worker \
             process of every application of every site, whatever its application pool, so also of:",
            "  Default Web Site (application pool DefaultAppPool, %SystemDrive%\\inetpub\\wwwroot): its Python \
             version is unknown (not a frozen app)",
            "  Intranet (application pool Intranet, D:\\sites\\intranet): its Python version is unknown (not a \
             frozen app)",
            "  Intranet/reports (application pool Intranet, D:\\sites\\reports): its Python version is unknown \
             (not a frozen app)",
        ],
        "{dry:?}"
    );
    assert_eq!(config.bytes(), iis_fixture());
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let tmp = temp_dir();
    let finished = run_windows(&plain().exe(), &["instal"], tmp.path());
    assert_eq!(finished.code, 2, "{finished:?}");
    assert!(
        finished.stderr.ends_with("plain.exe: error: Invalid arg 'instal'"),
        "{finished:?}"
    );
}

#[test]
fn a_config_changed_by_someone_else_between_read_and_write_is_left_alone() {
    // The guard of `install --config`, driven directly with this machine's Python: the file
    // on disk no longer holds what the change was planned from.
    let tmp = temp_dir();
    let config = tmp.path().join("applicationHost.config");
    std::fs::write(&config, "<configuration>edited by someone else</configuration>").unwrap();
    std::fs::write(
        tmp.path().join("applicationHost.config.isapi-freeze-backup"),
        "an earlier backup",
    )
    .unwrap();
    let script = format!(
        "import sys\nsys.path.insert(0, {resources:?})\nimport isapi.install as i\n\
         try:\n    i.write_config({path:?}, b'<configuration>ours</configuration>', read=b'<configuration>as read</configuration>')\n\
         except i.InstallationError as e:\n    print(e)\n",
        path = config.display().to_string(),
        resources = repo().join("resources").display().to_string()
    );
    let out = std::process::Command::new("python3")
        .args(["-I", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{} was changed by someone else while this ran; nothing was changed: run the command again\n",
            config.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "<configuration>edited by someone else</configuration>"
    );
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["applicationHost.config", "applicationHost.config.isapi-freeze-backup"]
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("applicationHost.config.isapi-freeze-backup")).unwrap(),
        "an earlier backup"
    );
}

#[test]
fn install_and_remove_work_alike_on_every_tested_python() {
    for python in crate::support::other_pythons() {
        let frozen = Freeze::source("plain.py", PLAIN)
            .python(crate::support::runtime_of(&python))
            .ok();
        let config = Config::new();
        let installed = config.run(&frozen.exe(), "install", &[]);
        assert_eq!(installed.code, 0, "CPython {}: {installed:?}", python.version());
        assert_eq!(
            String::from_utf8_lossy(&config.bytes()),
            String::from_utf8_lossy(&plain_installed(&frozen.dist)),
            "CPython {}",
            python.version()
        );
        let removed = config.run(&frozen.exe(), "remove", &[]);
        assert_eq!(removed.code, 0, "CPython {}: {removed:?}", python.version());
        assert_eq!(config.bytes(), iis_fixture(), "CPython {}", python.version());
    }
}

#[test]
fn the_pool_may_write_only_logs_and_the_declared_data_folder() {
    let frozen = plain().copy();
    let dir = win_path(&frozen.dist);
    let config = Config::new();
    let account = "IIS AppPool\\isapi-freeze-plain";
    let dry = config.run(
        &frozen.exe(),
        "install",
        &["--dry-run", "--print-appcmd", "--data-dir", "data/db"],
    );
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(
        lines(&dry.stdout)[4..],
        [
            format!("icacls {dir} /grant \"{account}:(OI)(CI)RX\""),
            format!("icacls {dir}\\logs /grant \"{account}:(OI)(CI)M\""),
            format!("icacls {dir}\\data\\db /grant \"{account}:(OI)(CI)M\""),
        ]
    );
    assert!(!frozen.dist.join("data").exists(), "a dry run creates nothing");

    // The pool cannot create the folders it may write (it only reads the output folder):
    // install does.
    let installed = config.run(&frozen.exe(), "install", &["--data-dir", "data/db"]);
    assert_eq!(installed.code, 0, "{installed:?}");
    assert!(frozen.dist.join("logs").is_dir() && frozen.dist.join("data/db").is_dir());
    assert_eq!(
        lines(&installed.stdout)[1..5],
        [
            "note: --config edits a file only; on the server run:".to_string(),
            format!("  icacls {dir} /grant \"{account}:(OI)(CI)RX\""),
            format!("  icacls {dir}\\logs /grant \"{account}:(OI)(CI)M\""),
            format!("  icacls {dir}\\data\\db /grant \"{account}:(OI)(CI)M\""),
        ]
    );
    let removed = config.run(
        &frozen.exe(),
        "remove",
        &["--dry-run", "--print-appcmd", "--data-dir", "data/db"],
    );
    assert_eq!(
        lines(&removed.stdout)[4..],
        [
            format!("icacls {dir}\\data\\db /remove:g \"{account}\""),
            format!("icacls {dir}\\logs /remove:g \"{account}\""),
            format!("icacls {dir} /remove:g \"{account}\""),
        ]
    );

    // Python's repr of each value, as the message shows it.
    for (outside, shown) in [
        ("..\\shared", "'..\\\\shared'"),
        ("C:\\data", "'C:\\\\data'"),
        ("/", "'/'"),
    ] {
        assert_eq!(
            refused_install(&config, &["--data-dir", outside]),
            format!(
                "ConfigurationError: --data-dir {shown} must name a folder inside the output directory (e.g. 'data'), \
                 so that it moves with it"
            )
        );
    }
}

/// `plain.py` frozen to install at the root of its site (`--vpath /`).
fn plain_at_root() -> &'static Frozen {
    shared_with("install: plain.py at /", || {
        Freeze::source("plain.py", PLAIN).args(["--vpath", "/"]).ok()
    })
}

#[test]
fn a_site_root_served_by_a_32_bit_pool_is_refused_naming_the_setting() {
    let dll = format!("{}\\_plain.dll", win_path(&plain_at_root().dist));
    let fixture = String::from_utf8(iis_fixture()).unwrap();
    let explicit = fixture.replacen(
        "<add name=\"DefaultAppPool\" />",
        "<add name=\"DefaultAppPool\" enable32BitAppOnWin64=\"true\" />",
        1,
    );
    let defaults = fixture.replacen(
        "<applicationPoolDefaults managedRuntimeVersion=\"v4.0\">",
        "<applicationPoolDefaults managedRuntimeVersion=\"v4.0\" enable32BitAppOnWin64=\"true\">",
        1,
    );
    for (text, source) in [(explicit, ""), (defaults, ", from applicationPoolDefaults")] {
        let config = Config::with(&text);
        let refused = config.run(&plain_at_root().exe(), "install", &[]);
        assert_eq!(refused.code, 1, "{refused:?}");
        assert_eq!(
            refused.stderr,
            format!(
                "ConfigurationError: application pool 'DefaultAppPool', which serves the root of site 'Default Web \
                 Site', runs 32-bit worker processes (enable32BitAppOnWin64=true{source}) and cannot load {dll}, a \
                 64-bit DLL. Set enable32BitAppOnWin64 to false (`appcmd set apppool \"DefaultAppPool\" \
                 /enable32BitAppOnWin64:false`), or install under a path of its own (--vpath when freezing, or the \
                 VirtualDirParameters Name), which gets a pool of the DLL's bitness"
            )
        );
        assert_eq!(config.text(), text);
    }
    // In a 64-bit pool the root gets the handler and no pool or application of its own.
    let config = Config::new();
    let installed = config.run(&plain_at_root().exe(), "install", &["-q"]);
    assert_eq!(installed.code, 0, "{installed:?}");
    let text = config.text();
    assert!(!text.contains("isapi-freeze-plain\" managedRuntimeVersion"), "{text}");
    assert_contains(
        &text,
        "    <location path=\"Default Web Site\">\r\n        <system.webServer>\r\n            <handlers",
    );
}

#[test]
fn a_filter_needs_the_isapi_filters_feature_installed_and_enabled() {
    let installable = shared_with("install: installable.py", || {
        Freeze::script(repo().join("examples/installable/installable.py")).ok()
    });
    let without = String::from_utf8(iis_fixture()).unwrap().replacen(
        "            <add name=\"IsapiFilterModule\" image=\"%windir%\\System32\\inetsrv\\filter.dll\" />\r\n",
        "",
        1,
    );
    let config = Config::with(&without);
    let refused = config.run(&installable.exe(), "install", &[]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(
        refused.stderr.replace(&config.win, "CONFIG"),
        "ConfigurationError: IIS's ISAPI Filters feature is not installed (CONFIG has no IsapiFilterModule in \
         globalModules). Install it: `Install-WindowsFeature Web-ISAPI-Filter` on Windows Server, \
         `dism /online /enable-feature /featurename:IIS-ISAPIFilter` elsewhere"
    );
    assert_eq!(config.text(), without);
    let disabled = String::from_utf8(iis_fixture()).unwrap().replacen(
        "                <add name=\"IsapiModule\" lockItem=\"true\" />\r\n",
        "",
        1,
    );
    let config = Config::with(&disabled);
    assert_eq!(
        refused_install(&config, &[]).replace(&config.win, "CONFIG"),
        "ConfigurationError: IIS's ISAPI Extensions feature is installed but its module is not enabled: the \
         server's <modules> in CONFIG has no IsapiModule. Enable it: `appcmd set config \
         /section:system.webServer/modules /+[name='IsapiModule'] /commit:apphost`, or reinstall the feature \
         (Web-ISAPI-Ext)"
    );
}

#[test]
fn processes_makes_the_pool_a_web_garden() {
    let exe = plain().exe();
    let config = Config::new();
    let dry = config.run(&exe, "install", &["--dry-run", "--print-appcmd", "--processes", "4"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(
        lines(&dry.stdout)[0],
        "appcmd add apppool /name:isapi-freeze-plain /managedRuntimeVersion: /enable32BitAppOnWin64:false \
         /processModel.maxProcesses:4"
    );
    assert_valid_appcmd(&config.text(), &lines(&dry.stdout));

    let installed = config.run(&exe, "install", &["--processes", "4"]);
    assert_eq!(installed.code, 0, "{installed:?}");
    assert_contains(
        &config.text(),
        "            <add name=\"isapi-freeze-plain\" managedRuntimeVersion=\"\" enable32BitAppOnWin64=\"false\">\r\n\
         \x20               <processModel maxProcesses=\"4\" />\r\n\
         \x20           </add>\r\n",
    );
    // Installing again without it goes back to one process, as appcmd would set it.
    let again = config.run(&exe, "install", &["--dry-run", "--print-appcmd"]);
    assert_eq!(
        lines(&again.stdout)[0],
        "appcmd set apppool isapi-freeze-plain /managedRuntimeVersion: /enable32BitAppOnWin64:false \
         /processModel.maxProcesses:1"
    );
    assert_valid_appcmd(&config.text(), &lines(&again.stdout));
    let removed = config.run(&exe, "remove", &[]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(config.bytes(), iis_fixture());

    for wrong in ["0", "two"] {
        assert_eq!(
            refused_install(&config, &["--processes", wrong]),
            format!("ConfigurationError: --processes '{wrong}' must be a whole number of worker processes, 1 or more")
        );
    }
}

#[test]
fn request_limits_are_raised_in_the_apps_location_only() {
    let exe = plain().exe();
    let config = Config::new();
    let options = ["--max-body", "100M", "--max-query", "8192", "--allow-double-escaping"];
    let mut dry_options = vec!["--dry-run", "--print-appcmd"];
    dry_options.extend(options);
    let dry = config.run(&exe, "install", &dry_options);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(
        lines(&dry.stdout)[3],
        "appcmd set config \"Default Web Site/plain\" /section:system.webServer/security/requestFiltering \
         /allowDoubleEscaping:true /requestLimits.maxAllowedContentLength:104857600 /requestLimits.maxQueryString:8192 \
         /commit:apphost"
    );
    assert_valid_appcmd(&config.text(), &lines(&dry.stdout));

    let installed = config.run(&exe, "install", &options);
    assert_eq!(installed.code, 0, "{installed:?}");
    assert_contains(
        &config.text(),
        &[
            "            </handlers>",
            "            <security>",
            "                <requestFiltering allowDoubleEscaping=\"true\">",
            "                    <requestLimits maxAllowedContentLength=\"104857600\" maxQueryString=\"8192\" />",
            "                </requestFiltering>",
            "            </security>",
            "        </system.webServer>",
            "    </location>",
        ]
        .join(CRLF),
    );
    // Fewer options the next time: the old settings are cleared, not left behind.
    let again = config.run(&exe, "install", &["--dry-run", "--print-appcmd", "--max-query", "4096"]);
    assert_eq!(
        lines(&again.stdout)[..2],
        [
            "appcmd clear config \"Default Web Site/plain\" /section:system.webServer/security/requestFiltering \
             /commit:apphost",
            "appcmd set config \"Default Web Site/plain\" /section:system.webServer/security/requestFiltering \
             /requestLimits.maxQueryString:4096 /commit:apphost",
        ]
    );
    let removed = config.run(&exe, "remove", &options);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(config.bytes(), iis_fixture());

    for (option, value, message) in [
        (
            "--max-body",
            "5T",
            "--max-body '5T' must be a number of bytes, or with K, M or G",
        ),
        (
            "--max-body",
            "4G",
            "--max-body '4G' must be a number of bytes, or with K, M or G",
        ),
        ("--max-query", "2K", "--max-query '2K' must be a number of characters"),
    ] {
        assert_eq!(
            refused_install(&config, &[option, value]),
            format!("ConfigurationError: {message}, at most 4294967295 bytes (IIS's uint)")
        );
    }
}

#[test]
fn a_farms_shared_configuration_points_at_the_folder_on_the_nodes() {
    // --config would be \\SERVER\share\applicationHost.config; the folder is at the same
    // path on every node, not where this copy is.
    let config = Config::new();
    let installed = config.run(&plain().exe(), "install", &["--physical-path", "D:\\apps\\plain\\"]);
    assert_eq!(installed.code, 0, "{installed:?}");
    let text = config.text();
    for expected in [
        "<virtualDirectory path=\"/\" physicalPath=\"D:\\apps\\plain\" />",
        "<add path=\"D:\\apps\\plain\\_plain.dll\" allowed=\"true\" description=\"plain (isapi-freeze)\" />",
        "scriptProcessor=\"D:\\apps\\plain\\_plain.dll\"",
    ] {
        assert_contains(&text, expected);
    }
    assert!(!text.contains(&win_path(&plain().dist)), "{text}");
    assert_eq!(
        lines(&installed.stdout)[2..4],
        [
            "  icacls D:\\apps\\plain /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\"",
            "  icacls D:\\apps\\plain\\logs /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)M\"",
        ]
    );
    let removed = config.run(&plain().exe(), "remove", &["--physical-path", "D:\\apps\\plain"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(config.bytes(), iis_fixture());
    assert_eq!(
        refused_install(&config, &["--physical-path", "apps\\plain"]),
        "ConfigurationError: --physical-path 'apps\\\\plain' must be a full Windows path (e.g. D:\\apps\\plain)"
    );
}

#[test]
fn an_application_another_tool_made_for_this_folder_is_taken_over() {
    // What Web Deploy's iisApp leaves before the package runs SCRIPT.exe install: the
    // application for this very folder, in the site's default pool.
    let dir = win_path(&plain().dist);
    let made = String::from_utf8(iis_fixture()).unwrap().replacen(
        "                <application path=\"/reports\" applicationPool=\"Intranet\">",
        &format!(
            "                <application path=\"/plain\" applicationPool=\"DefaultAppPool\">\r\n\
             \x20                   <virtualDirectory path=\"/\" physicalPath=\"{}\" />\r\n\
             \x20               </application>\r\n\
             \x20               <application path=\"/reports\" applicationPool=\"Intranet\">",
            dir.to_uppercase()
        ),
        1,
    );
    let config = Config::with(&made);
    let installed = config.run(&plain().exe(), "install", &["--server", "Intranet"]);
    assert_eq!(installed.code, 0, "{installed:?}");
    assert!(
        lines(&installed.stdout)[0].contains("updated 1 application"),
        "{installed:?}"
    );
    assert_contains(
        &config.text(),
        "<application path=\"/plain\" applicationPool=\"isapi-freeze-plain\">",
    );
    // One for another folder is not this installer's to take.
    let other = made.replace(&dir.to_uppercase(), "D:\\elsewhere");
    let config = Config::with(&other);
    let refused = refused_install(&config, &["--server", "Intranet"]);
    assert!(
        refused.contains("already has an application /plain (application pool 'DefaultAppPool')"),
        "{refused}"
    );
}

// Upgrades side by side ---------------------------------------------------------------

/// Copies of plain.py's output in `config`'s folder, one per version: `v1`, `v2`, ...
fn versions(config: &Config, names: &[&str]) -> Vec<PathBuf> {
    versions_of(plain(), config, names)
}

/// Copies of `frozen`'s output in `config`'s folder, one per name.
fn versions_of(frozen: &Frozen, config: &Config, names: &[&str]) -> Vec<PathBuf> {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    names
        .iter()
        .map(|name| {
            let dist = config.dir().join(name);
            copy(&frozen.dist, &dist);
            dist
        })
        .collect()
}

fn exe_in(dist: &Path) -> PathBuf {
    dist.join("plain.exe")
}

#[test]
fn installing_a_new_version_from_another_folder_switches_iis_in_one_change_and_rollback_switches_back() {
    let config = Config::new();
    let cfg = &config.win;
    let [v1, v2] = <[PathBuf; 2]>::try_from(versions(&config, &["v1", "v2"])).unwrap();
    let (w1, w2) = (win_path(&v1), win_path(&v2));

    let first = config.run(&exe_in(&v1), "install", &["-q"]);
    assert_eq!(first.code, 0, "{first:?}");
    let after_v1 = config.bytes();
    assert_eq!(after_v1, plain_installed(&v1));

    let upgrade = config.run(&exe_in(&v2), "install", &[]);
    assert_eq!(upgrade.code, 0, "{upgrade:?}");
    assert_eq!(
        lines(&upgrade.stdout),
        [
            format!("updated {cfg}: updated 1 application, updated 1 handler mapping, removed 1 ISAPI restriction, added 1 ISAPI restriction"),
            "note: --config edits a file only; on the server run:".into(),
            format!("  icacls {w2} /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\""),
            format!("  icacls {w2}\\logs /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)M\""),
            "  appcmd recycle apppool /apppool.name:isapi-freeze-plain".into(),
            format!("plain now runs from {w2} (before: {w1})"),
            "Configured Virtual Directory: /plain".into(),
            "Installation complete.".into(),
        ]
    );
    // Every entry names version 2, in version 1's place: the file is what installing
    // version 2 alone makes, and none of version 1's entries is left.
    assert_eq!(
        String::from_utf8_lossy(&config.bytes()),
        String::from_utf8_lossy(&plain_installed(&v2))
    );
    assert!(!config.text().contains(&w1), "{}", config.text());
    // One change: the backup of the one write is the file as version 1 left it.
    assert_eq!(
        std::fs::read(config.dir().join("applicationHost.config.isapi-freeze-backup")).unwrap(),
        after_v1
    );
    assert!(v1.join("_plain.dll").is_file(), "the old folder stays");

    let again = config.run(&exe_in(&v2), "install", &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        lines(&again.stdout)[0],
        format!("IIS configuration already up to date ({cfg})")
    );
    assert_eq!(config.bytes(), plain_installed(&v2));

    let dry = config.run(&exe_in(&v2), "rollback", &["--dry-run", "--print-appcmd"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(config.bytes(), plain_installed(&v2), "a dry run changes nothing");
    assert_eq!(
        lines(&dry.stdout),
        [
            "appcmd delete app \"Default Web Site/plain\"".into(),
            format!("appcmd add app \"/site.name:Default Web Site\" /path:/plain /physicalPath:{w1} /applicationPool:isapi-freeze-plain"),
            "appcmd set config \"Default Web Site/plain\" /section:system.webServer/handlers /-[name='isapi-freeze-plain'] /commit:apphost".into(),
            format!("appcmd set config \"Default Web Site/plain\" /section:system.webServer/handlers /+[name='isapi-freeze-plain',path='*',verb='*',modules='IsapiModule',scriptProcessor='{w1}\\_plain.dll',resourceType='Unspecified',requireAccess='None',preCondition='bitness64',responseBufferLimit='0'] /commit:apphost"),
            format!("appcmd set config /section:system.webServer/security/isapiCgiRestriction /-[path='{w2}\\_plain.dll'] /commit:apphost"),
            format!("appcmd set config /section:system.webServer/security/isapiCgiRestriction \"/+[path='{w1}\\_plain.dll',allowed='true',description='plain (isapi-freeze)']\" /commit:apphost"),
            "appcmd recycle apppool /apppool.name:isapi-freeze-plain".into(),
        ]
    );

    let rollback = config.run(&exe_in(&v2), "rollback", &[]);
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert_eq!(
        lines(&rollback.stdout),
        [
            format!("updated {cfg}: updated 1 application, updated 1 handler mapping, removed 1 ISAPI restriction, added 1 ISAPI restriction"),
            "note: --config edits a file only; on the server run:".into(),
            "  appcmd recycle apppool /apppool.name:isapi-freeze-plain".into(),
            format!("plain now runs from {w1} (before: {w2})"),
        ]
    );
    assert_eq!(
        config.bytes(),
        after_v1,
        "rollback gives back the file as version 1's install left it"
    );
    let again = config.run(&exe_in(&v2), "rollback", &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        lines(&again.stdout),
        [format!("IIS configuration already up to date ({cfg})")]
    );
    assert_eq!(config.bytes(), after_v1);

    // Version 1 serves again: its folder is not the previous one's to delete.
    let refused = config.run(&exe_in(&v2), "remove", &["--previous"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(
        refused.stderr.trim_end(),
        format!("ConfigurationError: IIS serves plain from {w1} again (after a rollback): it is not removed. Install this version again first (plain.exe install)")
    );
    assert!(v1.join("_plain.dll").is_file());

    // Remove takes out what is installed, whichever version's folder runs it.
    let removed = config.run(&exe_in(&v2), "remove", &[]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(
        lines(&removed.stdout)[0],
        format!("note: IIS serves plain from {w1}; removing that")
    );
    assert_eq!(
        config.bytes(),
        iis_fixture(),
        "remove gives back the file byte for byte"
    );
}

#[test]
fn remove_previous_deletes_the_replaced_folder_once_the_new_version_serves() {
    let config = Config::new();
    let [v1, v2] = <[PathBuf; 2]>::try_from(versions(&config, &["v1", "v2"])).unwrap();
    assert_eq!(config.run(&exe_in(&v1), "install", &["-q"]).code, 0);
    assert_eq!(config.run(&exe_in(&v2), "install", &["-q"]).code, 0);

    let dry = config.run(&exe_in(&v2), "remove", &["--previous", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(lines(&dry.stdout), [format!("would delete {}", win_path(&v1))]);
    assert!(v1.join("_plain.dll").is_file(), "a dry run deletes nothing");

    let removed = config.run(&exe_in(&v2), "remove", &["--previous"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(lines(&removed.stdout), [format!("deleted {}", win_path(&v1))]);
    assert!(!v1.exists());
    assert_eq!(
        config.bytes(),
        plain_installed(&v2),
        "IIS's configuration is not touched"
    );

    let rollback = config.run(&exe_in(&v2), "rollback", &[]);
    assert_eq!(rollback.code, 1, "{rollback:?}");
    assert_eq!(
        rollback.stderr.trim_end(),
        format!(
            "ConfigurationError: {} has no previous-install.json: its install did not replace an older version, so there is no previous version to go back to",
            win_path(&v2)
        )
    );
    assert_eq!(config.run(&exe_in(&v2), "remove", &["-q"]).code, 0);
    assert_eq!(config.bytes(), iis_fixture());
}

#[test]
fn an_upgrade_into_a_folder_inside_the_installed_one_or_another_apps_is_refused() {
    let config = Config::new();
    let [v1] = <[PathBuf; 1]>::try_from(versions(&config, &["v1"])).unwrap();
    assert_eq!(config.run(&exe_in(&v1), "install", &["-q"]).code, 0);
    let installed = config.bytes();

    let nested = versions(&config, &["v1/next"]).remove(0);
    let refused = config.run(&exe_in(&nested), "install", &[]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(
        refused.stderr.trim_end(),
        format!(
            "ConfigurationError: cannot upgrade plain from {} to {}: one folder is inside the other. Put each version in a folder of its own beside the installed one (e.g. C:\\apps\\plain-2): IIS keeps the installed version's DLLs loaded until the pool recycles",
            win_path(&v1),
            win_path(&nested)
        )
    );
    assert_eq!(config.bytes(), installed);

    // A folder the Intranet site's /reports application serves.
    let [other] = <[PathBuf; 1]>::try_from(versions(&config, &["reports"])).unwrap();
    let served = String::from_utf8(installed.clone())
        .unwrap()
        .replacen("D:\\sites\\reports", &win_path(&other), 1);
    assert_ne!(served.as_bytes(), installed, "the fixture has /reports");
    std::fs::write(&config.path, &served).unwrap();
    let refused = config.run(&exe_in(&other), "install", &[]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(
        refused.stderr.trim_end(),
        format!(
            "ConfigurationError: cannot upgrade plain to {}: that folder is what application Intranet/reports (application pool 'Intranet') serves. Copy the new version into a folder of its own",
            win_path(&other)
        )
    );
    assert_eq!(config.text(), served);
}

#[test]
fn an_upgrade_switches_every_application_handler_and_the_filter_of_a_pywin32_style_script() {
    let installable = Freeze::script(repo().join("examples/installable/installable.py")).ok();
    let config = Config::new();
    let [v1, v2] = <[PathBuf; 2]>::try_from(versions_of(&installable, &config, &["v1", "v2"])).unwrap();
    let (w1, w2) = (win_path(&v1), win_path(&v2));
    let exe = |dist: &Path| dist.join("installable.exe");
    assert_eq!(config.run(&exe(&v1), "install", &["-q"]).code, 0);
    let after_v1 = config.text();

    let upgrade = config.run(&exe(&v2), "install", &[]);
    assert_eq!(upgrade.code, 0, "{upgrade:?}");
    // First the note on the site's root application, which loads the site's filter too.
    assert_contains(
        lines(&upgrade.stdout)[1],
        "  Default Web Site (application pool DefaultAppPool",
    );
    assert_eq!(
        lines(&upgrade.stdout)[2],
        format!("updated {}: updated 2 applications, updated 2 handler mappings, removed 1 ISAPI restriction, added 1 ISAPI restriction, updated 1 ISAPI filter", config.win)
    );
    // Each entry names the new folder in the old one's place; nothing else moved.
    assert_eq!(config.text(), after_v1.replace(&w1, &w2));

    assert_eq!(config.run(&exe(&v2), "rollback", &["-q"]).code, 0);
    assert_eq!(config.text(), after_v1);
    assert_eq!(config.run(&exe(&v1), "remove", &["-q"]).code, 0);
    assert_eq!(config.bytes(), iis_fixture());
}

// The Event Log source ----------------------------------------------------------------

/// What Windows says of the event source for `loader`: the registry entries (this
/// loader's among the source's users, TypesSupported) and the texts FormatMessage finds
/// in the loader's message table for events 1 to 4, each with "boom" as its %1.
fn event_source_seen(dir: &Path, loader: &Path) -> Vec<String> {
    let script = dir.join("event_source.py");
    std::fs::write(
        &script,
        r#"import ctypes, sys, winreg
key_path = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\isapi-freeze"
loader = sys.argv[1]
try:
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path) as key:
        for name in ("isapi-freeze app: " + loader, "TypesSupported"):
            try:
                print(name.replace(loader, "LOADER"), "=", winreg.QueryValueEx(key, name)[0])
            except FileNotFoundError:
                print(name.replace(loader, "LOADER"), "missing")
        message_file = winreg.QueryValueEx(key, "EventMessageFile")[0]
        print("EventMessageFile is a loader:", message_file.endswith(".dll"))
except FileNotFoundError:
    print("no key")
kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
kernel32.LoadLibraryExW.restype = ctypes.c_void_p
module = kernel32.LoadLibraryExW(loader, None, 2)  # LOAD_LIBRARY_AS_DATAFILE
args = (ctypes.c_wchar_p * 1)("boom")
for event in range(1, 6):
    buffer = ctypes.create_unicode_buffer(512)
    # FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ARGUMENT_ARRAY
    n = kernel32.FormatMessageW(0x2800, ctypes.c_void_p(module), event, 0, buffer, 512, args)
    print(event, repr(buffer.value) if n else "no message")
"#,
    )
    .unwrap();
    let python = crate::support::windows_python().join("python.exe");
    let finished = run_windows(&python, &[&win_path(&script), &win_path(loader)], dir);
    assert_eq!(finished.code, 0, "{finished:?}");
    finished.stdout.lines().map(str::to_string).collect()
}

#[test]
fn install_registers_the_event_source_with_the_loaders_message_table_and_remove_unregisters_it() {
    let config = Config::new();
    let [v1, v2] = <[PathBuf; 2]>::try_from(versions(&config, &["v1", "v2"])).unwrap();
    let texts = [
        "1 'boom\\r\\n'",
        "2 'The ISAPI application could not start: boom\\r\\n'",
        "3 'A request failed: boom\\r\\n'",
        "4 'The ISAPI filter failed: boom\\r\\n'",
        "5 no message",
    ];
    let registered = |loader: &Path| {
        let mut seen = vec![
            "isapi-freeze app: LOADER = plain".to_string(),
            "TypesSupported = 7".into(),
            "EventMessageFile is a loader: True".into(),
        ];
        seen.extend(texts.iter().map(|t| t.to_string()));
        assert_eq!(event_source_seen(config.dir(), loader), seen);
    };
    // Other tests install other apps in the same Wine prefix at the same time: only this
    // app's own entry is certain, and the key may or may not be there without it.
    let unregistered = |loader: &Path| {
        let seen = event_source_seen(config.dir(), loader);
        assert!(
            seen[0] == "no key" || seen[0] == "isapi-freeze app: LOADER missing",
            "{seen:?}"
        );
        assert_eq!(seen[seen.len() - 5..], texts);
    };

    assert_eq!(config.run(&exe_in(&v1), "install", &["-q"]).code, 0);
    registered(&v1.join("_plain.dll"));
    // An upgrade moves the registration to the new folder's loader; a rollback back.
    assert_eq!(config.run(&exe_in(&v2), "install", &["-q"]).code, 0);
    registered(&v2.join("_plain.dll"));
    unregistered(&v1.join("_plain.dll"));
    assert_eq!(config.run(&exe_in(&v2), "rollback", &["-q"]).code, 0);
    registered(&v1.join("_plain.dll"));
    unregistered(&v2.join("_plain.dll"));
    assert_eq!(config.run(&exe_in(&v1), "remove", &["-q"]).code, 0);
    unregistered(&v1.join("_plain.dll"));
    assert_eq!(config.bytes(), iis_fixture());
}
