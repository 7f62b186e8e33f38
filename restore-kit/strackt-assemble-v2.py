#!/usr/bin/python3
# strackt-assemble-v2: turns a version-2 strackt snapshot (docs/FORMAT.md, "Version 2") into what the
# version-1 tools take: a tar archive and a version-1 manifest, which strackt-extract.py then checks
# and unpacks. It reads a local copy of the team's folder of the bucket (its packs/ and the
# snapshot's manifest), with the team secret key alone: Python 3, PyNaCl and the zstd command; or,
# with --decryptor, the C tool (strackt-decrypt.c, on libsodium) in place of PyNaCl.
#
#   aws s3 sync s3://BUCKET/PREFIX/TEAM_ID team                # or only the packs the snapshot needs
#   strackt-assemble-v2.py --key-file team.key team ENV_ID/SNAPSHOT_ID out
#   strackt-assemble-v2.py --decryptor ./strackt-decrypt --key-file team.key team ENV_ID/SNAPSHOT_ID out
#   strackt-extract.py --manifest out/manifest.json out/snapshot.tar restored
#
# Every chunk is checked twice: its blob authenticates under its pack's key and its id, and its
# content hashes (keyed) to that id. Exit status 0, or 1 with one line on stderr:
# "strackt-assemble-v2: <kind>: <message>".

import hashlib
import hmac
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))

USAGE = """usage: strackt-assemble-v2.py [--decryptor STRACKT_DECRYPT] --key-file KEYFILE TEAM_DIR ENV_ID/SNAPSHOT_ID OUT_DIR
Writes OUT_DIR/snapshot.tar and OUT_DIR/manifest.json for strackt-extract.py. --decryptor: the C
tool (strackt-decrypt.c, built) opens the manifest, packs and blobs, in place of PyNaCl."""

PACK_MAGIC, TRAILER_MAGIC = b"STRKPACK", b"STRKPEND"
PREAMBLE, TRAILER, ENTRY = 112, 12, 44
HEADERBYTES, ABYTES = 24, 17
TAIL_READ = 65536
MAX_CHUNK = 16 * 1024 * 1024


class Failure(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class NaClCrypto:
    """The manifest, packs and blobs opened with PyNaCl (strackt-decrypt.py's)."""

    def __init__(self, key_file):
        spec = importlib.util.spec_from_file_location("strackt_decrypt", os.path.join(HERE, "strackt-decrypt.py"))
        self.kit = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.kit)
        self.key_file = key_file
        try:
            self.secret = self.kit.read_secret_key(key_file)
        except self.kit.Failure as failure:
            raise Failure(failure.kind, str(failure))
        self.public = self.kit.PrivateKey(self.secret).public_key.encode()
        self.dedup_key = hashlib.blake2b(b"strackt-dedup-key-v1", digest_size=32, key=self.secret).digest()

    def manifest(self, path):
        """The manifest object decrypted (a zstd frame of JSON), or its error's line."""
        decrypted = subprocess.run(
            [sys.executable, os.path.join(HERE, "strackt-decrypt.py"), "--key-file", self.key_file, path],
            capture_output=True,
        )
        if decrypted.returncode != 0:
            raise Failure("bad_manifest", decrypted.stderr.decode(errors="replace").strip())
        return decrypted.stdout

    def open_once(self, key, header_ct, ad):
        """One secretstream message that must be final; None when it does not authenticate."""
        sodium = self.kit.sodium
        if len(header_ct) < HEADERBYTES + ABYTES:
            return None
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header_ct[:HEADERBYTES], key)
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, header_ct[HEADERBYTES:], ad)
        except self.kit.CryptoError:
            return None
        return plain if tag == sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL else None

    def pack_index(self, path):
        """(data key, [(id, offset, length, raw length)]) of one pack, from its first and last bytes."""
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            preamble = f.read(PREAMBLE)
            f.seek(max(0, size - TAIL_READ))
            tail = f.read()
            if len(tail) >= TRAILER and tail[-8:] == TRAILER_MAGIC:
                (n,) = struct.unpack(">I", tail[-TRAILER:-8])
                if len(tail) < n + TRAILER <= size:
                    # An index of more blobs than the first read covers (many small chunks).
                    f.seek(size - n - TRAILER)
                    tail = f.read()
        if preamble[:8] != PACK_MAGIC:
            raise Failure("not_a_pack", f"{path}: not a strackt pack")
        if len(preamble) < PREAMBLE or preamble[8] != 2 or preamble[9] != 1 or any(preamble[10:16]):
            raise Failure("header_altered", f"{path}: unknown version, cipher or flags")
        if preamble[16:32] != self.kit.key_id_of(self.public):
            raise Failure("wrong_key", f"{path}: sealed to team key {self.kit.fingerprint(preamble[16:32])}")
        try:
            data_key = self.kit.sodium.crypto_box_seal_open(preamble[32:PREAMBLE], self.public, self.secret)
        except self.kit.CryptoError:
            raise Failure("header_altered", f"{path}: the sealed data key does not open")
        if len(tail) < TRAILER or tail[-8:] != TRAILER_MAGIC:
            raise Failure("truncated", f"{path}: no trailer")
        (n,) = struct.unpack(">I", tail[-TRAILER:-8])
        if n + TRAILER > len(tail) or size < PREAMBLE + n + TRAILER:
            raise Failure("truncated", f"{path}: shorter than its index says")
        index = self.open_once(data_key, tail[-TRAILER - n : -TRAILER], preamble)
        if index is None:
            raise Failure("header_altered", f"{path}: the index or preamble failed authentication")
        (count,) = struct.unpack(">I", index[:4]) if len(index) >= 4 else (-1,)
        if len(index) != 4 + count * ENTRY:
            raise Failure("corrupt_framing", f"{path}: index of the wrong length")
        entries, expected = [], PREAMBLE
        for k in range(count):
            at = 4 + k * ENTRY
            offset, length, raw = struct.unpack(">III", index[at + 32 : at + ENTRY])
            if offset != expected or not HEADERBYTES + ABYTES + 1 <= length <= HEADERBYTES + ABYTES + 1 + MAX_CHUNK:
                raise Failure("corrupt_framing", f"{path}: index entry {k} out of place")
            entries.append((bytes(index[at : at + 32]), offset, length, raw))
            expected += length
        if expected != size - n - TRAILER:
            raise Failure("corrupt_framing", f"{path}: the index does not cover every blob byte")
        return data_key, entries

    def blob(self, path, data_key, chunk_id, offset, length):
        """The blob's message (its encoding byte, then the payload), once it authenticates."""
        with open(path, "rb") as f:
            f.seek(offset)
            sealed = f.read(length)
        message = self.open_once(data_key, sealed, chunk_id)
        if message is None:
            raise Failure("blob_altered", f"{path}: blob {chunk_id.hex()} failed authentication")
        return message


