/* Optional compiled form of the decorator's plans (estreamer/decorate.py).
 *
 * A plan says which ids of one record type are named from which metadata table, which
 * codes get labels and which times an ISO text. decorate.py writes each plan as Python
 * and, when this module is built, also hands it here as a Namer: the same steps in the same
 * order, without an interpreted bytecode per lookup. The Python form stays the reference:
 * a Namer is built only for plans it can run exactly, and an event that is missing a field
 * the plan reads is handed to the Python variant (`slow`), which reads with `get`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>

enum { STEP_LOOKUP = 0, STEP_GENERAL, STEP_TIME, STEP_NESTED, STEP_LIST };

typedef struct {
    int kind;
    Py_ssize_t read;        /* LOOKUP/TIME/NESTED/LIST: index of the field read */
    Py_ssize_t micro;       /* TIME: index of the microseconds field, or -1 */
    Py_ssize_t *keys;       /* GENERAL: indexes of the fields forming the key */
    Py_ssize_t nkeys;
    PyObject *table;        /* LOOKUP/GENERAL: dict; NESTED: a Namer; LIST: callable */
    PyObject *fallback;     /* GENERAL: dict or NULL */
    PyObject *out;          /* LOOKUP/TIME/NESTED/LIST: the key written */
    PyObject *outs;         /* GENERAL: tuple of keys ("" = not written) */
} Step;

typedef struct {
    PyObject_HEAD
    PyObject *reads;        /* tuple of field names read up front */
    Py_ssize_t nsteps;
    Py_ssize_t allocated;   /* steps allocated (a refused plan may have filled only some) */
    Step *steps;
    PyObject *slow;         /* the Python plan reading with `get` */
    PyObject *iso;          /* the decorator's dict: seconds -> ISO text without "Z" */
    PyObject *iso_text;     /* the decorator's _iso_text (fills `iso`) */
    PyObject *source;       /* the steps tuple, holding the borrowed objects in steps */
} Namer;

static PyTypeObject NamerType;
static PyObject *Z;         /* "Z" */

static int apply(Namer *self, PyObject *ev);

/* Two decimal digits of 0..99 at `out`. */
static char *two_digits(char *out, long long value) {
    out[0] = (char)('0' + value / 10);
    out[1] = (char)('0' + value % 10);
    return out + 2;
}

/* "YYYY-MM-DDTHH:MM:SS" of a wire time (a u32 of epoch seconds, 0 excluded: years 1970 to
 * 2106, always four digits), as Decorator._iso_text writes it: gmtime's calendar
 * (proleptic Gregorian, no leap seconds in epoch time), here without a call into Python,
 * a cache lookup or snprintf (which was ~3% of a record's time). Writes 19 chars. */
static char *wire_time_chars(char *out, long long seconds) {
    long long days = seconds / 86400, rest = seconds % 86400;
    /* days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted) */
    long long z = days + 719468, era = z / 146097, doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    out = two_digits(out, year / 100);
    out = two_digits(out, year % 100);
    *out++ = '-';
    out = two_digits(out, month);
    *out++ = '-';
    out = two_digits(out, day);
    *out++ = 'T';
    out = two_digits(out, rest / 3600);
    *out++ = ':';
    out = two_digits(out, rest / 60 % 60);
    *out++ = ':';
    return two_digits(out, rest % 60);
}

