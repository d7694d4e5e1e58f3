"""Reaching boards: QEMU emulated boards, the serial link, flashing, running."""
