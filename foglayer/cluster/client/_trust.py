"""Attestation for the operator: the policy, secrets, and the latest results (``fog-attest``).

A secret is sealed here, on the operator's machine, to the controller's vault key (published
by the leading controller as ``vault``): the bus and the KV only ever carry it sealed, and
only a controller can open it.
"""

from __future__ import annotations

import re

from nats.js.errors import KeyNotFoundError

from foglayer.cluster._protocol import ATTEST
from foglayer.errors import FogError

SECRET_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_SECRET = 1 << 20


class Trust:
    async def _attest_get(self, key: str) -> bytes | None:
        try:
            return (await self.kv[ATTEST].get(key)).value or None
        except KeyNotFoundError:
            return None

    async def policy(self) -> str:
        """The policy in force, as YAML (the strict default when none was set)."""
        from foglayer.trust import Policy

        text = await self._attest_get("policy")
        return text.decode() if text else Policy().to_yaml()

    async def set_policy(self, text: str, where: str = "policy") -> None:
        from foglayer.trust import parse_policy

        parse_policy(text, where)  # a bad policy is refused here, with its line
        await self.kv[ATTEST].put("policy", text.encode())

    async def check_secrets(self, names: list[str], where: str) -> None:
        """Refuse (one line) a deploy that names a secret nobody stored: it could never start."""
        for name in names:
            if await self._attest_get(f"secret.{name}") is None:
                raise FogError(f"{where}: secrets: {name!r} does not exist (store it first: "
                               f"`fog secret put {name} --from-file FILE`)")

    async def put_secret(self, name: str, value: bytes) -> None:
        from foglayer.trust import seal_secret

        if not SECRET_RE.fullmatch(name):
            raise FogError(f"secret name {name!r}: letters, digits, '_', '.', '-' (at most 64)")
        if len(value) > MAX_SECRET:
            raise FogError(f"secret {name}: {len(value)} bytes (at most 1 MiB)")
        vault = await self._attest_get("vault")
        if vault is None:
            raise FogError("no controller has published its vault key yet (start one: "
                           "`fog controller` or `fog up`)")
        await self.kv[ATTEST].put(f"secret.{name}", seal_secret(vault, name, value))

    async def attestations(self, target: str, controller_key: bytes | None) -> list:
        """The latest results for node ``target``, or for the nodes that run app ``target``;
        checked against the controller's key when the credentials carry it."""
        nodes = [target]
        if await self._attest_get(f"result.{target}") is None:
            placed = await self.placements()
            nodes = sorted({p["node"] for p in placed.values()
                            if p.get("app") == target and p.get("node")})
            if not nodes:
                raise FogError(f"{target}: no attestation result for a node of that name, "
                               "and no app of that name placed on a node")
        return await self.attestations_of(nodes, controller_key)

    async def attestations_of(self, nodes: list[str], controller_key: bytes | None) -> list:
        """``(node, result or None)`` for each of ``nodes``, each checked against the key."""
        from foglayer.trust import verify_result

        out = []
        for node in nodes:
            token = await self._attest_get(f"result.{node}")
            if token is None:
                out.append((node, None))
                continue
            if controller_key is None:
                raise FogError("these credentials carry no controller_key: results cannot be "
                               "checked")
            from foglayer.trust import controller_key as load_key

            out.append((node, verify_result(token.decode(), load_key(controller_key))))
        return out