/* One time field's text: `iso[s]` (or `iso_text(s)`) + "Z", or with ".%06d" microseconds. */
static PyObject *time_text(Namer *self, PyObject *seconds, PyObject *micro) {
    PyObject *text = NULL;
    if (PyLong_CheckExact(seconds)) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(seconds, &overflow);
        if (!overflow && value > 0 && value < 4294967296LL) {
            /* The usual case, written whole in one go: "...SSZ" or "...SS.ffffffZ". */
            char chars[32];
            char *end = wire_time_chars(chars, value);
            long fraction = -1;
            if (micro != NULL && micro != Py_None && PyLong_CheckExact(micro)) {
                fraction = PyLong_AsLongAndOverflow(micro, &overflow);
                if (overflow || fraction < 0 || fraction > 999999) fraction = -2;
            } else if (micro != NULL && micro != Py_None) {
                fraction = -2;
            }
            if (fraction >= -1) {
                if (fraction >= 0) {
                    *end++ = '.';
                    for (int i = 5; i >= 0; i--) {
                        end[i] = (char)('0' + fraction % 10);
                        fraction /= 10;
                    }
                    end += 6;
                }
                *end++ = 'Z';
                return PyUnicode_FromStringAndSize(chars, end - chars);
            }
            text = PyUnicode_FromStringAndSize(chars, end - chars);  /* odd microseconds */
            if (text == NULL) return NULL;
        }
    }
    if (text == NULL) {  /* anything else: the decorator's own text for it */
        text = PyDict_GetItemWithError(self->iso, seconds);
        if (text != NULL) {
            Py_INCREF(text);
        } else {
            if (PyErr_Occurred()) return NULL;
            text = PyObject_CallOneArg(self->iso_text, seconds);
            if (text == NULL) return NULL;
        }
    }
    if (micro == NULL || micro == Py_None) {
        PyObject *whole = PyUnicode_Concat(text, Z);
        Py_DECREF(text);
        return whole;
    }
    PyObject *digits;
    int overflow = 0;
    long value = PyLong_CheckExact(micro) ? PyLong_AsLongAndOverflow(micro, &overflow) : 0;
    if (PyLong_CheckExact(micro) && !overflow) {
        char buffer[32];
        int n = snprintf(buffer, sizeof buffer, "%06ld", value);
        digits = PyUnicode_FromStringAndSize(buffer, n);
    } else {  /* anything else as Python's f"{m:06d}" has it (and fails as it does) */
        PyObject *spec = PyUnicode_FromString("06d");
        digits = spec == NULL ? NULL : PyObject_Format(micro, spec);
        Py_XDECREF(spec);
    }
    if (digits == NULL) {
        Py_DECREF(text);
        return NULL;
    }
    PyObject *whole = PyUnicode_FromFormat("%U.%UZ", text, digits);
    Py_DECREF(text);
    Py_DECREF(digits);
    return whole;
}

static int general(Step *step, PyObject **values, PyObject *ev) {
    PyObject *key;
    if (step->nkeys == 1) {
        key = values[step->keys[0]];
        Py_INCREF(key);
    } else {
        key = PyTuple_New(step->nkeys);
        if (key == NULL) return -1;
        for (Py_ssize_t i = 0; i < step->nkeys; i++) {
            PyObject *part = values[step->keys[i]];
            Py_INCREF(part);
            PyTuple_SET_ITEM(key, i, part);
        }
    }
    PyObject *found = PyDict_GetItemWithError(step->table, key);
    if ((found == NULL || found == Py_None) && !PyErr_Occurred() && step->fallback != NULL)
        found = PyDict_GetItemWithError(step->fallback, key);
    Py_DECREF(key);
    if (found == NULL) return PyErr_Occurred() ? -1 : 0;
    if (found == Py_None) return 0;
    Py_ssize_t width = PyTuple_GET_SIZE(step->outs);
    if (width == 1) return PyDict_SetItem(ev, PyTuple_GET_ITEM(step->outs, 0), found);
    Py_INCREF(found);  /* held while unpacked: a write may drop the table's own reference */
    PyObject *items = PySequence_Fast(found, "cannot unpack a non-iterable name");
    Py_DECREF(found);
    if (items == NULL) return -1;
    int status = 0;
    if (PySequence_Fast_GET_SIZE(items) != width) {
        PyErr_Format(PyExc_ValueError, "expected %zd names, got %zd", width,
                     PySequence_Fast_GET_SIZE(items));
        status = -1;
    }
    for (Py_ssize_t i = 0; status == 0 && i < width; i++) {
        PyObject *out = PyTuple_GET_ITEM(step->outs, i);
        if (PyUnicode_GET_LENGTH(out) == 0) continue;
        status = PyDict_SetItem(ev, out, PySequence_Fast_GET_ITEM(items, i));
    }
    Py_DECREF(items);
    return status;
}

