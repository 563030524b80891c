/*
 * Optional C speedups for the produce path (protocol/fastscan.py is the only caller).
 * lz4_frames_into follows scan_summary; uninitialized_bytearray is at the end.
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
 *
 * lz4_frames_into(src, dst) decodes LZ4 frames (the lz4 codec of Kafka batches) into the
 * writable buffer `dst` and returns the number of bytes written, -1 when `dst` is too
 * small, or None for anything it does not handle or does not like. The same rule as for
 * scan_summary: None sends the caller to the lz4 library (protocol/compression.py), which
 * is the authority on what decodes and with which error. So it accepts only a strict
 * subset of what the library accepts, and never reads or writes outside the buffers:
 * - frames with magic 0x184D2204, version 01, reserved bits clear, block max size id 4-7,
 *   no block checksums, no content checksum, no dictionary id (all None), the header
 *   checksum verified (xxh32 of the descriptor, second byte);
 * - uncompressed blocks copied; compressed blocks decoded with every length and offset
 *   checked, no block larger than its frame's maximum, none empty, offsets reaching back
 *   only into this block (independent blocks) or this frame (linked blocks), and the
 *   format's end-of-block rules (the last sequence is literals only, at least 5 of them;
 *   the last match starts at least 12 bytes before the end), which the reference decoder
 *   enforces against its output buffer's end;
 * - a content size in the header must equal the frame's decoded size; one frame or
 *   several back to back; empty input is None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

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

/* ---- LZ4 frames ----------------------------------------------------------------------- */

