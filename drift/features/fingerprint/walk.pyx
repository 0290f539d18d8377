# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""One JSON document -> what its structure and values look like, path by path (worker side).

Compiled (Cython, built by `pip install`): every node of the parsed document is visited once, in C.
With the same walk in Python, fingerprinting ran at a third of genson's speed: most paths of an
API response hold one node per document, and the interpreter's work per path dominated
(benchmarks/RESULTS.md).

Paths look like `$.items[].price`: every array element shares the path `[]`. An object whose keys
all belong to one identifier class is a map and collapses to `{*}`, so that tomorrow's new ids
never look like new fields. The key classes, in the order they are tried (digits are ASCII):

    int        123, -7                    uuid      8-4-4-4-12 hex digits
    date       2026-11-24, 2026-11-24T03:00:00Z (anything starting with a date)
    hex        12 or more hex digits      currency  three capital letters (USD, EUR)
    code       letters and a run of digits: SKU-12345, ord_2026_0042 (not line1, utf8 or md5)

A map needs at least one key; an empty object stays an object. The class set of a map's keys is
recorded, so that a change of key pattern (dates become ids) is a finding of its own.

Strings get a format, tested on the first FORMAT_SAMPLE distinct strings of a path in a document
(500 titles need not all be tested; a document counts once per format at a path; strings over 64
characters are not deduplicated, so a repeated long one can take several of the tests):

    date        2026-11-24
    date-time   2026-11-24T03:00:00Z, 2026-11-24 03:00, with seconds, fractions and an offset
    uuid        8-4-4-4-12 hex digits
    email       one @, no spaces, a dot inside the domain
    uri         scheme://anything without spaces
    numeric     a number sent as a string: -3, 12.50, .5, 1e6
    json        an object or array serialised into a string
    text        anything else

Integers beyond 2^53 are accepted and counted (`big_ints`): JavaScript consumers lose their
precision.

Per document `observe` returns, each deduplicated within the document where that is what is
counted:

    tags      [(path, type, format)]     type: null bool int float string object array
    values    (path, value | None)       distinct scalars usable as enum values (ints, bools,
                                         strings up to 64 characters), as text; one None when
                                         the document alone holds more than DOC_VALUE_CAP of them.
                                         A value is its text: 5 and "5", true and "true" are one;
                                         values are told apart by their crc32
    hashes    (path, hash)               the KMV_K smallest crc32 hashes of those distinct values
    numbers   (path, value)              ints and floats          } one value per path and
    lengths   (path, length)             string lengths           } document, a float: the
    arrays    (path, length)             array lengths            } (lower) median of what it
                                                                    holds there
    keys      [(path, key class)]        per object: its map's key class, or "record"
    shape     canonical shape hash: the hash of the sorted set of (path, type, format). Keys are
              sorted, map keys are *, the items of an array are one set of paths, leaves are types:
              two documents that differ only in values, ids or array lengths share a shape

The document, not the node, is the unit of every test: the 40 string lengths of one response are not
40 independent observations. Treated so, KS flagged all 500 pairs of same-distribution windows of
the shared corpus' API responses (benchmarks/calibration/verdicts.py, before the medians).
"""

import hashlib

cimport cython

import numpy as np
import orjson

from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyObject
from cpython.unicode cimport (
    PyUnicode_AsUTF8AndSize, PyUnicode_DATA, PyUnicode_FindChar, PyUnicode_KIND, PyUnicode_READ, Py_UNICODE_ISSPACE,
)
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Realloc
from cpython.bytes cimport PyBytes_FromStringAndSize

cdef unsigned int _CRC[8][256]


cdef void _crc_tables():
    # _CRC[0] is zlib's byte table; _CRC[k] advances a byte through k more zero bytes, so that the
    # loop below takes eight bytes per step ("slicing-by-8"): every string up to 64 characters of
    # every document is hashed, and a byte at a time was a tenth of the walk
    cdef unsigned int c, n, k
    for n in range(256):
        c = n
        for k in range(8):
            c = (<unsigned int>0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
        _CRC[0][n] = c
    for n in range(256):
        c = _CRC[0][n]
        for k in range(1, 8):
            c = _CRC[0][c & 0xFF] ^ (c >> 8)
            _CRC[k][n] = c


_crc_tables()


cdef inline unsigned int _word(const unsigned char *d) noexcept:
    return <unsigned int>d[0] | (<unsigned int>d[1] << 8) | (<unsigned int>d[2] << 16) | (<unsigned int>d[3] << 24)


cdef inline unsigned int _crc32(const unsigned char *data, Py_ssize_t size) noexcept:
    """CRC-32 as zlib computes it (same polynomial and bit order; tested against zlib.crc32)."""
    cdef unsigned int c = ~(<unsigned int>0), a, b
    while size >= 8:
        a = c ^ _word(data)
        b = _word(data + 4)
        c = (_CRC[7][a & 0xFF] ^ _CRC[6][(a >> 8) & 0xFF] ^ _CRC[5][(a >> 16) & 0xFF] ^ _CRC[4][a >> 24]
             ^ _CRC[3][b & 0xFF] ^ _CRC[2][(b >> 8) & 0xFF] ^ _CRC[1][(b >> 16) & 0xFF] ^ _CRC[0][b >> 24])
        data += 8
        size -= 8
    while size > 0:
        c = _CRC[0][(c ^ data[0]) & 0xFF] ^ (c >> 8)
        data += 1
        size -= 1
    return ~c


def crc32_text(str value):
    """The crc32 of a string's UTF-8 (what the KMV sketch hashes)."""
    return _crc32_text(value)

