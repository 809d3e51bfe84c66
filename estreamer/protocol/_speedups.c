/* Optional compiled decoder for wire layouts (estreamer.protocol.speedups builds the input).
 *
 * The layout tables stay the one description of the wire format: Python compiles each table
 * to a tuple of ops, and a Program here interprets them. A Program only ever takes the fast,
 * well-formed path. Whenever a record is anything but ordinary (a length that does not fit,
 * an unknown block type, a block longer than its layout, a string block that is not one,
 * text that is not UTF-8, an address only Python's formatter writes) it returns None and the
 * pure-Python decoder decodes the record again from the start: every error message, note and
 * fallback value comes from one place, and this file never has to agree with it on them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <string.h>

enum {
    OP_U8 = 0, OP_U16, OP_U32, OP_U64, OP_I32,
    OP_IP, OP_IPV4, OP_UUID, OP_MAC, OP_RAW,
    OP_STR, OP_BLOB, OP_TEXT16, OP_TEXT32, OP_TEXTFROM, OP_BYTESFROM,
    OP_WHEN, OP_NESTED, OP_BLOCK, OP_LIST,
};

typedef struct {
    int code;
    Py_ssize_t size;  /* OP_RAW: bytes; OP_WHEN: the fixed field's op */
    PyObject *key;    /* the field's name, or NULL: an inline block merged into its parent */
    PyObject *ref;    /* TEXTFROM/WHEN: the earlier field's name; NESTED: a Program;
                         BLOCK/LIST: dict block type -> Program */
} Op;

typedef struct {
    PyObject_HEAD
    Py_ssize_t count;
    Py_ssize_t size_hint;  /* entries of the last dict this Program filled: presized next time */
    Op *ops;
    PyObject *source;  /* the ops tuple, kept alive for the borrowed names in ops */
} Program;

static PyTypeObject ProgramType;
static PyObject *BLOCK_TYPE_KEY;  /* "block_type" */
/* Record.to_dict's header keys, for Program.event */
static PyObject *RECORD_TYPE_KEY, *RECORD_NAME_KEY, *ARCHIVE_TIMESTAMP_KEY;

#define BAIL ((PyObject *)0x1)  /* not an error: hand the record to the Python decoder */

/* A dict sized for `hint` entries: growing one field at a time resizes it five times. */
static PyObject *new_values(Py_ssize_t hint) {
#if PY_VERSION_HEX < 0x030D0000
    return _PyDict_NewPresized(hint);
#else
    (void)hint;
    return PyDict_New();
#endif
}

/* Text of recurring 16-, 6- and 4-byte values (zone, policy and interface UUIDs, addresses):
 * a direct-mapped cache, so a stream pays for formatting each distinct value about once. A
 * slot holds one value; a collision just formats again. */
#define CACHE_SLOTS 4096
typedef struct {
    unsigned char raw[16];
    int code;
    PyObject *text;
} CacheSlot;
static CacheSlot cache[CACHE_SLOTS];

static inline uint32_t cache_index(int code, const unsigned char *p, Py_ssize_t n) {
    uint32_t h = 2166136261u ^ (uint32_t)code;  /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h & (CACHE_SLOTS - 1);
}

static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline uint64_t be64(const unsigned char *p) {
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}

static const char HEX[] = "0123456789abcdef";

static PyObject *hex_text(const unsigned char *p, Py_ssize_t n, char separator) {
    Py_ssize_t length = separator && n ? 3 * n - 1 : 2 * n;
    PyObject *text = PyUnicode_New(length, 127);
    if (text == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (separator && i) *out++ = (Py_UCS1)separator;
        *out++ = (Py_UCS1)HEX[p[i] >> 4];
        *out++ = (Py_UCS1)HEX[p[i] & 15];
    }
    return text;
}

static PyObject *uuid_text(const unsigned char *p) {
    PyObject *text = PyUnicode_New(36, 127);
    if (text == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
        *out++ = (Py_UCS1)HEX[p[i] >> 4];
        *out++ = (Py_UCS1)HEX[p[i] & 15];
    }
    return text;
}

static PyObject *ipv4_text(const unsigned char *p) {
    /* By hand: snprintf's format parsing cost more than the rest of the address. */
    char text[16], *out = text;
    for (int i = 0; i < 4; i++) {
        unsigned int octet = p[i];
        if (octet >= 100) *out++ = (char)('0' + octet / 100);
        if (octet >= 10) *out++ = (char)('0' + octet / 10 % 10);
        *out++ = (char)('0' + octet % 10);
        if (i < 3) *out++ = '.';
    }
    return PyUnicode_FromStringAndSize(text, out - text);
}

