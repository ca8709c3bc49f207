"""The websocket transport's own vocabulary: a text message as one whole frame, and the
close codes the server ends sockets with (both documented in app/asyncapi.py).

Each event is framed once however many sockets get it (see handlers/realtime.py): a
server's frames are not masked and no socket uses compression, so the same bytes go to
every one of them.
"""

from __future__ import annotations

_FIN_TEXT = 0x81  # a final frame (FIN bit) carrying text (opcode 1)

# Close codes: RFC 6455's, then the application's own (4000-4999), named after the
# HTTP status they mirror.
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # too slow a reader, or no turn to start within a wait
BAD_PARAMETERS = 4400
NOT_AUTHENTICATED = 4401
FORBIDDEN = 4403


def frame_text(payload: bytes) -> bytes:
    """`payload` (UTF-8 text) as a whole unmasked websocket text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 1 << 16:
        header = bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big")
    return header + payload
