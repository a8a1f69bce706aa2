"""Serve an ASGI 3 application (FastAPI, Starlette, ...) as an ISAPI extension.

A script needs only::

    from isapi.asgi import factory
    __ExtensionFactory__ = factory(app)

How it runs, and why:

- One asyncio event loop (the platform's default, the proactor on Windows) runs on a
  thread of its own, started by GetExtensionVersion, where the lifespan protocol's startup
  runs too: a startup that fails refuses the load, with its message in the log and the
  Event Log. TerminateExtension lets requests in flight finish (``shutdown_timeout``
  seconds), ends those that do not, then runs the lifespan's shutdown and stops the loop.
- When the loop is busy, HttpExtensionProc does not run Python: the runtime puts the
  request in a mailbox and returns HSE_STATUS_PENDING, so IIS's threads never wait for the
  GIL or for the application; the request ends with DoneWithSession. The runtime wakes
  the loop with a completion packet on the proactor's own completion port (one call; a
  socket the loop reads, the way for other loops, costs three times as much a wake under
  Wine).
- When the loop is idle, its thread parks on the runtime's own wait (a futex under Wine)
  instead of the completion port, as long as no I/O operation of its own (a socket the
  application reads, a subprocess) is under way. A parked loop can be borrowed: the IIS
  thread that brings a request takes the loop's turn, starts the request's task and runs
  what is ready, as the loop's thread would have, then gives the turn back. A request
  that finishes there returns its status from HttpExtensionProc (no hand-off to another
  thread and back, ~40 µs under Wine); one that awaits something (a body read, a timer,
  another task, a thread) goes on in the loop's thread, and HttpExtensionProc returns
  HSE_STATUS_PENDING. One IIS thread at a time borrows the loop, and only for what the
  loop's thread would otherwise run itself: requests that arrive meanwhile queue as usual.
  An application whose code blocks (a sync call in an async route) holds that thread as
  it would hold the loop. Borrowing is off in asyncio's debug mode, which checks that
  only the loop's thread schedules work.
- Request bodies are read, and responses written, by a small pool of I/O threads in the
  runtime (``_isapi_freeze.AsgiServer``, stub/runtime/src/asgi.rs), which make the
  synchronous ReadClient and WriteClient calls without the GIL and post their results to
  the loop. ISAPI's asynchronous I/O was the other way, and not a sound one here: the
  runtime's control block has asynchronous writes but no asynchronous ReadClient
  (HSE_REQ_ASYNC_READ_CLIENT), isapi-host makes an asynchronous write on the caller's
  thread (the loop's, then) and calls its completion on a new thread, and each completion
  would take the GIL on a server thread. A thread per blocked call is simple, the same
  under IIS and isapi-host, and a slow client blocks one I/O thread, not the loop. A
  response's first small write and DoneWithSession, which never wait for the client, run
  on the loop's thread.
- Backpressure: receive() reads the next part of the body (64 KiB at most) only when the
  application asks; send() returns once the data is queued, and waits while more than
  256 KiB of the request's response are queued and not yet written.
- ``http.disconnect``: receive() after the body gives it when the client leaves (a failed
  write or read, or HSE_REQ_IS_CONNECTED asked every second while it waits) or the
  response is complete; send() to a client that left raises ClientDisconnected (an
  OSError, spec version 2.4).
- Errors: an exception before the response head went out gives the 500 page and the
  traceback in the log (Starlette's own plain 500 page for it is replaced; an exception
  handler's response is not); after it, the connection is closed and the traceback logged.

The scope has every key of the ASGI HTTP spec: ``path`` is the whole decoded URL path,
``root_path`` where the application is mounted (from APPL_MD_PATH, as isapi.wsgi's
SCRIPT_NAME), ``raw_path`` the path as sent, ``state`` a copy of the lifespan's, and
``extensions["isapi.ecb"]`` the request's EXTENSION_CONTROL_BLOCK (server variables such
as LOGON_USER).
"""

import asyncio
import concurrent.futures
import socket
import sys
import threading
import traceback
from asyncio.events import _set_running_loop

from isapi._errorpage import page as _error_page
from isapi.simple import SimpleExtension

try:
    import _overlapped
except ImportError:  # not Windows
    _overlapped = None

try:
    from _isapi_freeze import AsgiServer as _AsgiServer
    from _isapi_freeze import log_error as _log_error
