#!/usr/bin/python3
# strackt-extract: unpacks a decrypted, decompressed strackt snapshot archive (a tar) into a new folder,
# but only after checking all of it: every entry against the snapshot's manifest (path, type, mode,
# size, SHA-256, link target, in order) and against the rules strackt's own restore applies (no
# absolute or ".." paths, nothing outside a volume, no devices, FIFOs, setuid or setgid, no path
# through a symbolic link, no link leading out of its volume as the kernel resolves it). A snapshot
# any server of the team could have forged is refused before a single file is written.
# It imports nothing of strackt, only Python's standard library. See README.md next to it.
#
#   strackt-extract.py --manifest manifest.json snapshot.tar restored
#
# Exit status 0, or 1 with one line on stderr: "strackt-extract: <kind>: <message>"; on 1 nothing is
# written (DEST is created only once everything checked).

import hashlib
import json
import os
import sys
import tarfile
import unicodedata

USAGE = """usage: strackt-extract.py --manifest MANIFEST.json ARCHIVE.tar DEST
Checks ARCHIVE.tar against MANIFEST.json (both from strackt-decrypt.py), then unpacks it into DEST,
which must not exist or be empty. Run as root to keep file owners."""


class Refused(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "directory",
         tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}


def entry_path(raw, volumes):
    """The entry's path, as strackt's restore checks it (format/entry-rules.ts)."""
    if "\0" in raw:
        raise Refused("refused", f'"{raw}": NUL byte in the path')
    if raw.startswith("/"):
        raise Refused("refused", f'"{raw}": absolute path')
    parts = raw.rstrip("/").split("/")
    if ".." in parts:
        raise Refused("refused", f'"{raw}": ".." in the path')
    if any(p in ("", ".") for p in parts):
        raise Refused("refused", f'"{raw}": empty or "." path component')
    if parts[0] not in volumes:
        raise Refused("refused", f'"{raw}": not inside a volume of the snapshot ({parts[0]})')
    return "/".join(parts)


def resolve_links(symlinks):
    """Each symbolic link walked as the kernel walks it, through the archive's other links."""
    for path, target in symlinks.items():
        at = path.split("/")[:-1]
        rest = target.split("/")
        hops = 0
        while rest:
            part = rest.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(at) <= 1:
                    raise Refused("refused", f'"{path}": symbolic link leading outside its volume ("{target}")')
                at.pop()
                continue
            through = "/".join(at + [part])
            if through in symlinks:
                hops += 1
                if hops > 40:
                    raise Refused("refused", f'"{path}": symbolic links in a loop')
                rest = symlinks[through].split("/") + rest
            else:
                at.append(part)
        if not at or at[0] != path.split("/")[0]:
            raise Refused("refused", f'"{path}": symbolic link leading outside its volume ("{target}")')


def check(archive, manifest):
    """Reads the whole archive once, writing nothing; raises Refused at the first problem."""
    volumes = {v["name"] for v in manifest["volumes"]}
    entries = manifest["entries"]
    seen, files, symlinks = set(), set(), {}
    count = 0
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            path = entry_path(member.name, volumes)
            kind = TYPES.get(member.type)
            if kind is None:
                raise Refused("refused", f'"{member.name}": a device, FIFO or unknown entry type is never restored')
            if member.mode & 0o6000:
                raise Refused("refused", f'"{member.name}": setuid or setgid bit')
            key = unicodedata.normalize("NFC", path)
            if key in seen:
                raise Refused("refused", f'"{member.name}": collides with an earlier entry')
            parts = path.split("/")
            if any("/".join(parts[:i]) in symlinks for i in range(1, len(parts))):
                raise Refused("refused", f'"{member.name}": its path goes through a symbolic link')
            if kind == "symlink":
                if member.linkname == "" or member.linkname.startswith("/"):
                    raise Refused("refused", f'"{member.name}": symbolic link to absolute path "{member.linkname}"')
                symlinks[path] = member.linkname
            if kind == "hardlink":
                target = member.linkname.rstrip("/")
                if target not in files or target.split("/")[0] != parts[0]:
                    raise Refused("refused", f'"{member.name}": hard link to "{member.linkname}", which is not an earlier file of its volume')
            if count >= len(entries):
                raise Refused("mismatch", f'"{member.name}": not declared by the manifest')
            declared = entries[count]
            for field, have, want in (
                ("path", path, declared["path"]),
                ("type", kind, declared["type"]),
                ("mode", member.mode & 0o7777, declared["mode"]),
                ("size", member.size if kind == "file" else None, declared.get("size") if kind == "file" else None),
                ("link target", member.linkname.rstrip("/") if kind in ("symlink", "hardlink") else None,
                 declared.get("target") if kind in ("symlink", "hardlink") else None),
            ):
                if have != want:
                    raise Refused("mismatch", f'"{member.name}": {field} {have!r}, the manifest says {want!r}')
            if kind == "file":
                digest = hashlib.sha256()
                with tar.extractfile(member) as data:
                    for block in iter(lambda: data.read(1 << 20), b""):
                        digest.update(block)
                if digest.hexdigest() != declared.get("sha256"):
                    raise Refused("mismatch", f'"{member.name}": its content is not what the manifest says (SHA-256)')
                files.add(path)
            seen.add(key)
            count += 1
    if count != len(entries):
        raise Refused("mismatch", f'"{entries[count]["path"]}": declared by the manifest but missing from the archive')
    resolve_links(symlinks)


def main(argv):
    if len(argv) != 4 or argv[0] != "--manifest":
        sys.stderr.write(USAGE + "\n")
        return 2
    manifest_path, archive, dest = argv[1], argv[2], argv[3]
    try:
        try:
            with open(manifest_path, "rb") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as err:
            raise Refused("bad_manifest", f"cannot read {manifest_path}: {err}")
        if manifest.get("format") != "strackt-snapshot" or manifest.get("formatVersion") != 1:
            raise Refused("bad_manifest", f"{manifest_path} is not a version 1 strackt manifest")
        if os.path.lexists(dest) and (not os.path.isdir(dest) or os.path.islink(dest) or os.listdir(dest)):
            raise Refused("bad_destination", f"{dest} must not exist, or be an empty folder")
        try:
            check(archive, manifest)
        except (tarfile.TarError, OSError) as err:
            raise Refused("bad_archive", f"{archive}: {err}")
        os.makedirs(dest, mode=0o700, exist_ok=True)
        with tarfile.open(archive, "r:") as tar:
            # Everything was checked above, more strictly than Python's own filters, which would also
            # change modes: extracted as the archive says (Pythons before 3.11.4 have no filters).
            trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
            tar.extractall(dest, numeric_owner=True, **trusted)
        os.chmod(dest, 0o755)
    except Refused as refused:
        sys.stderr.write(f"strackt-extract: {refused.kind}: {refused}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
