"""The login QR code: session/qr.png and session/qr.txt for people and the dashboard, and terminal rendering."""

from __future__ import annotations

import io
from pathlib import Path

from continuity.watchdog.instance import Home, write_bytes_atomic


def qr_png(payload: str, *, scale: int = 6) -> bytes:
    """The payload encoded as a QR code PNG (segno: pure Python, no imaging library needed)."""
    import segno

    buffer = io.BytesIO()
    segno.make(payload, error="l").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def qr_terminal(payload: str) -> str:
    """The QR code drawn with block characters, for a terminal."""
    import segno

    buffer = io.StringIO()
    segno.make(payload, error="l").terminal(out=buffer, compact=True)
    return buffer.getvalue()


def write_qr(home: Home, payload: str) -> Path:
    """Write session/qr.png and session/qr.txt (0600: a QR payload links a device to the account)."""
    home.session_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(home.qr_png_file, qr_png(payload), durable=False, mode=0o600)
    write_bytes_atomic(home.qr_text_file, payload.encode("utf-8"), durable=False, mode=0o600)
    return home.qr_png_file


def clear_qr(home: Home) -> None:
    """Remove the QR files once no scan is needed."""
    for path in (home.qr_png_file, home.qr_text_file):
        path.unlink(missing_ok=True)
