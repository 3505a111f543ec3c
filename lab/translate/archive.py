"""Zip files as inputs: bounded opening and reading (EPUBs are zips), and the .txt members of a plain archive
(Aozora Bunko ships every work as a zip holding one Shift_JIS .txt, often with the images of its gaiji)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from lab import LabError

# A long illustrated novel is 10-100 MiB unpacked; 1 GiB leaves room and still fits a 2-core, 24 GB machine.
MAX_UNPACKED = 1 << 30
UTF8_NAMES = 0x800  # zip flag bit 11: the member names are UTF-8; without it they are the packer's code page


class NoText(LabError):
    """A zip without a .txt file: refused when it is the input, skipped with a warning in a folder (a folder of
    novels may hold a zip of illustrations)."""


def open_zip(path: Path, what: str = "a zip file") -> zipfile.ZipFile:
    """The zip at `path`, refused with one line when it is no zip or unpacks past MAX_UNPACKED (a zip bomb)."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise LabError(f"{path}: not {what} (not a zip file: {e})") from None
    # The sizes are the ones the zip declares; reading stops at them (zipfile checks the CRC), so a member that
    # claims 1 KiB and inflates to 3 GB is refused as damaged, never read whole
    size = sum(i.file_size for i in z.infolist())
    if size > MAX_UNPACKED:  # every entry is read into memory once; a zip bomb must not take the machine
        z.close()
        raise LabError(f"{path}: unpacks to {size / 2**20:.0f} MiB, over the {MAX_UNPACKED // 2**20} MiB limit "
                       f"for {what} (a zip bomb, or media inside); nothing was read")
    return z


def read_member(z: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """One entry's bytes; a damaged entry (bad CRC, truncated or corrupt data) is one line naming it."""
    try:
        return z.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:  # RuntimeError: a
        # password-protected entry
        raise LabError(f"{path}: {name} inside it cannot be read ({e}); the file is damaged") from None


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its packer wrote it: without the UTF-8 flag Python reads the bytes as CP437, which turns
    the CP932 names of a zip made on Japanese Windows (Aozora's among them) into mojibake."""
    if info.flag_bits & UTF8_NAMES:
        return info.filename
    raw = info.filename.encode("cp437")
    for enc in ("utf-8", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return info.filename


def texts(path: Path) -> list[tuple[str, bytes]]:
    """(member name, bytes) of every .txt in the zip at `path`, in archive order; other members (images,
    __MACOSX/ resource forks) are left out. A zip without one is refused with one line."""
    with open_zip(path) as z:
        members = [(member_name(i), i) for i in z.infolist() if not i.is_dir()]
        found = [(name, read_member(z, i.filename, path)) for name, i in members
                 if name.lower().endswith(".txt") and not name.startswith("__MACOSX/")
                 and not name.rsplit("/", 1)[-1].startswith("._")]
    if not found:
        listed = ", ".join(n for n, _ in members[:5]) or "nothing"
        raise NoText(f"{path}: no .txt file inside the zip (it holds {listed})")
    return found
