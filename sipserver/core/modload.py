"""`loadmodule` and `modparam`: from script text to a Registry.

A 1.6 script names shared objects (`"tm.so"`, `"/usr/lib/opensips/modules/
tm.so"`, `"modules/tm/tm.so"`); each maps to the Python module
`sipserver.modules.<name>`. modparam's first argument is a case-insensitive
regex over the names of the modules loaded so far, as in 1.6.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import PurePosixPath
from typing import Any

from .. import modules as modules_pkg
from .exports import LoadedModule, ModuleExports, Registry, did_you_mean


class ModuleError(Exception):
    """A loadmodule/modparam line that cannot be honoured."""


def module_name(spec: str) -> str:
    """The module name in a loadmodule argument: `a/b/tm.so` -> `tm`."""
    name = PurePosixPath(spec).name
    if name.endswith(".so"):
        name = name[:-3]
    return name


def available_modules() -> list[str]:
    """Names of every module sipserver ships."""
    return sorted(m.name for m in pkgutil.iter_modules(modules_pkg.__path__))


def load_module(registry: Registry, spec: str) -> LoadedModule:
    """Import the module a loadmodule line names and add it to `registry`."""
    name = module_name(spec)
    if name in registry:
        return registry.modules[name]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ModuleError(f'cannot load module "{spec}": bad module name')
    try:
        pymod = importlib.import_module(f"{modules_pkg.__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith(f".{name}"):
            hint = did_you_mean(name, available_modules())
            raise ModuleError(f'cannot load module "{spec}": no such module{hint}') from None
        raise ModuleError(f'cannot load module "{spec}": {e}') from None
    exports = getattr(pymod, "exports", None)
    if not isinstance(exports, ModuleExports):
        raise ModuleError(f'cannot load module "{spec}": it has no export table')
    return registry.add(exports, spec)


def set_modparam(registry: Registry, mod_regex: str, param: str, value: Any) -> None:
    """Apply one modparam line to every loaded module its regex matches."""
    try:
        rx = re.compile(f"^({mod_regex})$", re.IGNORECASE)
    except re.error as e:
        raise ModuleError(f'bad module regex "{mod_regex}": {e}') from None
    matched = [m for m in registry.modules.values() if rx.match(m.name)]
    if not matched:
        hint = did_you_mean(mod_regex, list(registry.modules))
        raise ModuleError(
            f'modparam: no loaded module matches "{mod_regex}"'
            f"{hint or ' (is it loaded before this line?)'}"
        )
    for mod in matched:
        same_name = [p for p in mod.exports.params if p.name == param]
        if not same_name:
            hint = did_you_mean(param, [p.name for p in mod.exports.params])
            raise ModuleError(f'modparam: module "{mod.name}" has no parameter "{param}"{hint}')
        # 1.6 matches name and type: a parameter may be exported as int and as str
        typed = [p for p in same_name if type(value) is p.type]
        if not typed:
            want = " or ".join("an integer" if p.type is int else "a string" for p in same_name)
            raise ModuleError(
                f'modparam: parameter "{param}" of module "{mod.name}" takes {want}'
                f" (got {value!r})"
            )
        p = typed[0]
        if p.on_set is not None:
            try:
                p.on_set(mod, value)
            except (ValueError, TypeError) as e:
                raise ModuleError(f'modparam: "{param}" of "{mod.name}": {e}') from None
        else:
            mod.params[param] = value
