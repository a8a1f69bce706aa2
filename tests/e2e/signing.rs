//! `--sign FILE.pfx`: the loader, the launcher and the runtime come out Authenticode-signed
//! (osslsigncode verifies each, Windows' checksum routine agrees with each header), the
//! CPython files keep their publishers' signatures byte for byte, manifest.json describes
//! the signed files, and the output serves. A wrong password, an expired certificate, one
//! that may not sign code and a timestamp server that does not answer are refused, with
//! nothing written in place of the output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    assert_contains, get, isapi_freeze, py_dll, repo, run_windows, test_programs, win_path, windows_python, Freeze,
    Host,
};

const PASSWORD: &str = "test-password";

/// Runs openssl in `dir`; panics with its output unless it succeeded.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A key and a self-signed certificate for `name`, valid for 30 days, with `usage` as its
/// extended key usage; returns the .pfx.
fn certificate(dir: &Path, name: &str, usage: &str) -> PathBuf {
    openssl(dir, &["genrsa", "-out", &format!("{name}.key"), "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-key",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "30",
            "-subj",
            &format!("/CN=isapi-freeze {name}"),
            "-addext",
            &format!("extendedKeyUsage={usage}"),
        ],
    );
    pfx(dir, name)
}

fn pfx(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            &format!("{name}.key"),
            "-in",
            &format!("{name}.pem"),
            "-out",
            &format!("{name}.pfx"),
            "-passout",
            &format!("pass:{PASSWORD}"),
        ],
    );
    dir.join(format!("{name}.pfx"))
}

/// A code-signing certificate that expired in 2020 (openssl's `ca` is the one of its
/// commands that takes explicit dates).
fn expired_certificate(dir: &Path) -> PathBuf {
    let name = "expired";
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = own\n[own]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = any\nx509_extensions = ext\n[any]\ncommonName = supplied\n\
         [ext]\nextendedKeyUsage = codeSigning\n",
    )
    .unwrap();
    openssl(dir, &["genrsa", "-out", "expired.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "expired.key",
            "-subj",
            "/CN=isapi-freeze expired",
            "-out",
            "expired.csr",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "expired.key",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
        ],
    );
    pfx(dir, name)
}

/// osslsigncode's verdict on `file`, trusting `ca`.
fn verify_signature(file: &Path, ca: &Path) -> String {
    let out = Command::new("osslsigncode")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg("-in")
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}: {text}", file.display());
    text
}

#[test]
fn a_signed_output_verifies_keeps_the_copied_signatures_and_serves() {
    let certs = crate::support::temp_dir();
    let pfx = certificate(certs.path(), "signer", "codeSigning");
    let frozen = Freeze::script(repo().join("examples/hello/hello.py"))
        .arg("--sign")
        .arg(&pfx)
        .env("ISAPI_FREEZE_SIGN_PASSWORD", PASSWORD)
        .ok();
    let dist = &frozen.dist;
    for name in ["_hello.dll", "hello.exe", "isapi_freeze_runtime.dll"] {
        let verdict = verify_signature(&dist.join(name), &certs.path().join("signer.pem"));
        assert_contains(&verdict, "Signature verification: ok");
        assert_contains(&verdict, "/CN=isapi-freeze signer");
        let oracle = run_windows(
            &test_programs().join("pe-checksum.exe"),
            &[&win_path(&dist.join(name))],
            dist,
        );
        let (header, computed) = oracle.stdout.split_once(' ').unwrap();
        assert_eq!(
            header.strip_prefix("header=").unwrap(),
            computed.strip_prefix("computed=").unwrap(),
            "{name}: {oracle:?}"
        );
    }
    assert_eq!(
        std::fs::read(dist.join(py_dll())).unwrap(),
        std::fs::read(windows_python().join(py_dll())).unwrap(),
        "python3XY.dll is copied as it is, with the PSF's signature"
    );
    let verified = isapi_freeze().arg("verify").arg(dist).output().unwrap();
    assert!(verified.status.success(), "{verified:?}");
    let host = Host::start(&frozen.dll(), &[]);
    let r = get(&host.address, "/signed");
    assert_eq!(r.status, 200);
    assert_contains(&r.text(), "path: /signed\n");
}

#[test]
fn bad_certificates_passwords_and_timestamp_servers_are_refused_and_nothing_is_written() {
    let certs = crate::support::temp_dir();
    let good = certificate(certs.path(), "signer", "codeSigning");
    let web = certificate(certs.path(), "web", "serverAuth");
    let expired = expired_certificate(certs.path());
    let refused = |pfx: &Path, password: Option<&str>, extra: &[&str]| -> String {
        let tmp = crate::support::temp_dir();
        let mut command = isapi_freeze();
        command
            .arg(repo().join("examples/hello/hello.py"))
            .arg("--python")
            .arg(windows_python())
            .args(["--dist-dir", "dist", "--sign"])
            .arg(pfx)
            .args(extra)
            .current_dir(tmp.path())
            .stdin(std::process::Stdio::null());
        match password {
            Some(p) => command.env("ISAPI_FREEZE_SIGN_PASSWORD", p),
            None => command.env_remove("ISAPI_FREEZE_SIGN_PASSWORD"),
        };
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(!tmp.path().join("dist").exists(), "nothing written: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let shown = |pfx: &Path| pfx.display().to_string();

    assert_contains(
        &refused(&good, Some("not-it"), &[]),
        &format!(
            "error: the password does not open {} (from ISAPI_FREEZE_SIGN_PASSWORD or the prompt)",
            shown(&good)
        ),
    );
    assert_contains(
        &refused(&good, None, &[]),
        &format!(
            "error: --sign {}: set ISAPI_FREEZE_SIGN_PASSWORD to the certificate's password (it is never taken \
             from the command line), or run on a terminal to be asked for it",
            shown(&good)
        ),
    );
    assert_contains(
        &refused(&expired, Some(PASSWORD), &[]),
        &format!(
            "error: the certificate in {} expired on Feb  1 00:00:00 2020 GMT: a signature made with it now is \
             not valid; renew it",
            shown(&expired)
        ),
    );
    assert_contains(
        &refused(&web, Some(PASSWORD), &[]),
        &format!(
            "error: the certificate in {} may not sign code (its extended key usage is TLS Web Server \
             Authentication): use a code-signing certificate",
            shown(&web)
        ),
    );
    // Port 9 (discard): nothing listens on this machine.
    assert_contains(
        &refused(&good, Some(PASSWORD), &["--timestamp-url", "http://127.0.0.1:9/"]),
        "error: signing _hello.dll: the timestamp server http://127.0.0.1:9/ did not answer; check the URL and \
         the network, or sign without --timestamp-url (the signature then ends with the certificate)",
    );
}
