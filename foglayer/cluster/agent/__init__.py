"""The node agent (``fog node``): registration and heartbeats, instance slots, invocation –
one module per job, assembled in :class:`Agent`."""

from foglayer.cluster.agent._agent import Agent, run_node
from foglayer.cluster.agent._caps import NodeConfig, capabilities

__all__ = ["Agent", "NodeConfig", "capabilities", "run_node"]
