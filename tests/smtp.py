"""A real SMTP server on loopback (aiosmtpd), recording every message it accepts."""

from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        # Cleared by hold(): DATA is then answered only once it is set again.
        self.released = threading.Event()
        self.released.set()
        self.receiving = threading.Event()  # set when a message's DATA arrives

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        # Held until release(), from the test's thread: waited for off the server's loop.
        await asyncio.to_thread(self.released.wait)
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._recorder = _Recorder()
        self._controller = Controller(self._recorder, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self._recorder.messages

    def hold(self) -> None:
        """Keep every sender waiting for its DATA reply until release()."""
        self._recorder.released.clear()

    def release(self) -> None:
        self._recorder.released.set()

    @property
    def receiving(self) -> threading.Event:
        """Set once a message's DATA has arrived (accepted or held)."""
        return self._recorder.receiving

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def settings(self) -> dict[str, Any]:
        """Settings overrides that point the app's smtp backend at this server."""
        return {"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": self.port}
