"""IPython magics for nbgov (installed as ``nbgov.magics``).

The magics are thin adapters: they parse their input, make one call into the nbgov core and
render the result.
"""
