//! `SCRIPT.exe install` and `remove` against an applicationHost.config fixture (the
//! structure of a default IIS 10 install with an unrelated site), run under Wine with
//! `--config`: what install adds, that it is idempotent, that remove gives the file back
//! byte for byte, and that bad input changes nothing and exits non-zero.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::freeze::{freeze, freeze_ok};
use crate::harness::{repo, run_windows, temp_dir, win_path, windows_python, Finished};

const CRLF: &str = "\r\n";

fn fixture() -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/iis/applicationHost.config")).unwrap()
}

/// A script with no install code of its own.
const PLAIN: &str = "\"\"\"No install code.\"\"\"\nfrom isapi.simple import SimpleExtension\n\n\
class Extension(SimpleExtension):\n    def HttpExtensionProc(self, ecb):\n        return 1\n\n\
def __ExtensionFactory__():\n    return Extension()\n";

/// `plain.py` frozen once into a shared output directory (tests only read it).
fn plain_dist() -> &'static Path {
    static DIST: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIST
        .get_or_init(|| {
            let tmp = temp_dir();
            let script = tmp.path().join("plain.py");
            std::fs::write(&script, PLAIN).unwrap();
            let dist = tmp.path().join("dist");
            freeze_ok(&script, &dist);
            (tmp, dist)
        })
        .1
}

/// A copy of the fixture in a fresh folder.
fn config_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = temp_dir();
    let path = tmp.path().join("applicationHost.config");
    std::fs::write(&path, fixture()).unwrap();
    (tmp, path)
}

fn run(exe: &Path, args: &[&str], cwd: &Path) -> Finished {
    run_windows(exe, args, cwd)
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
    let text = String::from_utf8(fixture()[3..].to_vec()).unwrap();
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
             scriptProcessor=\"{dll}\" resourceType=\"Unspecified\" requireAccess=\"None\" preCondition=\"bitness64\" />"
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

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn install_adds_pool_application_handler_and_restriction_then_remove_restores_every_byte() {
    let dist = plain_dist();
    let (tmp, config) = config_copy();
    let exe = dist.join("plain.exe");
    let cfg = win_path(&config);
    let dir = win_path(dist);

    let first = run(&exe, &["install", "--config", &cfg], tmp.path());
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        lines(&first.stdout),
        [
            format!("updated {cfg}: added 1 application pool, added 1 application, added 1 handler mapping, added 1 ISAPI restriction"),
            format!("note: --config edits a file only; on the server run: icacls {dir} /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\""),
            "Configured Virtual Directory: /plain".into(),
            "Installation complete.".into(),
        ]
    );
    let installed = std::fs::read(&config).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&installed),
        String::from_utf8_lossy(&plain_installed(dist))
    );
    assert_eq!(
        std::fs::read(tmp.path().join("applicationHost.config.isapi-freeze-backup")).unwrap(),
        fixture()
    );

    let again = run(&exe, &["install", "--config", &cfg], tmp.path());
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        lines(&again.stdout)[0],
        format!("IIS configuration already up to date ({cfg})")
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        installed,
        "a second install changes nothing"
    );

    let removed = run(&exe, &["remove", "--config", &cfg], tmp.path());
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(
        lines(&removed.stdout)[0],
        format!("updated {cfg}: removed 1 ISAPI restriction, removed 1 handler mapping, removed 1 application, removed 1 application pool")
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        fixture(),
        "remove gives back the file byte for byte"
    );

    let removed_again = run(&exe, &["uninstall", "--config", &cfg], tmp.path());
    assert_eq!(removed_again.code, 0, "{removed_again:?}");
    assert_eq!(
        lines(&removed_again.stdout)[0],
        format!("IIS configuration already clean ({cfg})")
    );
    assert_eq!(std::fs::read(&config).unwrap(), fixture());
}

