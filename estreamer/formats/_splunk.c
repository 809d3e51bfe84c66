/* Optional compiled Splunk key=value writer (estreamer/formats/splunk.py builds the input).
 *
 * SPLUNK_KEYS stays the one description of the format: Python works out, per record type,
 * the same chains its generated formatters run (each output key with the sources tried in
 * order) and hands them here as a tuple; a Program interprets it. Per key the Python code
 * costs ~100 ns of bytecode; here it is a dict lookup and a copy.
 *
 * A Program only takes the ordinary path. Whenever an event is anything but ordinary (text
 * that is not UTF-8, a nested value that is neither a dict nor plainly not a mapping, a
 * comparison with a type of unknown equality, an exception from a computed key) it answers
 * None and the Python formatter writes the whole record: every odd case and every error has
 * one source, and this file never has to agree with it on them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Alternative kinds: the list in estreamer/formats/splunk.py, in the same order. */
enum { K_GET = 0, K_CONST, K_ZERO, K_MAP, K_PAIR, K_IMPACT, K_CALL };

typedef struct {
    int kind;
    int plain_get;      /* a one-level GET excluding nothing: run() reads it in place */
    Py_ssize_t slot, slot2;  /* a1's and b1's index among the Program's keys */
    PyObject *a1, *a2;  /* GET/ZERO/MAP/IMPACT: ev[a1] or ev[a1][a2] (a2 NULL: one level);
                           PAIR: the first path's keys; CALL: the callable, and its second
                           argument or NULL */
    PyObject *b1, *b2;  /* PAIR: the second path's keys */
    PyObject *table;    /* MAP/PAIR: dict key -> rendered bytes */
    PyObject *exclude;  /* GET/CALL: tuple of bytes that count as no value (besides None) */
    PyObject *text;     /* CONST: rendered bytes; ZERO: bytes when the value == 0 */
    PyObject *text2;    /* ZERO: bytes when it is not 0, or NULL (then: no value) */
} Alt;

/* One of a Program's top-level keys; its slot is its index. */
typedef struct {
    Py_hash_t hash;
    PyObject *key;
} Key;

typedef struct {
    PyObject *prefix;  /* bytes: " key=" */
    int is_usec;       /* the `event_usec` key: when it has no value, the time's is appended */
    Py_ssize_t count;
    Alt *alts;
} Entry;

typedef struct {
    PyObject_HEAD
    PyObject *head;  /* bytes: "rec_type=N" */
    int usec_mode;   /* 1: the row has an `event_usec` key (append the time's only if empty) */
    Py_ssize_t count;
    Entry *entries;
    Alt *alts;       /* every entry's alternatives, one allocation */
    PyObject *source;  /* the tuple, kept alive for the borrowed objects above */
    /* Every top-level key the row and the event's time read, each with a slot: one pass
     * over the event puts their values in the slots (see `gather`). */
    Py_ssize_t nkeys, mask;
    Key *keys;
    int16_t *table;  /* open addressing, small enough to stay in L1: key index or -1 */
    PyObject **shape_keys;  /* the last event's keys in order (held), see `gather` */
    int16_t *shape_slots;   /* and their slots, -1: a key the Program does not read */
    Py_ssize_t shape_len, shape_size;
} Program;

typedef struct {
    PyObject_HEAD
    PyObject *programs;      /* dict record type -> Program or None (Python writes it) */
    PyObject *build;         /* callable(record_type) -> Program or None */
    PyObject *splunk_value;  /* splunk.splunk_value: renders what this file does not */
} Formatter;

static PyTypeObject ProgramType, FormatterType;

static PyObject *K_RECORD_TYPE, *K_EVENT_SECOND, *K_EVENT_MICRO;

/* The keys the event's time is read from: the first slots of every Program. */
enum {
    T_TRIGGER_SECOND, T_TRIGGER_MICRO, T_HEADER, T_EVENT_SECOND, T_EVENT_MICRO, T_FILE_TS,
    T_MALWARE_TS, T_CORRELATION_SECOND, T_TIMESTAMP, T_ARCHIVE, T_COUNT
};
static const char *TIME_NAMES[T_COUNT] = {
    "trigger_event_second", "trigger_event_microsecond", "discovery_header", "event_second",
    "event_microsecond", "file_event_timestamp", "malware_event_timestamp",
    "correlation_event_second", "timestamp", "archive_timestamp",
};
static PyObject *TIME_KEYS[T_COUNT];

#define BAIL (-1)  /* not an error: the Python formatter writes this record */
#define FOREIGN (-2)  /* a key not an exact str: the Python formatter writes the record */

/* ------------------------------------------------------------------------ the output */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    char stack[8192];  /* a connection line is ~2.5 KB: most lines never touch the heap */
} Buf;