static int run_step(Namer *self, Step *step, PyObject **values, PyObject *ev) {
    switch (step->kind) {
    case STEP_LOOKUP: {
        PyObject *found = PyDict_GetItemWithError(step->table, values[step->read]);
        if (found == NULL) return PyErr_Occurred() ? -1 : 0;
        return found == Py_None ? 0 : PyDict_SetItem(ev, step->out, found);
    }
    case STEP_GENERAL:
        return general(step, values, ev);
    case STEP_TIME: {
        PyObject *seconds = values[step->read];
        int set = PyObject_IsTrue(seconds);
        if (set <= 0) return set;
        PyObject *text = time_text(self, seconds, step->micro < 0 ? NULL : values[step->micro]);
        if (text == NULL) return -1;
        int status = PyDict_SetItem(ev, step->out, text);
        Py_DECREF(text);
        return status;
    }
    case STEP_NESTED: {
        PyObject *inner = values[step->read];
        if (!PyDict_Check(inner)) return 0;
        PyObject *copy = PyDict_Copy(inner);  /* the record's own block stays as decoded */
        if (copy == NULL) return -1;
        int status = apply((Namer *)step->table, copy);
        if (status == 0) status = PyDict_SetItem(ev, step->out, copy);
        Py_DECREF(copy);
        return status;
    }
    case STEP_LIST: {
        PyObject *items = values[step->read];
        if (!PyList_Check(items) || PyList_GET_SIZE(items) == 0) return 0;
        PyObject *named = PyObject_CallOneArg(step->table, items);
        if (named == NULL) return -1;
        int status = named == Py_None ? 0 : PyDict_SetItem(ev, step->out, named);
        Py_DECREF(named);
        return status;
    }
    }
    return 0;
}