#define XXH_P1 2654435761U
#define XXH_P2 2246822519U
#define XXH_P3 3266489917U
#define XXH_P4 668265263U
#define XXH_P5 374761393U

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static uint32_t read32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* XXH32 (the LZ4 frame format's checksum). */
static uint32_t xxh32(const uint8_t *p, size_t len, uint32_t seed) {
    const uint8_t *end = p + len;
    uint32_t h;
    if (len >= 16) {
        const uint8_t *limit = end - 16;
        uint32_t v1 = seed + XXH_P1 + XXH_P2, v2 = seed + XXH_P2, v3 = seed, v4 = seed - XXH_P1;
        do {
            v1 = rotl32(v1 + read32le(p) * XXH_P2, 13) * XXH_P1;
            v2 = rotl32(v2 + read32le(p + 4) * XXH_P2, 13) * XXH_P1;
            v3 = rotl32(v3 + read32le(p + 8) * XXH_P2, 13) * XXH_P1;
            v4 = rotl32(v4 + read32le(p + 12) * XXH_P2, 13) * XXH_P1;
            p += 16;
        } while (p <= limit);
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = seed + XXH_P5;
    }
    h += (uint32_t)len;
    while (end - p >= 4) {
        h = rotl32(h + read32le(p) * XXH_P3, 17) * XXH_P4;
        p += 4;
    }
    while (p < end) {
        h = rotl32(h + (*p) * XXH_P5, 11) * XXH_P1;
        p++;
    }
    h ^= h >> 15;
    h *= XXH_P2;
    h ^= h >> 13;
    h *= XXH_P3;
    h ^= h >> 16;
    return h;
}

#define LZ4_REFUSE (-1) /* not handled here: the library decides */
#define LZ4_FULL (-2)   /* the output buffer is too small */

/* A varint-like LZ4 length extension: bytes of 255 continue it. */
static int lz4_extend(const uint8_t **ip, const uint8_t *iend, size_t *len, size_t bound) {
    unsigned b;
    do {
        if (*ip >= iend)
            return -1;
        b = *(*ip)++;
        *len += b;
        if (*len > bound)
            return -1;
    } while (b == 255);
    return 0;
}

/*
 * Decode one compressed block of `n` bytes into dst[out...]; `window` is the lowest output
 * position a match may reach, `block_max` the frame's block size limit, `cap` the size of
 * dst. Returns the decoded size, LZ4_REFUSE or LZ4_FULL.
 */
static Py_ssize_t lz4_block(const uint8_t *ip, size_t n, uint8_t *dst, size_t out, size_t cap,
                            size_t window, size_t block_max) {
    const uint8_t *iend = ip + n;
    size_t op = out, limit = out + block_max;
    size_t match_start = 0, match_end = 0;
    int any_match = 0;
    for (;;) {
        if (ip >= iend)
            return LZ4_REFUSE;
        unsigned token = *ip++;
        size_t lit = token >> 4;
        if (lit == 15 && lz4_extend(&ip, iend, &lit, block_max) < 0)
            return LZ4_REFUSE;
        if (lit > (size_t)(iend - ip) || lit > limit - op)
            return LZ4_REFUSE;
        if (lit > cap - op)
            return LZ4_FULL;
        memcpy(dst + op, ip, lit);
        op += lit;
        ip += lit;
        if (ip == iend)
            break; /* the last sequence: literals only */
        if (iend - ip < 2)
            return LZ4_REFUSE;
        size_t offset = (size_t)ip[0] | (size_t)ip[1] << 8;
        ip += 2;
        if (offset == 0 || offset > op - window)
            return LZ4_REFUSE;
        size_t mlen = token & 15;
        if (mlen == 15 && lz4_extend(&ip, iend, &mlen, block_max) < 0)
            return LZ4_REFUSE;
        mlen += 4;
        if (mlen > limit - op)
            return LZ4_REFUSE;
        if (mlen > cap - op)
            return LZ4_FULL;
        uint8_t *d = dst + op;
        const uint8_t *s = d - offset;
        if (offset >= mlen) {
            memcpy(d, s, mlen);
        } else {
            /* Overlapping: the match repeats the last `offset` bytes. Copy in doubling
             * chunks from s; each chunk is a whole number of periods and ends where the
             * next begins, so no memcpy overlaps and the period is kept. */
            size_t done = 0;
            while (done < mlen) {
                size_t step = offset + done; /* == d + done - s */
                if (step > mlen - done)
                    step = mlen - done;
                memcpy(d + done, s, step);
                done += step;
            }
        }
        match_start = op;
        op += mlen;
        match_end = op;
        any_match = 1;
    }
    if (op == out)
        return LZ4_REFUSE;
    if (any_match && (op - match_end < 5 || op - match_start < 12))
        return LZ4_REFUSE;
    return (Py_ssize_t)(op - out);
}

/* Every frame of src into dst: the decoded size, LZ4_REFUSE or LZ4_FULL. */
static Py_ssize_t lz4_frames(const uint8_t *s, size_t len, uint8_t *dst, size_t cap) {
    size_t pos = 0, out = 0;
    if (len == 0)
        return LZ4_REFUSE;
    while (pos < len) {
        if (len - pos < 7 || read32le(s + pos) != 0x184D2204u)
            return LZ4_REFUSE;
        size_t p = pos + 4;
        unsigned flg = s[p], bd = s[p + 1];
        if ((flg >> 6) != 1 || (flg & 0x02) || (bd & 0x8F))
            return LZ4_REFUSE;
        if (flg & (0x10 | 0x04 | 0x01)) /* block checksum, content checksum, dictionary */
            return LZ4_REFUSE;
        unsigned size_id = (bd >> 4) & 7;
        if (size_id < 4)
            return LZ4_REFUSE;
        size_t block_max = (size_t)1 << (8 + 2 * size_id);
        int has_size = (flg & 0x08) != 0;
        size_t desc = has_size ? 10 : 2;
        if (len - p < desc + 1)
            return LZ4_REFUSE;
        if (((xxh32(s + p, desc, 0) >> 8) & 0xFF) != s[p + desc])
            return LZ4_REFUSE;
        uint64_t content_size = 0;
        if (has_size)
            content_size = (uint64_t)read32le(s + p + 2) | (uint64_t)read32le(s + p + 6) << 32;
        int independent = (flg & 0x20) != 0;
        p += desc + 1;
        size_t frame_start = out;
        for (;;) {
            if (len - p < 4)
                return LZ4_REFUSE;
            uint32_t word = read32le(s + p);
            p += 4;
            if (word == 0)
                break; /* end mark */
            size_t bsize = word & 0x7FFFFFFFu;
            if (bsize == 0 || bsize > block_max || bsize > len - p)
                return LZ4_REFUSE;
            if (word & 0x80000000u) { /* stored uncompressed */
                if (bsize > cap - out)
                    return LZ4_FULL;
                memcpy(dst + out, s + p, bsize);
                out += bsize;
            } else {
                Py_ssize_t got = lz4_block(s + p, bsize, dst, out, cap,
                                           independent ? out : frame_start, block_max);
                if (got < 0)
                    return got;
                out += (size_t)got;
            }
            p += bsize;
        }
        if (has_size && content_size != (uint64_t)(out - frame_start))
            return LZ4_REFUSE;
        pos = p;
    }
    return (Py_ssize_t)out;
}

static PyObject *lz4_frames_into(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    if (!PyArg_ParseTuple(args, "y*w*", &src, &dst))
        return NULL;
    Py_ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = lz4_frames((const uint8_t *)src.buf, (size_t)src.len, (uint8_t *)dst.buf,
                   (size_t)dst.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (n == LZ4_REFUSE)
        Py_RETURN_NONE;
    return PyLong_FromSsize_t(n == LZ4_FULL ? -1 : n);
}

static PyMethodDef methods[] = {
    {"scan_summary", scan_summary, METH_VARARGS,
     "scan_summary(data, count, base_timestamp) -> (min_ts, max_ts, consecutive, "
     "any_null_key) or None when the records are not strictly well formed."},
    {"lz4_frames_into", lz4_frames_into, METH_VARARGS,
     "lz4_frames_into(src, dst) -> bytes written, -1 when dst is too small, or None for "
     "anything left to the lz4 library."},
    {"uninitialized_bytearray", uninitialized_bytearray, METH_O,
     "uninitialized_bytearray(n) -> bytearray of n bytes, not zeroed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "protocol._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
