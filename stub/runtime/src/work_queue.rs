//! isapi.threaded_extension's request queue, natively: the pool's workers wait for work
//! with the GIL released on an SRW lock and condition variable (futex waits under Wine,
//! where CPython's own locks are kernel semaphores and each wake is a wineserver round
//! trip). (Spinning for the next item before sleeping was tried: with two cores it took
//! the CPU from the threads making that item, and halved the rate.)

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use pyo3::prelude::*;

/// A FIFO of Python objects with `put`, `get` (waits) and `get_nowait` (raises queue.Empty),
/// the part of `queue.SimpleQueue` the thread pool uses.
#[pyclass(module = "_isapi_freeze", name = "WorkQueue", frozen)]
pub struct WorkQueue {
    items: Mutex<VecDeque<Py<PyAny>>>,
    ready: Condvar,
    /// The app that made it (see `apps`): the workers taking its items work for that app.
    app: usize,
}

impl WorkQueue {
    fn take(&self) -> Option<Py<PyAny>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }
}

#[pymethods]
impl WorkQueue {
    #[new]
    fn new() -> Self {
        WorkQueue {
            items: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            app: crate::apps::current_index(),
        }
    }

    fn put(&self, item: Py<PyAny>) {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).push_back(item);
        self.ready.notify_one();
    }

    /// The next item, waiting (without the GIL) until there is one.
    fn get(&self, py: Python<'_>) -> Py<PyAny> {
        crate::apps::adopt(self.app);
        py.detach(|| {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(item) = items.pop_front() {
                    return item;
                }
                items = self.ready.wait(items).unwrap_or_else(|p| p.into_inner());
            }
        })
    }

    fn get_nowait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.take() {
            Some(item) => Ok(item),
            None => Err(PyErr::from_value(py.import("queue")?.getattr("Empty")?.call0()?)),
        }
    }
}
