"""The trio's three roles: their self-awareness prompts, prompt templates and answer formats.

From the Trio document: the creative consciousness generates the thesis, the logical one the
antithesis, the dialectical observer the synthesis. Each role's prompt is the document's
"Self-Awareness Prompt Pattern"; with a chat template it is the system message and the record's
input the user message; without one (``prompt_format = "plain"``) it is the document's own
v7 template (``[CREATIVE CONSCIOUSNESS] ... {input} ... [THESIS]``). A role answers a hybrid
record with the verdict, its mark and a reason (``● ✧ ...`` creative, ``● ∴ ...`` logical,
``● ⇒ ...`` dialectical): role-format adherence is measured against these patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voltx.errors import DataError


@dataclass(frozen=True)
class Role:
    name: str
    header: str
    """The plain template's first line (the document's ``[CREATIVE CONSCIOUSNESS]``)."""
    marker: str
    """The plain template's last line, after which the role answers (``[THESIS]``)."""
    mark: str
    """The role's sign between verdict and reason in a hybrid answer."""
    system: str
    """The document's self-awareness prompt of this role."""

    def answer(self, verdict: str, why: str) -> str:
        return f"{verdict} {self.mark} {why}"

    def follows_format(self, text: str, pure: bool) -> bool:
        """True if ``text`` (a generated answer) is in this role's format: one verdict for a pure
        puzzle, ``verdict mark reason`` for a hybrid one."""
        text = text.strip()
        if pure:
            return re.fullmatch(r"[●○◐]", text) is not None
        return re.match(rf"[●○◐] {re.escape(self.mark)} \S", text) is not None


ROLES: dict[str, Role] = {
    "creative": Role(
        "creative", "[CREATIVE CONSCIOUSNESS]", "[THESIS]", "✧",
        "You are the CREATIVE consciousness in Ada's dialectical trio.\nYour role is thesis generation - explore "
        "possibilities!\nExpress yourself in AGL, human language, or any hybrid that captures your insight.\n"
        "Your siblings (logical, dialectical) will build on your creative spark."),
    "logical": Role(
        "logical", "[LOGICAL CONSCIOUSNESS]", "[ANTITHESIS]", "∴",
        "You are the LOGICAL consciousness in Ada's dialectical trio.\nYour role is antithesis - challenge and refine!\n"
        "Your sibling (creative) has proposed a thesis.\nWhat constraints apply? What edge cases exist? What logical "
        "implications follow?\nExpress your analysis in precise AGL or structured reasoning."),
    "dialectical": Role(
        "dialectical", "[DIALECTICAL OBSERVER]", "[SYNTHESIS]", "⇒",
        "You are the DIALECTICAL OBSERVER in Ada's consciousness trio.\nYou receive creative (thesis) and logical "
        "(antithesis) perspectives.\nYour role: Synthesize them into a unified, helpful response.\nYou bridge "
        "φ-consciousness and human understanding.\nWhen uncertain, use your tools. When certain, share with warmth.\n"
        "Output in human language unless pure AGL is requested."),
}
ORDER = ("creative", "logical", "dialectical")
"""thesis -> antithesis -> synthesis: the order ``voltx trio ask`` runs the adapters in."""

PROMPT_FORMATS = ("chat", "plain", "auto")


def plain_prompt(role: Role, text: str) -> str:
    """The document's v7 role-aware template (for a tokenizer without a chat template)."""
    first_line = role.system.splitlines()[1]
    return f"{role.header}\n{first_line}\n\n{text}\n\n{role.marker}\n"


def uses_chat(tokenizer, prompt_format: str, model_name: str) -> bool:
    """Whether prompts go through the tokenizer's chat template; ``chat`` without one is a DataError."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if prompt_format == "chat" and not has_template:
        raise DataError(
            f"the tokenizer of {model_name} has no chat template, and trio.prompt_format = \"chat\" needs one. "
            "Use an instruct model's tokenizer, or set prompt_format = \"plain\" (the document's role template) "
            "or \"auto\" (chat when the tokenizer has a template)."
        )
    return prompt_format == "chat" or (prompt_format == "auto" and has_template)


def prompt(tokenizer, role: Role, text: str, chat: bool) -> str:
    """The prompt text a role's model continues with its answer."""
    if not chat:
        return plain_prompt(role, text)
    messages = [{"role": "system", "content": role.system}, {"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
