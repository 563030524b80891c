/*
 * Optional C speedups for the produce path (protocol/fastscan.py is the only caller).
 * uninitialized_bytearray is at the end.
 *
 * scan_summary(data, count, base_timestamp) walks the `count` records of an uncompressed
 * (or already decompressed) v2 records section and returns a summary:
 *
 *     (min_timestamp, max_timestamp, offsets_consecutive, any_null_key)
 *
 * min_timestamp ignores records whose timestamp is -1 (Kafka skips those in its bounds
 * check; it is INT64_MAX when there are none); max_timestamp covers every record.
 *
 * It returns None whenever anything is not strictly well formed: a varint longer than
 * needed for its width, a length past the record, trailing bytes, a negative length
 * other than -1, and so on. The pure-Python scanner (protocol.records.scan_records) is
 * the authority: None sends the caller there, which then accepts or rejects with Kafka's
 * exact message. So this code only has to be right about well-formed input and must never
 * read outside `data`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} cursor;

/* Unsigned varint of at most `max_bytes` bytes; -1 on any problem. */
static int read_uvarint(cursor *c, int max_bytes, uint64_t *out) {
    uint64_t value = 0;
    int shift = 0;
    for (int n = 0; n < max_bytes; n++) {
        if (c->p >= c->end)
            return -1;
        uint8_t b = *c->p++;
        value |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            *out = value;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

static int read_varint32(cursor *c, int32_t *out) {
    uint64_t raw;
    if (read_uvarint(c, 5, &raw) < 0 || raw > 0xFFFFFFFFull)
        return -1;
    uint32_t u = (uint32_t)raw;
    *out = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return 0;
}

static int read_varint64(cursor *c, int64_t *out) {
    uint64_t raw;
    if (read_uvarint(c, 9, &raw) < 0)  /* 9 bytes = 63 bits: stricter than Kafka's 10 */
        return -1;
    *out = (int64_t)((raw >> 1) ^ (~(raw & 1) + 1));
    return 0;
}

/* Skip a length-prefixed field whose length may be -1 (null) when `nullable`. */
static int skip_field(cursor *c, int nullable, int *was_null) {
    int32_t n;
    if (read_varint32(c, &n) < 0)
        return -1;
    if (n == -1 && nullable) {
        if (was_null)
            *was_null = 1;
        return 0;
    }
    if (n < 0 || (Py_ssize_t)n > c->end - c->p)
        return -1;
    c->p += n;
    return 0;
}

static PyObject *scan_summary(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t count;
    long long base_timestamp;
    if (!PyArg_ParseTuple(args, "y*nL", &view, &count, &base_timestamp))
        return NULL;

    const uint8_t *start = (const uint8_t *)view.buf;
    cursor all = {start, start + view.len};
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    int consecutive = 1, any_null_key = 0, ok = count >= 0;

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t index = 0; ok && index < count; index++) {
        int32_t length;
        if (read_varint32(&all, &length) < 0 || length < 0 || length > all.end - all.p) {
            ok = 0;
            break;
        }
        cursor rec = {all.p, all.p + length};
        all.p += length;
        int64_t ts_delta;
        int32_t offset_delta, header_count;
        int key_null = 0;
        if (rec.p >= rec.end) { ok = 0; break; }
        rec.p++; /* attributes */
        if (read_varint64(&rec, &ts_delta) < 0 || read_varint32(&rec, &offset_delta) < 0 ||
            skip_field(&rec, 1, &key_null) < 0 || skip_field(&rec, 1, NULL) < 0 ||
            read_varint32(&rec, &header_count) < 0 || header_count < 0) {
            ok = 0;
            break;
        }
        for (int32_t h = 0; ok && h < header_count; h++) {
            if (skip_field(&rec, 0, NULL) < 0 || skip_field(&rec, 1, NULL) < 0)
                ok = 0;
        }
        if (!ok || rec.p != rec.end) {
            ok = 0;
            break;
        }
        /* base + delta must not overflow (Python would compute the exact big integer). */
        if ((ts_delta > 0 && base_timestamp > INT64_MAX - ts_delta) ||
            (ts_delta < 0 && base_timestamp < INT64_MIN - ts_delta)) {
            ok = 0;
            break;
        }
        int64_t ts = (int64_t)base_timestamp + ts_delta;
        if (ts > max_ts)
            max_ts = ts;
        if (ts != -1 && ts < min_ts)
            min_ts = ts;
        if (offset_delta != index)
            consecutive = 0;
        if (key_null)
            any_null_key = 1;
    }
    if (ok && all.p != all.end)
        ok = 0;
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&view);
    if (!ok)
        Py_RETURN_NONE;
    return Py_BuildValue("(LLOO)", (long long)min_ts, (long long)max_ts,
                         consecutive ? Py_True : Py_False, any_null_key ? Py_True : Py_False);
}

/*
 * uninitialized_bytearray(n) -> a bytearray of n bytes whose contents are whatever the
 * allocator had there. For buffers that are filled before they are read (the broker's
 * frame buffers): bytearray(n) would zero them first, a memset as large as the frame.
 */
static PyObject *uninitialized_bytearray(PyObject *self, PyObject *arg) {
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    return PyByteArray_FromStringAndSize(NULL, n);
}

static PyMethodDef methods[] = {
    {"scan_summary", scan_summary, METH_VARARGS,
     "scan_summary(data, count, base_timestamp) -> (min_ts, max_ts, consecutive, "
     "any_null_key) or None when the records are not strictly well formed."},
    {"uninitialized_bytearray", uninitialized_bytearray, METH_O,
     "uninitialized_bytearray(n) -> bytearray of n bytes, not zeroed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "protocol._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
