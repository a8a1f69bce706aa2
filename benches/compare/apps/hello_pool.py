"""examples/hello's extension on isapi.threaded_extension.ThreadPoolExtension: the same
answer, written by a worker thread, the request ended with DoneWithSession."""

import sys

from isapi import isapicon
from isapi.threaded_extension import ThreadPoolExtension


class Extension(ThreadPoolExtension):
    "isapi-freeze benchmark: hello on a thread pool"

    def Dispatch(self, ecb):
        method = ecb.Method.decode("ascii")
        path = ecb.PathInfo.decode("utf-8", "replace")
        query = ecb.QueryString.decode("utf-8", "replace")
        lines = [f"method: {method}", f"path: {path}", f"query: {query}"]
        lines.append(f"frozen: {getattr(sys, 'frozen', None)}")
        body = ("\n".join(lines) + "\n").encode("utf-8")
        headers = f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
        ecb.SendResponseHeaders("200 OK", headers, True)
        ecb.WriteClient(body)
        ecb.DoneWithSession(isapicon.HSE_STATUS_SUCCESS_AND_KEEP_CONN)


def __ExtensionFactory__():
    return Extension()
