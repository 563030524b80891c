"""Parse Kafka's JSON message specs into a small model the emitter walks.

The spec language is described in ``docs/message-schema-README.md`` next to the specs. Version
ranges are kept as inclusive ``(low, high)`` pairs with ``high = MAX_VERSION`` for "N+", and
``None`` for "none" / absent.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_VERSION = 0x7FFF

VRange = tuple[int, int] | None

PRIMITIVES = {
    "int8", "int16", "uint16", "int32", "uint32", "int64", "float64", "bool",
    "string", "bytes", "uuid", "records",
}
# struct-module codes and widths of the fixed-width primitives
FIXED = {
    "int8": ("b", 1), "int16": ("h", 2), "uint16": ("H", 2), "int32": ("i", 4),
    "uint32": ("I", 4), "int64": ("q", 8), "float64": ("d", 8), "bool": ("?", 1),
    "uuid": ("16s", 16),
}
RESERVED = {"encode", "decode", "encode_into", "unknown_tagged_fields", "FIELDS"}


def strip_comments(text: str) -> str:
    """Remove ``//`` comments that are outside JSON string literals."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(strip_comments(path.read_text(encoding="utf-8")))
    return data


def parse_versions(s: str | None) -> VRange:
    if s is None:
        return None
    s = s.strip()
    if s == "none" or s == "":
        return None
    if s.endswith("+"):
        return (int(s[:-1]), MAX_VERSION)
    if "-" in s:
        lo, hi = s.split("-")
        return (int(lo), int(hi))
    return (int(s), int(s))


def contains(r: VRange, v: int) -> bool:
    return r is not None and r[0] <= v <= r[1]


def snake(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = s.lower()
    if keyword.iskeyword(s) or s in RESERVED:
        s += "_"
    return s


@dataclass
class FieldDef:
    name: str
    py: str
    type: str  # primitive name, "struct" or "array"
    element: str | None  # array element: primitive name or "struct"
    struct_name: str | None
    versions: VRange
    nullable: VRange
    tagged: VRange
    tag: int | None
    ignorable: bool
    flex_override: VRange
    has_flex_override: bool
    default_raw: Any
    has_default: bool
    struct: StructDef | None = None


@dataclass
class StructDef:
    name: str
    fields: list[FieldDef]
    contains_records: bool = False


@dataclass
class Spec:
    name: str
    kind: str  # request / response / header / data
    api_key: int | None
    valid: tuple[int, int]
    flexible: VRange
    listeners: list[str]
    latest_unstable: bool
    top: StructDef
    structs: list[StructDef] = field(default_factory=list)  # dependency order (leaves first)
    source: str = ""


class SpecError(Exception):
    pass


def _parse_fields(raw: list[dict[str, Any]], spec_name: str, defs: dict[str, StructDef],
                  common: dict[str, list[dict[str, Any]]],
                  order: list[StructDef]) -> list[FieldDef]:
    out = []
    for f in raw:
        t = f["type"]
        is_array = t.startswith("[]")
        base = t[2:] if is_array else t
        struct_name = None
        if base in PRIMITIVES:
            kind = "array" if is_array else base
            element = base if is_array else None
        else:
            struct_name = base
            kind = "array" if is_array else "struct"
            element = "struct" if is_array else None
        tagged = parse_versions(f.get("taggedVersions"))
        versions = parse_versions(f.get("versions", f.get("taggedVersions")))
        fd = FieldDef(
            name=f["name"],
            py=snake(f["name"]),
            type=kind,
            element=element,
            struct_name=struct_name,
            versions=versions,
            nullable=parse_versions(f.get("nullableVersions")),
            tagged=tagged,
            tag=f.get("tag"),
            ignorable=bool(f.get("ignorable", False)),
            flex_override=parse_versions(f.get("flexibleVersions")),
            has_flex_override="flexibleVersions" in f,
            default_raw=f.get("default"),
            has_default="default" in f,
        )
        if struct_name is not None:
            if "fields" in f:
                sub = _parse_fields(f["fields"], spec_name, defs, common, order)
                if struct_name in defs:
                    raise SpecError(f"{spec_name}: struct {struct_name} defined twice")
                sd = StructDef(struct_name, sub)
                defs[struct_name] = sd
                order.append(sd)
            elif struct_name not in defs:
                if struct_name not in common:
                    raise SpecError(f"{spec_name}: unknown struct type {struct_name}")
                sub = _parse_fields(common[struct_name], spec_name, defs, common, order)
                sd = StructDef(struct_name, sub)
                defs[struct_name] = sd
                order.append(sd)
            fd.struct = defs[struct_name]
        out.append(fd)
    py_names = [fd.py for fd in out]
    if len(set(py_names)) != len(py_names):
        raise SpecError(f"{spec_name}: duplicate field names {py_names}")
    return out


def _mark_records(sd: StructDef) -> bool:
    sd.contains_records = any(
        f.type == "records" or (f.struct is not None and _mark_records(f.struct)) for f in sd.fields
    )
    return sd.contains_records


def parse_spec(path: Path) -> Spec:
    data = load_json(path)
    name = data["name"]
    common = {c["name"]: c["fields"] for c in data.get("commonStructs", [])}
    defs: dict[str, StructDef] = {}
    order: list[StructDef] = []
    # common structs are parsed first so their names resolve wherever they are referenced
    for cname, cfields in common.items():
        if cname not in defs:
            sd = StructDef(cname, _parse_fields(cfields, name, defs, common, order))
            defs[cname] = sd
            order.append(sd)
    top_fields = _parse_fields(data["fields"], name, defs, common, order)
    if name in defs:
        raise SpecError(f"{name}: struct named like its message")
    top = StructDef(name, top_fields)
    order.append(top)
    _mark_records(top)
    for sd in order:
        _mark_records(sd)
    valid = parse_versions(data["validVersions"])
    assert valid is not None
    return Spec(
        name=name,
        kind=data["type"],
        api_key=data.get("apiKey"),
        valid=valid,
        flexible=parse_versions(data.get("flexibleVersions")),
        listeners=list(data.get("listeners", [])),
        latest_unstable=bool(data.get("latestVersionUnstable", False)),
        top=top,
        structs=order,
        source=path.name,
    )
