"""A URL-rewriting ISAPI filter, pywin32 style, with the extension it rewrites for.

The filter moves an old URL space onto the new one before IIS looks at the request:
`/legacy/REST` becomes `/REST`, so the extension (and anything else on the site) only ever
sees new URLs. It tells the client what it did with an `X-Rewritten-From` response header
and counts the rewrites on each connection in `fc.FilterContext`.
"""

from isapi import isapicon
from isapi.simple import SimpleExtension, SimpleFilter

OLD_PREFIX = "/legacy/"


class Rewriter(SimpleFilter):
    "isapi-freeze URL-rewriting filter example"

    filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS | isapicon.SF_NOTIFY_ORDER_DEFAULT

    def HttpFilterProc(self, fc):
        headers = fc.GetData()
        url = headers.GetHeader("url").decode("ascii")
        if url.startswith(OLD_PREFIX):
            headers.SetHeader("url", "/" + url[len(OLD_PREFIX):])
            fc.AddResponseHeaders(f"X-Rewritten-From: {url}\r\n")
            fc.FilterContext = (fc.FilterContext or 0) + 1
            print(f"rewrote {url} (rewrite {fc.FilterContext} on this connection)")
        # None: let the next filter, then IIS, go on with the (maybe rewritten) request.
        return None


class Extension(SimpleExtension):
    "isapi-freeze URL-rewriting example's extension"

    def HttpExtensionProc(self, ecb):
        path = ecb.GetServerVariable("URL").decode("utf-8", "replace")
        query = ecb.QueryString.decode("utf-8", "replace")
        body = f"path: {path}\nquery: {query}\n".encode("utf-8")
        headers = f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
        ecb.SendResponseHeaders("200 OK", headers, True)
        ecb.WriteClient(body)
        return isapicon.HSE_STATUS_SUCCESS


def __FilterFactory__():
    return Rewriter()


def __ExtensionFactory__():
    return Extension()
