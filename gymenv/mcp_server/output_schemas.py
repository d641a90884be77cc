"""Tool output schemas that handshake-era clients can afford to check on every call.

An `mcp` 1.x client checks each tool result with `jsonschema.validate`, which first checks the schema
itself against its dialect's metaschema, on every call. Against draft 2020-12's metaschema
($dynamicRef) that costs ~0.25 ms per subschema here: pydantic's 1.5 KB StepOut schema took 4-6 ms a
step, more than a whole call to a server without one. The same constraints in draft-07, which MCP
lets a schema declare with `$schema` (and which TypeScript clients' Ajv takes by default), check in a
fifth of that. So each tool publishes its pydantic schema with references inlined, titles dropped
(they repeat the field names) and `anyOf [T, null]` written as `type: [T, "null"]`: the same fields,
types, required names and descriptions, in draft-07. Checking then walks one subschema per field
(~20 µs apiece, for 1.x and 2.x clients alike): objects nested in the answer (run_progress, list
items) are checked for their type and required names, their fields' types said in their description.
"""

from typing import Any

DIALECT = "http://json-schema.org/draft-07/schema#"
# 2020-12 keywords that draft-07 reads differently or not at all: a schema using one is published as is.
NOT_DRAFT_07 = frozenset({"prefixItems", "$dynamicRef", "$dynamicAnchor", "unevaluatedProperties",
                          "unevaluatedItems", "dependentSchemas", "dependentRequired", "$anchor"})


def client_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (pydantic's, draft 2020-12) as the equivalent draft-07 schema, lean; unchanged when
    it uses what draft-07 has no equivalent for, or refers to itself."""
    definitions = schema.get("$defs", {})
    try:
        lean = _lean(schema, definitions, (), nested=False)
    except _Unconvertible:
        return schema
    return {"$schema": DIALECT, **lean}


class _Unconvertible(Exception):
    pass


def _lean(node: Any, definitions: dict, seen: tuple[str, ...], *, nested: bool) -> Any:
    if isinstance(node, list):
        return [_lean(item, definitions, seen, nested=True) for item in node]
    if not isinstance(node, dict):
        return node
    if NOT_DRAFT_07 & node.keys():
        raise _Unconvertible
    ref = node.get("$ref")
    if ref is not None:
        name = ref.removeprefix("#/$defs/")
        if name == ref or name in seen or name not in definitions:
            raise _Unconvertible  # a foreign or recursive reference: not inlined
        # Keywords beside a $ref are ignored by draft-07: merge them into the inlined definition.
        return _lean({**definitions[name], **{k: v for k, v in node.items() if k != "$ref"}}, definitions,
                     (*seen, name), nested=nested)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties":
            out[key] = {name: _lean(sub, definitions, seen, nested=True) for name, sub in value.items()}
        elif key in ("default", "enum", "const", "examples"):  # data, not schemas
            out[key] = value
        else:
            out[key] = _lean(value, definitions, seen, nested=True)
    out = _nullable_type(out)
    if nested and "properties" in out:
        out = _fields_in_words(out)
    return out


def _fields_in_words(node: dict) -> dict:
    """A nested object checked for its required names only, its fields' types said in its description:
    a client's checker walks each field's subschema on every call (~20 µs apiece in jsonschema)."""
    fields = ", ".join(f"{name} ({_type_words(sub)})" for name, sub in node["properties"].items())
    said = node.get("description", "").rstrip(".")
    rest = {k: v for k, v in node.items() if k not in ("properties", "description")}
    return {**rest, "description": f"{said}. Fields: {fields}." if said else f"Fields: {fields}."}


def _type_words(node: dict) -> str:
    kind = node.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else kind


def _nullable_type(node: dict) -> dict:
    """{"anyOf": [{"type": T}, {"type": "null"}], ...} as {"type": [T, "null"], ...}."""
    options = node.get("anyOf")
    if not (isinstance(options, list) and len(options) == 2 and {"type": "null"} in options):
        return node
    other = options[0] if options[1] == {"type": "null"} else options[1]
    if list(other) == ["type"] and isinstance(other["type"], str):
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return {"type": [other["type"], "null"], **rest}
    if other.get("type") == "object" and "type" not in node:
        # An optional object (run_progress): the object's own keywords apply only when it is one.
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        said = " ".join(d for d in (rest.get("description"), other.get("description")) if d)
        return {**other, "type": ["object", "null"], **rest, **({"description": said} if said else {})}
    return node
