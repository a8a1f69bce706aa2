"""An ISAPI extension base class that serves requests on a pool of worker threads.

The same API as pywin32's ``isapi.threaded_extension``: HttpExtensionProc queues the
request and returns HSE_STATUS_PENDING at once, a worker calls ``Dispatch(ecb)``, and
Dispatch ends the request with ``ecb.DoneWithSession()``. pywin32 queues on a Windows
completion port; here the runtime's ``_isapi_freeze.WorkQueue`` does the same job (workers
wait on it without the GIL, on a lightweight lock), or a ``queue.SimpleQueue`` under
pywin32's loader.
"""

import queue
import sys
import threading
import time
import traceback

import isapi.simple
from isapi import ExtensionError, isapicon
from isapi._errorpage import ERROR_PAGE
from isapi._errorpage import page as _error_page

__all__ = ["ThreadPoolExtension", "WorkerThread", "ISAPI_REQUEST", "ISAPI_SHUTDOWN"]

try:
    from _isapi_freeze import WorkQueue as _WorkQueue
except ImportError:  # pywin32's loader
    _WorkQueue = queue.SimpleQueue

# The keys of the dispatch map, as in pywin32: a queued request, and a worker's stop signal.
ISAPI_REQUEST = 1
ISAPI_SHUTDOWN = 2



class Overlapped:
    """What a queued item carries, in the shape of pywin32's OVERLAPPED: the request's
    control block (or whatever a subclass posts) is its ``object``."""

    def __init__(self, object=None):
        self.object = object

    def __repr__(self):
        return f"<Overlapped object={self.object!r}>"


class WorkerThread(threading.Thread):
    """One thread of the pool: takes queued items and hands each to the dispatch map."""

    def __init__(self, extension, io_req_port):
        super().__init__(name=f"isapi-worker-{len(extension.workers) + 1}")
        self.running = False
        self.io_req_port = io_req_port
        self.extension = extension
        # TerminateExtension waits a bounded time for the workers; one stuck in a request
        # must not keep the process alive after that.
        self.daemon = True

    def run(self):
        self.running = True
        while True:
            err_code, nbytes, key, overlapped = self.io_req_port.get()
            if key == ISAPI_SHUTDOWN and overlapped is None:
                break
            try:
                dispatcher = self.extension.dispatch_map.get(key)
                if dispatcher is None:
                    raise RuntimeError(f"Bad request {key!r}: no dispatcher for this key")
                dispatcher(err_code, nbytes, key, overlapped)
            except BaseException:
                # A dispatcher has handled what it could; a worker never dies of it, not even
                # of SystemExit.
                _log_failure(f"isapi.threaded_extension: queued item {key!r} failed:")
            finally:
                overlapped = None
                self.extension._finished_one()
        self.running = False

    def call_handler(self, cblock):
        self.extension.Dispatch(cblock)