MAX_ENUM_VALUE = 64
VALUE_CAP = 200  # distinct values kept per path and window (the top values)
cdef enum:
    C_DOC_VALUE_CAP = 20
DOC_VALUE_CAP = C_DOC_VALUE_CAP  # more distinct values in one document: no enum, not kept
KMV_K = 256
FORMAT_SAMPLE = 64

TYPES = ("null", "bool", "int", "float", "string", "object", "array")
FORMATS = ("date", "date-time", "uuid", "email", "uri", "numeric", "json", "text")
KEY_CLASSES = ("record", "int", "uuid", "date", "hex", "currency", "code")
SAMPLES = ("numbers", "lengths", "arrays")  # the tables of one median per document and path

cdef enum:
    T_NULL = 1
    T_BOOL = 2
    T_INT = 4
    T_FLOAT = 8
    T_STRING = 16
    T_OBJECT = 32
    T_ARRAY = 64

cdef enum:
    F_DATE = 1
    F_DATETIME = 2
    F_UUID = 4
    F_EMAIL = 8
    F_URI = 16
    F_NUMERIC = 32
    F_JSON = 64
    F_TEXT = 128

cdef enum:
    K_RECORD = 1
    K_INT = 2
    K_UUID = 4
    K_DATE = 8
    K_HEX = 16
    K_CURRENCY = 32
    K_CODE = 64

cdef enum:
    NEW_VALUE = 1
    NEW_STRING = 2

cdef long long SAFE_INT = 2 ** 53
cdef Py_ssize_t C_MAX_ENUM_VALUE = MAX_ENUM_VALUE
cdef Py_ssize_t C_FORMAT_SAMPLE = FORMAT_SAMPLE
cdef Py_ssize_t C_KMV_K = KMV_K


class LimitExceeded(Exception):
    """The document breaks a limit of the job file; `category` is the input-error category."""

    def __init__(self, category, message):
        super().__init__(message)
        self.category = category


# --- string formats and key classes: character tests, no regular expressions -----------------

cdef inline bint _digit(Py_UCS4 c) noexcept:
    return c >= u'0' and c <= u'9'


cdef inline bint _hex(Py_UCS4 c) noexcept:
    return _digit(c) or (c >= u'a' and c <= u'f') or (c >= u'A' and c <= u'F')


cdef inline bint _digits(str s, Py_ssize_t start, Py_ssize_t count):
    cdef Py_ssize_t i
    for i in range(start, start + count):
        if not _digit(s[i]):
            return False
    return True


cdef bint _starts_with_date(str s):
    # \d{4}-\d{2}-\d{2}
    return len(s) >= 10 and _digits(s, 0, 4) and s[4] == u'-' and _digits(s, 5, 2) and s[7] == u'-' and _digits(s, 8, 2)


cdef bint _is_datetime(str s):
    # date [T ] hh:mm (:ss(.fraction)?)? (Z | [+-]hh:?mm)?
    cdef Py_ssize_t n = len(s), i = 16
    if n < 16 or not _starts_with_date(s) or (s[10] != u'T' and s[10] != u' '):
        return False
    if not (_digits(s, 11, 2) and s[13] == u':' and _digits(s, 14, 2)):
        return False
    if i + 3 <= n and s[i] == u':' and _digits(s, i + 1, 2):
        i += 3
        if i + 1 < n and s[i] == u'.' and _digit(s[i + 1]):
            i += 1
            while i < n and _digit(s[i]):
                i += 1
    if i == n:
        return True
    if s[i] == u'Z':
        return i + 1 == n
    if s[i] == u'+' or s[i] == u'-':
        i += 1
        if i + 2 > n or not _digits(s, i, 2):
            return False
        i += 2
        if i < n and s[i] == u':':
            i += 1
        return i + 2 == n and _digits(s, i, 2)
    return False


cdef bint _is_uuid(str s):
    cdef Py_ssize_t i
    if len(s) != 36:
        return False
    for i in range(36):
        if i == 8 or i == 13 or i == 18 or i == 23:
            if s[i] != u'-':
                return False
        elif not _hex(s[i]):
            return False
    return True