class ToolCrypto:
    """The same steps through the C tool: PyNaCl is then not needed. A process per blob, so slower."""

    def __init__(self, tool, key_file):
        self.tool, self.key_file = tool, key_file
        self.dedup_key = bytes.fromhex(self.run("--dedup-key").decode().strip())

    def run(self, *args, kind=None):
        done = subprocess.run([self.tool, "--key-file", self.key_file, *args], capture_output=True)
        if done.returncode != 0:
            line = done.stderr.decode(errors="replace").strip()
            if kind:
                raise Failure(kind, line)
            found = line.split(": ", 2)
            raise Failure(found[1], found[2]) if len(found) == 3 else Failure("io_error", line)
        return done.stdout

    def manifest(self, path):
        return self.run(path, kind="bad_manifest")

    def pack_index(self, path):
        entries = []
        for line in self.run("--pack-index", path).decode().splitlines():
            chunk_id, offset, length, raw = line.split()
            entries.append((bytes.fromhex(chunk_id), int(offset), int(length), int(raw)))
        return None, entries

    def blob(self, path, _data_key, chunk_id, offset, length):
        return self.run("--blob", path, str(offset), str(length), chunk_id.hex())


def open_blob(crypto, path, data_key, chunk_id, offset, length, raw):
    message = crypto.blob(path, data_key, chunk_id, offset, length)
    if message[0] == 0:
        plain = message[1:]
    elif message[0] == 1:
        done = subprocess.run(["zstd", "-dcq"], input=message[1:], capture_output=True)
        if done.returncode != 0:
            raise Failure("corrupt_framing", f"{path}: blob {chunk_id.hex()}: corrupt zstd frame")
        plain = done.stdout
    else:
        raise Failure("corrupt_framing", f"{path}: blob {chunk_id.hex()}: unknown encoding {message[0]}")
    if len(plain) != raw or hmac.new(crypto.dedup_key, plain, hashlib.sha256).digest() != chunk_id:
        raise Failure("chunk_mismatch", f"{path}: blob {chunk_id.hex()} holds other content than its id")
    return plain


class FileContent:
    """A file's bytes, read chunk by chunk as tarfile asks for them: a file never sits whole in memory."""

    def __init__(self, entry, where, crypto):
        self.path, self.ids, self.where, self.crypto = entry["path"], iter(entry["chunks"]), where, crypto
        self.chunk, self.pos, self.total, self.sha256 = b"", 0, 0, hashlib.sha256()

    def next_chunk(self):
        hex_id = next(self.ids, None)
        if hex_id is None:
            return False
        copies = self.where.get(bytes.fromhex(hex_id))
        if not copies:
            raise Failure("missing_chunk", f'"{self.path}": chunk {hex_id} is in no pack')
        # Any copy that opens as the chunk will do: another may be damaged, or garbage a server of the
        # team sealed under the chunk's id (any of them holds the public key).
        for k, (path, data_key, offset, length, raw) in enumerate(copies):
            try:
                self.chunk = open_blob(self.crypto, path, data_key, bytes.fromhex(hex_id), offset, length, raw)
                break
            except Failure as failure:
                if failure.kind not in ("blob_altered", "chunk_mismatch", "corrupt_framing") or k == len(copies) - 1:
                    raise
                sys.stderr.write(f"strackt-assemble-v2: skipped: {failure.kind}: {failure}\n")
        self.pos = 0
        return True

    def read(self, n=-1):
        parts, want = [], n if n >= 0 else float("inf")
        while want > 0 and (self.pos < len(self.chunk) or self.next_chunk()):
            part = self.chunk[self.pos : self.pos + min(want, len(self.chunk) - self.pos)]
            self.pos += len(part)
            want -= len(part)
            parts.append(part)
        out = b"".join(parts)
        self.total += len(out)
        self.sha256.update(out)
        return out


