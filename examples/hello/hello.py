"""Hello, IIS: a pywin32-style ISAPI extension that echoes the request.

Every request, whatever its path, gets a plain-text answer naming its method, path and
query string; a POST also gets the size and SHA-256 of its body, read with ReadClient.
Run as a program (hello.exe), it prints how to serve it and exits with status 0.
"""

import hashlib
import sys

from isapi import isapicon
from isapi.simple import SimpleExtension


class Extension(SimpleExtension):
    "isapi-freeze hello example"

    def HttpExtensionProc(self, ecb):
        method = ecb.Method.decode("ascii")
        path = ecb.PathInfo.decode("utf-8", "replace")
        query = ecb.QueryString.decode("utf-8", "replace")
        lines = [f"method: {method}", f"path: {path}", f"query: {query}"]
        if ecb.TotalBytes:
            body = ecb.AvailableData + ecb.ReadClient(ecb.TotalBytes - ecb.AvailableBytes)
            lines.append(f"body: {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()}")
        lines.append(f"frozen: {getattr(sys, 'frozen', None)}")
        body = ("\n".join(lines) + "\n").encode("utf-8")
        headers = f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
        # With a Content-Length the connection can stay open for the next request.
        ecb.SendResponseHeaders("200 OK", headers, True)
        ecb.WriteClient(body)
        return isapicon.HSE_STATUS_SUCCESS


def __ExtensionFactory__():
    return Extension()


if __name__ == "__main__":
    print("hello: serve this extension with `isapi-freeze serve DIST`")
    sys.exit(0)