#[test]
fn freeze_time_site_and_vpath_choose_where_a_script_without_install_code_goes() {
    let tmp = temp_dir();
    let script = tmp.path().join("plain.py");
    std::fs::write(&script, PLAIN).unwrap();
    let dist = tmp.path().join("dist");
    let python = windows_python();
    let out = freeze(
        &[
            script.to_str().unwrap(),
            "--python",
            python.to_str().unwrap(),
            "--dist-dir",
            dist.to_str().unwrap(),
            "--site",
            "intranet",
            "--vpath",
            "/tools/plain/",
        ],
        &repo(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = tmp.path().join("applicationHost.config");
    std::fs::write(&config, fixture()).unwrap();
    let cfg = win_path(&config);
    let finished = run(
        &dist.join("plain.exe"),
        &["install", "--config", &cfg, "-q"],
        tmp.path(),
    );
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(finished.stdout, "");
    let text = String::from_utf8(std::fs::read(&config).unwrap()).unwrap();
    // The site is matched by name in any case, and written as IIS spells it.
    assert!(
        text.contains(&format!(
            "                <application path=\"/tools/plain\" applicationPool=\"isapi-freeze-plain\">{CRLF}\
             \x20                   <virtualDirectory path=\"/\" physicalPath=\"{}\" />",
            win_path(&dist)
        )),
        "{text}"
    );
    let intranet_apps = text.find("<site name=\"Intranet\"").unwrap();
    assert!(text.find("<application path=\"/tools/plain\"").unwrap() > intranet_apps);
    assert!(text.contains("    <location path=\"Intranet/tools/plain\">"), "{text}");
}

#[test]
fn dry_run_prints_the_planned_diff_and_changes_nothing() {
    let dist = plain_dist();
    let (tmp, config) = config_copy();
    let cfg = win_path(&config);
    let dir = win_path(dist);
    let finished = run(
        &dist.join("plain.exe"),
        &["install", "--config", &cfg, "--dry-run"],
        tmp.path(),
    );
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(std::fs::read(&config).unwrap(), fixture());
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
            format!("+                <add name=\"isapi-freeze-plain\" path=\"*\" verb=\"*\" modules=\"IsapiModule\" scriptProcessor=\"{dir}\\_plain.dll\" resourceType=\"Unspecified\" requireAccess=\"None\" preCondition=\"bitness64\" />"),
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
        *out.last().unwrap(),
        format!("icacls {dir} /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\"")
    );
}

#[test]
fn dry_run_prints_the_appcmd_lines_of_the_same_plan() {
    let dist = plain_dist();
    let (tmp, config) = config_copy();
    let cfg = win_path(&config);
    let dir = win_path(dist);
    let finished = run(
        &dist.join("plain.exe"),
        &["install", "--config", &cfg, "--dry-run", "--print-appcmd"],
        tmp.path(),
    );
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(
        lines(&finished.stdout),
        [
            "appcmd add apppool /name:isapi-freeze-plain /managedRuntimeVersion: /enable32BitAppOnWin64:false".to_string(),
            format!("appcmd add app \"/site.name:Default Web Site\" /path:/plain /physicalPath:{dir} /applicationPool:isapi-freeze-plain"),
            format!("appcmd set config \"Default Web Site/plain\" /section:system.webServer/handlers \"/accessPolicy:Execute, Script\" /+[name='isapi-freeze-plain',path='*',verb='*',modules='IsapiModule',scriptProcessor='{dir}\\_plain.dll',resourceType='Unspecified',requireAccess='None',preCondition='bitness64'] /commit:apphost"),
            format!("appcmd set config /section:system.webServer/security/isapiCgiRestriction \"/+[path='{dir}\\_plain.dll',allowed='true',description='plain (isapi-freeze)']\" /commit:apphost"),
            format!("icacls {dir} /grant \"IIS AppPool\\isapi-freeze-plain:(OI)(CI)RX\""),
        ]
    );
    assert_eq!(std::fs::read(&config).unwrap(), fixture());
}

#[test]
fn without_config_and_without_appcmd_install_explains_and_fails() {
    let dist = plain_dist();
    let tmp = temp_dir();
    let finished = run(&dist.join("plain.exe"), &["install", "--dry-run"], tmp.path());
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
    let dist = plain_dist();
    let (tmp, config) = config_copy();
    let mut broken = String::from_utf8(fixture()).unwrap();
    broken = broken.replacen("<webLimits />", "<webLimits>", 1);
    std::fs::write(&config, &broken).unwrap();
    let cfg = win_path(&config);
    let finished = run(&dist.join("plain.exe"), &["install", "--config", &cfg], tmp.path());
    assert_eq!(finished.code, 1, "{finished:?}");
    assert_eq!(
        finished.stderr,
        format!(
            "ConfigurationError: {cfg} is not well-formed XML (line 168, column 7: mismatched tag); IIS cannot \
             read it either. Nothing was changed: repair it or restore a backup \
             (%windir%\\System32\\inetsrv\\config\\history)"
        )
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no backup or temporary file"
    );
}

#[test]
fn a_read_only_config_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dist = plain_dist();
    let (tmp, config) = config_copy();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o444)).unwrap();
    let cfg = win_path(&config);
    let finished = run(&dist.join("plain.exe"), &["install", "--config", &cfg], tmp.path());
    assert_eq!(finished.code, 1, "{finished:?}");
    assert_eq!(
        finished.stderr,
        format!(
            "InstallationError: cannot write {cfg}: the file is read-only; nothing was changed (clear its read-only \
             attribute, or use an Administrator prompt)"
        )
    );
    assert_eq!(std::fs::read(&config).unwrap(), fixture());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no backup or temporary file"
    );
}