static int grow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + need) cap *= 2;
    char *p;
    if (b->p == b->stack) {
        p = PyMem_Malloc((size_t)cap);
        if (p != NULL) memcpy(p, b->stack, (size_t)b->len);
    } else {
        p = PyMem_Realloc(b->p, (size_t)cap);
    }
    if (p == NULL) return BAIL;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int reserve(Buf *b, Py_ssize_t need) {
    return b->len + need <= b->cap ? 0 : grow(b, need);
}

static inline int put(Buf *b, const char *s, Py_ssize_t n) {
    if (reserve(b, n)) return BAIL;
    memcpy(b->p + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static inline int put_bytes(Buf *b, PyObject *bytes) {
    return put(b, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

/* ------------------------------------------------------------------------ rendering */

static inline int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/* splunk._UUID.fullmatch on the UTF-8 bytes (non-ASCII text never matches it). */
static int is_uuid(const char *s) {
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* splunk_value for text, on its UTF-8 bytes: the bytes it changes or tests (newline, CR,
 * space, '=', '"') are ASCII and never part of a multi-byte character. */
static int render_text(Buf *b, const char *s, Py_ssize_t n) {
    if (n == 36 && is_uuid(s)) {
        if (reserve(b, 38)) return BAIL;
        b->p[b->len++] = '"';
        memcpy(b->p + b->len, s, 36);
        b->len += 36;
        b->p[b->len++] = '"';
        return 0;
    }
    /* One table load a byte to find out whether anything changes; most values: nothing. */
    static const unsigned char SPECIAL[256] = {['\n'] = 1, ['\r'] = 2, [' '] = 4, ['='] = 4};
    unsigned flags = 0;
    for (Py_ssize_t i = 0; i < n; i++) flags |= SPECIAL[(unsigned char)s[i]];
    if (flags == 0) return n ? put(b, s, n) : put(b, "\"\"", 2);
    Py_ssize_t newlines = 0, returns = 0;
    int quote = (flags & 4) != 0;
    if (flags & 3) {
        for (Py_ssize_t i = 0; i < n; i++) {
            newlines += s[i] == '\n';
            returns += s[i] == '\r';
        }
    }
    Py_ssize_t length = n + newlines - returns;
    if (length == 0) return put(b, "\"\"", 2);
    if (reserve(b, length + 2)) return BAIL;
    char *out = b->p + b->len;
    if (quote) *out++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        } else if (c == '\r') {
            continue;
        } else {
            *out++ = quote && c == '"' ? '\'' : c;
        }
    }
    if (quote) *out++ = '"';
    b->len = out - b->p;
    return 0;
}

static int put_str(Buf *b, PyObject *text) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    return s == NULL ? BAIL : put(b, s, n);
}

/* One value as the compiled Python writes it: exact ints, text and bools here; anything
 * else (floats, lists, dicts, subclasses) through splunk_value itself. */
/* An exact int of one digit (most values: ports, counts, ids), read in place. */
static inline int compact_int(PyObject *v, long long *x) {
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)v)) return 0;
    *x = (long long)PyUnstable_Long_CompactValue((PyLongObject *)v);
    return 1;
#else
    Py_ssize_t size = Py_SIZE(v);
    if (size < -1 || size > 1) return 0;
    *x = size * (long long)((PyLongObject *)v)->ob_digit[0];
    return 1;
#endif
}

static int render(Buf *b, PyObject *v, PyObject *splunk_value) {
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x;
        if (!compact_int(v, &x)) x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) {
            PyObject *text = PyObject_Str(v);
            if (text == NULL) return BAIL;
            int status = put_str(b, text);
            Py_DECREF(text);
            return status;
        }
        char digits[24];
        char *end = digits + sizeof digits, *p = end;
        unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (x < 0) *--p = '-';
        return put(b, p, end - p);
    }
    if (PyUnicode_CheckExact(v)) {
        if (PyUnicode_IS_ASCII(v))  /* its characters are its UTF-8 */
            return render_text(b, (const char *)PyUnicode_DATA(v), PyUnicode_GET_LENGTH(v));
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        return s == NULL ? BAIL : render_text(b, s, n);
    }
    if (PyBool_Check(v)) return put(b, v == Py_True ? "1" : "0", 1);
    PyObject *text = PyObject_CallOneArg(splunk_value, v);
    if (text == NULL) return BAIL;
    int status = PyUnicode_CheckExact(text) ? put_str(b, text) : BAIL;
    Py_DECREF(text);
    return status;
}

/* ------------------------------------------------------------------------ values */