static const unsigned char V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const unsigned char ZERO16[16] = {0};

static PyObject *ip_text(const unsigned char *p) {
    if (memcmp(p, V4_MAPPED, 12) == 0) return ipv4_text(p + 12);
    if (memcmp(p, ZERO16, 12) == 0) {
        if (memcmp(p + 12, ZERO16, 4) == 0) return PyUnicode_FromStringAndSize("::", 2);
        return BAIL;  /* IPv4-compatible forms: Python writes them (RFC 5952, not glibc) */
    }
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, p, text, sizeof text) == NULL) return BAIL;
    return PyUnicode_FromString(text);
}

/* Wire text as Python's text_from_bytes: NULs dropped, UTF-8, hex when not text. */
static PyObject *wire_text(const unsigned char *p, Py_ssize_t n) {
    const unsigned char *nul = memchr(p, 0, (size_t)n);
    if (nul == NULL || (nul == p + n - 1)) {
        Py_ssize_t length = nul ? n - 1 : n;
        PyObject *text = PyUnicode_DecodeUTF8((const char *)p, length, NULL);
        if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return BAIL;
        }
        return text;
    }
    unsigned char *kept = PyMem_Malloc((size_t)n);
    if (kept == NULL) return PyErr_NoMemory();
    Py_ssize_t length = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i]) kept[length++] = p[i];
    PyObject *text = PyUnicode_DecodeUTF8((const char *)kept, length, NULL);
    PyMem_Free(kept);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        return BAIL;
    }
    return text;
}

static PyObject *format_fixed(int code, Py_ssize_t size, const unsigned char *p);

static PyObject *fixed_value(int code, Py_ssize_t size, const unsigned char *p) {
    Py_ssize_t n = code == OP_IP || code == OP_UUID ? 16 : code == OP_MAC ? 6
                   : code == OP_IPV4 ? 4 : 0;
    if (n == 0) return format_fixed(code, size, p);
    CacheSlot *slot = &cache[cache_index(code, p, n)];
    if (slot->text != NULL && slot->code == code && memcmp(slot->raw, p, (size_t)n) == 0) {
        Py_INCREF(slot->text);
        return slot->text;
    }
    PyObject *text = format_fixed(code, size, p);
    if (text == NULL || text == BAIL) return text;
    Py_XSETREF(slot->text, Py_NewRef(text));
    slot->code = code;
    memcpy(slot->raw, p, (size_t)n);
    return text;
}

static PyObject *format_fixed(int code, Py_ssize_t size, const unsigned char *p) {
    switch (code) {
    case OP_U8: return PyLong_FromLong(p[0]);
    case OP_U16: return PyLong_FromLong(be16(p));
    case OP_U32: return PyLong_FromUnsignedLong(be32(p));
    case OP_U64: return PyLong_FromUnsignedLongLong(be64(p));
    case OP_I32: return PyLong_FromLong((long)(int32_t)be32(p));
    case OP_IP: return ip_text(p);
    case OP_IPV4: return ipv4_text(p);
    case OP_UUID: return uuid_text(p);
    case OP_MAC: return hex_text(p, 6, ':');
    case OP_RAW: return hex_text(p, size, 0);
    }
    return BAIL;
}

static Py_ssize_t fixed_size(int code, Py_ssize_t size) {
    switch (code) {
    case OP_U8: return 1;
    case OP_U16: return 2;
    case OP_U32: case OP_I32: case OP_IPV4: return 4;
    case OP_U64: return 8;
    case OP_IP: case OP_UUID: return 16;
    case OP_MAC: return 6;
    case OP_RAW: return size;
    }
    return -1;
}

/* Sets values[key] = value (stealing value); BAIL and errors pass through. */
static PyObject *put(PyObject *values, PyObject *key, PyObject *value) {
    if (value == NULL || value == BAIL) return value;
    int failed = PyDict_SetItem(values, key, value);
    Py_DECREF(value);
    return failed ? NULL : Py_None;
}

static PyObject *run(Program *program, const unsigned char *buf, Py_ssize_t *offset,
                     Py_ssize_t end, PyObject *values);