cdef bint _is_numeric(str s):
    # [-+]? (\d+ \.? \d* | \. \d+) ([eE] [-+]? \d+)?
    cdef Py_ssize_t n = len(s), i = 0, start
    if i < n and (s[i] == u'-' or s[i] == u'+'):
        i += 1
    if i < n and _digit(s[i]):
        while i < n and _digit(s[i]):
            i += 1
        if i < n and s[i] == u'.':
            i += 1
            while i < n and _digit(s[i]):
                i += 1
    elif i + 1 < n and s[i] == u'.' and _digit(s[i + 1]):
        i += 1
        while i < n and _digit(s[i]):
            i += 1
    else:
        return False
    if i < n and (s[i] == u'e' or s[i] == u'E'):
        i += 1
        if i < n and (s[i] == u'-' or s[i] == u'+'):
            i += 1
        start = i
        while i < n and _digit(s[i]):
            i += 1
        if i == start:
            return False
    return i == n


cdef bint _is_email(str s):
    # [^@\s]+ @ [^@\s]+ \. [^@\s]+ : one @, a dot inside the domain, no whitespace
    cdef Py_ssize_t n = len(s), i, at = -1, last_dot = -1
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef void *data = PyUnicode_DATA(s)
    cdef Py_UCS4 c
    for i in range(n):
        c = PyUnicode_READ(kind, data, i)
        if c == u'@':
            if at >= 0:
                return False
            at = i
        elif Py_UNICODE_ISSPACE(c):
            return False
        elif c == u'.' and at >= 0 and i > at + 1:
            last_dot = i
    return at > 0 and last_dot > at + 1 and last_dot < n - 1


cdef bint _is_uri(str s):
    # [a-zA-Z] [a-zA-Z0-9+.-]* :// \S+
    cdef Py_ssize_t n = len(s), i = 1
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef void *data = PyUnicode_DATA(s)
    cdef Py_UCS4 c = PyUnicode_READ(kind, data, 0)
    if not ((c >= u'a' and c <= u'z') or (c >= u'A' and c <= u'Z')):
        return False
    while i < n:
        c = PyUnicode_READ(kind, data, i)
        if (c >= u'a' and c <= u'z') or (c >= u'A' and c <= u'Z') or _digit(c) or c == u'+' or c == u'.' or c == u'-':
            i += 1
        else:
            break
    if i + 3 >= n or s[i] != u':' or s[i + 1] != u'/' or s[i + 2] != u'/':
        return False
    for i in range(i + 3, n):
        if Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)):
            return False
    return True


cdef int _format(str s):
    cdef Py_ssize_t n = len(s)
    if n == 0:
        return F_TEXT
    cdef Py_UCS4 first = s[0], last = s[n - 1]
    if _digit(first):
        if n == 10 and _starts_with_date(s):
            return F_DATE
        if n >= 16 and _is_datetime(s):
            return F_DATETIME
        if _is_uuid(s):
            return F_UUID
        if _is_numeric(s):
            return F_NUMERIC
        return F_TEXT
    if n == 36 and _is_uuid(s):
        return F_UUID
    if (first == u'-' or first == u'+' or first == u'.') and _is_numeric(s):
        return F_NUMERIC
    if PyUnicode_FindChar(s, u'@', 0, n, 1) >= 0 and _is_email(s):  # memchr before the scan
        return F_EMAIL
    if _is_uri(s):
        return F_URI
    if (first == u'{' or first == u'[') and (last == u'}' or last == u']'):
        try:
            orjson.loads(s)
            return F_JSON
        except orjson.JSONDecodeError:
            pass
    return F_TEXT


cdef int _key_class(str key):
    cdef Py_ssize_t n = len(key), i
    if n == 0:
        return 0
    i = 1 if key[0] == u'-' else 0
    if i < n and _digits(key, i, n - i):
        return K_INT
    if n == 36 and _is_uuid(key):
        return K_UUID
    if _starts_with_date(key):
        return K_DATE
    if n >= 12:
        for i in range(n):
            if not _hex(key[i]):
                break
        else:
            return K_HEX
    if n == 3 and u'A' <= key[0] <= u'Z' and u'A' <= key[1] <= u'Z' and u'A' <= key[2] <= u'Z':
        return K_CURRENCY
    if _is_code(key):
        return K_CODE
    return 0


cdef bint _is_code(str key):
    """An identifier with letters around its digits: SKU-12345, ord_2026_0042, A17-B: 2 to 64
    characters of letters, digits and _ - . :, holding a run of two digits or more (line1, utf8 and
    md5 stay field names)."""
    cdef Py_ssize_t n = len(key), i, run = 0, longest = 0
    cdef Py_UCS4 c
    if n < 2 or n > 64:
        return False
    for i in range(n):
        c = key[i]
        if _digit(c):
            run += 1
            if run > longest:
                longest = run
            continue
        run = 0
        if not ((u'a' <= c <= u'z') or (u'A' <= c <= u'Z') or c == u'_' or c == u'-' or c == u'.' or c == u':'):
            return False
    return longest >= 2


