"""Building generated C: toolchain driver and ELF size accounting."""

from edgec.build.elfsize import ElfSection, ObjectSizes, elf_sections, elf_sizes
from edgec.build.toolchain import (
    BuildResult,
    StackFrame,
    build_host_shared_library,
    compile_objects,
    toolchain_version,
)

__all__ = [
    "BuildResult",
    "ElfSection",
    "ObjectSizes",
    "StackFrame",
    "build_host_shared_library",
    "compile_objects",
    "elf_sections",
    "elf_sizes",
    "toolchain_version",
]
