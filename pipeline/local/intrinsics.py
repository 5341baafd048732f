"""Evaluate CloudFormation intrinsic functions against the resources created so far.

The local stack creates resources in dependency order and resolves each one's properties just
before creating it, so a `Ref` or `Fn::GetAtt` always finds its target. Supported: Ref (parameters,
pseudo parameters, resources), Fn::GetAtt, Fn::Sub (both forms), Fn::Join, Fn::If, Fn::Select,
Fn::Split, Fn::Equals/Not/And/Or in Conditions, Condition, AWS::NoValue. An intrinsic outside that
set raises, so a template feature the local stack does not understand fails loudly, not silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
NO_VALUE = object()
"""What `Ref: AWS::NoValue` resolves to: the enclosing key or list item disappears."""


class TemplateError(Exception):
    """The template uses something the local stack cannot evaluate; the message says what."""


@dataclass(frozen=True, slots=True)
class PhysicalResource:
    """A created resource as intrinsics see it: its `Ref` value and its `GetAtt` attributes."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Resolver:
    """Resolves intrinsics; `resources` grows as the provisioner creates them."""

    parameters: Mapping[str, Any]
    conditions: Mapping[str, Any]
    resources: dict[str, PhysicalResource] = field(default_factory=dict)
    _condition_values: dict[str, bool] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Return `value` with every intrinsic evaluated (NoValue entries dropped)."""
        if isinstance(value, list):
            items = (self.resolve(item) for item in value)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._intrinsic(key, arg)
        resolved = ((k, self.resolve(v)) for k, v in value.items())
        return {k: v for k, v in resolved if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        """Evaluate a named condition from the template's Conditions section (cached)."""
        if name not in self._condition_values:
            if name not in self.conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._condition_values[name] = bool(self._evaluate(self.conditions[name]))
        return self._condition_values[name]

    def _evaluate(self, expr: Any) -> Any:
        if isinstance(expr, dict) and list(expr) == ["Condition"]:
            return self.condition(expr["Condition"])
        return self.resolve(expr)

    def _intrinsic(self, key: str, arg: Any) -> Any:
        handlers = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": lambda a: str(self.resolve(a[0])).join(str(p) for p in self.resolve(a[1])),
            "Fn::If": self._if,
            "Fn::Select": lambda a: self.resolve(a[1])[int(self.resolve(a[0]))],
            "Fn::Split": lambda a: str(self.resolve(a[1])).split(str(self.resolve(a[0]))),
            "Fn::Equals": lambda a: str(self._evaluate(a[0])) == str(self._evaluate(a[1])),
            "Fn::Not": lambda a: not self._evaluate(a[0]),
            "Fn::And": lambda a: all(self._evaluate(x) for x in a),
            "Fn::Or": lambda a: any(self._evaluate(x) for x in a),
        }
        if key not in handlers:
            raise TemplateError(f"intrinsic {key} is not supported by the local stack")
        return handlers[key](arg)

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.resources[name].ref
        raise TemplateError(f"Ref to {name!r}, which is neither a parameter nor a created resource")

    def _get_att(self, arg: Any) -> str:
        logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        resource = self.resources.get(logical)
        if resource is None or attribute not in resource.attributes:
            raise TemplateError(f"Fn::GetAtt {logical}.{attribute} is not available locally")
        return resource.attributes[attribute]

    def _if(self, arg: list[Any]) -> Any:
        name, then, otherwise = arg
        return self.resolve(then if self.condition(name) else otherwise)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        local_values = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in local_values:
                return str(local_values[name])
            if "." in name:
                return str(self._get_att(name))
            return str(self._ref(name))

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


def find_dependencies(value: Any) -> set[str]:
    """Logical ids a resource's properties refer to (Ref, GetAtt, Sub variables)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= find_dependencies(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.split(".", 1)[0] if isinstance(arg, str) else arg[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.group(1).split(".", 1)[0].strip() for m in _SUB_VARIABLE.finditer(text)}
                found |= find_dependencies(arg[1] if isinstance(arg, list) else [])
            else:
                found |= find_dependencies(arg)
    return found