cdef int _map_class(dict obj):
    """The one identifier class all keys share, or K_RECORD."""
    cdef int found = 0, cls
    for key in obj:
        cls = _key_class(<str>key)
        if cls == 0 or (found != 0 and cls != found):
            return K_RECORD
        found = cls
    return found


def string_format(str s):
    """The format of one string (see the module's docstring)."""
    return FORMATS[_bit_index(_format(s))]


def key_class(str key):
    """The identifier class of one object key, or None."""
    cdef int cls = _key_class(key)
    return KEY_CLASSES[_bit_index(cls)] if cls else None


cdef inline int _bit_index(unsigned int bit) noexcept:
    cdef int i = 0
    while bit > 1:
        bit >>= 1
        i += 1
    return i


# --- the walk ----------------------------------------------------------------------------------
#
# A worker observes thousands of documents of a few APIs, so the paths persist from one document to
# the next in a trie: a path's name, its tag tuples and its buffers are made once, and each
# document only resets the paths it touches (`stamp`). A document's shape is looked up by a key of
# its set of tags, which repeats from document to document, before the tags are sorted and hashed.

cdef struct _Buffer:
    double *data
    Py_ssize_t n, size


cdef void *_grow(void *data, Py_ssize_t *size, size_t item) except NULL:
    """Room for twice as many items (and a few more) in a column of `item`-byte values."""
    cdef void *grown = PyMem_Realloc(data, (size[0] * 2 + 16) * item)
    if grown is NULL:
        raise MemoryError()
    size[0] = size[0] * 2 + 16
    return grown


cdef inline int _push(_Buffer *buffer, double value) except -1:
    if buffer.n == buffer.size:
        buffer.data = <double *>_grow(buffer.data, &buffer.size, sizeof(double))
    buffer.data[buffer.n] = value
    buffer.n += 1
    return 0


cdef struct _Ints:
    long long *data
    Py_ssize_t n, size


cdef inline int _put(_Ints *column, long long value) except -1:
    if column.n == column.size:
        column.data = <long long *>_grow(column.data, &column.size, sizeof(long long))
    column.data[column.n] = value
    column.n += 1
    return 0


cdef inline unsigned int _crc32_text(str value):
    cdef const char *data
    cdef Py_ssize_t size
    data = PyUnicode_AsUTF8AndSize(value, &size)  # orjson only yields valid UTF-8
    return _crc32(<const unsigned char *>data, size)


cdef inline unsigned int _crc32_decimal(long long v) noexcept:
    # the hash of an integer's decimal text, so that 5 and "5" are one value
    cdef char text[24]
    cdef int i = 24
    cdef unsigned long long u = (<unsigned long long>(-(v + 1)) + 1) if v < 0 else <unsigned long long>v
    while True:
        i -= 1
        text[i] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if v < 0:
        i -= 1
        text[i] = 45  # '-'
    return _crc32(<const unsigned char *>&text[i], 24 - i)


cdef unsigned int _CRC_TRUE = _crc32_text("true")
cdef unsigned int _CRC_FALSE = _crc32_text("false")


ctypedef fused _number:
    double
    long long


cdef void _select(_number *a, Py_ssize_t n, Py_ssize_t k) noexcept:
    """Quickselect: a[k] becomes what it would be sorted, no smaller value after it, no larger before."""
    cdef Py_ssize_t lo = 0, hi = n - 1, i, j
    cdef _number pivot, swap
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                swap = a[i]; a[i] = a[j]; a[j] = swap
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break


cdef double _median(_Buffer *buffer):
    """The document's one value at a path: the lower median of what it holds there."""
    cdef Py_ssize_t k = (buffer.n - 1) // 2
    _select(buffer.data, buffer.n, k)
    return buffer.data[k]


cdef inline unsigned long long _mix(unsigned long long x) noexcept:
    # splitmix64's finaliser: summed over a document's paths, a key for its set of tags
    x ^= x >> 30
    x *= 0xBF58476D1CE4E5B9ULL
    x ^= x >> 27
    x *= 0x94D049BB133111EBULL
    return x ^ (x >> 31)


cdef double _as_double(object number):
    try:
        return float(number)
    except OverflowError:  # an integer beyond the floats: the largest float of its sign
        return 1.7976931348623157e308 if number > 0 else -1.7976931348623157e308


