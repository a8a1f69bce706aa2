//! isapi.threaded_extension and InternalReloadException, frozen and served over HTTP under
//! Wine: requests served at once by the pool's workers, shutdown waiting for requests in
//! flight, and a reload that re-imports the script and replays the request.

use std::io::{Read, Write};

use crate::support::{assert_contains, assert_in_order, fixture, get, shared, Connection, Freeze, Frozen, Host};

/// The pool fixture, frozen once: served as it is by the tests that do not read its log.
fn pool() -> &'static Frozen {
    shared(&fixture("scripts/pool.py"))
}

/// "PATH OUTCOME on isapi-worker-N\n" -> N, checking the rest.
fn worker_of(text: &str, path: &str, outcome: &str) -> usize {
    let prefix = format!("{path} {outcome} on isapi-worker-");
    let n = text
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{text:?} is not {prefix:?}N"));
    n.parse().unwrap_or_else(|_| panic!("{text:?}: no worker number"))
}

#[test]
fn thread_pool_serves_32_concurrent_clients_on_all_its_workers() {
    let host = Host::start(&pool().dll(), &[]);
    let clients: Vec<_> = (0..32)
        .map(|i| {
            let address = host.address.clone();
            std::thread::spawn(move || (i, get(&address, &format!("/meet/{i}"))))
        })
        .collect();
    let mut workers = std::collections::BTreeSet::new();
    for client in clients {
        let (i, response) = client.join().unwrap();
        assert_eq!(response.status, 200, "{response:?}");
        // Groups of 8 pass the fixture's barrier together: all 8 workers held one request
        // each at the same time, else the barrier breaks and the text says so.
        workers.insert(worker_of(&response.text(), &format!("/meet/{i}"), "met"));
    }
    assert_eq!(workers, (1..=8).collect(), "every worker served requests");
}

#[test]
fn thread_pool_keeps_a_connection_alive_across_requests() {
    let host = Host::start(&pool().dll(), &[]);
    let mut connection = Connection::open(&host.address);
    for i in 0..3 {
        let response = connection.get(&format!("/plain/{i}"));
        assert_eq!(response.status, 200, "{response:?}");
        worker_of(&response.text(), &format!("/plain/{i}"), "plain");
    }
}

#[test]
fn dispatch_error_gives_a_generic_500_and_the_traceback_only_in_the_log() {
    let pool = pool().copy();
    let host = Host::start(&pool.dll(), &[]);
    let mut connection = Connection::open(&host.address);
    let failed = connection.get("/fail");
    assert_eq!((failed.status, failed.reason.as_str()), (500, "Internal Server Error"));
    assert!(failed.text().contains("<h1>Internal Server Error</h1>"), "{failed:?}");
    assert!(!failed.text().contains("secret-42"), "{failed:?}");
    assert!(!failed.text().contains("Traceback"), "{failed:?}");
    // The same connection goes on to the next request.
    let next = connection.get("/plain/after");
    worker_of(&next.text(), "/plain/after", "plain");
    let log = pool.log();
    assert_contains(&log, "Dispatch failed for GET /fail:");
    assert_contains(&log, "ValueError: pool failure with secret-42");
}

#[test]
fn shutdown_with_requests_in_flight_lets_them_finish_then_terminates() {
    let pool = pool().copy();
    let host = Host::start(&pool.dll(), &[]);
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let address = host.address.clone();
            std::thread::spawn(move || (i, get(&address, &format!("/hold/{i}"))))
        })
        .collect();
    pool.wait_for_log("all four requests holding", |log| {
        (0..4).all(|i| log.contains(&format!("holding /hold/{i}\n")))
    });
    // Closing stdin stops the host while the four requests sleep in Dispatch.
    host.stop();
    for client in clients {
        let (i, response) = client.join().unwrap();
        assert_eq!(response.status, 200, "{response:?}");
        worker_of(&response.text(), &format!("/hold/{i}"), "held");
    }
    let log = pool.log();
    let called = log.find("TerminateExtension(2) called").expect(&log);
    let returned = log
        .find("TerminateExtension(2) returns with 0 workers alive")
        .expect(&log);
    assert!(called < returned, "{log}");
    for i in 0..4 {
        assert!(log.find(&format!("holding /hold/{i}\n")).unwrap() < called, "{log}");
    }
}

#[test]
fn shutdown_past_the_wait_refuses_what_is_still_queued_with_503() {
    // One worker, held for 10 s; a second request waits in the queue. The host waits 0.5 s
    // for them (--shutdown-grace), then calls TerminateExtension, which waits its own
    // 0.5 s (worker_shutdown_wait) and answers the queued request 503 so that the server
    // is not left waiting for it.
    let busy = Freeze::script(fixture("scripts/busy_pool.py")).ok();
    let host = Host::start(&busy.dll(), &["--shutdown-grace", "0.5"]);
    let address = host.address.clone();
    // The held request is cut off when the host exits: its answer does not matter.
    let held = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let _ = stream.read_to_end(&mut Vec::new());
    });
    busy.wait_for_log("the worker held", |log| log.contains("holding the only worker\n"));
    let address = host.address.clone();
    let queued = std::thread::spawn(move || get(&address, "/queued"));
    busy.wait_for_log("the second request queued", |log| log.contains("queued /queued\n"));
    let finished = host.stop();
    let refused = queued.join().unwrap();
    assert_eq!(
        (refused.status, refused.reason.as_str()),
        (503, "Service Unavailable"),
        "{refused:?}"
    );
    assert_eq!(refused.body, b"503 Shutting down.\r\n");
    assert!(
        finished
            .stderr
            .contains("isapi-host: requests still running after 500ms; unloading anyway"),
        "{finished:?}"
    );
    let log = busy.log();
    assert_contains(
        &log,
        "isapi.threaded_extension: 2 request(s) still queued or running after 500 ms; terminating anyway",
    );
    let _ = held.join();
}

