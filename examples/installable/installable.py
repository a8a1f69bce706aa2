"""An ISAPI extension and filter with its own installer, written as for pywin32.

The extension answers every request with the virtual directory it came through; the
filter adds nothing yet (filter notifications come later). Run as a program
(``installable.exe install``), it configures IIS with pywin32's parameter classes: the
extension under two virtual directories of the default site, and the filter on that site.
"""

import sys

from isapi import isapicon
from isapi.simple import SimpleExtension, SimpleFilter


class Extension(SimpleExtension):
    "installable example"

    def HttpExtensionProc(self, ecb):
        url = ecb.GetServerVariable("URL", b"").decode("latin-1")
        body = f"installable: {url}\n".encode("utf-8")
        ecb.SendResponseHeaders(
            "200 OK", f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n", False
        )
        ecb.WriteClient(body)
        return isapicon.HSE_STATUS_SUCCESS


class Filter(SimpleFilter):
    "installable example filter"
    filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS | isapicon.SF_NOTIFY_ORDER_DEFAULT

    def HttpFilterProc(self, fc):
        return isapicon.SF_STATUS_REQ_NEXT_NOTIFICATION


def __ExtensionFactory__():
    return Extension()


def __FilterFactory__():
    return Filter()


def post_install(params, options, *args):
    print(f"post-install hook: {params.Name}")


def status(options, log, arg):
    "Say which virtual directories this script installs"
    print("status: /installable/api and /installable/admin")


if __name__ == "__main__":
    from isapi.install import (
        FilterParameters,
        HandleCommandLine,
        ISAPIParameters,
        ScriptMapParams,
        VirtualDirParameters,
    )

    params = ISAPIParameters()
    params.VirtualDirs = [
        VirtualDirParameters(
            Name="/installable/api",
            Description="installable API",
            ScriptMaps=[ScriptMapParams(Extension="*", Flags=0)],
            ScriptMapUpdate="replace",
            PostInstall=post_install,
        ),
        VirtualDirParameters(
            Name="installable/admin",
            Description="installable admin pages",
            ScriptMaps=[ScriptMapParams(Extension=".py", Flags=5, Verbs="GET,POST")],
            AccessRead=True,
            EnableDirBrowsing=True,
        ),
    ]
    params.Filters = [FilterParameters(Name="installable-filter", Description="installable example filter")]
    HandleCommandLine(params, custom_arg_handlers={"status": status})
    sys.exit(0)
