"""Read an offline W&B run file without network: a log of 32 KiB blocks of protobuf records."""
import struct
import time

from google.protobuf.message import DecodeError
from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7


def read_records(path):
    data = open(path, "rb").read()
    # The file header (':W&B' + 3 bytes) is part of the first 32 KiB block: block boundaries
    # count from the file's first byte. (Counting them after the header misread records that
    # cross a boundary, and the run's later records, its exit among them, were lost.)
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - (pos % BLOCK)
        if left < HEADER:  # block trailer padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind in (1, 2):
            pending = chunk
        else:
            pending += chunk
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(pending)
            yield rec
            pending = b""


def finished_records(path, timeout: float = 60.0) -> list:
    """All records of a run, once its ``exit`` record is on disk.

    ``wandb.finish()`` can return before the W&B service has written the run's last
    records in offline mode; they follow within moments.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = list(read_records(path))
        except DecodeError:  # caught the writer mid-record
            records = []
        if any(r.HasField("exit") for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)