/* A data block at *offset: header, then its layout's fields into `fields` (block_type
 * first). Py_None when read, BAIL or NULL. */
static PyObject *read_block_into(PyObject *table, const unsigned char *buf, Py_ssize_t *offset,
                                 Py_ssize_t end, PyObject *fields) {
    Py_ssize_t off = *offset;
    if (off + 8 > end) return BAIL;
    uint32_t block_type = be32(buf + off), length = be32(buf + off + 4);
    if (length < 8 || (Py_ssize_t)length > end - off) return BAIL;
    PyObject *type_object = PyLong_FromUnsignedLong(block_type);
    if (type_object == NULL) return NULL;
    PyObject *inner = PyDict_GetItemWithError(table, type_object);
    if (inner == NULL) {
        Py_DECREF(type_object);
        return PyErr_Occurred() ? NULL : BAIL;  /* unknown here: Python notes it */
    }
    PyObject *status = put(fields, BLOCK_TYPE_KEY, type_object);
    if (status != Py_None) return status;
    Py_ssize_t block_end = off + (Py_ssize_t)length, inner_off = off + 8;
    status = run((Program *)inner, buf, &inner_off, block_end, fields);
    if (status != Py_None) return status;
    if (inner_off != block_end) return BAIL;  /* a longer block: Python notes it */
    *offset = block_end;
    return Py_None;
}

/* The same into a new dict, sized from the last block of its type. */
static PyObject *read_block(PyObject *table, const unsigned char *buf, Py_ssize_t *offset,
                            Py_ssize_t end) {
    static Py_ssize_t hint = 16;
    PyObject *fields = new_values(hint);
    if (fields == NULL) return NULL;
    PyObject *status = read_block_into(table, buf, offset, end, fields);
    if (status != Py_None) {
        Py_DECREF(fields);
        return status;
    }
    hint = PyDict_GET_SIZE(fields);
    return fields;
}

static PyObject *run(Program *program, const unsigned char *buf, Py_ssize_t *offset,
                     Py_ssize_t end, PyObject *values) {
    Py_ssize_t off = *offset;
    for (Py_ssize_t i = 0; i < program->count; i++) {
        const Op *op = &program->ops[i];
        PyObject *status;
        switch (op->code) {
        case OP_STR:
        case OP_BLOB: {
            if (off + 8 > end) return BAIL;
            uint32_t block_type = be32(buf + off), length = be32(buf + off + 4);
            if (block_type != (op->code == OP_STR ? 0u : 10u) || length < 8
                || (Py_ssize_t)length > end - off)
                return BAIL;
            PyObject *value = op->code == OP_BLOB ? hex_text(buf + off + 8, length - 8, 0)
                              : length > 8 ? wire_text(buf + off + 8, length - 8)
                                           : PyUnicode_New(0, 127);
            status = put(values, op->key, value);
            off += length;
            break;
        }
        case OP_TEXT16:
        case OP_TEXT32: {
            Py_ssize_t width = op->code == OP_TEXT16 ? 2 : 4;
            if (off + width > end) return BAIL;
            Py_ssize_t count = width == 2 ? be16(buf + off) : be32(buf + off);
            off += width;
            if (count > end - off) return BAIL;
            status = put(values, op->key, wire_text(buf + off, count));
            off += count;
            break;
        }
        case OP_TEXTFROM:
        case OP_BYTESFROM: {
            PyObject *length = PyDict_GetItemWithError(values, op->ref);
            if (length == NULL || !PyLong_CheckExact(length)) return PyErr_Occurred() ? NULL : BAIL;
            Py_ssize_t count = PyLong_AsSsize_t(length);
            if (count < 0 || count > end - off) {
                PyErr_Clear();
                return BAIL;
            }
            status = put(values, op->key, op->code == OP_TEXTFROM ? wire_text(buf + off, count)
                                                                  : hex_text(buf + off, count, 0));
            off += count;
            break;
        }
        case OP_WHEN: {
            PyObject *flag = PyDict_GetItemWithError(values, op->ref);
            if (flag == NULL && PyErr_Occurred()) return NULL;
            int present = flag == NULL ? 0 : PyObject_IsTrue(flag);
            if (present < 0) return NULL;
            if (!present) {
                Py_INCREF(Py_None);
                status = put(values, op->key, Py_None);
                break;
            }
            Py_ssize_t size = fixed_size((int)op->size, 0);
            if (size < 0 || off + size > end) return BAIL;
            status = put(values, op->key, fixed_value((int)op->size, 0, buf + off));
            off += size;
            break;
        }
        case OP_NESTED: {
            Program *inner = (Program *)op->ref;
            PyObject *nested = new_values(inner->size_hint);
            if (nested == NULL) return NULL;
            status = run(inner, buf, &off, end, nested);
            inner->size_hint = PyDict_GET_SIZE(nested);
            if (status != Py_None) {
                Py_DECREF(nested);
                return status;
            }
            status = put(values, op->key, nested);
            break;
        }
        case OP_BLOCK: {
            if (op->key == NULL) {  /* the record is the block: its fields join the parent */
                status = read_block_into(op->ref, buf, &off, end, values);
                break;
            }
            PyObject *fields = read_block(op->ref, buf, &off, end);
            if (fields == NULL || fields == BAIL) return fields;
            status = put(values, op->key, fields);
            break;
        }
        case OP_LIST: {
            if (off + 8 > end) return BAIL;
            uint32_t length = be32(buf + off + 4);
            if (length < 8 || (Py_ssize_t)length > end - off) return BAIL;
            Py_ssize_t list_end = off + (Py_ssize_t)length, pos = off + 8;
            PyObject *items = PyList_New(0);
            if (items == NULL) return NULL;
            while (pos < list_end) {
                PyObject *item = read_block(op->ref, buf, &pos, list_end);
                if (item == NULL || item == BAIL) {
                    Py_DECREF(items);
                    return item;
                }
                int failed = PyList_Append(items, item);
                Py_DECREF(item);
                if (failed) {
                    Py_DECREF(items);
                    return NULL;
                }
            }
            off = list_end;
            status = put(values, op->key, items);
            break;
        }
        default: {
            Py_ssize_t size = fixed_size(op->code, op->size);
            if (size < 0 || off + size > end) return BAIL;
            status = put(values, op->key, fixed_value(op->code, op->size, buf + off));
            off += size;
        }
        }
        if (status != Py_None) return status;
    }
    *offset = off;
    return Py_None;
}

