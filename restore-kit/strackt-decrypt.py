#!/usr/bin/python3
# strackt-decrypt: decrypts a strackt snapshot (docs/FORMAT.md, version 1) with the team secret key.
# It imports nothing of strackt, only Python's standard library and PyNaCl (Debian: python3-nacl),
# so a customer can read their backups without any strackt software. See README.md next to it.
#
#   strackt-decrypt.py --key-file team.key data.tar.zst.strackt | zstd -d | tar -x --numeric-owner
#   strackt-decrypt.py --fingerprint --key-file team.key
#
# Exit status 0, or 1 with one line on stderr: "strackt-decrypt: <kind>: <message>". After a failure
# the output holds only chunks that authenticated, but it is incomplete: discard all of it.

import base64
import hashlib
import os
import struct
import sys

USAGE = """usage: strackt-decrypt.py --key-file KEYFILE [INPUT]
       strackt-decrypt.py --fingerprint --key-file KEYFILE
Decrypts a strackt snapshot from INPUT (default: standard input) to standard output."""

MAGIC = b"STRKSNAP"
HEADER_BYTES = 136
MAX_CHUNK_SIZE = 16 * 1024 * 1024
KEY_ID_CONTEXT = b"strackt-team-key-id-v1"
KEY_FILE_MAX = 4096
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# base32 of 32 key bytes and 4 checksum bytes, unpadded
KEY_DIGITS = 58
WHITESPACE = " \t\n\r\v\f"


class Failure(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


try:
    import nacl.bindings as sodium
    from nacl.exceptions import CryptoError
    from nacl.public import PrivateKey
except ImportError as err:
    sys.stderr.write(f"strackt-decrypt: io_error: PyNaCl is missing (Debian: python3-nacl): {err}\n")
    sys.exit(1)

ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def read_secret_key(path):
    try:
        with open(path, "rb") as f:
            raw = f.read(KEY_FILE_MAX + 1)
    except OSError as err:
        raise Failure("bad_key", f"cannot read key file {path}: {err.strerror}")
    if len(raw) > KEY_FILE_MAX:
        raise Failure("bad_key", f"key file {path} is too large to hold a strackt team key")
    try:
        text = raw.decode("ascii").strip(WHITESPACE).upper()
    except UnicodeDecodeError:
        raise Failure("bad_key", "not a strackt team key: it holds non-ASCII characters")
    if not text.startswith("STK1"):
        raise Failure("bad_key", "not a strackt team key: it must start with STK1-")
    digits = "".join(ch for ch in text[4:] if ch not in WHITESPACE + "-")
    bad = next((ch for ch in digits if ch not in BASE32), None)
    if bad is not None:
        raise Failure("bad_key", f"not a strackt team key: unexpected character {bad!r}")
    if len(digits) != KEY_DIGITS:
        raise Failure("bad_key", "not a strackt team key: wrong length (a character missing or extra?)")
    decoded = base64.b32decode(digits + "=" * (-len(digits) % 8))
    secret, check = decoded[:32], decoded[32:]
    if hashlib.sha256(secret).digest()[:4] != check:
        raise Failure("bad_key", "the team key has a typo: its checksum does not match")
    return secret


def key_id_of(public_key):
    return hashlib.blake2b(KEY_ID_CONTEXT + public_key, digest_size=16).digest()


def fingerprint(key_id):
    text = key_id.hex()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def read_exact(stream, n):
    """Up to n bytes: fewer only at the end of the input."""
    parts, got = [], 0
    while got < n:
        try:
            part = stream.read(n - got)
        except OSError as err:
            raise Failure("io_error", f"reading the input: {err.strerror}")
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def write_all(data):
    # Straight to the file descriptor: no Python buffer left to flush (and fail) at exit.
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(1, view) :]
        except OSError as err:
            raise Failure("io_error", f"writing the output: {err.strerror}")