#[test]
fn internal_reload_exception_reimports_the_script_and_replays_the_request() {
    let reload = Freeze::script(fixture("scripts/reload.py")).ok();
    let host = Host::start(&reload.dll(), &[]);
    let before = get(&host.address, "/before");
    assert_eq!(before.text(), "generation 1 answered /before\n");
    // Generation 1 raises InternalReloadException for /reload; the same request is then
    // answered by the extension of the re-imported module.
    let reloaded = get(&host.address, "/reload");
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    assert_eq!(reloaded.text(), "generation 2 answered /reload\n");
    let after = get(&host.address, "/after");
    assert_eq!(after.text(), "generation 2 answered /after\n");

    host.stop();
    let log = reload.log();
    assert_in_order(
        &log,
        &[
            "reload.py imported: generation 1",
            "GetExtensionVersion(vi) on generation 1",
            "raised InternalReloadException: reloading it",
            "TerminateExtension(0) on generation 1",
            "reload.py imported: generation 2",
            "GetExtensionVersion(None) on generation 2",
            "TerminateExtension(2) on generation 2",
        ],
    );
    assert!(!log.contains("Traceback"), "{log}");
}

#[test]
fn the_pool_queue_is_first_in_first_out_and_get_nowait_raises_queue_empty() {
    // ThreadPoolExtension's queue is the runtime's WorkQueue (queue.SimpleQueue under
    // pywin32's loader); its shutdown path relies on get_nowait raising queue.Empty.
    let app = Freeze::source(
        "queue_contract.py",
        "import queue\n\
         from isapi.threaded_extension import ThreadPoolExtension, _WorkQueue\n\
         class Extension(ThreadPoolExtension):\n\
         \x20   def Dispatch(self, ecb):\n\
         \x20       q = _WorkQueue()\n\
         \x20       for item in ('a', ('b', None), 3):\n\
         \x20           q.put(item)\n\
         \x20       seen = [q.get(), q.get_nowait(), q.get()]\n\
         \x20       try:\n\
         \x20           q.get_nowait()\n\
         \x20       except queue.Empty as empty:\n\
         \x20           seen.append(type(empty).__name__)\n\
         \x20       body = f'{_WorkQueue.__module__}.{_WorkQueue.__name__} {seen!r}'.encode()\n\
         \x20       ecb.SendResponseHeaders('200 OK', f'Content-Length: {len(body)}\\r\\n\\r\\n', True)\n\
         \x20       ecb.WriteClient(body)\n\
         \x20       ecb.DoneWithSession()\n\
         def __ExtensionFactory__():\n\
         \x20   return Extension()\n",
    )
    .ok();
    let host = Host::start(&app.dll(), &[]);
    let r = get(&host.address, "/");
    assert_eq!(
        r.text(),
        "_isapi_freeze.WorkQueue ['a', ('b', None), 3, 'Empty']",
        "{r:?}"
    );
}

#[test]
fn a_connection_thread_ending_while_a_request_holds_the_gil_and_the_loader_lock_deadlocks_nothing() {
    // The held request keeps the GIL for 4 s while calling GetModuleHandleW, which takes
    // the loader lock (ctypes.PyDLL keeps the GIL during the call). Meanwhile other
    // connections end, and their threads exit: a thread state released under the loader
    // lock would wait for the GIL there, and both requests would hang.
    let app = Freeze::source(
        "loader_lock.py",
        "import ctypes, time\n\
         from isapi.simple import SimpleExtension\n\
         kernel32 = ctypes.PyDLL('kernel32')\n\
         kernel32.GetModuleHandleW.argtypes = [ctypes.c_wchar_p]\n\
         class Extension(SimpleExtension):\n\
         \x20   def HttpExtensionProc(self, ecb):\n\
         \x20       if ecb.QueryString == b'hold':\n\
         \x20           end = time.monotonic() + 4\n\
         \x20           while time.monotonic() < end:\n\
         \x20               kernel32.GetModuleHandleW('kernel32.dll')\n\
         \x20       body = b'done\\n'\n\
         \x20       ecb.SendResponseHeaders('200 OK', f'Content-Length: {len(body)}\\r\\n\\r\\n', False)\n\
         \x20       ecb.WriteClient(body)\n\
         \x20       return 1\n\
         def __ExtensionFactory__():\n\
         \x20   return Extension()\n",
    )
    .ok();
    let host = Host::start(&app.dll(), &[]);
    let address = host.address.clone();
    let others = std::thread::spawn(move || {
        (0..40)
            .map(|_| {
                let r = get(&address, "/x");
                std::thread::sleep(std::time::Duration::from_millis(50));
                (r.status, r.text())
            })
            .collect::<Vec<_>>()
    });
    let held = get(&host.address, "/x?hold");
    assert_eq!((held.status, held.text().as_str()), (200, "done\n"));
    assert_eq!(others.join().unwrap(), vec![(200, "done\n".to_string()); 40]);
    host.stop();
}
