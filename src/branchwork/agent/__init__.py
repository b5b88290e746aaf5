"""The built-in agent: the loop as named steps, its tools, context building, resume."""

from branchwork.agent.approvals import NON_INTERACTIVE_REFUSAL, Answer, Approver, FixedApprover
from branchwork.agent.compaction import compact_now
from branchwork.agent.loop import run_turn
from branchwork.agent.policy import MODES, decide, is_dangerous
from branchwork.agent.ports import ProjectBrief, SessionPort
from branchwork.agent.tools import BUILTIN_TOOLS, TOOLS_BY_NAME, Tool
from branchwork.agent.turn import Limits, TurnHooks, TurnResult, TurnSettings

__all__ = [
    "BUILTIN_TOOLS",
    "MODES",
    "NON_INTERACTIVE_REFUSAL",
    "TOOLS_BY_NAME",
    "Answer",
    "Approver",
    "FixedApprover",
    "Limits",
    "ProjectBrief",
    "SessionPort",
    "Tool",
    "TurnHooks",
    "TurnResult",
    "TurnSettings",
    "compact_now",
    "decide",
    "is_dangerous",
    "run_turn",
]