/* Types whose instances are plainly not mappings: `walk` reads nothing inside them. */
static inline int not_a_mapping(PyObject *v) {
    return v == Py_None || PyUnicode_CheckExact(v) || PyLong_CheckExact(v) || PyBool_Check(v)
        || PyFloat_CheckExact(v) || PyList_CheckExact(v) || PyTuple_CheckExact(v)
        || PyBytes_CheckExact(v);
}

/* Types whose equality with text or a number is known without running Python code. */
static inline int plain(PyObject *v) {
    return PyUnicode_CheckExact(v) || PyLong_CheckExact(v) || PyBool_Check(v)
        || PyFloat_CheckExact(v) || PyList_CheckExact(v) || PyTuple_CheckExact(v)
        || PyDict_CheckExact(v);
}

/* Two str keys with the same text (the decorator's keys equal the table's, as other
 * objects). */
static inline int same_text(PyObject *a, PyObject *b) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b)
        && memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * PyUnicode_KIND(a)) == 0;
}

static inline Py_hash_t str_hash(PyObject *key) {
    Py_hash_t hash = ((PyASCIIObject *)key)->hash;  /* a dict's keys have theirs cached */
    return hash != -1 ? hash : PyObject_Hash(key);
}

/* The slot of an event's key, or -1 when the Program reads no such key; BAIL for a key that
 * is not an exact str, FOREIGN (a key of another type may equal one of ours, as Python's
 * lookups would find). */
static inline int probe(const Program *self, PyObject *k) {
    if (!PyUnicode_CheckExact(k)) return FOREIGN;
    Py_hash_t hash = str_hash(k);
    if (hash == -1) return FOREIGN;
    for (size_t i = (size_t)hash & self->mask;; i = (i + 1) & self->mask) {
        int slot = self->table[i];
        if (slot < 0) return -1;
        const Key *key = &self->keys[slot];
        if (key->hash == hash && (key->key == k || same_text(key->key, k))) return slot;
    }
}

#define SHAPE_MAX 4096  /* events with more keys than this probe the rest every time */

/* The values of the Program's keys (new references in `vals`, left NULL when absent), in
 * one pass over the event: ~170 probes of this small table cost a third of the ~170 dict
 * lookups that alternatives and misses would. And the events of a record type come from
 * one layout, their keys the same objects in the same order: the last event's keys are
 * remembered (held, so an address is never another key's) with their slots, and a key that
 * is the one remembered at its place needs no probe. */
static int gather(Program *self, PyObject *ev, PyObject **vals) {
    Py_ssize_t pos = 0, at = 0;
    PyObject *k, *v;
    while (PyDict_Next(ev, &pos, &k, &v)) {
        int slot;
        if (at < self->shape_len && self->shape_keys[at] == k) {
            slot = self->shape_slots[at];
        } else {
            slot = probe(self, k);
            if (slot == FOREIGN) return BAIL;
            if (at < SHAPE_MAX) {
                if (at >= self->shape_len) {
                    if (at >= self->shape_size) {
                        Py_ssize_t size = self->shape_size ? 2 * self->shape_size : 256;
                        PyObject **keys = PyMem_Realloc(self->shape_keys, size * sizeof *keys);
                        if (keys == NULL) return BAIL;
                        self->shape_keys = keys;
                        int16_t *slots = PyMem_Realloc(self->shape_slots, size * sizeof *slots);
                        if (slots == NULL) return BAIL;
                        self->shape_slots = slots;
                        self->shape_size = size;
                    }
                    self->shape_keys[at] = NULL;
                    self->shape_len = at + 1;
                }
                Py_INCREF(k);
                Py_XSETREF(self->shape_keys[at], k);
                self->shape_slots[at] = (int16_t)slot;
            }
        }
        at++;
        if (slot >= 0) {
            Py_INCREF(v);
            vals[slot] = v;
        }
    }
    return 0;
}

/* ev[k1] (its slot) or, with k2, ev[k1][k2] as `walk` reads it: 1 and a new reference, 0
 * for absent or None, BAIL for a nested value that may be a mapping of another kind. */
static int lookup(PyObject **vals, Py_ssize_t slot, PyObject *k2, PyObject **out) {
    PyObject *v = vals[slot];
    if (v == NULL) return 0;
    if (k2 != NULL) {
        if (PyDict_CheckExact(v)) {
            v = PyDict_GetItemWithError(v, k2);
            if (v == NULL) return PyErr_Occurred() ? BAIL : 0;
        } else {
            return not_a_mapping(v) ? 0 : BAIL;
        }
    }
    if (v == Py_None) return 0;
    Py_INCREF(v);
    *out = v;
    return 1;
}