except ImportError:  # pywin32's loader
    _AsgiServer = None

    def _log_error(message):
        print(message, file=sys.stderr)


__all__ = ["factory", "ASGIExtension", "ClientDisconnected"]

# The scope's "asgi" for HTTP (2.4: send() raises once the client is gone) and lifespan.
_HTTP_ASGI = {"version": "3.0", "spec_version": "2.4"}
_LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}
# How often a request waiting for the client to leave asks the server whether it has.
DISCONNECT_POLL = 1.0
# How long the requests cancelled at shutdown get to end, and the I/O threads to stop.
_END_WAIT = 5.0

# Starlette's own page for an unhandled exception (ServerErrorMiddleware sends it, then
# raises the exception again): held until the application returns, and replaced by our 500
# page if it raised. An exception handler's own 500 response goes out as it is.
_STARLETTE_500 = b"Internal Server Error"

_current_task = asyncio.current_task

# Whether asyncio.Task takes eager_start (a task's first step run by its constructor).
_EAGER_TASKS = sys.version_info >= (3, 12)

# What the runtime's AsgiRequest.send answers.
_WAIT = 1
_GONE = -1


def factory(app, *, lifespan="auto", shutdown_timeout=30.0):
    """An ``__ExtensionFactory__`` serving the ASGI 3 application `app`.

    `lifespan`: "auto" runs the lifespan protocol and goes on without it if the application
    raises before answering (as uvicorn does), "on" makes that a failed startup, "off" never
    runs it. `shutdown_timeout`: how long TerminateExtension waits for requests in flight
    (and then for the lifespan's shutdown) before ending them.
    """
    if lifespan not in ("auto", "on", "off"):
        raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {lifespan!r}")

    def __ExtensionFactory__():
        return ASGIExtension(app, lifespan=lifespan, shutdown_timeout=shutdown_timeout)

    return __ExtensionFactory__


class ClientDisconnected(OSError):
    """send() was called after the client went away."""


class ASGIExtension(SimpleExtension):
    "ASGI application (isapi.asgi)"

    def __init__(self, app, lifespan="auto", shutdown_timeout=30.0):
        SimpleExtension.__init__(self)
        self.app = app
        self.lifespan = lifespan
        self.shutdown_timeout = shutdown_timeout
        self._server = None

    def GetExtensionVersion(self, vi):
        SimpleExtension.GetExtensionVersion(self, vi)
        if self._server is not None:
            return True
        if _AsgiServer is None:
            raise RuntimeError("isapi.asgi needs isapi-freeze's runtime (its _isapi_freeze.AsgiServer)")
        server = _Server(self.app, self.lifespan, self.shutdown_timeout)
        failure = server.start()
        if failure is not None:
            _log_error(failure)
            return False
        # A subclass that overrides HttpExtensionProc gets its calls; else the runtime hands
        # requests to the loop itself, without Python on IIS's thread.
        if type(self).HttpExtensionProc is ASGIExtension.HttpExtensionProc:
            server.native.serve_natively()
        self._server = server
        return True

    def HttpExtensionProc(self, ecb):
        if self._server is None:
            raise RuntimeError("the ASGI server is not running (GetExtensionVersion failed, or "
                               "TerminateExtension was called)")
        return self._server.native.hand(ecb)

    def TerminateExtension(self, status):
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        return True