class ThreadPoolExtension(isapi.simple.SimpleExtension):
    "Base class for an ISAPI extension based around a thread-pool"

    # How many worker threads serve requests.
    max_workers = 20
    # How long TerminateExtension waits for requests in flight, in milliseconds.
    worker_shutdown_wait = 15000
    # Until GetExtensionVersion starts the pool there is no queue, and requests are refused.
    io_req_port = None
    _accepting = False

    def __init__(self):
        self.workers = []
        self.io_req_port = None
        # Key -> callable(errCode, bytes, key, overlapped), for every item a worker takes
        # from the queue; subclasses may add keys and queue their own work with PostRequest.
        self.dispatch_map = {
            ISAPI_REQUEST: self.DispatchConnection,
        }

    def GetExtensionVersion(self, vi):
        isapi.simple.SimpleExtension.GetExtensionVersion(self, vi)
        # Set here rather than in __init__, which pywin32 subclasses sometimes skip.
        self._pending = 0  # items queued or being dispatched
        self._pending_changed = threading.Condition()
        self.io_req_port = _WorkQueue()
        self.workers = []
        for _ in range(self.max_workers):
            worker = WorkerThread(self, self.io_req_port)
            worker.start()
            self.workers.append(worker)
        self._accepting = True

    def PostRequest(self, key, overlapped=None, nbytes=0, err_code=0):
        """Queues an item for the workers, which call ``dispatch_map[key](err_code, nbytes,
        key, overlapped)`` (pywin32 scripts do this with PostQueuedCompletionStatus)."""
        with self._pending_changed:
            self._pending += 1
        self.io_req_port.put((err_code, nbytes, key, overlapped))

    def _finished_one(self):
        with self._pending_changed:
            self._pending -= 1
            self._pending_changed.notify_all()

    def HttpExtensionProc(self, control_block):
        if not self._accepting:
            raise RuntimeError("the extension is not serving requests (GetExtensionVersion was "
                               "not called, or TerminateExtension was)")
        self.PostRequest(ISAPI_REQUEST, Overlapped(control_block))
        return isapicon.HSE_STATUS_PENDING

    def TerminateExtension(self, status):
        """Stops taking requests, lets the workers finish what is queued or running, and
        returns once they have, or after ``worker_shutdown_wait`` milliseconds."""
        if self.io_req_port is None:
            return
        self._accepting = False
        deadline = time.monotonic() + self.worker_shutdown_wait / 1000
        with self._pending_changed:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._pending_changed.wait(left)
            unfinished = self._pending
        for worker in self.workers:
            worker.running = False
        for _ in self.workers:
            self.io_req_port.put((0, 0, ISAPI_SHUTDOWN, None))
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if unfinished:
            print(
                f"isapi.threaded_extension: {unfinished} request(s) still queued or running after "
                f"{self.worker_shutdown_wait} ms; terminating anyway",
                file=sys.stderr,
            )
            self._refuse_queued()
        self.dispatch_map = {}  # breaks the cycle extension -> bound methods -> extension

    def _refuse_queued(self):
        """Ends the requests no worker took in time with a 503, so that the server does
        not wait for them for ever."""
        while True:
            try:
                _, _, key, overlapped = self.io_req_port.get_nowait()
            except queue.Empty:
                return
            if key != ISAPI_REQUEST or overlapped is None:
                continue
            ecb = overlapped.object
            try:
                ecb.SendResponseHeaders(
                    "503 Service Unavailable",
                    "Content-Type: text/plain\r\nContent-Length: 20\r\n\r\n",
                    False,
                )
                ecb.WriteClient(b"503 Shutting down.\r\n")
            except Exception:
                pass
            try:
                ecb.DoneWithSession(isapicon.HSE_STATUS_ERROR)
            except Exception:
                pass

    def DispatchConnection(self, errCode, bytes, key, overlapped):
        """Hands one queued request to Dispatch, and its failure to HandleDispatchError."""
        control_block = overlapped.object
        try:
            self.Dispatch(control_block)
        except BaseException:
            # As pywin32's bare except: a Dispatch that raises SystemExit is answered too.
            self.HandleDispatchError(control_block)

    def Dispatch(self, ecb):
        """Serves one request on a worker thread; subclasses must override it.

        Blocking reads and writes are fine here: other workers go on serving. Dispatch
        must end the request with ``ecb.DoneWithSession()`` (now, or later from another
        thread for a fully asynchronous extension).
        """
        raise NotImplementedError("sub-classes should override Dispatch")

    def HandleDispatchError(self, ecb):
        """Called (inside the ``except`` block) when Dispatch raised.

        Unlike pywin32, which shows the traceback in the browser with 200 OK, the
        traceback goes to the log and the client gets a generic 500 page; if the response
        had already started, the connection is ended instead. Then the session is done.
        """
        _log_failure(f"Dispatch failed for {_request_line(ecb)}:")
        status = isapicon.HSE_STATUS_ERROR
        try:
            if not getattr(ecb, "_response_started", True):
                page = _error_page()
                ecb.HttpStatusCode = 500
                ecb.SendResponseHeaders(
                    "500 Internal Server Error",
                    f"Content-Type: text/html\r\nContent-Length: {len(page)}\r\n\r\n",
                    True,
                )
                ecb.WriteClient(page)
                status = isapicon.HSE_STATUS_SUCCESS
        except ExtensionError:
            # The client went away before the error page; nothing more to tell it.
            pass
        except RuntimeError:
            # Dispatch had already called DoneWithSession: the request is over.
            return
        try:
            ecb.DoneWithSession(status)
        except RuntimeError:
            pass


def _log_failure(what):
    """Logs `what` and the exception being handled: through the runtime, into DIST/logs and
    the Event Log whatever the script did to sys.stderr (pywin32's win32traceutil, a
    logging setup); under pywin32's loader, to sys.stderr."""
    try:
        from _isapi_freeze_boot import _log_exception
    except ImportError:
        print(what, file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return
    _log_exception(what)


def _request_line(ecb):
    try:
        method = ecb.Method.decode("latin-1")
        url = ecb.GetServerVariable("URL", b"").decode("latin-1")
        query = ecb.QueryString.decode("latin-1")
    except Exception:
        return "(a request whose details are unavailable)"
    return f"{method} {url}{'?' + query if query else ''}"
