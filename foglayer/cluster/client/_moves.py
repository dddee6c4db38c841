"""Live moves: ``fog migrate APP[.REPLICA] --to NODE`` (the leading controller drives them)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import nats.errors

from foglayer.cluster._bus import check_name
from foglayer.cluster._move import (
    MOVE_SUBJECT,
    MoveCommand,
    MoveError,
    MoveProgress,
    MoveSummary,
    progress_subject,
)
from foglayer.cluster._protocol import BadMessage, decode, encode
from foglayer.errors import FogError


def parse_target(text: str) -> tuple[str, int]:
    """``APP`` or ``APP.REPLICA``."""
    m = re.fullmatch(r"([^.]+)(?:\.(\d{1,6}))?", text)
    if not m:
        raise FogError(f"{text!r}: expected APP or APP.REPLICA")
    return m.group(1), int(m.group(2) or 0)


class Moves:
    async def migrate(self, target: str, to: str,
                      progress: Callable[[MoveProgress], None] | None = None,
                      timeout: float = 600.0, stop_and_copy: bool = False) -> MoveSummary:
        """Move a running service instance (or a command with ``mobility: live``) to node
        ``to``, live; its :class:`MoveSummary`.

        Pre-copy (rounds of changed pages while it runs), or ``stop_and_copy``.

        Raises :class:`MoveError` when the move is refused or fails (the app stays put).
        """
        from foglayer.cluster.client._client import check_app

        app, replica = parse_target(target)
        check_app(app)
        check_name(to)
        mid = secrets.token_hex(8)

        async def on_progress(msg) -> None:
            if progress is not None:
                try:
                    progress(decode(msg.data, MoveProgress))
                except BadMessage:
                    pass

        sub = await self.nc.subscribe(progress_subject(mid), cb=on_progress)
        try:
            msg = await self.nc.request(MOVE_SUBJECT, encode(MoveCommand(app, replica, to, mid, stop_and_copy)),
                                        timeout=timeout)
        except nats.errors.NoRespondersError:
            raise FogError("no controller answers: is the continuum up?") from None
        except nats.errors.TimeoutError:
            raise FogError(f"{app}.{replica}: the move did not finish within {timeout:g} s") from None
        finally:
            await sub.unsubscribe()
        summary = decode(msg.data, MoveSummary)
        if not summary.ok:
            raise MoveError(f"{app}.{replica} -> {to}: {summary.error}")
        return summary