class _Server:
    """The event loop's thread and what runs on it: the lifespan, the mailbox pump and a
    task per request."""

    def __init__(self, app, lifespan, shutdown_timeout):
        self.app = app
        self.lifespan = lifespan
        self.shutdown_timeout = shutdown_timeout
        self.native = _AsgiServer()
        self.state = {}
        self.loop = None
        self._requests = set()
        self._watched = set()
        self._poll_handle = None
        self._lifespan_task = None
        self._first_step = None

    # The caller's thread (GetExtensionVersion, TerminateExtension) -------------------------

    def start(self):
        """Starts the loop's thread and the lifespan's startup; returns None, or the reason
        the application cannot serve."""
        self._sockets = ()
        self._started = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, name="isapi-asgi-loop", daemon=True)
        self._thread.start()
        failure = self._started.result()
        if failure is not None:
            self._thread.join()
            self._close_sockets()
        return failure

    def stop(self):
        """Shuts down (see _shutdown) and waits for the loop's thread to end."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop closed in between
                pass
        # Bounded: each step of the shutdown is, and a thread left behind is reported.
        self._thread.join(2 * self.shutdown_timeout + 4 * _END_WAIT)
        if self._thread.is_alive():
            print("isapi.asgi: the event loop did not stop; unloading anyway", file=sys.stderr)
        else:
            self._close_sockets()

    def _close_sockets(self):
        for sock in self._sockets:
            sock.close()

    def _run(self):
        try:
            with asyncio.Runner(loop_factory=_new_loop) as runner:
                runner.run(self._main())
        except BaseException:
            why = f"isapi.asgi: the event loop failed:\n{traceback.format_exc().rstrip()}"
            if self._started.done():
                print(why, file=sys.stderr)
            else:
                self._started.set_result(why)
            self.native.close(_END_WAIT)

    # The loop's thread -------------------------------------------------------------------

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        port = _completion_port(self.loop)
        wakeup = _PortWakeup(self, *port) if port is not None else _SocketWakeup(self)
        failure = await self._startup()
        if failure is not None:
            self.native.close(_END_WAIT)
            await wakeup.close()
            self._started.set_result(failure)
            return
        self._started.set_result(None)
        proactor = getattr(self.loop, "_proactor", None)
        if isinstance(proactor, _ParkingProactor) and port is not None and not self.loop.get_debug():
            proactor.parking = _Parking(self, wakeup.address)
            self.native.serve_inline(self._inline)
        await self._stopping.wait()
        if isinstance(proactor, _ParkingProactor):
            proactor.parking = None
        try:
            await self._shutdown()
        finally:
            left = self.native.close(_END_WAIT)
            await wakeup.close()
            if left:
                print(f"isapi.asgi: {left} I/O thread(s) still blocked on a client at unload",
                      file=sys.stderr)

    def drain(self):
        """Takes every event of the runtime's mailbox: new requests, I/O results."""
        try:
            self._dispatch(self.native.drain())
        except BaseException:
            # Nothing may escape into the loop's own machinery (this runs inside its poll);
            # what failed is lost, the next events are served.
            text = traceback.format_exc().rstrip()
            _log_error(f"isapi.asgi: taking the server's events failed:\n{text}")

    def _dispatch(self, items):
        for item in items:
            if type(item) is tuple:
                future, value = item
                if not future.done():
                    future.set_result(value)
            else:
                self._serve(item)

    def _serve(self, request, inline=False):
        try:
            scope = request.scope(_HTTP_ASGI, self.state)
        except Exception:
            print("isapi.asgi: reading a request from the server failed:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            request.fail(_error_page())
            return None
        loop = self.loop
        if inline and loop.get_task_factory() is None:
            # On a borrowed loop the task's first step runs now: from its constructor
            # (eager start, 3.12+), else from the ready queue _inline runs.
            if _EAGER_TASKS:
                return asyncio.Task(self._handle(request, scope), loop=loop, eager_start=True)
            # 3.11: the step the task schedules is taken back and run by _inline.
            loop._claimed = claimed = []
            try:
                task = asyncio.Task(self._handle(request, scope), loop=loop)
            finally:
                loop._claimed = None
            self._first_step = claimed[0] if claimed else None
            return task
        return loop.create_task(self._handle(request, scope))

    def _inline(self, request):
        """On an IIS thread, with the loop's turn borrowed (see the module's notes): starts
        the request's task and runs what is ready. Returns whether the loop's thread must
        run now (work left, a new timer or I/O operation)."""
        loop = self.loop
        ready, scheduled, cache = loop._ready, loop._scheduled, loop._proactor._cache
        first_timer = scheduled[0] if scheduled else None
        under_way = len(cache)
        # What was ready before the request (next to nothing: the loop was parked) runs
        # here too; what the request's first step schedules is the loop thread's.
        earlier = len(ready)
        _set_running_loop(loop)
        try:
            task = self._serve(request, True)
            step = self._first_step
            if step is not None:
                self._first_step = None
                callback, context = step
                try:
                    context.run(callback)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as error:  # as asyncio's Handle._run
                    loop.call_exception_handler({"message": "Exception in a borrowed task step",
                                                 "exception": error})
            for _ in range(earlier if step is not None or _EAGER_TASKS else len(ready)):
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
        finally:
            _set_running_loop(None)
        if ready or len(cache) != under_way or (task is not None and not task.done()):
            return True
        return (scheduled[0] if scheduled else None) is not first_timer

    async def _handle(self, request, scope):
        # Kept from its first step (before, the loop holds it) until its end, for the
        # shutdown; a done-callback would cost a turn of the loop per request.
        task = _current_task()
        requests = self._requests
        requests.add(task)
        exchange = _Exchange(self, request)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except ClientDisconnected:
            # Raised by our send(): the client left, nothing to log (the spec's advice).
            request.abort()
        except asyncio.CancelledError:
            # TerminateExtension ends what did not finish in time.
            request.abort()
        except BaseException as error:
            if request.disconnected:
                # Most likely the client leaving made it raise (Starlette turns our
                # ClientDisconnected into its own ClientDisconnect).
                print(f"isapi.asgi: the client left before the response to {_request_line(scope)} "
                      f"was complete ({type(error).__name__})", file=sys.stderr)
                request.abort()
                return
            print(f"isapi.asgi: the application failed on {_request_line(scope)}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            request.fail(_error_page())
        else:
            if exchange.held is not None:
                request.send(exchange.held, False)
            if not request.complete:
                if request.disconnected:
                    request.abort()
                elif request.head_sent:
                    print(f"isapi.asgi: the application returned before finishing its response to "
                          f"{_request_line(scope)}: closing the connection", file=sys.stderr)
                    request.abort()
                else:
                    print(f"isapi.asgi: the application returned without a response to "
                          f"{_request_line(scope)}", file=sys.stderr)
                    request.fail(_error_page())
        finally:
            requests.discard(task)
            if exchange.waiter is not None:
                exchange.finished()

    def _watch(self, request):
        self._watched.add(request)
        if self._poll_handle is None:
            self._poll_handle = self.loop.call_later(DISCONNECT_POLL, self._poll)

    def _unwatch(self, request):
        self._watched.discard(request)

    def _poll(self):
        self._poll_handle = None
        for request in list(self._watched):
            request.probe()
        if self._watched:
            self._poll_handle = self.loop.call_later(DISCONNECT_POLL, self._poll)

    # The lifespan protocol -----------------------------------------------------------------

    async def _startup(self):
        """Runs the lifespan's startup: None, or why it failed."""
        if self.lifespan == "off":
            return None
        loop = self.loop
        self._lifespan_in = asyncio.Queue()
        self._startup_outcome = loop.create_future()
        self._shutdown_outcome = loop.create_future()
        self._lifespan_task = loop.create_task(self._lifespan())
        self._lifespan_in.put_nowait({"type": "lifespan.startup"})
        return await self._startup_outcome

    async def _lifespan(self):
        scope = {"type": "lifespan", "asgi": dict(_LIFESPAN_ASGI), "state": self.state}
        startup, shutdown = self._startup_outcome, self._shutdown_outcome

        async def receive():
            return await self._lifespan_in.get()

        async def send(message):
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                _settle(startup, None)
            elif kind == "lifespan.startup.failed":
                _settle(startup, "isapi.asgi: the application's lifespan startup failed: "
                        + (message.get("message") or "(no message)"))
            elif kind == "lifespan.shutdown.complete":
                _settle(shutdown, None)
            elif kind == "lifespan.shutdown.failed":
                _settle(shutdown, message.get("message") or "(no message)")
            else:
                raise ValueError(f"unexpected lifespan message type {kind!r}")

        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            raise
        except BaseException:
            text = traceback.format_exc().rstrip()
            if not startup.done():
                if self.lifespan == "on":
                    _settle(startup, f"isapi.asgi: the application's lifespan startup failed:\n{text}")
                else:
                    # As uvicorn's "auto": an application that raises on a lifespan scope
                    # before answering does not support the protocol.
                    last = text.splitlines()[-1]
                    print(f"isapi.asgi: the application does not take the lifespan protocol "
                          f"({last}); serving without it", file=sys.stderr)
                    _settle(startup, None)
                    _settle(shutdown, None)
            elif startup.result() is None:
                print(f"isapi.asgi: the application's lifespan failed:\n{text}", file=sys.stderr)
                _settle(shutdown, text)
        _settle(startup, None)
        _settle(shutdown, None)

    async def _shutdown(self):
        """Stops taking requests, waits for those in flight (at most shutdown_timeout
        seconds), ends the rest, then runs the lifespan's shutdown."""
        loop, native = self.loop, self.native
        native.stop_accepting()
        deadline = loop.time() + self.shutdown_timeout
        idle = loop.create_future()
        if not native.when_idle(idle):
            await asyncio.wait([idle], timeout=self.shutdown_timeout)
        if self._requests:
            await asyncio.wait(set(self._requests), timeout=max(0.0, deadline - loop.time()))
        late = [task for task in self._requests if not task.done()]
        if late or native.in_flight:
            print(f"isapi.asgi: {max(len(late), native.in_flight)} request(s) still running after "
                  f"{self.shutdown_timeout:g} s at unload: ending them", file=sys.stderr)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=_END_WAIT)
        task = self._lifespan_task
        if task is None or task.done():
            return
        self._lifespan_in.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait([self._shutdown_outcome, task], timeout=self.shutdown_timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        outcome = self._shutdown_outcome
        if not outcome.done():
            print(f"isapi.asgi: the application's lifespan shutdown did not finish within "
                  f"{self.shutdown_timeout:g} s", file=sys.stderr)
        elif outcome.result() is not None:
            print(f"isapi.asgi: the application's lifespan shutdown failed: {outcome.result()}",
                  file=sys.stderr)
        if not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=_END_WAIT)


class _PortWakeup:
    """The runtime posts a completion packet for an OVERLAPPED registered with asyncio's
    proactor, which calls `_woken` for it on the loop's thread, inside its poll: the
    mailbox is drained there, and the requests' tasks start in the same turn of the loop."""

    def __init__(self, server, cache, port):
        self.server = server
        self.cache = cache
        self.overlapped = _overlapped.Overlapped(0)
        self.address = self.overlapped.address
        self._arm()
        server.native.wake_by_port(port, self.address)
        # What was posted before the runtime knew the port.
        server.drain()

    def _arm(self):
        """Registers the OVERLAPPED for the next wake (a completion takes the registration
        away), before the drain: a wake needed after the drain finds it."""
        self.cache[self.address] = (self.server.loop.create_future(), self.overlapped, None, self._woken)

    def _woken(self, transferred, key, overlapped):
        self._arm()
        self.server.drain()

    async def close(self):
        # The proactor waits for every registered operation when it closes.
        self.cache.pop(self.address, None)


class _SocketWakeup:
    """The runtime sends a byte on a socket a task of the loop reads."""

    def __init__(self, server):
        self.server = server
        print(f"isapi.asgi: the event loop ({type(server.loop).__name__}) has no completion port "
              f"of asyncio's proactor: woken through a socket", file=sys.stderr)
        wake_read, wake_write = server._sockets = socket.socketpair()
        wake_read.setblocking(False)
        server.native.wake_by_socket(wake_write.fileno())
        self.task = server.loop.create_task(self._pump(wake_read))

    async def _pump(self, wake_read):
        self.server.drain()
        while await self.server.loop.sock_recv(wake_read, 4096):
            self.server.drain()

    async def close(self):
        self.task.cancel()
        await asyncio.wait([self.task], timeout=_END_WAIT)


class _Parking:
    """What a parking proactor needs: the server, and which operations under way are the
    loop's own (its self-pipe read, the wake-up registration)."""

    __slots__ = ("server", "native", "wakeup")

    def __init__(self, server, wakeup):
        self.server = server
        self.native = server.native
        self.wakeup = wakeup

    def quiet(self, cache):
        """Whether nothing but the loop's own operations is under way."""
        if len(cache) > 2:
            return False
        reading = getattr(getattr(self.server.loop, "_self_reading_future", None), "_ov", None)
        own = (self.wakeup, getattr(reading, "address", None))
        return all(address in own for address in cache)


if _overlapped is not None:
    class _ParkingProactor(asyncio.IocpProactor):
        """asyncio's proactor, but an idle loop with no operation of its own under way
        waits on the runtime (AsgiServer.park) instead of the completion port: a request
        then wakes it without a completion packet, or runs on IIS's thread (see _inline)."""

        parking = None

        def select(self, timeout=None):
            parking = self.parking
            if parking is not None and timeout != 0 and not self._results and parking.quiet(self._cache):
                parking.native.park(timeout)
                parking.server.drain()
                timeout = 0
            return super().select(timeout)

    class _ParkingLoop(asyncio.ProactorEventLoop):
        if not _EAGER_TASKS:
            # While _serve starts a borrowed request's task (3.11, no eager start), the
            # task's first step is handed back instead of queued: _inline runs it at once
            # (a Handle made and queued only to be taken out again costs ~1 µs).
            _claimed = None

            def call_soon(self, callback, *args, context=None):
                claimed = self._claimed
                if claimed is not None and not args:
                    self._claimed = None
                    claimed.append((callback, context))
                    return None
                return super().call_soon(callback, *args, context=context)

        def _write_to_self(self):
            # call_soon_threadsafe: a parked loop does not watch its self-pipe.
            super()._write_to_self()
            parking = self._proactor.parking
            if parking is not None:
                parking.native.unpark()

    def _new_loop():
        return _ParkingLoop(_ParkingProactor())
else:
    class _ParkingProactor:
        pass

    _new_loop = asyncio.new_event_loop


def _completion_port(loop):
    """(the proactor's registry of operations, its completion port) when `loop` is
    asyncio's proactor as CPython 3.11 to 3.13 make it (tests/e2e/asgi.rs checks that each
    uses it); None for another loop, which is then woken through a socket."""
    proactor = getattr(loop, "_proactor", None)
    cache = getattr(proactor, "_cache", None)
    port = getattr(proactor, "_iocp", None)
    if (_overlapped is None or not isinstance(loop, getattr(asyncio, "ProactorEventLoop", ()))
            or not isinstance(cache, dict) or not isinstance(port, int)):
        return None
    return cache, port


def _settle(future, value):
    if not future.done():
        future.set_result(value)


def _request_line(scope):
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('method')} {scope.get('path')}{'?' + query if query else ''}"


