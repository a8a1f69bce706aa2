//! `isapi-freeze package DIST`: what a farm's own tools need to deploy an output folder to
//! every node. For Web Deploy, a source manifest and its parameters (`msdeploy -verb:sync
//! -source:manifest=... -dest:package=...` makes the package; the archive is never written
//! here); with `--container`, a Dockerfile on Microsoft's IIS image. Writers take a sink.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use isapi_freeze_format::manifest::{Manifest, Role};
use isapi_freeze_format::MANIFEST;

use crate::cli::PackageArgs;

/// The output folder being packaged, as its manifest.json describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The script's name: `hello` for `_hello.dll` and `hello.exe`.
    pub name: String,
    /// The output folder's path where msdeploy runs (a Windows path).
    pub source: String,
    /// `Site/vpath` of the IIS application.
    pub app: String,
    /// Writable folders inside the output folder besides `logs`.
    pub data_dir: Option<String>,
    /// `SCRIPT.exe install` options to pass on.
    pub install_options: Vec<String>,
}

/// The Windows Server LTSC releases Microsoft's IIS image is built for: the name its tag
/// uses, and the Windows build a node must run for process isolation.
pub const WINDOWS_RELEASES: [(&str, &str); 3] = [
    ("ltsc2019", "10.0.17763"),
    ("ltsc2022", "10.0.20348"),
    ("ltsc2025", "10.0.26100"),
];

/// The IIS image's tag for `windows` (`2022`, `ltsc2022` or a node's build `10.0.20348`).
pub fn image_tag(windows: &str) -> Result<(&'static str, &'static str)> {
    let wanted = windows.trim().to_ascii_lowercase();
    WINDOWS_RELEASES
        .iter()
        .find(|(release, build)| {
            wanted == *release
                || wanted == release.trim_start_matches("ltsc")
                || wanted.starts_with(&format!("{build}."))
                || wanted == *build
        })
        .copied()
        .with_context(|| {
            format!(
                "--windows {windows:?} is not a Windows Server release Microsoft's IIS image is built for \
                 (2019, 2022, 2025, or a node's build such as 10.0.20348)"
            )
        })
}

/// Reads the package's facts from DIST and the options.
pub fn describe(args: &PackageArgs) -> Result<Package> {
    let manifest_path = args.dist.join(MANIFEST);
    let text = fs_err::read_to_string(&manifest_path)
        .with_context(|| format!("{} is not an isapi-freeze output directory", args.dist.display()))?;
    let manifest = Manifest::from_json(&text).with_context(|| format!("reading {}", manifest_path.display()))?;
    let loader = manifest
        .files
        .iter()
        .find(|f| f.role == Role::Loader)
        .with_context(|| format!("{} names no loader (_NAME.dll)", manifest_path.display()))?;
    let name = loader
        .path
        .strip_prefix('_')
        .and_then(|p| p.strip_suffix(".dll"))
        .with_context(|| format!("unexpected loader name {}", loader.path))?
        .to_string();
    let source = match &args.source_path {
        Some(path) => path.trim_end_matches('\\').to_string(),
        None => windows_path(&std::path::absolute(&args.dist)?),
    };
    let site = args.site.clone().unwrap_or_else(|| "Default Web Site".into());
    let vpath = args.vpath.clone().unwrap_or_else(|| format!("/{name}"));
    let vpath = vpath.trim_matches('/');
    if site.contains('/') {
        bail!("--site {site:?}: a site name cannot contain '/'");
    }
    let app = if vpath.is_empty() {
        site
    } else {
        format!("{site}/{vpath}")
    };
    if let Some(dir) = &args.data_dir {
        if dir.is_empty()
            || dir.starts_with(['/', '\\'])
            || dir.contains(':')
            || dir.split(['/', '\\']).any(|s| s == "..")
        {
            bail!("--data-dir {dir:?} must name a folder inside the output directory (e.g. data)");
        }
    }
    let mut install_options = Vec::new();
    if let Some(dir) = &args.data_dir {
        install_options.extend(["--data-dir".to_string(), dir.replace('/', "\\")]);
    }
    if let Some(n) = args.processes {
        install_options.extend(["--processes".to_string(), n.to_string()]);
    }
    Ok(Package {
        name,
        source,
        app,
        data_dir: args.data_dir.as_ref().map(|d| d.replace('/', "\\")),
        install_options,
    })
}

