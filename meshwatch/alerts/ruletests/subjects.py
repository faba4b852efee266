"""The agents, tools and targets the cases use, so every case reads the same way."""

from __future__ import annotations

AGENTS = ("did:mesh:researcher", "did:mesh:writer")
TOOLS = ("web_search", "file_write")
SESSIONS = ("s-1", "s-2")
TASK_TYPE = "research"


def agent(subject: int) -> dict[str, str]:
    """``agent_did`` labels of subject 0 (the offending agent) or 1 (a well-behaved one)."""
    return {"agent_did": AGENTS[subject]}
