"""The explorer's ``/docs`` page: its OpenAPI schema as one plain HTML page, made on the server.

FastAPI's own page (Swagger UI) loads its scripts and styles from a CDN, so offline it is blank, and
no package installed here ships those assets. This page needs nothing from elsewhere: no script, an
inline style sheet, every endpoint with its parameters, request body and responses, then every
schema with its fields. The machine-readable schema stays at ``/openapi.json``.
"""
from __future__ import annotations

import html
from typing import Any

# Inline styles only; no scripts, images or fonts from anywhere.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1d232a; max-width: 980px; margin: 0 auto; padding: 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; } h3 { font-size: 15px; margin: 18px 0 4px; }
.method { display: inline-block; min-width: 48px; font: 600 12px monospace; color: #fff; background: #1f6feb;
          border-radius: 4px; padding: 2px 6px; text-align: center; }
.method.post { background: #1a7f37; }
code { background: #f0f2f4; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 4px 0 8px; display: block; overflow-x: auto; max-width: 100%; } th, td { text-align: left; padding: 3px 10px 3px 0;
  border-bottom: 1px solid #eaecef; vertical-align: top; }
p.note { color: #57606a; margin: 2px 0 6px; }
section { border-top: 1px solid #e1e4e8; }
"""


def type_name(schema: dict[str, Any] | None) -> str:
    """A schema's type in words: ``integer``, ``list of number``, ``DecodeRequest``, ``string | null``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(type_name(part) for part in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_name(schema.get('items'))}"
    if "enum" in schema:
        return " | ".join(repr(value) for value in schema["enum"])
    return str(kind)


def _limits(schema: dict[str, Any]) -> str:
    words = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">", "exclusiveMaximum": "<",
             "minItems": "items ≥", "maxItems": "items ≤", "maxLength": "length ≤"}
    parts = [f"{words[key]} {schema[key]}" for key in words if key in schema]
    if "default" in schema:
        parts.append(f"default {schema['default']!r}")
    return ", ".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    out = [f'<h3><span class="method {method}">{method.upper()}</span> <code>{html.escape(path)}</code></h3>']
    if operation.get("summary"):
        out.append(f'<p class="note">{html.escape(operation["summary"])}</p>')
    parameters = operation.get("parameters", [])
    if parameters:
        out.append(_table(["parameter", "in", "type", "required", "description"], [
            [f"<code>{html.escape(p['name'])}</code>", html.escape(p.get("in", "")),
             html.escape(type_name(p.get("schema"))), "yes" if p.get("required") else "no",
             html.escape(" ".join(filter(None, [p.get("description") or p.get("schema", {}).get("description", ""),
                                               _limits(p.get("schema", {}))])))]
            for p in parameters]))
    body = operation.get("requestBody")
    if body:
        content = [f"{html.escape(kind)}: <code>{html.escape(type_name(spec.get('schema')))}</code>"
                   for kind, spec in body.get("content", {}).items()]
        out.append(f"<p>Request body: {', '.join(content)}</p>")
    responses = []
    for code, response in operation.get("responses", {}).items():
        schemas = [type_name(spec.get("schema")) for spec in (response.get("content") or {}).values()]
        responses.append([html.escape(str(code)), html.escape(response.get("description", "")),
                          ", ".join(f"<code>{html.escape(name)}</code>" for name in schemas if name != "any")])
    if responses:
        out.append(_table(["response", "meaning", "body"], responses))
    return "\n".join(out)


def _schema(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = [[f"<code>{html.escape(field)}</code>", html.escape(type_name(spec)), "yes" if field in required else "no",
             html.escape(" ".join(filter(None, [spec.get("description", ""), _limits(spec)])))]
            for field, spec in (schema.get("properties") or {}).items()]
    description = f'<p class="note">{html.escape(schema["description"])}</p>' if schema.get("description") else ""
    return (f'<h3 id="{html.escape(name)}"><code>{html.escape(name)}</code></h3>{description}'
            + (_table(["field", "type", "required", "description"], rows) if rows else ""))


def api_page(openapi: dict[str, Any]) -> str:
    """The whole page for an OpenAPI document (FastAPI's ``app.openapi()``)."""
    info = openapi.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    operations = [_operation(path, method, operation)
                  for path, methods in openapi.get("paths", {}).items()
                  for method, operation in methods.items() if isinstance(operation, dict)]
    schemas = [_schema(name, schema) for name, schema in openapi.get("components", {}).get("schemas", {}).items()]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=\"note\">{html.escape(info.get('description', ''))}</p>"
            "<p>The same, machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI "
            f"{html.escape(str(openapi.get('openapi', '')))}). Back to the <a href=\"/\">explorer</a>.</p>"
            f"<section><h2>Endpoints</h2>{''.join(operations)}</section>"
            f"<section><h2>Schemas</h2>{''.join(schemas)}</section></body></html>\n")