def index_packs(team_dir, crypto):
    """Where each chunk lies, every copy. A pack sealed to another (older) team key, damaged or
    unreadable is skipped with a warning: the pool is shared by every environment, and a snapshot
    fails only if it needs one."""
    where = {}
    for folder, _, names in os.walk(os.path.join(team_dir, "packs")):
        for name in sorted(names):
            path = os.path.join(folder, name)
            try:
                data_key, entries = crypto.pack_index(path)
            except OSError as err:
                sys.stderr.write(f"strackt-assemble-v2: skipped: io_error: {path}: {err}\n")
                continue
            except Failure as failure:
                sys.stderr.write(f"strackt-assemble-v2: skipped: {failure.kind}: {failure}\n")
                continue
            for chunk_id, offset, length, raw in entries:
                where.setdefault(chunk_id, []).append((path, data_key, offset, length, raw))
    return where


def open_manifest(path, crypto):
    plain = subprocess.run(["zstd", "-dcq"], input=crypto.manifest(path), capture_output=True)
    try:
        manifest = json.loads(plain.stdout)
    except ValueError:
        raise Failure("bad_manifest", f"{path}: not a zstd-compressed JSON manifest")
    if manifest.get("format") != "strackt-snapshot" or manifest.get("formatVersion") != 2:
        raise Failure("bad_manifest", f"{path} is not a version 2 strackt manifest")
    scheme = manifest.get("chunking", {}).get("id")
    if scheme != "hmac-sha256":
        raise Failure("bad_manifest", f"{path}: chunk ids of scheme {scheme!r}, not hmac-sha256")
    return manifest


def assemble(crypto, team_dir, snapshot, out_dir):
    manifest = open_manifest(os.path.join(team_dir, snapshot, "manifest.json.strackt"), crypto)
    where = index_packs(team_dir, crypto)
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    archive = os.path.join(out_dir, "snapshot.tar")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in manifest["entries"]:
            info = tarfile.TarInfo(entry["path"])
            info.mode, info.uid, info.gid, info.mtime = entry["mode"], entry["uid"], entry["gid"], entry["mtime"]
            v1 = {k: v for k, v in entry.items() if k != "chunks"}
            content = None
            if entry["type"] == "file":
                content = FileContent(entry, where, crypto)
                info.size = entry["size"]
            elif entry["type"] == "directory":
                info.type = tarfile.DIRTYPE
            elif entry["type"] == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry["target"]
            else:
                info.type, info.linkname = tarfile.LNKTYPE, entry["target"]
            try:
                tar.addfile(info, content)
            except OSError as err:
                if content is not None and content.total < entry["size"]:
                    raise Failure("chunk_mismatch", f'"{entry["path"]}": its chunks add up to less than its size')
                raise Failure("io_error", f"writing {archive}: {err}")
            if content is not None:
                # tarfile stops at info.size: a chunk list that adds up to more fails here.
                if content.read(1) or content.total != entry["size"]:
                    raise Failure("chunk_mismatch", f'"{entry["path"]}": its chunks add up to another size')
                v1["sha256"] = content.sha256.hexdigest()
            entries.append(v1)
    v1_manifest = {k: v for k, v in manifest.items() if k != "chunking"}
    v1_manifest.update(formatVersion=1, entries=entries, data={"object": "snapshot.tar", "tarBytes": os.path.getsize(archive)})
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(v1_manifest, f)


def main(argv):
    decryptor = None
    if len(argv) == 7 and argv[0] == "--decryptor":
        decryptor, argv = argv[1], argv[2:]
    if len(argv) != 5 or argv[0] != "--key-file":
        sys.stderr.write(USAGE + "\n")
        return 2
    try:
        try:
            crypto = ToolCrypto(decryptor, argv[1]) if decryptor else NaClCrypto(argv[1])
            assemble(crypto, *argv[2:])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise Failure("bad_manifest", f"the manifest lacks or misstates a field: {err!r}")
        except OSError as err:
            raise Failure("io_error", str(err))
    except Failure as failure:
        sys.stderr.write(f"strackt-assemble-v2: {failure.kind}: {failure}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
