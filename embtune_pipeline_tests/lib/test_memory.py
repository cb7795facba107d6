"""lib.memory: keep_freed_memory takes large blocks from the heap, measured by glibc itself."""

import subprocess
import sys
import textwrap

import pytest

# a fresh interpreter (the test process's malloc has already raised its own threshold): allocate a 16 MiB block
# and report how many bytes glibc holds in mmapped blocks (mallinfo2's hblkhd) while it is live
PROBE = textwrap.dedent("""
    import ctypes, sys
    from embtune_pipeline.lib.memory import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(16 * 1024 ** 2)
    print(kept, libc.mallinfo2().hblkhd - before)
    libc.free(block)
""")


def _mmapped_bytes_of_a_16_mib_block(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    kept, mmapped = out.stdout.split()
    return kept, int(mmapped)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_freed_memory_serves_large_blocks_from_the_heap():
    assert _mmapped_bytes_of_a_16_mib_block("default") == ("None", 16 * 1024 ** 2 + 4096)  # a fresh mmap
    assert _mmapped_bytes_of_a_16_mib_block("keep") == ("True", 0)  # the heap's
