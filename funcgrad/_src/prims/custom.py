"""The primitives that a reverse-mode tape records for a ``custom_jvp`` or ``custom_vjp``
call (see ``funcgrad/_src/custom.py``). They are never bound: reverse mode appends them
to its tape directly, with the user's function object as a parameter, and their reverse
rule asks that object."""
from __future__ import annotations

from ..core import Primitive, def_rules


def _custom_jvp_vjp(g, ans, args, wanted, obj, out_tree):
    """Transpose the user's (linear) forward rule."""
    flat_cts = obj.transpose_rule(args, g, out_tree)
    return [flat_cts[i] for i in wanted]


custom_jvp_call_p = Primitive("custom_jvp_call", None, multiple_results=True)
def_rules(custom_jvp_call_p, vjp=_custom_jvp_vjp)


def _custom_vjp_vjp(g, ans, args, wanted, obj, res, out_tree):
    """The user's ``bwd``."""
    flat = obj.run_bwd(args, res, g, out_tree)
    return [flat[i] for i in wanted]


custom_vjp_call_p = Primitive("custom_vjp_call", None, multiple_results=True)
def_rules(custom_vjp_call_p, vjp=_custom_vjp_vjp)
