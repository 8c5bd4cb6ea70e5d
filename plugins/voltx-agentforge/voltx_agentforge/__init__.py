"""voltx-agentforge: the Agent Forge V2 pipeline as voltx phases (``voltx run cognate``,
``voltx run evomerge``, and ``voltx run agentforge``: the phases in order as gated linked runs).

Registers the ``cognate``, ``evomerge`` and ``agentforge`` phases and cognate's two data sources: the offline generator
``arith_words_gen`` (arithmetic word problems) and the ``gsm8k`` converter (Hub
``openai/gsm8k``). Import-light: torch is imported only when the phase runs.
"""

from __future__ import annotations

from voltx import hookimpl
from voltx.plugin_specs import ConverterSpec

__version__ = "0.1.0"


@hookimpl
def register_phases(register):
    from voltx_agentforge.cognate import PHASE
    from voltx_agentforge.evomerge import PHASE as EVOMERGE

    register(PHASE)
    register(EVOMERGE)
    from voltx_agentforge.pipeline import PHASE as PIPELINE  # voltx run agentforge: the phases as gated linked runs

    register(PIPELINE)


@hookimpl
def register_converters(register):
    register(ConverterSpec("arith_words_gen", "generated arithmetic word problems (+ - x, two steps, a stored fact) -> reasoning",
                           ("reasoning",), factory="voltx_agentforge.word_problems:ArithWordsGenerator"))
    register(ConverterSpec("gsm8k", "GSM8K grade-school math word problems -> reasoning (answer = the number after ####)",
                           ("reasoning",), factory="voltx_agentforge.word_problems:Gsm8kConverter", hub_name="openai/gsm8k"))