/* `v in exclude` (text values such as "" that count as no name): 1, 0 or BAIL. */
static int excluded(PyObject *v, PyObject *exclude) {
    Py_ssize_t count = PyTuple_GET_SIZE(exclude);
    if (count == 0) return 0;
    if (!PyUnicode_CheckExact(v)) return plain(v) ? 0 : BAIL;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == NULL) return BAIL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *e = PyTuple_GET_ITEM(exclude, i);
        if (PyBytes_GET_SIZE(e) == n && memcmp(PyBytes_AS_STRING(e), s, (size_t)n) == 0)
            return 1;
    }
    return 0;
}

/* `v == 0`: 1, 0 or BAIL. */
static int equals_zero(PyObject *v) {
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        return !overflow && x == 0;
    }
    if (PyBool_Check(v)) return v == Py_False;
    if (PyFloat_CheckExact(v)) return PyFloat_AS_DOUBLE(v) == 0.0;
    return plain(v) ? 0 : BAIL;
}

/* `isinstance(v, int) and v > 0`: 1, 0 or BAIL (an int subclass may compare its own way). */
static int positive_int(PyObject *v) {
    if (v == NULL) return 0;
    if (PyBool_Check(v)) return v == Py_True;
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        return overflow > 0 || (!overflow && x > 0);
    }
    return PyLong_Check(v) ? BAIL : 0;
}

/* splunk._splunk_time (and common.event_time), from the gathered values: new references,
 * or NULL for the 0s. */
static int splunk_time(PyObject **vals, PyObject **second, PyObject **micro) {
    *second = *micro = NULL;
    PyObject *v = vals[T_TRIGGER_SECOND];
    int ok = positive_int(v);
    if (ok == BAIL) return BAIL;
    if (ok) {
        PyObject *m = vals[T_TRIGGER_MICRO];
        if (m != NULL && PyLong_Check(m)) {
            if (!PyLong_CheckExact(m) && !PyBool_Check(m)) return BAIL;
            if (m != Py_False && !(PyLong_CheckExact(m) && equals_zero(m))) {
                Py_INCREF(m);
                *micro = m;
            }
        }
        Py_INCREF(v);
        *second = v;
        return 0;
    }
    PyObject *header = vals[T_HEADER];
    if (header != NULL && !PyDict_CheckExact(header)) {
        if (!not_a_mapping(header)) return BAIL;
        header = NULL;
    }
    /* event_time's order: the header's second is the second one tried */
    for (int i = 0; i < 6; i++) {
        static const int from[6] = {T_EVENT_SECOND, -1, T_FILE_TS, T_MALWARE_TS,
                                    T_CORRELATION_SECOND, T_TIMESTAMP};
        if (from[i] >= 0) {
            v = vals[from[i]];
        } else {
            if (header == NULL) continue;
            v = PyDict_GetItemWithError(header, K_EVENT_SECOND);
            if (v == NULL && PyErr_Occurred()) return BAIL;
        }
        ok = positive_int(v);
        if (ok == BAIL) return BAIL;
        if (!ok) continue;
        Py_INCREF(v);  /* the header's is borrowed; vals' are the run's */
        *second = v;
        PyObject *m = vals[T_EVENT_MICRO];
        ok = positive_int(m);
        if (ok == 0 && header != NULL) {
            m = PyDict_GetItemWithError(header, K_EVENT_MICRO);
            if (m == NULL && PyErr_Occurred()) return BAIL;
            ok = positive_int(m);
        }
        if (ok == BAIL) return BAIL;
        if (ok) {
            Py_INCREF(m);
            *micro = m;
        }
        return 0;
    }
    v = vals[T_ARCHIVE];
    ok = positive_int(v);
    if (ok == BAIL) return BAIL;
    if (ok) {
        Py_INCREF(v);
        *second = v;
    }
    return 0;
}

/* impact_level(flags) */
static int impact(long long flags) {
    if (flags & 0xd8) return 1;
    if ((flags & 0x06) == 0x06) return 2;
    if (flags & 0x02) return 3;
    if (flags & 0x01) return 4;
    return 0;
}

/* One alternative: 1 with a value to render (*value, a new reference), 2 with rendered
 * bytes (*text, borrowed), 0 for no value (try the next), or BAIL. */
