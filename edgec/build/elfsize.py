"""Flash/RAM sizes of ELF files (relocatable objects or linked firmware), via pyelftools.

Every allocated section (SHF_ALLOC) is put in one of four classes by its flags,
which also matches the usual names:

    text    SHF_EXECINSTR                       .text*
    rodata  read-only, PROGBITS                 .rodata*, .ARM.exidx, .eh_frame, ...
    data    SHF_WRITE, PROGBITS                 .data*, .init_array, ...
    bss     SHT_NOBITS                          .bss*, .stack, .heap, ...

Non-allocated sections (symbols, relocations, debug info, .comment,
.ARM.attributes, ...) take no space on the device and are ignored.
Flash = text + rodata + data (the .data initialisers live in flash);
RAM = data + bss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from edgec.errors import BuildError

SECTION_KINDS = ("text", "rodata", "data", "bss")


@dataclass
class ObjectSizes:
    """Bytes per section class of one object (or the sum over several)."""

    text: int = 0
    rodata: int = 0
    data: int = 0
    bss: int = 0

    @property
    def flash(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss

    def __add__(self, other: ObjectSizes) -> ObjectSizes:
        if not isinstance(other, ObjectSizes):
            return NotImplemented
        return ObjectSizes(
            self.text + other.text,
            self.rodata + other.rodata,
            self.data + other.data,
            self.bss + other.bss,
        )

    @staticmethod
    def total(sizes: list[ObjectSizes]) -> ObjectSizes:
        out = ObjectSizes()
        for s in sizes:
            out = out + s
        return out


@dataclass(frozen=True)
class ElfSection:
    """One allocated section: name, size in bytes, and its class (see SECTION_KINDS)."""

    name: str
    size: int
    kind: str


def classify_section(name: str, sh_type: str, sh_flags: int) -> str | None:
    """The class of a section ("text"/"rodata"/"data"/"bss"), or None if it
    occupies no device memory (not SHF_ALLOC)."""
    if not sh_flags & SH_FLAGS.SHF_ALLOC:
        return None
    if sh_type == "SHT_NOBITS":
        return "bss"
    if sh_flags & SH_FLAGS.SHF_EXECINSTR:
        return "text"
    if sh_flags & SH_FLAGS.SHF_WRITE:
        return "data"
    return "rodata"


def elf_sections(path: Path) -> list[ElfSection]:
    """All allocated sections of an ELF file, in file order."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            out = []
            for sec in elf.iter_sections():
                kind = classify_section(sec.name, sec["sh_type"], sec["sh_flags"])
                if kind is not None:
                    out.append(ElfSection(sec.name, int(sec["sh_size"]), kind))
            return out
    except OSError as e:
        raise BuildError(f"cannot read {path}: {e.strerror or e}") from None
    except ELFError as e:
        raise BuildError(f"{path} is not a valid ELF file: {e}") from None


def elf_sizes(path: Path) -> ObjectSizes:
    """Flash/RAM-relevant sizes of an object file or linked ELF, by section flags."""
    sizes = ObjectSizes()
    for sec in elf_sections(path):
        setattr(sizes, sec.kind, getattr(sizes, sec.kind) + sec.size)
    return sizes