@cython.final  # direct calls, not through a method table: the walk calls these per node
cdef class _Path:
    """A path of the trie, and what the current document holds there."""
    cdef str name
    cdef dict children, tag_cache
    cdef list order_keys, order_paths  # the last record's keys here, in order, and their paths
    cdef _Path items, mapped
    cdef long long stamp
    cdef unsigned int types, formats, classes, tested
    cdef _Buffer numbers, lengths, arrays
    cdef long long owner, number  # the Observations that numbered this path, and its number there
    cdef unsigned long long serial  # unique in the trie: what the shape key is made of
    # The document's distinct values here (strings up to MAX_ENUM_VALUE characters, ints as their
    # decimal text, bools as true/false), by their crc32: the hashes in the order first seen; the
    # first DOC_VALUE_CAP + 1 values themselves, borrowed from the document, which outlives the walk;
    # and, from the second distinct value on (most paths hold one value per document), an
    # open-addressing table of slots (the document's stamp, 1 bit once a string held the value, the
    # hash) that belong to the document that stamped them, so that no document clears the table.
    cdef _Ints distinct
    cdef PyObject *firsts[C_DOC_VALUE_CAP + 1]
    cdef bint first_string
    cdef unsigned long long *slot
    cdef Py_ssize_t slots

    def __dealloc__(self):
        PyMem_Free(self.numbers.data)
        PyMem_Free(self.lengths.data)
        PyMem_Free(self.arrays.data)
        PyMem_Free(self.slot)
        PyMem_Free(self.distinct.data)

    cdef int first_time(self, unsigned int h, object value, bint string) except -1:
        """NEW_VALUE if the document holds this value here for the first time; NEW_STRING if only
        as a string (5, then "5": one value, but a string whose format is to be tested); else 0."""
        cdef Py_ssize_t i, mask, n = self.distinct.n
        cdef unsigned long long live = (<unsigned long long>self.stamp) << 33, slot
        if n == 1 and <unsigned int>self.distinct.data[0] == h:
            if string and not self.first_string:
                self.first_string = True
                return NEW_STRING
            return 0
        if n == 0:
            self.first_string = string
        else:
            if (n + 1) * 2 > self.slots:
                self.rehash()
            if n == 1:  # a second value: the table starts with the first
                self.place(live | (<unsigned long long>self.first_string << 32) | <unsigned int>self.distinct.data[0])
            mask = self.slots - 1
            i = (h ^ (h >> 16)) & mask
            while True:
                slot = self.slot[i]
                if slot >> 33 != <unsigned long long>self.stamp:
                    break
                if <unsigned int>slot == h:
                    if string and not (slot >> 32) & 1:
                        self.slot[i] = slot | (<unsigned long long>1 << 32)
                        return NEW_STRING
                    return 0
                i = (i + 1) & mask
            self.slot[i] = live | (<unsigned long long>string << 32) | h
        if n <= C_DOC_VALUE_CAP:
            self.firsts[n] = <PyObject *>value
        _put(&self.distinct, h)
        return NEW_VALUE

    cdef inline void place(self, unsigned long long entry) noexcept:
        cdef unsigned int h = <unsigned int>entry
        cdef Py_ssize_t mask = self.slots - 1, i = (h ^ (h >> 16)) & mask
        while self.slot[i] >> 33 == <unsigned long long>self.stamp:
            i = (i + 1) & mask
        self.slot[i] = entry

    cdef int rehash(self) except -1:
        cdef unsigned long long *old = self.slot
        cdef Py_ssize_t old_slots = self.slots, j
        cdef unsigned long long *slots = <unsigned long long *>PyMem_Calloc(old_slots * 2 if old_slots else 16, sizeof(unsigned long long))
        if slots is NULL:
            raise MemoryError()
        self.slot, self.slots = slots, old_slots * 2 if old_slots else 16
        for j in range(old_slots):  # the values of this document are the only live ones
            if old[j] >> 33 == <unsigned long long>self.stamp:
                self.place(old[j])
        PyMem_Free(old)
        return 0

    cdef tuple tags(self):
        """(path, type, format) for what the document holds here, made once per combination."""
        cdef unsigned int key = (self.types << 8) | self.formats
        cdef int i, f
        found = self.tag_cache.get(key)
        if found is None:
            made = []
            for i in range(7):
                if self.types & (1 << i):
                    if (1 << i) == T_STRING:
                        for f in range(8):
                            if self.formats & (1 << f):
                                made.append((self.name, "string", FORMATS[f]))
                    else:
                        made.append((self.name, TYPES[i], ""))
            found = self.tag_cache[key] = tuple(made)
        return <tuple>found