static int alternative(const Alt *alt, PyObject *ev, PyObject **vals, PyObject **value,
                       PyObject **text) {
    PyObject *v = NULL;
    int found;
    switch (alt->kind) {
    case K_CONST:
        *text = alt->text;
        return 2;
    case K_GET:
    case K_CALL:
        if (alt->kind == K_GET) {
            found = lookup(vals, alt->slot, alt->a2, &v);
            if (found <= 0) return found;
        } else {
            PyObject *args[2] = {ev, alt->a2};
            v = PyObject_Vectorcall(alt->a1, args, alt->a2 == NULL ? 1 : 2, NULL);
            if (v == NULL) return BAIL;
            if (v == Py_None) {
                Py_DECREF(v);
                return 0;
            }
        }
        found = excluded(v, alt->exclude);
        if (found) {
            Py_DECREF(v);
            return found == BAIL ? BAIL : 0;
        }
        *value = v;
        return 1;
    case K_ZERO:
        found = lookup(vals, alt->slot, alt->a2, &v);
        if (found <= 0) return found;
        found = equals_zero(v);
        Py_DECREF(v);
        if (found == BAIL) return BAIL;
        *text = found ? alt->text : alt->text2;
        return *text == NULL ? 0 : 2;
    case K_MAP:
        found = lookup(vals, alt->slot, alt->a2, &v);
        if (found <= 0) return found;
        if (!PyLong_CheckExact(v) && !PyBool_Check(v)) {
            found = PyLong_Check(v) ? BAIL : 0;  /* an int subclass may hash its own way */
            Py_DECREF(v);
            return found;
        }
        *text = PyDict_GetItemWithError(alt->table, v);
        Py_DECREF(v);
        if (*text == NULL) return PyErr_Occurred() ? BAIL : 0;
        return 2;
    case K_IMPACT: {
        found = lookup(vals, alt->slot, alt->a2, &v);
        if (found <= 0) return found;
        if (!PyLong_CheckExact(v) && !PyBool_Check(v)) {
            found = PyLong_Check(v) ? BAIL : 0;
            Py_DECREF(v);
            return found;
        }
        int overflow;
        long long flags = PyLong_AsLongLongAndOverflow(v, &overflow);
        Py_DECREF(v);
        if (overflow) return BAIL;  /* Python's infinite two's complement: its own */
        *value = PyLong_FromLong(impact(flags));
        return *value == NULL ? BAIL : 1;
    }
    case K_PAIR: {
        PyObject *w = NULL;
        found = lookup(vals, alt->slot, alt->a2, &v);
        if (found <= 0) return found;
        found = lookup(vals, alt->slot2, alt->b2, &w);
        if (found == BAIL) {
            Py_DECREF(v);
            return BAIL;
        }
        PyObject *key = PyTuple_Pack(2, v, found ? w : Py_None);
        Py_DECREF(v);
        Py_XDECREF(w);
        if (key == NULL) return BAIL;
        *text = PyDict_GetItemWithError(alt->table, key);
        Py_DECREF(key);
        if (*text == NULL) return PyErr_Occurred() ? BAIL : 0;
        return 2;
    }
    }
    return BAIL;
}

/* ------------------------------------------------------------------------ Program */