/// A path as Windows programs write it (forward slashes turned round).
fn windows_path(path: &Path) -> String {
    path.display().to_string().replace('/', "\\")
}

/// Text for an XML attribute value between double quotes.
fn xml(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A .NET regular expression that matches exactly `text` (parameterEntry's `match`).
fn exactly(text: &str) -> String {
    let mut out = String::from("^");
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

impl Package {
    fn writable(&self) -> Vec<String> {
        let mut dirs = vec!["logs".to_string()];
        dirs.extend(self.data_dir.iter().cloned());
        dirs
    }

    /// The install command run on each node, from the folder Web Deploy wrote.
    fn install_command(&self, folder: &str) -> String {
        let mut command = format!("\"{folder}\\{}.exe\" install", self.name);
        for option in &self.install_options {
            command.push(' ');
            command.push_str(option);
        }
        command
    }

    /// The Web Deploy source manifest: the folder as an IIS application (iisApp), then
    /// `SCRIPT.exe install` on the node (runCommand: the application pool, the handler
    /// mapping with responseBufferLimit 0, the ISAPI restriction), then the rights
    /// (setAcl: read and execute on the application, modify on its writable folders, for
    /// the application pool's identity).
    pub fn write_manifest(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>")?;
        writeln!(
            out,
            "<!-- isapi-freeze package: {name} as an IIS application. Make the package with\n     \
             msdeploy -verb:sync -source:manifest={name}.SourceManifest.xml -dest:package={name}.zip \
             -declareParamFile={name}.parameters.xml\n     and deploy it to each node with\n     \
             msdeploy -verb:sync -source:package={name}.zip -dest:auto,computerName=NODE -->",
            name = self.name
        )?;
        writeln!(out, "<sitemanifest>")?;
        writeln!(out, "  <iisApp path=\"{}\" />", xml(&self.source))?;
        writeln!(
            out,
            "  <runCommand path=\"{}\" waitInterval=\"300000\" successReturnCodes=\"0x0\" />",
            xml(&self.install_command(&self.source))
        )?;
        writeln!(
            out,
            "  <setAcl path=\"{}\" setAclResourceType=\"Directory\" setAclAccess=\"ReadAndExecute\" />",
            xml(&self.source)
        )?;
        for dir in self.writable() {
            writeln!(
                out,
                "  <setAcl path=\"{}\\{}\" setAclResourceType=\"Directory\" setAclAccess=\"Modify\" />",
                xml(&self.source),
                xml(&dir)
            )?;
        }
        writeln!(out, "</sitemanifest>")
    }

    /// The parameters: where the application goes (its IIS path, which also names the
    /// folders setAcl grants on), and the folder on the node where Web Deploy writes it,
    /// which the install command runs from.
    pub fn write_parameters(&self, out: &mut impl Write) -> std::io::Result<()> {
        let source = exactly(&self.source);
        let default_folder = format!(
            "%SystemDrive%\\inetpub\\wwwroot{}",
            self.app
                .split_once('/')
                .map(|(_, v)| format!("\\{}", v.replace('/', "\\")))
                .unwrap_or_default()
        );
        writeln!(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>")?;
        writeln!(out, "<parameters>")?;
        writeln!(
            out,
            "  <parameter name=\"IIS Web Application Name\" description=\"The site and path of the application \
             (as SCRIPT.exe install --vpath was frozen with).\" defaultValue=\"{}\" tags=\"IisApp\">",
            xml(&self.app)
        )?;
        writeln!(
            out,
            "    <parameterEntry kind=\"ProviderPath\" scope=\"iisApp\" match=\"{}\" />",
            xml(&source)
        )?;
        writeln!(
            out,
            "    <parameterEntry kind=\"ProviderPath\" scope=\"setAcl\" match=\"{}\" />",
            xml(&source)
        )?;
        writeln!(out, "  </parameter>")?;
        for dir in self.writable() {
            writeln!(
                out,
                "  <parameter name=\"Modify rights on {dir}\" description=\"The application pool may write \
                 here.\" defaultValue=\"{{IIS Web Application Name}}/{}\" tags=\"Hidden\">",
                xml(&dir.replace('\\', "/"))
            )?;
            writeln!(
                out,
                "    <parameterEntry kind=\"ProviderPath\" scope=\"setAcl\" match=\"{}\" />",
                xml(&exactly(&format!("{}\\{dir}", self.source)))
            )?;
            writeln!(out, "  </parameter>")?;
        }
        writeln!(
            out,
            "  <parameter name=\"Install command\" description=\"SCRIPT.exe install, run from the folder Web Deploy \
             wrote the application to (the site's folder and the application's path).\" defaultValue=\"{}\" \
             tags=\"Hidden\">",
            xml(&self.install_command(&default_folder))
        )?;
        writeln!(
            out,
            "    <parameterEntry kind=\"ProviderPath\" scope=\"runCommand\" match=\"{}\" />",
            xml(&exactly(&self.install_command(&self.source)))
        )?;
        writeln!(out, "  </parameter>")?;
        writeln!(out, "</parameters>")
    }

    /// A Dockerfile on Microsoft's IIS image for `release` (`ltsc2022`), built in a folder
    /// that holds the output folder at `dist` (a relative path, `/`-separated).
    pub fn write_dockerfile(&self, out: &mut impl Write, release: &str, dist: &str) -> std::io::Result<()> {
        let build = WINDOWS_RELEASES
            .iter()
            .find(|(r, _)| *r == release)
            .map_or("", |(_, b)| b);
        let folder = format!("C:\\apps\\{}", self.name);
        writeln!(out, "# escape=`")?;
        writeln!(
            out,
            "# isapi-freeze package --container: {name} on IIS in Windows Server Core ({release}).\n\
             # Windows containers run on a node of the same Windows release (build {build}).\n\
             # Build on such a machine: docker build -t {name} .",
            name = self.name
        )?;
        writeln!(
            out,
            "FROM mcr.microsoft.com/windows/servercore/iis:windowsservercore-{release}"
        )?;
        writeln!(
            out,
            "SHELL [\"powershell\", \"-NoProfile\", \"-Command\", \"$ErrorActionPreference = 'Stop';\"]"
        )?;
        writeln!(
            out,
            "# The image has IIS without ISAPI; SCRIPT.exe install checks for both features."
        )?;
        writeln!(out, "RUN Install-WindowsFeature Web-ISAPI-Ext, Web-ISAPI-Filter")?;
        writeln!(out, "COPY {dist}/ {}/", folder.replace('\\', "/"))?;
        let mut install = format!("RUN & '{folder}\\{}.exe' install", self.name);
        for option in &self.install_options {
            install.push(' ');
            install.push_str(option);
        }
        writeln!(out, "{install}")?;
        writeln!(out, "EXPOSE 80")?;
        writeln!(
            out,
            "# The IIS image's own entry point: runs w3svc and ends the container if it stops."
        )?;
        writeln!(out, "ENTRYPOINT [\"C:\\\\ServiceMonitor.exe\", \"w3svc\"]")
    }
}

/// Writes `name` in `dir`; an existing file is replaced only if isapi-freeze wrote it.
fn write_file(dir: &Path, name: &str, write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<PathBuf> {
    let path = dir.join(name);
    if let Ok(existing) = fs_err::read_to_string(&path) {
        if !existing.contains("isapi-freeze package") {
            bail!(
                "{} exists and was not written by isapi-freeze package; move it away or choose --out",
                path.display()
            );
        }
    }
    let mut bytes = Vec::new();
    write(&mut bytes)?;
    fs_err::write(&path, bytes)?;
    Ok(path)
}

/// `isapi-freeze package`: writes the files and says what to run next.
pub fn run(args: PackageArgs) -> Result<i32> {
    let package = describe(&args)?;
    let dist = std::path::absolute(&args.dist)?;
    let out = match &args.out {
        Some(out) => std::path::absolute(out)?,
        None => dist
            .parent()
            .map(Path::to_path_buf)
            .context("the output directory has no parent folder")?,
    };
    fs_err::create_dir_all(&out)?;
    if args.container {
        let (release, build) = image_tag(args.windows.as_deref().unwrap_or("2022"))?;
        let relative = dist
            .strip_prefix(&out)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .with_context(|| {
                format!(
                    "the Dockerfile's folder ({}) must hold the output directory ({}): docker copies only \
                     from its build context",
                    out.display(),
                    dist.display()
                )
            })?;
        let relative = relative.display().to_string().replace('\\', "/");
        let path = write_file(&out, "Dockerfile", |sink| {
            package.write_dockerfile(sink, release, &relative)
        })?;
        println!("wrote {}", path.display());
        println!(
            "build it on Windows Server {} (build {build}): docker build -t {} {}",
            &release[4..],
            package.name,
            out.display()
        );
        return Ok(0);
    }
    let manifest = write_file(&out, &format!("{}.SourceManifest.xml", package.name), |sink| {
        package.write_manifest(sink)
    })?;
    let parameters = write_file(&out, &format!("{}.parameters.xml", package.name), |sink| {
        package.write_parameters(sink)
    })?;
    println!("wrote {}", manifest.display());
    println!("wrote {}", parameters.display());
    println!(
        "make the package where {} is that folder: msdeploy -verb:sync -source:manifest={} -dest:package={}.zip \
         -declareParamFile={}",
        package.source,
        manifest.file_name().unwrap().to_string_lossy(),
        package.name,
        parameters.file_name().unwrap().to_string_lossy()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Package {
        Package {
            name: "hello".into(),
            source: "C:\\build\\dist".into(),
            app: "Default Web Site/hello".into(),
            data_dir: Some("data".into()),
            install_options: vec!["--data-dir".into(), "data".into()],
        }
    }

    fn text(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut sink = Vec::new();
        write(&mut sink).unwrap();
        String::from_utf8(sink).unwrap()
    }

    #[test]
    fn the_manifest_installs_the_folder_then_grants_the_pool_its_rights() {
        let manifest = text(|s| hello().write_manifest(s));
        let body: Vec<&str> = manifest.lines().skip_while(|l| *l != "<sitemanifest>").collect();
        assert_eq!(
            body,
            [
                "<sitemanifest>",
                "  <iisApp path=\"C:\\build\\dist\" />",
                "  <runCommand path=\"&quot;C:\\build\\dist\\hello.exe&quot; install --data-dir data\" \
                 waitInterval=\"300000\" successReturnCodes=\"0x0\" />",
                "  <setAcl path=\"C:\\build\\dist\" setAclResourceType=\"Directory\" setAclAccess=\"ReadAndExecute\" />",
                "  <setAcl path=\"C:\\build\\dist\\logs\" setAclResourceType=\"Directory\" setAclAccess=\"Modify\" />",
                "  <setAcl path=\"C:\\build\\dist\\data\" setAclResourceType=\"Directory\" setAclAccess=\"Modify\" />",
                "</sitemanifest>",
            ]
        );
    }

    #[test]
    fn parameters_match_the_manifest_paths_exactly() {
        let parameters = text(|s| hello().write_parameters(s));
        assert!(
            parameters
                .contains("<parameterEntry kind=\"ProviderPath\" scope=\"iisApp\" match=\"^C:\\\\build\\\\dist$\" />"),
            "{parameters}"
        );
        assert!(
            parameters.contains("defaultValue=\"{IIS Web Application Name}/logs\""),
            "{parameters}"
        );
        assert!(
            parameters.contains(
                "defaultValue=\"&quot;%SystemDrive%\\inetpub\\wwwroot\\hello\\hello.exe&quot; install --data-dir data\""
            ),
            "{parameters}"
        );
        assert_eq!(exactly("C:\\a (x)\\b.c"), "^C:\\\\a \\(x\\)\\\\b\\.c$");
    }

    #[test]
    fn the_image_tag_follows_the_nodes_windows_release() {
        assert_eq!(image_tag("2022").unwrap(), ("ltsc2022", "10.0.20348"));
        assert_eq!(image_tag("ltsc2019").unwrap().0, "ltsc2019");
        assert_eq!(image_tag("10.0.26100.2894").unwrap().0, "ltsc2025");
        assert!(image_tag("2016").is_err());
        let dockerfile = text(|s| hello().write_dockerfile(s, "ltsc2022", "dist"));
        assert!(dockerfile.contains("FROM mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022\n"));
        assert!(dockerfile.contains("COPY dist/ C:/apps/hello/\n"));
        assert!(dockerfile.contains("RUN & 'C:\\apps\\hello\\hello.exe' install --data-dir data\n"));
        assert!(dockerfile.ends_with("ENTRYPOINT [\"C:\\\\ServiceMonitor.exe\", \"w3svc\"]\n"));
    }
}