/* 0, or -1 with an exception set. */
static int apply(Namer *self, PyObject *ev) {
    Py_ssize_t nreads = PyTuple_GET_SIZE(self->reads);
    PyObject *stack[64];
    PyObject **values = nreads <= 64 ? stack : PyMem_Malloc(nreads * sizeof(PyObject *));
    if (values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t got = 0;
    for (; got < nreads; got++) {
        /* held, not borrowed: a name written later must not be able to free a read value */
        PyObject *value = PyDict_GetItemWithError(ev, PyTuple_GET_ITEM(self->reads, got));
        if (value == NULL) break;
        Py_INCREF(value);
        values[got] = value;
    }
    int status = 0;
    if (got < nreads) {
        if (PyErr_Occurred()) {
            status = -1;
        } else {  /* a field is missing: the Python plan, reading each with `get` */
            PyObject *done = PyObject_CallOneArg(self->slow, ev);
            status = done == NULL ? -1 : 0;
            Py_XDECREF(done);
        }
    } else {
        for (Py_ssize_t i = 0; status == 0 && i < self->nsteps; i++)
            status = run_step(self, &self->steps[i], values, ev);
    }
    for (Py_ssize_t i = 0; i < got; i++) Py_DECREF(values[i]);
    if (values != stack) PyMem_Free(values);
    return status;
}

static PyObject *Namer_call(Namer *self, PyObject *args, PyObject *kwargs) {
    PyObject *ev;
    if (!PyArg_ParseTuple(args, "O!", &PyDict_Type, &ev)) return NULL;
    if (apply(self, ev) < 0) return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t read_index(PyObject *item, Py_ssize_t nreads) {
    Py_ssize_t index = PyLong_AsSsize_t(item);
    if (index == -1 && PyErr_Occurred()) return -1;
    if (index < -1 || index >= nreads) {
        PyErr_SetString(PyExc_ValueError, "read index out of range");
        return -1;
    }
    return index;
}

/* Namer(reads, steps, slow, iso, iso_text); each step a tuple:
 *   (0, read, table, out)                 a lookup (an id's name, a code's label)
 *   (1, (reads...), table, outs, fallback) a lookup by one or more fields, several outputs
 *   (2, read, micro or -1, out)           an ISO time
 *   (3, read, Namer, out)                 a nested block, named in a copy
 *   (4, read, callable, out)              a list's items (Python) */
static int Namer_init(Namer *self, PyObject *args, PyObject *kwargs) {
    PyObject *reads, *source, *slow, *iso, *iso_text;
    if (!PyArg_ParseTuple(args, "O!O!OO!O", &PyTuple_Type, &reads, &PyTuple_Type, &source,
                          &slow, &PyDict_Type, &iso, &iso_text))
        return -1;
    if (self->steps != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Namer is built once");
        return -1;
    }
    Py_ssize_t nreads = PyTuple_GET_SIZE(reads), count = PyTuple_GET_SIZE(source);
    for (Py_ssize_t i = 0; i < nreads; i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(reads, i))) {
            PyErr_SetString(PyExc_TypeError, "reads must be str");
            return -1;
        }
    }
    Step *steps = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Step));
    if (steps == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->steps = steps;  /* freed by dealloc from here on, even if a step is refused */
    self->allocated = count;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(source, i);
        Step *step = &steps[i];
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 4) goto bad;
        step->kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
        if (step->kind == -1 && PyErr_Occurred()) return -1;
        PyObject *a = PyTuple_GET_ITEM(item, 1), *b = PyTuple_GET_ITEM(item, 2),
                 *c = PyTuple_GET_ITEM(item, 3);
        step->micro = -1;
        switch (step->kind) {
        case STEP_LOOKUP:
            if (!PyDict_Check(b) || !PyUnicode_Check(c)) goto bad;
            step->table = b;
            step->out = c;
            break;
        case STEP_GENERAL: {
            if (PyTuple_GET_SIZE(item) != 5 || !PyTuple_Check(a) || PyTuple_GET_SIZE(a) == 0
                || !PyDict_Check(b) || !PyTuple_Check(c) || PyTuple_GET_SIZE(c) == 0)
                goto bad;
            PyObject *fallback = PyTuple_GET_ITEM(item, 4);
            if (fallback != Py_None && !PyDict_Check(fallback)) goto bad;
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(c); k++)
                if (!PyUnicode_Check(PyTuple_GET_ITEM(c, k))) goto bad;
            step->nkeys = PyTuple_GET_SIZE(a);
            step->keys = PyMem_Calloc((size_t)step->nkeys, sizeof(Py_ssize_t));
            if (step->keys == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            for (Py_ssize_t k = 0; k < step->nkeys; k++) {
                step->keys[k] = read_index(PyTuple_GET_ITEM(a, k), nreads);
                if (step->keys[k] < 0) goto bad;
            }
            step->table = b;
            step->outs = c;
            step->fallback = fallback == Py_None ? NULL : fallback;
            step->read = 0;
            continue;
        }
        case STEP_TIME:
            step->micro = read_index(b, nreads);
            if (step->micro == -1 && PyErr_Occurred()) return -1;
            if (!PyUnicode_Check(c)) goto bad;
            step->out = c;
            break;
        case STEP_NESTED:
            if (!PyObject_TypeCheck(b, &NamerType) || !PyUnicode_Check(c)) goto bad;
            step->table = b;
            step->out = c;
            break;
        case STEP_LIST:
            if (!PyCallable_Check(b) || !PyUnicode_Check(c)) goto bad;
            step->table = b;
            step->out = c;
            break;
        default:
            goto bad;
        }
        step->read = read_index(a, nreads);
        if (step->read < 0) goto bad;
        continue;
    bad:
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "bad step %zd in plan", i);
        return -1;
    }
    self->nsteps = count;
    Py_INCREF(reads);
    self->reads = reads;
    Py_INCREF(source);
    self->source = source;
    Py_INCREF(slow);
    self->slow = slow;
    Py_INCREF(iso);
    self->iso = iso;
    Py_INCREF(iso_text);
    self->iso_text = iso_text;
    return 0;
}

static void Namer_dealloc(Namer *self) {
    if (self->steps != NULL) {
        for (Py_ssize_t i = 0; i < self->allocated; i++) PyMem_Free(self->steps[i].keys);
        PyMem_Free(self->steps);
    }
    Py_XDECREF(self->reads);
    Py_XDECREF(self->source);
    Py_XDECREF(self->slow);
    Py_XDECREF(self->iso);
    Py_XDECREF(self->iso_text);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject NamerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "estreamer._namer.Namer",
    .tp_basicsize = sizeof(Namer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A decoration plan compiled to steps (see estreamer/decorate.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Namer_init,
    .tp_dealloc = (destructor)Namer_dealloc,
    .tp_call = (ternaryfunc)Namer_call,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_namer",
    "Optional compiled form of estreamer's decoration plans.", -1, NULL,
};

PyMODINIT_FUNC PyInit__namer(void) {
    if (PyType_Ready(&NamerType) < 0) return NULL;
    Z = PyUnicode_InternFromString("Z");
    if (Z == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&NamerType);
    if (PyModule_AddObject(m, "Namer", (PyObject *)&NamerType) < 0) {
        Py_DECREF(&NamerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