static PyObject *run(Program *self, PyObject *ev, PyObject *splunk_value) {
    Buf b;
    b.p = b.stack;
    b.len = 0;
    b.cap = sizeof b.stack;
    PyObject *second = NULL, *micro = NULL, *result = NULL;
    PyObject *stack[256], **vals = stack;
    Py_ssize_t nkeys = self->source == NULL ? 0 : self->nkeys;
    if (nkeys > 256 && (vals = PyMem_Calloc((size_t)nkeys, sizeof(PyObject *))) == NULL) {
        vals = stack;
        nkeys = 0;
        goto done;
    }
    if (vals == stack) memset(stack, 0, (size_t)nkeys * sizeof(PyObject *));
    if (self->source == NULL) goto done;
    if (gather(self, ev, vals) || splunk_time(vals, &second, &micro)) goto done;
    if (put_bytes(&b, self->head)) goto done;
    if (second != NULL && (put(&b, " event_sec=", 11) || render(&b, second, splunk_value)))
        goto done;
    int usec = 0;
    for (Py_ssize_t i = 0; i < self->count; i++) {
        const Entry *entry = &self->entries[i];
        int found = 0;
        PyObject *value = NULL, *text = NULL;
        for (Py_ssize_t j = 0; j < entry->count && !found; j++) {
            const Alt *alt = &entry->alts[j];
            if (alt->plain_get) {  /* most alternatives: no call, no switch */
                value = vals[alt->slot];
                if (value == NULL || value == Py_None) continue;
                Py_INCREF(value);
                found = 1;
                break;
            }
            found = alternative(alt, ev, vals, &value, &text);
            if (found == BAIL) goto done;
        }
        if (!found) {
            usec |= entry->is_usec;
            continue;
        }
        int status = put_bytes(&b, entry->prefix);
        if (!status) status = found == 2 ? put_bytes(&b, text) : render(&b, value, splunk_value);
        Py_XDECREF(value);
        if (status) goto done;
    }
    if (micro != NULL && (!self->usec_mode || usec)
        && (put(&b, " event_usec=", 12) || render(&b, micro, splunk_value)))
        goto done;
    result = PyBytes_FromStringAndSize(b.p, b.len);
done:
    Py_XDECREF(second);
    Py_XDECREF(micro);
    for (Py_ssize_t i = 0; i < nkeys; i++) Py_XDECREF(vals[i]);
    if (vals != stack) PyMem_Free(vals);
    if (b.p != b.stack) PyMem_Free(b.p);
    if (result == NULL) {
        /* Whatever went wrong, the Python formatter meets it again and says so itself. */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

static int bytes_or_none(PyObject *v) { return v == Py_None || PyBytes_CheckExact(v); }

static int parse_alt(PyObject *item, Alt *alt) {
    /* (kind, a1, a2, b1, b2, table, exclude, text, text2), None for unused */
    PyObject *o[8];
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 9) return -1;
    int kind = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
    if (kind == -1 && PyErr_Occurred()) return -1;
    for (int i = 0; i < 8; i++) {
        o[i] = PyTuple_GET_ITEM(item, i + 1);
        if (o[i] == Py_None) o[i] = NULL;
    }
    alt->kind = kind;
    alt->a1 = o[0];
    alt->a2 = o[1];
    alt->b1 = o[2];
    alt->b2 = o[3];
    alt->table = o[4];
    alt->exclude = o[5];
    alt->text = o[6];
    alt->text2 = o[7];
    alt->plain_get = kind == K_GET && alt->a2 == NULL && alt->exclude != NULL
        && PyTuple_CheckExact(alt->exclude) && PyTuple_GET_SIZE(alt->exclude) == 0;
    int path = alt->a1 != NULL && PyUnicode_CheckExact(alt->a1)
        && (alt->a2 == NULL || PyUnicode_CheckExact(alt->a2));
    int excludes = alt->exclude != NULL && PyTuple_CheckExact(alt->exclude);
    if (excludes)
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(alt->exclude); i++)
            if (!PyBytes_CheckExact(PyTuple_GET_ITEM(alt->exclude, i))) excludes = 0;
    if (!bytes_or_none(PyTuple_GET_ITEM(item, 7)) || !bytes_or_none(PyTuple_GET_ITEM(item, 8)))
        return -1;
    switch (kind) {
    case K_GET: return path && excludes ? 0 : -1;
    case K_CONST: return alt->text != NULL ? 0 : -1;
    case K_ZERO: return path && alt->text != NULL ? 0 : -1;
    case K_IMPACT: return path ? 0 : -1;
    case K_MAP: return path && alt->table && PyDict_CheckExact(alt->table) ? 0 : -1;
    case K_PAIR:
        return path && alt->b1 && PyUnicode_CheckExact(alt->b1)
            && (alt->b2 == NULL || PyUnicode_CheckExact(alt->b2))
            && alt->table && PyDict_CheckExact(alt->table) ? 0 : -1;
    case K_CALL: return alt->a1 && PyCallable_Check(alt->a1) && excludes ? 0 : -1;
    }
    return -1;
}