@cython.final
cdef class _Walk:
    cdef int max_depth, deepest
    cdef Py_ssize_t max_array, size
    cdef long long nodes, big_ints, stamp
    cdef list touched
    cdef _Path root
    cdef dict shapes

    def __cinit__(self):
        self.shapes = {}
        self.root = None

    cdef _Path child(self, str name):
        cdef _Path p = _Path.__new__(_Path)
        p.name = name
        p.tag_cache = {}
        self.size += 1
        p.serial = self.size
        return p

    cdef inline int touch(self, _Path p) except -1:
        if p.stamp == self.stamp:
            return 0
        p.stamp = self.stamp
        p.types = p.formats = p.classes = p.tested = 0
        p.numbers.n = p.lengths.n = p.arrays.n = p.distinct.n = 0
        self.touched.append(p)
        return 0

    cdef void start(self, int max_depth, Py_ssize_t max_array):
        # A hostile stream of ever-new keys must not grow the trie without bound; a slot holds 31
        # bits of the stamp.
        if self.root is None or self.size > _MAX_TRIE or len(self.shapes) > _MAX_SHAPES or self.stamp >= _MAX_STAMP:
            self.size = self.stamp = 0
            self.root = self.child("$")
            self.shapes = {}
        self.max_depth = max_depth
        self.max_array = max_array
        self.deepest = 0
        self.nodes = self.big_ints = 0
        self.stamp += 1
        self.touched = []

    cdef int visit(self, _Path p, object node, int depth) except -1:
        self.nodes += 1
        if depth > self.deepest:
            self.deepest = depth
            if depth > self.max_depth:
                raise LimitExceeded("too_deep", f"nesting deeper than {self.max_depth}")
        self.touch(p)
        cdef type kind = type(node)
        if kind is str:
            self.string(p, <str>node)
        elif kind is dict:
            p.types |= T_OBJECT
            self.object(p, <dict>node, depth)
        elif kind is list:
            p.types |= T_ARRAY
            self.array(p, <list>node, depth)
        elif kind is int:
            p.types |= T_INT
            self.integer(p, node)
        elif kind is float:
            p.types |= T_FLOAT
            _push(&p.numbers, <double>node)
        elif kind is bool:
            p.types |= T_BOOL
            p.first_time(_CRC_TRUE if node is True else _CRC_FALSE, node, False)
        else:
            p.types |= T_NULL
        return 0

    cdef inline int string(self, _Path p, str s) except -1:
        cdef Py_ssize_t n = len(s)
        p.types |= T_STRING
        _push(&p.lengths, <double>n)
        if n <= C_MAX_ENUM_VALUE and not p.first_time(_crc32_text(s), s, True):
            return 0  # a repeated value: its format is known
        if p.tested < C_FORMAT_SAMPLE:
            p.tested += 1
            p.formats |= _format(s)
        return 0

    cdef inline int integer(self, _Path p, object value) except -1:
        cdef int overflow = 0
        cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow or v > SAFE_INT or v < -SAFE_INT:
            self.big_ints += 1
        _push(&p.numbers, _as_double(value) if overflow else <double>v)
        p.first_time(_crc32_text(str(value)) if overflow else _crc32_decimal(v), value, False)
        return 0

    cdef int object(self, _Path p, dict obj, int depth) except -1:
        cdef int cls = _map_class(obj) if obj else K_RECORD
        cdef Py_ssize_t pos = 0
        cdef PyObject *key
        cdef PyObject *value
        cdef PyObject *found
        cdef _Path child
        p.classes |= cls
        if cls != K_RECORD:
            if p.mapped is None:
                p.mapped = self.child(p.name + ".{*}")
            for item in obj.values():
                self.visit(p.mapped, item, depth + 1)
            return 0
        if p.children is None:
            p.children = {}
            p.order_keys = []
            p.order_paths = []
        cdef Py_ssize_t i = 0, known = len(p.order_keys)
        while PyDict_Next(obj, &pos, &key, &value):
            # Records of one API repeat their keys in one order, and orjson hands out the same key
            # objects: compare with the previous record's key at this place before looking up.
            if i < known and PyList_GET_ITEM(p.order_keys, i) == key:
                child = <_Path>PyList_GET_ITEM(p.order_paths, i)
            else:
                found = PyDict_GetItem(p.children, <object>key)
                if found is NULL:
                    child = self.child(p.name + "." + <str>key)
                    p.children[<object>key] = child
                else:
                    child = <_Path>found
                if i < known:
                    p.order_keys[i] = <object>key
                    p.order_paths[i] = child
                else:
                    p.order_keys.append(<object>key)
                    p.order_paths.append(child)
                    known += 1
            self.visit(child, <object>value, depth + 1)
            i += 1
        return 0

    cdef int array(self, _Path p, list items, int depth) except -1:
        cdef Py_ssize_t n = len(items)
        if n > self.max_array:
            raise LimitExceeded("too_large", f"an array of {n} items, over the limit of {self.max_array}")
        _push(&p.arrays, <double>n)
        if n == 0:
            return 0
        if p.items is None:
            p.items = self.child(p.name + "[]")
        for item in items:
            self.visit(p.items, item, depth + 1)
        return 0