class _Exchange:
    """The receive and send callables of one request."""

    __slots__ = ("server", "request", "loop", "more_body", "first", "pending_read", "waiter", "status",
                 "held")

    def __init__(self, server, request):
        self.server = server
        self.request = request
        self.loop = server.loop
        self.first = True
        self.more_body = True
        # A read the application stopped waiting for (its receive() was cancelled): the
        # bytes it brings are the next receive()'s.
        self.pending_read = None
        self.waiter = None
        self.status = None
        # Starlette's 500 page, held (see _STARLETTE_500).
        self.held = None

    async def receive(self):
        request = self.request
        if self.first:
            self.first = False
            body, more = request.first_body()
            self.more_body = more
            return {"type": "http.request", "body": body, "more_body": more}
        if self.more_body:
            if self.pending_read is None:
                future = self.loop.create_future()
                if request.read(future):
                    self.pending_read = future
            if self.pending_read is not None:
                result = await asyncio.shield(self.pending_read)
                self.pending_read = None
                if result is not None:
                    body, more = result
                    self.more_body = more
                    return {"type": "http.request", "body": body, "more_body": more}
            self.more_body = False
            return {"type": "http.disconnect"}
        # The body is all read: what comes next is the client leaving (or the response
        # ending, after which the spec has receive() say the same).
        future = self.loop.create_future()
        if not request.wait_disconnect(future):
            self.waiter = future
            self.server._watch(request)
            try:
                await future
            finally:
                self.waiter = None
                self.server._unwatch(request)
        return {"type": "http.disconnect"}

    async def send(self, message):
        kind = message["type"]
        request = self.request
        if kind == "http.response.body":
            more = message.get("more_body", False)
            body = message.get("body", b"")
            if self.status == 500 and body == _STARLETTE_500 and not more and not request.head_sent:
                self.held = body
                return
            outcome = request.send(body, more)
            if outcome:  # not sent at once (0)
                if outcome == _WAIT:
                    future = self.loop.create_future()
                    if not request.when_drained(future) and not await future:
                        outcome = _GONE
                if outcome == _GONE:
                    raise ClientDisconnected("the client went away")
            if not more and self.waiter is not None:
                self.finished()
        elif kind == "http.response.start":
            request.start(message["status"], message.get("headers", ()))
            self.status = message["status"]
        else:
            raise ValueError(f"unexpected ASGI message type {kind!r}")

    def finished(self):
        """The response is over: a receive() waiting for the client to leave returns."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
