"""Optimisation passes, NumPy code generation and the structure-keyed compile cache."""

from .backward import CompiledBackward, build_backward
from .cache import CacheInfo, CompileCache
from .codegen import compile_source, generate_function

__all__ = ["CompiledBackward", "build_backward", "CacheInfo", "CompileCache", "compile_source",
           "generate_function"]