cdef Py_ssize_t _MAX_TRIE = 200_000
cdef Py_ssize_t _MAX_SHAPES = 20_000
cdef long long _MAX_STAMP = (1 << 31) - 1
cdef _Walk _WALK = _Walk()


cdef object _int_array(_Ints *column):
    return np.frombuffer(PyBytes_FromStringAndSize(<char *>column.data, column.n * sizeof(long long)), dtype=np.int64)


cdef object _float_array(_Buffer *column):
    return np.frombuffer(PyBytes_FromStringAndSize(<char *>column.data, column.n * sizeof(double)), dtype=np.float64)


cdef long long _OBSERVATIONS = 0  # numbers each Observations, so that a path knows its number in it

# A tag's format, a key's class and a type are numbers in the columns: these are their names.
TAG_FORMATS = FORMATS + ("",)


@cython.final
cdef class Observations:
    """Documents observed one after another, gathered as long tables (see `columns`).

    Rows are documents in the order they were added (from 0); paths are numbers into `paths`, value
    texts numbers into `texts`. Everything but shapes is a C column: a batch of documents crosses to
    the parent as a few arrays, not as a Python object per value.
    """
    cdef _Ints tag_row, tag_path, tag_type, tag_format, key_row, key_path, key_class
    cdef _Ints value_row, value_path, value_text, hash_row, hash_path, hash_value
    cdef _Ints sample_row[3]
    cdef _Ints sample_path[3]
    cdef _Buffer sample_value[3]
    cdef list texts, shapes, paths
    cdef dict text_numbers
    cdef long long token
    cdef readonly Py_ssize_t documents

    def __cinit__(self):
        global _OBSERVATIONS
        _OBSERVATIONS += 1
        self.token = _OBSERVATIONS
        self.texts, self.shapes, self.paths = [None], [], []  # text 0: None, a crowded path
        self.text_numbers = {}

    def __dealloc__(self):
        cdef int i
        PyMem_Free(self.tag_row.data)
        PyMem_Free(self.tag_path.data)
        PyMem_Free(self.tag_type.data)
        PyMem_Free(self.tag_format.data)
        PyMem_Free(self.key_row.data)
        PyMem_Free(self.key_path.data)
        PyMem_Free(self.key_class.data)
        PyMem_Free(self.value_row.data)
        PyMem_Free(self.value_path.data)
        PyMem_Free(self.value_text.data)
        PyMem_Free(self.hash_row.data)
        PyMem_Free(self.hash_path.data)
        PyMem_Free(self.hash_value.data)
        for i in range(3):
            PyMem_Free(self.sample_row[i].data)
            PyMem_Free(self.sample_path[i].data)
            PyMem_Free(self.sample_value[i].data)

    cdef long long path_number(self, _Path p):
        if p.owner != self.token:
            p.owner = self.token
            p.number = len(self.paths)
            self.paths.append(p.name)
        return p.number

    def add(self, value, int max_depth, Py_ssize_t max_array):
        """Observe one parsed document; its descriptors. LimitExceeded leaves nothing of it."""
        cdef _Walk walk = _WALK
        cdef _Path p
        cdef int i, f
        cdef long long row = self.documents, path
        cdef _Buffer *samples[3]
        cdef unsigned long long shape_key = 0
        walk.start(max_depth, max_array)
        walk.visit(walk.root, value, 0)
        for p in walk.touched:
            path = self.path_number(p)
            shape_key += _mix((p.serial << 16) | (p.types << 8) | p.formats)  # the set of tags, in any order
            for i in range(7):
                if p.types & (1 << i):
                    if (1 << i) == T_STRING:
                        for f in range(8):
                            if p.formats & (1 << f):
                                self.tag(row, path, i, f)
                    else:
                        self.tag(row, path, i, 8)
            for i in range(7):
                if p.classes & (1 << i):
                    _put(&self.key_row, row)
                    _put(&self.key_path, path)
                    _put(&self.key_class, i)
            self.values(p, row, path)
            samples[0], samples[1], samples[2] = &p.numbers, &p.lengths, &p.arrays
            for i in range(3):
                if samples[i].n:
                    _put(&self.sample_row[i], row)
                    _put(&self.sample_path[i], path)
                    _push(&self.sample_value[i], _median(samples[i]))
        shape = walk.shapes.get(shape_key)
        if shape is None:
            tags = []
            for p in walk.touched:
                tags.extend(p.tags())
            tags.sort()
            shape = walk.shapes[shape_key] = hashlib.blake2b(repr(tags).encode(), digest_size=8).hexdigest()
        self.shapes.append(shape)
        self.documents += 1
        return {"node_count": walk.nodes, "depth": walk.deepest, "big_ints": walk.big_ints}

    cdef inline int tag(self, long long row, long long path, int kind, int form) except -1:
        _put(&self.tag_row, row)
        _put(&self.tag_path, path)
        _put(&self.tag_type, kind)
        _put(&self.tag_format, form)
        return 0

    cdef int values(self, _Path p, long long row, long long path) except -1:
        """The path's distinct enum-usable values as text (None past DOC_VALUE_CAP), and their KMV
        hashes: crc32 is stable across processes and machines, unlike hash(); 32 bits are plenty.
        """
        cdef Py_ssize_t n = p.distinct.n, start = self.hash_value.n, i
        cdef object first
        if n == 0:
            return 0
        for i in range(n):
            _put(&self.hash_value, p.distinct.data[i])
        if n > C_KMV_K:  # the KMV_K smallest first, in any order
            _select(&self.hash_value.data[start], n, C_KMV_K - 1)
            self.hash_value.n = start + C_KMV_K
        for i in range(self.hash_value.n - start):
            _put(&self.hash_row, row)
            _put(&self.hash_path, path)
        if n > C_DOC_VALUE_CAP:  # more distinct values in this one document than an enum can have
            self.text(row, path, None)
            return 0
        for i in range(n):
            first = <object>p.firsts[i]
            if type(first) is str:
                self.text(row, path, first)
            elif first is True:
                self.text(row, path, "true")
            elif first is False:
                self.text(row, path, "false")
            else:
                self.text(row, path, str(first))
        return 0

    cdef int text(self, long long row, long long path, object text) except -1:
        # Most values repeat from document to document (that is what an enum is): each text is
        # kept once per batch, and rows refer to it by number.
        cdef PyObject *found
        cdef Py_ssize_t number = 0
        if text is not None:
            found = PyDict_GetItem(self.text_numbers, text)
            if found is NULL:
                number = len(self.texts)
                self.texts.append(text)
                self.text_numbers[text] = number
            else:
                number = <object>found
        _put(&self.value_row, row)
        _put(&self.value_path, path)
        _put(&self.value_text, number)
        return 0

    def columns(self):
        """{table: {column: numpy array or list}}; "paths": the path of each path number, "texts":
        the text of each value number.

        tags (row, path, type, format), keys (row, path, class): type, format and class are
        numbers into TYPES, TAG_FORMATS and KEY_CLASSES. values (row, path, value): value numbers
        into texts, 0 (None) marking a crowded path; hashes (row, path, value); numbers, lengths,
        arrays (row, path, value) with one float per document and path; shapes (row, shape).
        """
        out = {
            "tags": {"row": _int_array(&self.tag_row), "path": _int_array(&self.tag_path),
                     "type": _int_array(&self.tag_type), "format": _int_array(&self.tag_format)},
            "keys": {"row": _int_array(&self.key_row), "path": _int_array(&self.key_path), "class": _int_array(&self.key_class)},
            "values": {"row": _int_array(&self.value_row), "path": _int_array(&self.value_path), "value": _int_array(&self.value_text)},
            "hashes": {"row": _int_array(&self.hash_row), "path": _int_array(&self.hash_path), "value": _int_array(&self.hash_value)},
            "shapes": {"row": np.arange(self.documents, dtype=np.int64), "shape": list(self.shapes)},
            "paths": list(self.paths),
            "texts": list(self.texts),
        }
        for i, name in enumerate(SAMPLES):
            out[name] = {"row": _int_array(&self.sample_row[i]), "path": _int_array(&self.sample_path[i]),
                         "value": _float_array(&self.sample_value[i])}
        return out


