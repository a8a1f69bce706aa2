"""examples/hello's answer to GET /hello, made of constants: what a loader costs per request
when the script does next to nothing (set against the native extension, which sends the same
bytes, it is the loader's and runtime's own share of hello's time)."""

from isapi import isapicon
from isapi.simple import SimpleExtension

BODY = b"method: GET\npath: /hello\nquery: \nfrozen: dll\n"
HEADERS = f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(BODY)}\r\n\r\n"


class Extension(SimpleExtension):
    "isapi-freeze benchmark: hello's bytes from constants"

    def HttpExtensionProc(self, ecb):
        ecb.SendResponseHeaders("200 OK", HEADERS, True)
        ecb.WriteClient(BODY)
        return isapicon.HSE_STATUS_SUCCESS


def __ExtensionFactory__():
    return Extension()
