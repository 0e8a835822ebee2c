"""symgrad: PyTorch's autograd API, derived symbolically, compiled to NumPy.

>>> import symgrad
>>> w = symgrad.tensor([1.0, 2.0], requires_grad=True)
>>> loss = (w ** 2).sum()
>>> loss.backward()
>>> w.grad
tensor([2., 4.])
"""

from . import autograd, linalg, nn
from . import random as _random_module
from ._tensor_str import set_printoptions
from .backward import backward as _backward
from .backward import backward_source
from .backward import grad as _grad
from .creation import (
    arange,
    as_tensor,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .dtypes import bool, float32, float64, get_default_dtype, int64, set_default_dtype  # noqa: A004
from .functional import (
    abs,  # noqa: A004
    absolute,
    acos,
    add,
    addmm,
    amax,
    amin,
    arccos,
    arcsin,
    arctan,
    arctan2,
    asin,
    atan,
    atan2,
    bmm,
    broadcast_to,
    clamp,
    clip,
    clone,
    cos,
    cosh,
    div,
    divide,
    dot,
    einsum,
    eq,
    erf,
    exp,
    expm1,
    flatten,
    ge,
    greater,
    greater_equal,
    gt,
    le,
    lerp,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    log_softmax,
    logsumexp,
    lt,
    matmul,
    max,  # noqa: A004
    maximum,
    mean,
    min,  # noqa: A004
    minimum,
    mm,
    mul,
    mv,
    ne,
    neg,
    negative,
    norm,
    not_equal,
    outer,
    permute,
    pow,  # noqa: A004
    prod,
    reciprocal,
    relu,
    reshape,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sinh,
    softmax,
    sqrt,
    square,
    squeeze,
    std,
    sub,
    sum,  # noqa: A004
    swapaxes,
    swapdims,
    t,
    tan,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, check_gradients, gradcheck, gradgradcheck
from .indexing import (
    cat,
    chunk,
    concat,
    concatenate,
    cumsum,
    flip,
    gather,
    index_select,
    narrow,
    split,
    stack,
)
from .tensor import Size, Tensor

autograd.backward = _backward
autograd.grad = _grad
autograd.gradcheck, autograd.gradgradcheck, autograd.GradcheckError = gradcheck, gradgradcheck, GradcheckError
double, float, long = float64, float32, int64  # noqa: A001 - PyTorch's aliases
random = _random_module

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Size", "tensor", "as_tensor", "from_numpy", "ones", "zeros", "randn", "rand", "ones_like",
    "zeros_like", "manual_seed", "float32", "float64", "int64", "bool", "double", "float", "long",
    "get_default_dtype", "set_default_dtype", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "autograd", "nn", "add", "sub", "mul", "div", "pow", "neg", "negative",
    "reciprocal", "exp", "log", "sigmoid", "tanh", "relu", "matmul", "mm", "mv", "dot", "sum", "mean",
    "squeeze", "unsqueeze", "permute", "backward_source", "set_printoptions", "random",
]
__all__ += ["gradcheck", "gradgradcheck", "check_gradients", "GradcheckError"]
__all__ += ["linalg", "addmm", "amax", "amin", "broadcast_to", "clone", "flatten", "log_softmax", "logsumexp",
            "max", "min", "norm", "outer", "prod", "reshape", "softmax", "std", "swapaxes", "swapdims", "t",
            "transpose", "var"]
__all__ += ["abs", "absolute", "acos", "arccos", "arcsin", "arctan", "arctan2", "asin", "atan", "atan2", "clamp",
            "clip", "cos", "cosh", "divide", "eq", "erf", "expm1", "ge", "greater", "greater_equal", "gt", "le", "lerp",
            "less", "less_equal", "log1p", "log2", "log10", "lt", "maximum", "minimum", "ne", "not_equal", "rsqrt",
            "sign", "sin", "sinh", "sqrt", "square", "tan", "where"]

# Formulas and graph pictures (issue 4): symgrad.formula(t), symgrad.grad_formula(out, wrt), symgrad.viz.draw(t)
from . import viz  # noqa: E402
from .formula import Formula, formula, grad_formula  # noqa: E402

__all__ += ["formula", "grad_formula", "Formula", "viz"]
__all__ += ["full", "full_like", "eye", "arange", "linspace", "randint", "randn_like"]
__all__ += ["bmm", "einsum"]
__all__ += ["cat", "chunk", "concat", "concatenate", "cumsum", "flip", "gather", "index_select", "narrow", "split",
            "stack"]

# Compiled gradients for scripts (issue 5): trace once per signature, run generated NumPy code
from .transforms import CompiledFunction, compile, grad, hessian, jacobian, value_and_grad  # noqa: E402, A004

__all__ += ["compile", "CompiledFunction", "grad", "value_and_grad", "jacobian", "hessian"]