#[test]
fn an_unknown_site_is_refused_with_the_sites_there_are() {
    let dist = plain_dist();
    let (tmp, config) = config_copy();
    let cfg = win_path(&config);
    let finished = run(
        &dist.join("plain.exe"),
        &["install", "--config", &cfg, "--server", "Nope"],
        tmp.path(),
    );
    assert_eq!(finished.code, 1, "{finished:?}");
    assert_eq!(
        finished.stderr,
        format!(
            "ItemNotFound: no web site matches 'Nope' in {cfg} (sites: Default Web Site, Intranet); choose one with \
             --server NAME"
        )
    );
    assert_eq!(std::fs::read(&config).unwrap(), fixture());
}

#[test]
fn iis_without_isapi_extensions_is_refused() {
    let dist = plain_dist();
    let (tmp, config) = config_copy();
    let text = String::from_utf8(fixture()).unwrap().replacen(
        "            <add name=\"IsapiModule\" image=\"%windir%\\System32\\inetsrv\\isapi.dll\" />\r\n",
        "",
        1,
    );
    std::fs::write(&config, &text).unwrap();
    let cfg = win_path(&config);
    let finished = run(&dist.join("plain.exe"), &["install", "--config", &cfg], tmp.path());
    assert_eq!(finished.code, 1, "{finished:?}");
    assert_eq!(
        finished.stderr,
        format!(
            "ConfigurationError: IIS's ISAPI Extensions feature is not installed ({cfg} has no IsapiModule in \
             globalModules). Install it: `Install-WindowsFeature Web-ISAPI-Ext` on Windows Server, \
             `dism /online /enable-feature /featurename:IIS-ISAPIExtensions` elsewhere"
        )
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn a_changed_output_directory_is_refused_before_iis_is_touched() {
    let tmp = temp_dir();
    let script = tmp.path().join("plain.py");
    std::fs::write(&script, PLAIN).unwrap();
    let dist = tmp.path().join("dist");
    freeze_ok(&script, &dist);
    let zip = dist.join("python311.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&zip, bytes).unwrap();
    let config = tmp.path().join("applicationHost.config");
    std::fs::write(&config, fixture()).unwrap();
    let finished = run(
        &dist.join("plain.exe"),
        &["install", "--config", &win_path(&config)],
        tmp.path(),
    );
    assert_eq!(finished.code, 1, "{finished:?}");
    let zip_path = format!("{}\\python311.zip", win_path(&dist));
    assert!(
        finished.stderr.starts_with(&format!(
            "ConfigurationError: {zip_path} does not match manifest.json (SHA-256 "
        )),
        "{finished:?}"
    );
    assert!(
        finished
            .stderr
            .ends_with("): the output directory changed after freezing; copy it again"),
        "{finished:?}"
    );
    assert_eq!(std::fs::read(&config).unwrap(), fixture());
}

#[test]
fn a_pywin32_style_script_installs_two_virtual_directories_and_a_filter() {
    let tmp = temp_dir();
    let dist = tmp.path().join("dist");
    freeze_ok(&repo().join("examples/installable/installable.py"), &dist);
    let config = tmp.path().join("applicationHost.config");
    std::fs::write(&config, fixture()).unwrap();
    let cfg = win_path(&config);
    let dir = win_path(&dist);
    let dll = format!("{dir}\\_installable.dll");
    let exe = dist.join("installable.exe");

    let finished = run(&exe, &["install", "--config", &cfg], tmp.path());
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(
        lines(&finished.stdout),
        [
            format!("updated {cfg}: added 1 application pool, added 2 applications, added 2 handler mappings, added 1 directory browsing, added 1 ISAPI restriction, added 1 ISAPI filter"),
            format!("note: --config edits a file only; on the server run: icacls {dir} /grant \"IIS AppPool\\isapi-freeze-installable:(OI)(CI)RX\""),
            "post-install hook: /installable/api".into(),
            "Configured Virtual Directory: /installable/api".into(),
            "Configured Virtual Directory: installable/admin".into(),
            "Configured Filter: installable-filter".into(),
            "Installation complete.".into(),
        ]
    );
    let text = String::from_utf8(std::fs::read(&config).unwrap()).unwrap();
    for expected in [
        format!("                <application path=\"/installable/api\" applicationPool=\"isapi-freeze-installable\">{CRLF}                    <virtualDirectory path=\"/\" physicalPath=\"{dir}\" />"),
        format!("                <application path=\"/installable/admin\" applicationPool=\"isapi-freeze-installable\">{CRLF}                    <virtualDirectory path=\"/\" physicalPath=\"{dir}\" />"),
        format!("    <location path=\"Default Web Site/installable/api\">{CRLF}        <system.webServer>{CRLF}            <handlers accessPolicy=\"Execute, Script\">{CRLF}                <add name=\"isapi-freeze-installable\" path=\"*\" verb=\"*\" modules=\"IsapiModule\" scriptProcessor=\"{dll}\" resourceType=\"Unspecified\" requireAccess=\"None\" preCondition=\"bitness64\" />"),
        format!("    <location path=\"Default Web Site/installable/admin\">{CRLF}        <system.webServer>{CRLF}            <handlers accessPolicy=\"Read, Execute, Script\">{CRLF}                <add name=\"isapi-freeze-installable\" path=\"*.py\" verb=\"GET,POST\" modules=\"IsapiModule\" scriptProcessor=\"{dll}\" resourceType=\"File\" requireAccess=\"Script\" preCondition=\"bitness64\" />{CRLF}            </handlers>{CRLF}            <directoryBrowse enabled=\"true\" />"),
        format!("    <location path=\"Default Web Site\">{CRLF}        <system.webServer>{CRLF}            <isapiFilters>{CRLF}                <filter name=\"installable-filter\" path=\"{dll}\" enabled=\"true\" preCondition=\"bitness64\" />"),
        format!("                <add path=\"{dll}\" allowed=\"true\" description=\"installable (isapi-freeze)\" />"),
    ] {
        assert!(text.contains(&expected), "missing:\n{expected}\nin:\n{text}");
    }
    // The unrelated site and its handler entries survive untouched.
    let fixture_text = String::from_utf8(fixture()).unwrap();
    let intranet = |t: &str| {
        let start = t.find("    <location path=\"Intranet\">").unwrap();
        t[start..start + t[start..].find("</location>").unwrap()].to_string()
    };
    assert_eq!(intranet(&text), intranet(&fixture_text));

    let status = run(&exe, &["status"], tmp.path());
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.stdout, "status: /installable/api and /installable/admin");

    let removed = run(&exe, &["remove", "--config", &cfg], tmp.path());
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(
        std::fs::read(&config).unwrap(),
        fixture(),
        "remove gives back the file byte for byte"
    );
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let dist = plain_dist();
    let tmp = temp_dir();
    let finished = run(&dist.join("plain.exe"), &["instal"], tmp.path());
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
    let tmp = crate::harness::temp_dir();
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
        resources = crate::harness::repo().join("resources").display().to_string()
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