def observe(value, int max_depth, Py_ssize_t max_array):
    """One document's observation, readable: tags and keys as (path, ...) rows; values and hashes
    as {path: [...]} (values: None when crowded); numbers, lengths and arrays as {path: median};
    its shape, node count, depth and big ints. LimitExceeded past a limit.
    """
    cdef Observations one = Observations()
    seen = one.add(value, max_depth, max_array)
    columns = one.columns()
    paths, texts = columns["paths"], columns["texts"]
    columns["values"]["value"] = [texts[v] for v in columns["values"]["value"]]
    seen["tags"] = sorted((paths[p], TYPES[t], TAG_FORMATS[f]) for p, t, f in zip(*(columns["tags"][c] for c in ("path", "type", "format"))))
    seen["keys"] = sorted((paths[p], KEY_CLASSES[k]) for p, k in zip(columns["keys"]["path"], columns["keys"]["class"]))
    for table in ("values", "hashes"):
        by_path = seen[table] = {}
        for p, v in zip(columns[table]["path"], columns[table]["value"]):
            if v is None:
                by_path[paths[p]] = None
            else:
                by_path.setdefault(paths[p], []).append(v if table == "values" else int(v))
    for table in ("numbers", "lengths", "arrays"):
        seen[table] = {paths[p]: float(v) for p, v in zip(columns[table]["path"], columns[table]["value"])}
    seen["shape"] = columns["shapes"]["shape"][0]
    return seen
