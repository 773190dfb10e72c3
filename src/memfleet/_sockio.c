/* memfleet._sockio: one non-blocking send on a socket, for the proxy's hot path.
 *
 * os.write would do, but it releases and retakes the GIL around the system call and goes
 * through argument parsing and buffer acquisition; on a call made for every reply that costs
 * about as much as the transport write it replaces. A non-blocking send cannot block, so the
 * GIL is kept (as uvloop does for its own writes). See memfleet/sockio.py for how it is used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <sys/socket.h>

/* send(fd, data) -> the number of bytes the socket did not take (0: all of it), or -errno. */
static PyObject *
sockio_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "send(fd: int, data: bytes)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "send: bad file descriptor");
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(args[1]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[1]);
    ssize_t sent;
    do {
        /* MSG_NOSIGNAL: a peer that hung up is an EPIPE for the transport to report, not a
         * signal for the process. */
        sent = send((int)fd, p, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0)
        return PyLong_FromLong(-(long)errno);
    return PyLong_FromSsize_t(n - sent);
}

static PyMethodDef sockio_methods[] = {
    {"send", (PyCFunction)(void (*)(void))sockio_send, METH_FASTCALL,
     "send(fd, data) -> bytes not taken by the socket (0: all), or -errno; never blocks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sockio_module = {
    PyModuleDef_HEAD_INIT, "memfleet._sockio", "One non-blocking socket send.", 0, sockio_methods,
};

PyMODINIT_FUNC
PyInit__sockio(void)
{
    return PyModule_Create(&sockio_module);
}
