# cython: language_level=3
# The walker's CRC-32 (slicing-by-8, taken from drift/fingerprint/walk.pyx when run.py builds this)
# against zlib's crc32, called from C on the same strings.


cdef extern from "zlib.h":
    unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int len) nogil

# WALKER_CRC: run.py puts the walker's own CRC-32 code here, cut from drift/fingerprint/walk.pyx


def run(list values, int repeat, bint use_zlib):
    cdef Py_ssize_t i, n = len(values), r
    cdef unsigned int acc = 0
    cdef bytes b
    cdef const unsigned char *p
    cdef Py_ssize_t size
    encoded = [v.encode() for v in values]
    for r in range(repeat):
        for i in range(n):
            b = encoded[i]
            p = b
            size = len(b)
            if use_zlib:
                acc ^= <unsigned int>crc32(0, p, <unsigned int>size)
            else:
                acc ^= _crc32(p, size)
    return acc
