"""A text message as one whole websocket frame: the header's three length forms."""

from __future__ import annotations

import pytest

from core.websocket import frame_text


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_a_text_frame_is_final_unmasked_and_sized_by_its_header(size: int, header: bytes) -> None:
    payload = b"x" * size
    assert frame_text(payload) == header + payload