/* Program((head, usec_mode, ((prefix, is_usec, (alternative, ...)), ...))) */
static int Program_init(Program *self, PyObject *args, PyObject *kwargs) {
    PyObject *source, *head, *entries;
    int usec_mode;
    if (!PyArg_ParseTuple(args, "O!", &PyTuple_Type, &source)) return -1;
    if (self->source != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Program is built once");
        return -1;
    }
    if (!PyArg_ParseTuple(source, "O!pO!", &PyBytes_Type, &head, &usec_mode, &PyTuple_Type,
                          &entries))
        return -1;
    Py_ssize_t count = PyTuple_GET_SIZE(entries), total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *entry = PyTuple_GET_ITEM(entries, i);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3
            || !PyTuple_Check(PyTuple_GET_ITEM(entry, 2))) {
            PyErr_Format(PyExc_ValueError, "bad entry %zd in program", i);
            return -1;
        }
        total += PyTuple_GET_SIZE(PyTuple_GET_ITEM(entry, 2));
    }
    Entry *table = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Entry));
    Alt *alts = PyMem_Calloc(total ? (size_t)total : 1, sizeof(Alt));
    if (table == NULL || alts == NULL) {
        PyMem_Free(table);
        PyMem_Free(alts);
        PyErr_NoMemory();
        return -1;
    }
    Alt *next = alts;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *entry = PyTuple_GET_ITEM(entries, i);
        PyObject *prefix = PyTuple_GET_ITEM(entry, 0), *list = PyTuple_GET_ITEM(entry, 2);
        int is_usec = PyObject_IsTrue(PyTuple_GET_ITEM(entry, 1));
        int bad = !PyBytes_CheckExact(prefix) || is_usec < 0;
        table[i].prefix = prefix;  /* borrowed: `source` holds them all */
        table[i].is_usec = is_usec > 0;
        table[i].count = PyTuple_GET_SIZE(list);
        table[i].alts = next;
        for (Py_ssize_t j = 0; j < table[i].count && !bad; j++)
            bad = parse_alt(PyTuple_GET_ITEM(list, j), next++) != 0;
        if (bad) {
            PyMem_Free(table);
            PyMem_Free(alts);
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "bad alternative in entry %zd of program", i);
            return -1;
        }
    }
    /* The key table, at most half full: the time's keys first, then each alternative's. */
    size_t size = 8;
    while (size < 2 * (size_t)(T_COUNT + 2 * total)) size *= 2;
    Key *keys = PyMem_Calloc(T_COUNT + 2 * (size_t)total, sizeof(Key));
    int16_t *places = PyMem_Malloc(size * sizeof(int16_t));
    Py_ssize_t nkeys = 0;
    int failed = keys == NULL || places == NULL;
    if (!failed && size > 32768) {  /* the places are int16 */
        PyErr_SetString(PyExc_ValueError, "a program of too many keys");
        failed = 1;
    }
    for (size_t i = 0; !failed && i < size; i++) places[i] = -1;
    for (Py_ssize_t i = 0; !failed && i < T_COUNT + total; i++) {
        Alt *alt = i < T_COUNT ? NULL : &alts[i - T_COUNT];
        PyObject *names[2] = {alt ? alt->a1 : TIME_KEYS[i], alt ? alt->b1 : NULL};
        Py_ssize_t *slots[2] = {alt ? &alt->slot : NULL, alt ? &alt->slot2 : NULL};
        if (alt && (alt->kind == K_CALL || alt->kind == K_CONST)) continue;
        for (int n = 0; n < 2 && !failed; n++) {
            if (names[n] == NULL) continue;
            Py_hash_t hash = str_hash(names[n]);
            failed = hash == -1;
            size_t at = (size_t)hash & (size - 1);
            while (!failed && places[at] >= 0
                   && !(keys[places[at]].hash == hash && same_text(keys[places[at]].key, names[n])))
                at = (at + 1) & (size - 1);
            if (failed) break;
            if (places[at] < 0) {
                keys[nkeys].hash = hash;
                keys[nkeys].key = names[n];  /* borrowed: `source` or the module holds it */
                places[at] = (int16_t)nkeys++;
            }
            if (slots[n] != NULL) *slots[n] = places[at];
        }
    }
    if (failed) {
        PyMem_Free(keys);
        PyMem_Free(places);
        PyMem_Free(table);
        PyMem_Free(alts);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    self->table = places;
    self->keys = keys;
    self->mask = (Py_ssize_t)size - 1;
    self->nkeys = nkeys;
    Py_INCREF(source);
    self->source = source;
    self->head = head;
    self->usec_mode = usec_mode;
    self->count = count;
    self->entries = table;
    self->alts = alts;
    return 0;
}

static PyObject *Program_format(Program *self, PyObject *args) {
    PyObject *ev, *splunk_value;
    if (!PyArg_ParseTuple(args, "O!O", &PyDict_Type, &ev, &splunk_value)) return NULL;
    return run(self, ev, splunk_value);
}

static int Program_traverse(Program *self, visitproc visit, void *arg) {
    Py_VISIT(self->source);
    return 0;
}

static int Program_clear(Program *self) {
    /* The entries borrow from `source`: they go with it. */
    PyMem_Free(self->entries);
    PyMem_Free(self->alts);
    self->entries = NULL;
    self->alts = NULL;
    PyMem_Free(self->keys);
    PyMem_Free(self->table);
    self->keys = NULL;
    self->table = NULL;
    for (Py_ssize_t i = 0; i < self->shape_len; i++) Py_XDECREF(self->shape_keys[i]);
    PyMem_Free(self->shape_keys);
    PyMem_Free(self->shape_slots);
    self->shape_keys = NULL;
    self->shape_slots = NULL;
    self->shape_len = self->shape_size = 0;
    self->nkeys = 0;
    self->count = 0;
    self->head = NULL;
    Py_CLEAR(self->source);
    return 0;
}

static void Program_dealloc(Program *self) {
    PyObject_GC_UnTrack(self);
    Program_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Program_methods[] = {
    {"format", (PyCFunction)Program_format, METH_VARARGS,
     "format(event: dict, splunk_value) -> bytes, or None: let the Python formatter write "
     "it (anything unusual)."},
    {NULL},
};

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "estreamer.formats._splunk.Program",
    .tp_basicsize = sizeof(Program),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One record type's Splunk line, compiled (see estreamer/formats/splunk.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Program_init,
    .tp_traverse = (traverseproc)Program_traverse,
    .tp_clear = (inquiry)Program_clear,
    .tp_dealloc = (destructor)Program_dealloc,
    .tp_methods = Program_methods,
};

