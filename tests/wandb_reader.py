"""Read an offline W&B run file without network: a log of 32 KiB blocks of protobuf records."""
import struct
import zlib

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7


def read_records(path):
    data = open(path, "rb").read()[7:]  # file header: ':W&B' + 3 bytes
    pos, pending = 0, b""
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