/* Checks decode's and event's first three arguments: 1 with the bounds set, 0 for bounds
 * that do not fit the buffer (the Python decoder reports those), -1 with an exception. */
static int bounds(PyObject *const *args, Py_ssize_t *off, Py_ssize_t *end) {
    if (!PyBytes_CheckExact(args[0])) return 0;
    *off = PyLong_AsSsize_t(args[1]);
    *end = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) return -1;
    return *off >= 0 && *end >= *off && *end <= PyBytes_GET_SIZE(args[0]);
}

/* Runs the program into `values` (which already holds `head` entries); steals `values`. */
static PyObject *fill(Program *self, PyObject *buf, Py_ssize_t off, Py_ssize_t end,
                      PyObject *values, Py_ssize_t head) {
    PyObject *status = run(self, (const unsigned char *)PyBytes_AS_STRING(buf), &off, end,
                           values);
    if (status != Py_None) {
        Py_DECREF(values);
        if (status == NULL) return NULL;
        Py_RETURN_NONE;
    }
    self->size_hint = PyDict_GET_SIZE(values) - head;
    PyObject *position = PyLong_FromSsize_t(off);
    if (position == NULL) {
        Py_DECREF(values);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, values, position);
    Py_DECREF(values);
    Py_DECREF(position);
    return result;
}

/* Program.decode(buf, off, end[, block_type]) -> (dict, offset) or None (use Python). */
static PyObject *Program_decode(Program *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "decode(buf, off, end[, block_type])");
        return NULL;
    }
    Py_ssize_t off, end;
    int ok = bounds(args, &off, &end);
    if (ok <= 0) {
        if (ok < 0) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *values = new_values(self->size_hint);
    if (values == NULL) return NULL;
    if (nargs == 4 && PyDict_SetItem(values, BLOCK_TYPE_KEY, args[3])) {
        Py_DECREF(values);
        return NULL;
    }
    return fill(self, args[0], off, end, values, 0);
}

/* Program.event(buf, off, end, record_type, record_name, archive_timestamp or None): the
 * record's event dict, the header's keys first and then the fields, as Record.to_dict
 * orders them. Made here, in one dict, because copying a dict whole is several times
 * cheaper than adding its fields one by one to another (what to_dict would do). */