def open_header(header, secret, public):
    if not MAGIC.startswith(header[:8]):
        raise Failure("not_a_snapshot", "bad magic: this is not a strackt snapshot")
    if len(header) < HEADER_BYTES:
        raise Failure("truncated", f"the input ends inside the {HEADER_BYTES}-byte header")
    if header[8] != 1:
        raise Failure("unsupported_version", f"format version {header[8]} (this tool reads version 1)")
    if header[9] != 1 or header[10] not in (0, 1) or header[11] != 0:
        raise Failure("header_altered", "unknown cipher, compression or flags in the header")
    (chunk_size,) = struct.unpack(">I", header[12:16])
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise Failure("header_altered", f"chunk size {chunk_size} out of range in the header")
    # Checked before any decryption, so a wrong key is never mistaken for tampering.
    if header[16:32] != key_id_of(public):
        raise Failure(
            "wrong_key",
            f"the snapshot was sealed to team key {fingerprint(header[16:32])}; "
            f"the key file holds {fingerprint(key_id_of(public))}",
        )
    try:
        data_key = sodium.crypto_box_seal_open(header[32:112], public, secret)
    except CryptoError:
        raise Failure("header_altered", "the sealed data key does not open")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header[112:136], data_key)
    return state, chunk_size


def decrypt(stream, secret, public):
    header = read_exact(stream, HEADER_BYTES)
    state, chunk_size = open_header(header, secret, public)
    limit = chunk_size + ABYTES
    index = 0
    while True:
        prefix = read_exact(stream, 4)
        if len(prefix) < 4:
            where = f"after chunk {index - 1}" if index else "after the header"
            raise Failure("truncated", f"the input ends {where}, without a final chunk")
        (n,) = struct.unpack(">I", prefix)
        if not ABYTES <= n <= limit:
            raise Failure("corrupt_framing", f"chunk {index} claims {n} bytes, not {ABYTES} to {limit}")
        frame = read_exact(stream, n)
        if len(frame) < n:
            raise Failure("truncated", f"the input ends inside chunk {index}")
        try:
            # The header rides as the first chunk's additional data: this is what authenticates it.
            ad = header if index == 0 else None
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, frame, ad)
        except CryptoError:
            if index == 0:
                raise Failure("header_altered", "the header or the first chunk failed authentication")
            raise Failure(
                "chunk_altered", f"chunk {index} failed authentication: altered, dropped or reordered"
            )
        if tag == TAG_FINAL:
            if read_exact(stream, 1):
                raise Failure("trailing_data", "bytes follow the final chunk")
            write_all(plain)
            return
        if tag != TAG_MESSAGE:
            raise Failure("chunk_altered", f"chunk {index} has an unknown tag {tag}")
        write_all(plain)
        index += 1


def parse_args(argv):
    key_file, show_fingerprint, inputs = None, False, []
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        elif arg == "--fingerprint":
            show_fingerprint = True
        elif arg == "--key-file":
            key_file = next(args, None)
            if key_file is None:
                raise Failure("usage", "--key-file needs a file name")
        elif arg.startswith("--key-file="):
            key_file = arg[len("--key-file=") :]
        elif arg == "--":
            inputs.extend(args)
        elif arg.startswith("-") and arg != "-":
            raise Failure("usage", f"unknown option {arg} (see --help)")
        else:
            inputs.append(arg)
    if not key_file:
        raise Failure("usage", "--key-file KEYFILE is required (see --help)")
    if len(inputs) > (0 if show_fingerprint else 1):
        raise Failure("usage", "too many arguments (see --help)")
    return key_file, show_fingerprint, inputs[0] if inputs else "-"


def main(argv):
    key_file, show_fingerprint, source = parse_args(argv)
    secret = read_secret_key(key_file)
    public = PrivateKey(secret).public_key.encode()
    if show_fingerprint:
        write_all(f"{fingerprint(key_id_of(public))}\n".encode())
        return
    if source == "-":
        decrypt(sys.stdin.buffer, secret, public)
        return
    try:
        stream = open(source, "rb")
    except OSError as err:
        raise Failure("io_error", f"cannot open {source}: {err.strerror}")
    with stream:
        decrypt(stream, secret, public)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Failure as failure:
        sys.stderr.write(f"strackt-decrypt: {failure.kind}: {failure}\n")
        sys.exit(1)