/* ------------------------------------------------------------------------ Formatter */

static int Formatter_init(Formatter *self, PyObject *args, PyObject *kwargs) {
    PyObject *build, *splunk_value;
    if (!PyArg_ParseTuple(args, "OO", &build, &splunk_value)) return -1;
    if (!PyCallable_Check(build) || !PyCallable_Check(splunk_value)) {
        PyErr_SetString(PyExc_TypeError, "Formatter(build, splunk_value): two callables");
        return -1;
    }
    PyObject *programs = PyDict_New();
    if (programs == NULL) return -1;
    Py_XSETREF(self->programs, programs);
    Py_INCREF(build);
    Py_XSETREF(self->build, build);
    Py_INCREF(splunk_value);
    Py_XSETREF(self->splunk_value, splunk_value);
    return 0;
}

/* Formatter.format(event) -> bytes, or None: the Python formatter writes this one (not a
 * dict, a record type that is not an int or has no Program, or anything unusual). */
static PyObject *Formatter_format(Formatter *self, PyObject *ev) {
    if (self->programs == NULL || !PyDict_CheckExact(ev)) Py_RETURN_NONE;
    PyObject *record_type = PyDict_GetItemWithError(ev, K_RECORD_TYPE);
    if (record_type == NULL || !PyLong_CheckExact(record_type)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *program = PyDict_GetItemWithError(self->programs, record_type);
    if (program == NULL) {
        if (PyErr_Occurred()) return NULL;
        /* The first record of its type: build its Program once (None: Python writes it). */
        Py_INCREF(record_type);  /* `ev` may lose it while `build` runs */
        program = PyObject_CallOneArg(self->build, record_type);
        if (program == NULL
            || (program != Py_None && !PyObject_TypeCheck(program, &ProgramType))
            || PyDict_SetItem(self->programs, record_type, program)) {
            if (program != NULL && !PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "build() must return a Program or None");
            Py_XDECREF(program);
            Py_DECREF(record_type);
            return NULL;
        }
        Py_DECREF(record_type);
        Py_DECREF(program);  /* the dict holds it */
    }
    if (program == Py_None) Py_RETURN_NONE;
    Py_INCREF(program);  /* a CALL may run code that clears the dict */
    PyObject *line = run((Program *)program, ev, self->splunk_value);
    Py_DECREF(program);
    return line;
}

static int Formatter_traverse(Formatter *self, visitproc visit, void *arg) {
    Py_VISIT(self->programs);
    Py_VISIT(self->build);
    Py_VISIT(self->splunk_value);
    return 0;
}

static int Formatter_clear(Formatter *self) {
    Py_CLEAR(self->programs);
    Py_CLEAR(self->build);
    Py_CLEAR(self->splunk_value);
    return 0;
}

static void Formatter_dealloc(Formatter *self) {
    PyObject_GC_UnTrack(self);
    Formatter_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Formatter_methods[] = {
    {"format", (PyCFunction)Formatter_format, METH_O,
     "format(event) -> bytes, or None to let the Python formatter write it."},
    {NULL},
};

static PyTypeObject FormatterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "estreamer.formats._splunk.Formatter",
    .tp_basicsize = sizeof(Formatter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Splunk lines by record type, each type's Program built on first use.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Formatter_init,
    .tp_traverse = (traverseproc)Formatter_traverse,
    .tp_clear = (inquiry)Formatter_clear,
    .tp_dealloc = (destructor)Formatter_dealloc,
    .tp_methods = Formatter_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_splunk",
    "Optional compiled Splunk key=value writer for estreamer's SPLUNK_KEYS.", -1, NULL,
};

static int intern(PyObject **slot, const char *text) {
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__splunk(void) {
    if (PyType_Ready(&ProgramType) < 0 || PyType_Ready(&FormatterType) < 0) return NULL;
    if (intern(&K_RECORD_TYPE, "record_type") || intern(&K_EVENT_SECOND, "event_second")
        || intern(&K_EVENT_MICRO, "event_microsecond"))
        return NULL;
    for (int i = 0; i < T_COUNT; i++)
        if (intern(&TIME_KEYS[i], TIME_NAMES[i])) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ProgramType);
    if (PyModule_AddObject(m, "Program", (PyObject *)&ProgramType) < 0) {
        Py_DECREF(&ProgramType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&FormatterType);
    if (PyModule_AddObject(m, "Formatter", (PyObject *)&FormatterType) < 0) {
        Py_DECREF(&FormatterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