static PyObject *Program_event(Program *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "event(buf, off, end, record_type, record_name, archive_timestamp)");
        return NULL;
    }
    Py_ssize_t off, end;
    int ok = bounds(args, &off, &end);
    if (ok <= 0) {
        if (ok < 0) return NULL;
        Py_RETURN_NONE;
    }
    Py_ssize_t head = args[5] == Py_None ? 2 : 3;
    PyObject *values = new_values(self->size_hint + head);
    if (values == NULL) return NULL;
    if (PyDict_SetItem(values, RECORD_TYPE_KEY, args[3])
        || PyDict_SetItem(values, RECORD_NAME_KEY, args[4])
        || (head == 3 && PyDict_SetItem(values, ARCHIVE_TIMESTAMP_KEY, args[5]))) {
        Py_DECREF(values);
        return NULL;
    }
    return fill(self, args[0], off, end, values, head);
}

static int Program_init(Program *self, PyObject *args, PyObject *kwargs) {
    PyObject *source;
    if (!PyArg_ParseTuple(args, "O!", &PyTuple_Type, &source)) return -1;
    if (self->ops != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Program is built once");
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(source);
    Op *ops = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Op));
    if (ops == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        /* (code, key or None, size, ref or None) */
        PyObject *item = PyTuple_GET_ITEM(source, i);
        int code;
        PyObject *key, *ref;
        Py_ssize_t size;
        if (!PyArg_ParseTuple(item, "iOnO", &code, &key, &size, &ref)) {
            PyMem_Free(ops);
            return -1;
        }
        int keyless_block = code == OP_BLOCK && key == Py_None;
        int bad = code < OP_U8 || code > OP_LIST || (!keyless_block && !PyUnicode_Check(key))
            || ((code == OP_BLOCK || code == OP_LIST) && !PyDict_Check(ref))
            || (code == OP_NESTED && !PyObject_TypeCheck(ref, &ProgramType))
            || ((code == OP_TEXTFROM || code == OP_BYTESFROM || code == OP_WHEN)
                && !PyUnicode_Check(ref))
            || (code == OP_RAW && size < 0)
            || (code == OP_WHEN && fixed_size((int)size, 0) < 0);
        if (bad) {
            PyMem_Free(ops);
            PyErr_Format(PyExc_ValueError, "bad op %zd in program", i);
            return -1;
        }
        ops[i].code = code;
        ops[i].size = size;
        ops[i].key = keyless_block ? NULL : key;  /* borrowed: `source` holds them */
        ops[i].ref = ref == Py_None ? NULL : ref;
    }
    Py_INCREF(source);
    self->source = source;
    self->ops = ops;
    self->count = count;
    return 0;
}

static void Program_dealloc(Program *self) {
    PyMem_Free(self->ops);
    Py_XDECREF(self->source);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Program_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))Program_decode, METH_FASTCALL,
     "decode(buf, off, end[, block_type]) -> (dict, offset), or None to use the Python "
     "decoder (anything but a well-formed record)."},
    {"event", (PyCFunction)(void (*)(void))Program_event, METH_FASTCALL,
     "event(buf, off, end, record_type, record_name, archive_timestamp) -> (dict, offset) "
     "or None: decode's dict with the record header's keys first (None: no timestamp)."},
    {NULL},
};

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "estreamer.protocol._speedups.Program",
    .tp_basicsize = sizeof(Program),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A wire layout compiled to ops (see estreamer/protocol/speedups.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Program_init,
    .tp_dealloc = (destructor)Program_dealloc,
    .tp_methods = Program_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "Optional compiled decoder for estreamer's layout tables.", -1, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&ProgramType) < 0) return NULL;
    BLOCK_TYPE_KEY = PyUnicode_InternFromString("block_type");
    RECORD_TYPE_KEY = PyUnicode_InternFromString("record_type");
    RECORD_NAME_KEY = PyUnicode_InternFromString("record_name");
    ARCHIVE_TIMESTAMP_KEY = PyUnicode_InternFromString("archive_timestamp");
    if (BLOCK_TYPE_KEY == NULL || RECORD_TYPE_KEY == NULL || RECORD_NAME_KEY == NULL
        || ARCHIVE_TIMESTAMP_KEY == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ProgramType);
    if (PyModule_AddObject(m, "Program", (PyObject *)&ProgramType) < 0) {
        Py_DECREF(&ProgramType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
