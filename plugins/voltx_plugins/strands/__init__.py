"""Built-in Hard Strands (MathEngine, HDCAlgebra, CodeRunner, CodeDebugger).

This module is the entry point: it registers the strands with factories named by
string, so listing plugins never imports torch.
"""

from __future__ import annotations

from voltx import hookimpl
from voltx.plugin_specs import StrandSpec


@hookimpl
def register_strands(register):
    register(StrandSpec("math_engine", "exact arithmetic in ints and fractions: + - * / // % ** ( ), sqrt, abs", "voltx_plugins.strands.math_engine:MathEngine"))
    register(StrandSpec("hdc_algebra", "bind, unbind, superpose, permute, similarity on slot vectors", "voltx_plugins.strands.hdc_algebra:HDCAlgebra"))
    register(StrandSpec("code_runner", "run Python with its tests in the sandbox", "voltx_plugins.strands.code_runner:CodeRunner"))
    register(StrandSpec("code_debugger", "locate the failing line, exception and locals of Python code", "voltx_plugins.strands.code_debugger:CodeDebugger"))
